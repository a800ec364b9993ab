// The queue workers, seen from the main thread: start them, ask them for
// counters, swap their configuration, stop them.

import { Worker } from 'node:worker_threads';
import { L3dsrError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PathConfig } from './data-path.js';
import type { FromWorker, ToWorker, WorkerSetup } from './messages.js';
import type { QueueSnapshot } from './snapshot.js';

type Request = ToWorker extends infer T ? (T extends unknown ? Omit<T, 'id'> : never) : never;
type Pending = { resolve: (m: Extract<FromWorker, { type: 'reply' }>) => void; reject: (e: Error) => void };

export class QueueWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #next = 1;
  #exited = false;
  ready: Promise<Extract<FromWorker, { type: 'ready' }>>;
  /** Called once if the data path fails (e.g. the TUN was deleted). */
  onFailure: ((code: string, message: string) => void) | null = null;

  constructor(readonly setup: WorkerSetup, log: Logger) {
    this.#worker = new Worker(new URL('./queue-worker.js', import.meta.url), { workerData: setup });
    this.ready = new Promise((resolve, reject) => {
      this.#worker.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'ready': resolve(m); break;
          case 'log': log.info(m.line, { queue: setup.queue }); break;
          case 'failed':
            reject(new L3dsrError('ERR_L3DSR_QUEUE', m.message));
            this.onFailure?.(m.code, m.message);
            break;
          case 'reply': {
            const p = this.#pending.get(m.id);
            this.#pending.delete(m.id);
            p?.resolve(m);
            break;
          }
        }
      });
      this.#worker.on('error', (err) => { reject(err); this.onFailure?.('ERR_L3DSR_QUEUE', `queue ${setup.queue} worker: ${err.message}`); });
      this.#worker.on('exit', (code) => {
        this.#exited = true;
        const err = new L3dsrError('ERR_L3DSR_QUEUE', `queue ${setup.queue} worker exited (${code})`);
        reject(err);
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
      });
    });
    // A failure before 'ready' is reported through `ready`; avoid an unhandled rejection.
    this.ready.catch(() => {});
  }

  #ask(m: Request): Promise<Extract<FromWorker, { type: 'reply' }>> {
    if (this.#exited) return Promise.reject(new L3dsrError('ERR_L3DSR_QUEUE', `queue ${this.setup.queue} worker is gone`));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...m, id });
    });
  }

  async snapshot(): Promise<QueueSnapshot> {
    const r = await this.#ask({ type: 'snapshot' });
    if (!r.ok || !r.snapshot) throw new L3dsrError('ERR_L3DSR_QUEUE', r.ok ? 'no snapshot' : r.error);
    return r.snapshot;
  }

  async configure(config: PathConfig): Promise<void> {
    const r = await this.#ask({ type: 'configure', config });
    if (!r.ok) throw new L3dsrError('ERR_L3DSR_QUEUE', r.error);
  }

  /** Closes the TUN queue and returns the final counters. */
  async stop(): Promise<QueueSnapshot | undefined> {
    if (this.#exited) return undefined;
    try {
      const r = await this.#ask({ type: 'stop' });
      return r.ok ? r.snapshot : undefined;
    } finally {
      await this.#worker.terminate();
    }
  }
}
