// `l3dsr run` (or `l3dsr lb`) as a child process inside one namespace of the
// lab: start it, wait until it serves, read its status over its control
// socket, signal it, wait for its exit. Used by the demo and by the daemon's
// lab tests.
//
// The control socket is a path on the shared file system (Unix sockets do
// not belong to a network namespace), so the caller reaches it from
// anywhere. Each daemon gets its own directory unless told otherwise, so
// that tests and the demo leave nothing in the host's /run/l3dsr.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sameAddress, type NamespaceLab } from '../lab/index.js';
import type { DaemonSnapshot } from '../../src/daemon/snapshot.js';

/** bin/l3dsr.js of this checkout (dist/src/demo → ../../../bin). */
export const L3DSR_BIN = fileURLToPath(new URL('../../../bin/l3dsr.js', import.meta.url));

/** How long a daemon gets to say `running`. */
const DEFAULT_READY_TIMEOUT_MS = 15_000;
/** How long a stopped daemon gets to tear down before SIGKILL. */
const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** The /status JSON: DaemonSnapshot with its bigints as decimal strings. */
export type StatusJson = DaemonSnapshot;

export interface DaemonExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LabDaemonOptions {
  /** The daemon: `run` (the default, the real server's) or `lb` (the balancer). */
  command?: 'run' | 'lb';
  /** Namespace to run in; default srv (the three-namespace lab's server; srv1 or srv2 in the ECMP lab). */
  role?: string;
  /**
   * Control socket path; default one in a fresh directory that goes away
   * with the daemon. `null`: no --control-socket, the daemon's own default
   * in its runtime directory (learnt from its `running` line).
   */
  controlSocket?: string | null;
  /** Programs that run the daemon inside the namespace (e.g. `setpriv …`, `nsenter …`). */
  prefix?: readonly string[];
  /** The l3dsr binary; default this checkout's. */
  bin?: string;
  /**
   * The program to start instead of node and `bin`, e.g. a unit's ExecStart
   * path, run as systemd runs it (its `#!` line finds node on the PATH).
   */
  program?: string;
  /** The daemon's environment; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** The daemon's working directory. */
  cwd?: string;
  /** The daemon's files are only visible in its own mount namespace: reach its socket through /proc/PID/root. */
  ownMountNamespace?: boolean;
  readyTimeoutMs?: number;
  /** Called with every log line as it arrives (the demo prints some). */
  onLine?: (line: string) => void;
}

export class LabDaemonError extends Error {
  constructor(message: string, readonly code: string, readonly log: string) {
    super(message);
    this.name = 'LabDaemonError';
  }
}

export class LabDaemon {
  readonly child: ChildProcess;
  /** `l3dsr run` or `l3dsr lb`, for messages. */
  readonly #name: string;
  #controlSocket: string | undefined;
  readonly #ownMountNamespace: boolean;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<DaemonExit>;
  /** The directory made for the control socket, if we made one. */
  readonly #dir?: string;
  #log = '';
  #closed = false;
  #lineWaiters: { re: RegExp; resolve: (line: string) => void }[] = [];

