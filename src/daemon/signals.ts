// The daemon's signals: SIGHUP asks for a reload, SIGTERM and SIGINT for a
// stop. The handlers go in before anything is installed and stay until the
// teardown is over: Node applies a signal's default action (death) whenever
// no listener is registered, so a stop requested during startup, or a
// second signal during the teardown, would otherwise kill the process with
// filters and VIPs left behind.

import type { Logger } from '../log.js';

/** What the signals act on. */
export interface SignalTarget {
  /** A stop was requested (or the data path failed): reloads are refused from then on. */
  readonly stopping: boolean;
  /** Runs after the startup and after any reload before it. */
  reload(): unknown;
  stop(): void;
}

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export class DaemonSignals {
  readonly #onHup: () => void;
  readonly #onStop: Map<NodeJS.Signals, () => void>;

  constructor(target: SignalTarget, log: Logger) {
    this.#onHup = () => {
      if (target.stopping) log.info('stopping; SIGHUP ignored');
      else void target.reload();
    };
    this.#onStop = new Map(STOP_SIGNALS.map((signal) => [signal, () => {
      if (target.stopping) { log.info('already stopping', { signal }); return; }
      log.info('stopping', { signal });
      target.stop();
    }]));
  }

  install(): void {
    process.on('SIGHUP', this.#onHup);
    for (const [signal, handler] of this.#onStop) process.on(signal, handler);
  }

  /** Only once the teardown is over. */
  remove(): void {
    process.off('SIGHUP', this.#onHup);
    for (const [signal, handler] of this.#onStop) process.off(signal, handler);
  }
}
