// systemd's part for a daemon in the lab, as deploy/l3dsr.service sets it
// (Restart=always, RestartSec=1): `l3dsr run` in a namespace, started again
// a second after every exit until stop(). Each run is kept with the times
// (process.hrtime, CLOCK_MONOTONIC) at which it was spawned, said `running`
// and exited, and its log.
import { LabDaemon, type DaemonExit, type LabDaemonOptions } from '../../tools/demo/lab-daemon.js';
import type { Lab } from '../../tools/lab/index.js';

/** RestartSec=1 of deploy/l3dsr.service. */
export const RESTART_MS = 1000;
const RUNNING = /\bmsg=running\b|"msg":"running"/;
const POLL_MS = 20;

export const now = (): bigint => process.hrtime.bigint();

export interface SupervisedRun {
  /** 1, 2, …: the order of the starts. */
  index: number;
  daemon: LabDaemon;
  spawnedAt: bigint;
  /** When its `running` line arrived. */
  runningAt?: bigint;
  exitedAt?: bigint;
  exit?: DaemonExit;
  /** When the supervisor killed it (kill -9) during its start-up, if it did. */
  killedInStartupAt?: bigint;
}

export interface SupervisorOptions extends Pick<LabDaemonOptions, 'env' | 'role'> {
  restartMs?: number;
}

export class Supervisor {
  readonly runs: SupervisedRun[] = [];
  readonly #lab: Lab;
  readonly #args: readonly string[];
  readonly #options: SupervisorOptions;
  #stopping = false;
  #restart: NodeJS.Timeout | undefined;
  /** kill -9 the next run this many ms after spawning it. */
  #killNextAfterMs: number | undefined;

  constructor(lab: Lab, args: readonly string[], options: SupervisorOptions = {}) {
    this.#lab = lab;
    this.#args = args;
    this.#options = options;
  }

  /** The latest run, while its process lives. */
  get current(): SupervisedRun | undefined {
    const last = this.runs.at(-1);
    return last && last.exit === undefined ? last : undefined;
  }

  start(): void {
    const run: SupervisedRun = { index: this.runs.length + 1, spawnedAt: now(), daemon: undefined as unknown as LabDaemon };
    run.daemon = LabDaemon.spawn(this.#lab, this.#args, {
      controlSocket: null, env: this.#options.env, role: this.#options.role,
      onLine: (line) => { if (run.runningAt === undefined && RUNNING.test(line)) run.runningAt = now(); },
    });
    this.runs.push(run);
    const killAfter = this.#killNextAfterMs;
    this.#killNextAfterMs = undefined;
    if (killAfter !== undefined) {
      setTimeout(() => {
        if (run.exit !== undefined) return;
        run.killedInStartupAt = now();
        run.daemon.signal('SIGKILL');
      }, killAfter);
    }
    void run.daemon.exited.then((exit) => {
      run.exitedAt = now();
      run.exit = exit;
      if (!this.#stopping) this.#restart = setTimeout(() => { this.#restart = undefined; this.start(); }, this.#options.restartMs ?? RESTART_MS);
    });
  }

  /** Makes the next start end in kill -9, `ms` after its spawn. */
  killNextStartAfter(ms: number): void {
    this.#killNextAfterMs = ms;
  }

  /** Resolves with the first run numbered `after` + 1 or later that says `running` (and still runs then). */
  async runningAfter(after: number, timeoutMs: number): Promise<SupervisedRun> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = this.runs.find((r) => r.index > after && r.runningAt !== undefined && r.exit === undefined);
      if (run) return run;
      if (Date.now() > deadline) {
        const since = this.runs.filter((r) => r.index > after);
        const ends = since.map((r) => `#${r.index} ${r.exit ? JSON.stringify(r.exit) : 'still starting'}`).join(', ');
        const told = since.filter((r) => r.daemon.log !== '').at(-1);
        throw new Error(`no l3dsr run after #${after} said \`running\` within ${timeoutMs} ms (runs since: ${ends || 'none'}); the last log:\n${told?.daemon.log ?? '(none)'}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** Stops restarting, sends SIGTERM to the current run and waits for its exit. */
  async stop(): Promise<DaemonExit | undefined> {
    this.#stopping = true;
    if (this.#restart) clearTimeout(this.#restart);
    this.#restart = undefined;
    return this.current?.daemon.stop();
  }
}
