// bench/c/tun-loop.c in the lab's srv, set up the way the daemon sets up
// its TUN (no link-local address, the daemon's transmit queue length, the
// same steering filters), so that only the program that reads and writes
// differs.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { TUN_TX_QUEUE_LEN } from '../../src/daemon/daemon.js';
import { Steering } from '../../src/steering/index.js';
import { ip } from '../../src/system/index.js';
import { LAB_INTERFACES, type Lab } from '../../tools/lab/index.js';

export interface TunLoopOptions {
  engine: 'uring' | 'readwrite';
  dscp: number;
  vip: string;
  /** IFF_VNET_HDR with checksum and TSO offloads. */
  vnet?: boolean;
  /** Slot stride in bytes (default: the program's). */
  slot?: number;
  /** The CPU it runs on (default: any). */
  cpu?: number;
}

const TUN = 'tunloop0';
const EXIT_GRACE_MS = 2000;

export class TunLoop {
  readonly #child: ChildProcess;
  readonly #lines: AsyncIterator<string>;
  readonly #steering: Steering;

  private constructor(child: ChildProcess, lines: AsyncIterator<string>, steering: Steering) {
    this.#child = child;
    this.#lines = lines;
    this.#steering = steering;
  }

  static async start(lab: Lab, bin: string, o: TunLoopOptions): Promise<TunLoop> {
    const args = ['--tun', TUN, '--engine', o.engine, '--dscp', String(o.dscp), '--vip', o.vip,
      ...(o.vnet ? ['--vnet'] : []), ...(o.slot ? ['--slot', String(o.slot)] : [])];
    const child = o.cpu === undefined
      ? lab.spawn('srv', bin, args, { stdio: ['ignore', 'pipe', 'inherit'] })
      : lab.spawn('srv', 'taskset', ['-c', String(o.cpu), bin, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done || !String(first.value).startsWith('ready ')) {
      child.kill('SIGKILL');
      throw new Error(`tun-loop ${args.join(' ')} did not start`);
    }
    const where = lab.where('srv');
    const steering = new Steering({ interfaces: [LAB_INTERFACES.srvToLb], tun: TUN, netns: lab.namespaces.srv });
    const loop = new TunLoop(child, lines, steering);
    try {
      await ip(['link', 'set', 'dev', TUN, 'addrgenmode', 'none'], where);
      await ip(['link', 'set', 'dev', TUN, 'txqueuelen', String(TUN_TX_QUEUE_LEN), 'up'], where);
      await steering.install([{ family: 4, dscp: o.dscp }]);
    } catch (err) {
      await loop.stop();
      throw err;
    }
    return loop;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** Packets it rewrote so far. */
  async packets(): Promise<number> {
    this.#child.kill('SIGUSR1');
    const next = await this.#lines.next();
    const m = /^packets (\d+)$/.exec(next.done ? '' : String(next.value));
    if (!m) throw new Error('tun-loop: no packet count');
    return Number(m[1]);
  }

  async stop(): Promise<void> {
    await this.#steering.remove();
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((r) => this.#child.once('close', r));
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), EXIT_GRACE_MS);
    this.#child.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  }
}