  private constructor(lab: NamespaceLab<string>, args: readonly string[], options: LabDaemonOptions) {
    this.#name = `l3dsr ${options.command ?? 'run'}`;
    if (options.controlSocket === undefined) this.#dir = mkdtempSync(join(tmpdir(), 'l3dsr-daemon-'));
    this.#controlSocket = options.controlSocket === null ? undefined : options.controlSocket ?? join(this.#dir!, 'control.sock');
    this.#ownMountNamespace = options.ownMountNamespace ?? false;
    const socketArgs = this.#controlSocket === undefined ? [] : ['--control-socket', this.#controlSocket];
    const program = options.program !== undefined ? [options.program] : [process.execPath, options.bin ?? L3DSR_BIN];
    const [file, ...programArgs] = [...(options.prefix ?? []), ...program];
    this.child = lab.spawn(options.role ?? 'srv', file!, [...programArgs, options.command ?? 'run', ...args, ...socketArgs], {
      stdio: ['ignore', 'pipe', 'pipe'], env: options.env, cwd: options.cwd,
    });
    // Each stream keeps its own unfinished line.
    const partial = { stdout: '', stderr: '' };
    for (const stream of ['stdout', 'stderr'] as const) {
      this.child[stream]!.on('data', (chunk: Buffer) => {
        const lines = (partial[stream] + chunk.toString('utf8')).split('\n');
        partial[stream] = lines.pop()!;
        for (const line of lines) this.#line(line, options.onLine);
      });
    }
    // 'close', not 'exit': by then the last log lines have been read.
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        for (const rest of [partial.stdout, partial.stderr]) if (rest !== '') this.#line(rest, options.onLine);
        this.#closed = true;
        if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true });
        resolve({ code, signal });
      });
      this.child.once('error', (err) => {
        this.#log += `spawn failed: ${err.message}\n`;
        resolve({ code: null, signal: null });
      });
    });
  }

  /** Starts `l3dsr run ARGS --control-socket …` and returns at once (see start()). */
  static spawn(lab: NamespaceLab<string>, args: readonly string[], options: LabDaemonOptions = {}): LabDaemon {
    return new LabDaemon(lab, args, options);
  }

  /**
   * Starts `l3dsr run ARGS --control-socket …` and resolves once the daemon
   * logs `running`; rejects (with the daemon's log) if it exits first.
   */
  static async start(lab: NamespaceLab<string>, args: readonly string[], options: LabDaemonOptions = {}): Promise<LabDaemon> {
    const daemon = LabDaemon.spawn(lab, args, options);
    try {
      const running = await daemon.waitForLine(/\bmsg=running\b|"msg":"running"/, options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
      daemon.#controlSocket ??= /\bcontrol="?([^"\s]+)|"control":"([^"]+)"/.exec(running)?.slice(1).find((m) => m !== undefined);
    } catch (err) {
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      throw err;
    }
    return daemon;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Everything the daemon wrote so far (stderr and stdout interleaved by arrival). */
  get log(): string {
    return this.#log;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first log line (past or future) matching `re`. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.#log.split('\n').find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { re, resolve: (line: string) => { clear(); resolve(line); } };
      const fail = (why: string, code: string) => {
        clear();
        reject(new LabDaemonError(`${this.#name}: ${why} (waiting for ${re}); its log:\n${this.#log}`, code, this.#log));
      };
      const timer = setTimeout(() => fail(`no such line within ${timeoutMs} ms`, 'ETIMEDOUT'), timeoutMs);
      const onExit = () => fail(`exited (${this.child.exitCode ?? this.child.signalCode})`, 'EEXITED');
      const clear = () => {
        clearTimeout(timer);
        this.child.off('close', onExit);
        this.#lineWaiters = this.#lineWaiters.filter((w) => w !== waiter);
      };
      this.#lineWaiters.push(waiter);
      if (this.#closed) onExit();
      else this.child.once('close', onExit);
    });
  }

  /** GET /status on the control socket. */
  async status(): Promise<StatusJson> {
    return JSON.parse(await this.get('/status')) as StatusJson;
  }

  /** GET /metrics on the control socket (Prometheus text). */
  metrics(): Promise<string> {
    return this.get('/metrics');
  }

  /** The control socket as the daemon names it (see LabDaemonOptions.controlSocket). */
  get controlSocket(): string {
    if (this.#controlSocket === undefined) throw new Error(`${this.#name}: no control socket known (it has not said \`running\`); its log:\n${this.#log}`);
    return this.#controlSocket;
  }

  /** Where this process reaches the control socket. */
  get socketPath(): string {
    return this.#ownMountNamespace ? `/proc/${this.pid}/root${this.controlSocket}` : this.controlSocket;
  }

  get(path: string): Promise<string> {
    const socketPath = this.socketPath;
    return new Promise((resolve, reject) => {
      const req = request({ socketPath, path, method: 'GET', timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { body += c; });
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${path}: HTTP ${res.statusCode}: ${body}`))));
      });
      req.on('timeout', () => req.destroy(new Error(`${path}: no answer from ${socketPath} within 5 s`)));
      req.on('error', reject);
      req.end();
    });
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** Sends `sig` (default SIGTERM) and waits for the exit (SIGKILL after timeoutMs). */
  async stop(sig: NodeJS.Signals = 'SIGTERM', timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<DaemonExit> {
    if (this.running) {
      this.child.kill(sig);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exited;
  }

  #line(line: string, onLine?: (line: string) => void): void {
    this.#log += `${line}\n`;
    onLine?.(line);
    for (const w of [...this.#lineWaiters]) if (w.re.test(line)) w.resolve(line);
  }
}

/** Sums one counter over the queues of a status (numbers arrive as decimal strings). */
export function sumQueues(status: StatusJson, pick: (q: StatusJson['queues'][number]) => unknown): bigint {
  return status.queues.reduce((n, q) => n + BigInt(pick(q) as string | number), 0n);
}

/** Packets rewritten by the rule for this VIP (summed over queues); 0n if there is no such rule. */
export function rulePackets(status: StatusJson, vip: string): bigint {
  const i = status.rules.findIndex((r) => sameAddress(r.destination, vip));
  return i < 0 ? 0n : sumQueues(status, (q) => q.counters.rules[i]?.packets ?? 0);
}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs `l3dsr status --control-socket SOCKET` in a namespace; returns the
 * command as run (a daemon started with --control-socket is found only
 * through it) and what it printed, for the demo to show.
 */
export function statusCommand(netns: string, controlSocket: string): string {
  const args = ['status', '--control-socket', controlSocket];
  const r = spawnSync('ip', ['netns', 'exec', netns, process.execPath, L3DSR_BIN, ...args], { encoding: 'utf8' });
  return `$ ip netns exec ${netns} l3dsr ${args.join(' ')}\n${r.stdout}${r.stderr}`;
}
