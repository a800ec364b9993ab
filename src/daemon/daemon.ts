// `l3dsr run` and `l3dsr lb`: the daemon's lifecycle. start() starts the
// queue workers (each opens a TUN queue), brings the TUN up, steers packets
// into it and serves status and metrics; reload() re-reads the
// configuration; stop() tears everything down. runDaemon() wires the
// signals around them: SIGHUP reloads, SIGTERM/SIGINT stop, and a failing
// data path stops the daemon with an error.
//
// What belongs to one half of L3DSR is its role (role.ts): the real
// server's rewrite (steering of the rules' DSCPs, VIPs on lo) in
// real-server.ts, the balancer's (steering by destination, forwarding) in
// balancer.ts; the rest (queues, control servers, signals, runtime
// directory, state file) is the same for any daemon on a TUN.

import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { OffloadMode } from '../config/config.js';
import { EXIT, type ExitStatus } from '../errors.js';
import type { AdjustableLogger, Logger } from '../log.js';
import { ip } from '../system/index.js';
import { OFFLOAD_MIN_SLOT_SIZE, VNET_HEADER_BYTES } from '../tun/device.js';
import { ControlServers, type MetricsChange } from './control.js';
import type { PathConfig } from './data-path.js';
import type { FromWorker } from './messages.js';
import { planReload, runSettings, type DaemonCommon, type RunSettings } from './options.js';
import { preflight, type Preflight } from './preflight.js';
import { QueueWorker } from './queues.js';
import type { DaemonRole, Reloaded } from './role.js';
import { DaemonSignals } from './signals.js';
import type { DaemonSnapshot } from './snapshot.js';
import { removeState, writeState } from './state-file.js';

const SLOT_ALIGN = 64;
/**
 * Packets the kernel queues for us per TUN queue. Without offloads the
 * default (500) overflows under a single TCP upload in the lab: the
 * sender's GSO bursts are cut to MTU-sized packets at the redirect, and
 * 4-10 % were dropped (tx_dropped) while the reader was between batches;
 * 4096 dropped none. (With offloads the same upload is ~300 super-packets.)
 */
export const TUN_TX_QUEUE_LEN = 4096;

/**
 * The size of a packet slot for an MTU: with offload a read can carry a
 * 64 KiB GSO super-packet behind its header (the TUN's MTU stays that of
 * the links). An odd number of cache lines: with a power-of-two stride
 * (64 KiB) every packet header lands in the same cache sets, and the core
 * ran ~30 % slower in bench measurements.
 */
export function slotSizeFor(mtu: number, offload: OffloadMode): number {
  const bytes = offload === 'no' ? Math.max(mtu, 2048) : Math.max(OFFLOAD_MIN_SLOT_SIZE, mtu + VNET_HEADER_BYTES);
  const size = Math.ceil(bytes / SLOT_ALIGN) * SLOT_ALIGN;
  return (size / SLOT_ALIGN) % 2 === 0 ? size + SLOT_ALIGN : size;
}

/** Says once which offloads the kernel granted on the TUN: TCP throughput hangs on it. */
function logOffloads(log: Logger, mode: OffloadMode, ready: Extract<FromWorker, { type: 'ready' }>, slotSize: number): void {
  if (ready.offloads === null) {
    log.info('TUN offloads off: one packet per read, complete checksums', { offload: mode, note: ready.offloadNote });
    return;
  }
  const fields = { offload: mode, granted: ready.offloads.join(',') || 'none', vnet_header: VNET_HEADER_BYTES, slot_size: slotSize };
  if (ready.offloadNote) log.warn('TUN offloads granted, but no TCP segmentation: packets arrive one segment at a time', { ...fields, note: ready.offloadNote });
  else log.info('TUN offloads granted: GSO super-packets up to 64 KiB per read', fields);
}

export class Daemon {
  readonly #opts: DaemonCommon;
  readonly #log: AdjustableLogger;
  /** The settings in effect: those of the start, and what reloads changed of them. */
  #settings: RunSettings;
  readonly #preflight: Preflight;
  readonly #slotSize: number;
  readonly #startedAt = Date.now();
  readonly #reloads = { ok: 0, failed: 0, lastError: undefined as string | undefined };
  /** Aborted when a stop is requested or the data path fails (then #failure says how). */
  readonly #stop = new AbortController();
  #failure: { code: string; message: string } | undefined;
  readonly #queues: QueueWorker[] = [];
  readonly #role: DaemonRole;
  readonly #control = new ControlServers();
  /** Everything is installed and served: reloads may change it. */
  #running = false;
  #startSettled!: () => void;
  /** Reloads run one at a time, after the startup. */
  #reloading = new Promise<void>((resolve) => { this.#startSettled = resolve; });

  /** `role` makes the half of L3DSR this daemon runs; `record` writes the state file. */
  constructor(opts: DaemonCommon, log: AdjustableLogger, checked: Preflight, role: (record: () => Promise<void>) => DaemonRole) {
    this.#opts = opts;
    this.#settings = runSettings(opts);
    this.#log = log;
    this.#preflight = checked;
    this.#slotSize = slotSizeFor(checked.mtu, opts.offload);
    this.#role = role(() => this.#saveState());
  }

  /** A stop was requested, or the data path failed. */
  get stopping(): boolean {
    return this.#stop.signal.aborted;
  }

  /** Aborted when the daemon is to stop. */
  get stopSignal(): AbortSignal {
    return this.#stop.signal;
  }

  /** After a requested stop, or a failure of the data path. */
  get exitStatus(): ExitStatus {
    return this.#failure ? EXIT.failure : EXIT.ok;
  }

  /** Asks the daemon to stop; whoever waits on stopSignal tears it down. */
  stop(): void {
    this.#stop.abort();
  }

  /**
   * Installs everything, one step after the other. A stop requested on the
   * way leaves the remaining steps out (teardown() undoes the ones done).
   * Throws when a step fails; teardown() then undoes what was done.
   */
  async start(): Promise<void> {
    const { earlier } = this.#preflight;
    for (const w of this.#opts.warnings) this.#log.warn(w);
    if (earlier.kind === 'refused') this.#log.warn('state file refused: nothing in it is taken over', { error: earlier.reason, kept_as: earlier.keptAs });
    const steps: (() => Promise<void>)[] = [
      () => this.#takeOverEarlierRun(),
      () => this.#startQueues(),
      () => this.#bringTunUp(),
      () => this.#role.beforeSteering(),
      () => this.#installSteering(),
      () => this.#role.addVips(),
      () => this.#saveState(),
      () => this.#serveControl(),
    ];
    try {
      for (const step of steps) {
        if (this.stopping) return;
        await step();
      }
      if (this.stopping) return;
      this.#running = true;
      this.#role.start((path) => this.#configureQueues(path));
      const { tun, queues, controlSocket, metrics } = this.#opts;
      this.#log.info('running', { command: this.#opts.command, tun, queues, ...this.#role.summary(), control: controlSocket, metrics });
    } catch (err) {
      this.#log.error('start failed', { error: (err as Error).message });
      throw err;
    } finally {
      this.#startSettled();
    }
  }

  /** Re-reads the configuration and applies it; after the startup and any reload before it. Never rejects. */
  reload(): Promise<void> {
    this.#reloading = this.#reloading.then(() => this.#reloadNow());
    return this.#reloading;
  }

  /**
   * Undoes everything, steering first (so no packet is sent to a TUN that
   * is closing), then the queues, the VIPs and the control socket; after
   * any reload in progress. The state file goes only if all of it was undone:
   * the next run takes over what is left.
   */
  async teardown(): Promise<void> {
    this.#running = false;
    this.#role.stop();
    await this.#reloading;
    const steps: [string, () => Promise<unknown>][] = [
      ['remove steering', () => this.#role.removeSteering()],
      ['stop queues', () => this.#stopQueues()],
      ['remove VIPs from lo', () => this.#role.removeVips()],
      ['close control socket', () => this.#control.close()],
    ];
    let undone = true;
    for (const [what, step] of steps) {
      try { await step(); } catch (err) { undone = false; this.#log.warn(`${what} failed`, { error: (err as Error).message }); }
    }
    if (undone) await removeState(this.#preflight.stateFile).catch(() => {});
  }

  #fail(code: string, message: string): void {
    if (this.#failure) return;
    this.#failure = { code, message };
    this.#log.error('data path failed; shutting down', { code, error: message });
    this.#stop.abort();
  }

  async #takeOverEarlierRun(): Promise<void> {
    const { earlier, stateFile } = this.#preflight;
    if (earlier.kind !== 'dead') return;
    const { state } = earlier;
    this.#log.info('taking over what an earlier run left', { pid: state.pid, file: stateFile, vips: state.loopback.map((a) => a.address).join(',') || undefined });
    await this.#role.adopt(state);
  }

  /**
   * One worker per TUN queue, started one after the other: IFF_VNET_HDR
   * belongs to the device and each queue's open sets it, so the other
   * queues follow what the first one ended up with.
   */
  async #startQueues(): Promise<void> {
    const { tun, queues, engine, batch } = this.#opts;
    let offload = this.#opts.offload;
    for (let q = 0; q < queues; q++) {
      const w = new QueueWorker({
        queue: q, tun, multiQueue: queues > 1, engine, offload, path: this.#role.path(),
        slotSize: this.#slotSize, slotCount: batch * 2, batchMax: batch,
      }, this.#log);
      this.#queues.push(w);
      w.onFailure = (code, message) => this.#fail(code, message);
      const ready = await this.#unlessStopped(w.ready);
      if (ready === undefined) return;
      this.#log.info('queue ready', { queue: q, tun: ready.name, engine: ready.mode, detail: ready.detail, fallback: ready.fallbackReason ?? undefined });
      // Offloads belong to the device: every queue reports the same.
      if (q === 0) {
        logOffloads(this.#log, this.#opts.offload, ready, this.#slotSize);
        offload = ready.otherQueueOffload;
      }
    }
  }

  async #stopQueues(): Promise<void> {
    const last = await Promise.all(this.#queues.map((w) => w.stop().catch(() => undefined)));
    const total = last.reduce((n, s) => n + (s ? s.tun.packetsRead : 0), 0);
    this.#log.info('queues stopped', { packets: total });
  }

  #serveControl(): Promise<void> {
    const { controlSocket, metrics } = this.#opts;
    return this.#control.start((full) => this.#snapshot(full), controlSocket, metrics, (served) => this.#log.debug('served', { ...served }));
  }

  async #bringTunUp(): Promise<void> {
    const { tun } = this.#opts;
    // No link-local address: the kernel would send RS/MLD into the TUN, and we would read them.
    await ip(['link', 'set', 'dev', tun, 'addrgenmode', 'none']);
    await ip(['link', 'set', 'dev', tun, 'mtu', String(this.#preflight.mtu), 'txqueuelen', String(TUN_TX_QUEUE_LEN), 'up']);
  }

  async #installSteering(): Promise<void> {
    // Recorded first: a crash half-way leaves a state file the next run takes over.
    if (this.#role.steers) await this.#saveState();
    await this.#role.installSteering();
  }

  #saveState(): Promise<void> {
    const { startTime, netns, stateFile } = this.#preflight;
    return writeState(stateFile, { pid: process.pid, startTime, netns, tun: this.#opts.tun, ...this.#role.ownership });
  }

  /** `promise`, or undefined as soon as a stop is requested: a stop during startup does not wait for a queue to open. */
  async #unlessStopped<T>(promise: Promise<T>): Promise<T | undefined> {
    if (this.stopping) return undefined;
    const done = new AbortController();
    try {
      return await Promise.race([promise, once(this.#stop.signal, 'abort', { signal: done.signal }).then(() => undefined)]);
    } finally {
      done.abort();
    }
  }

  /**
   * Re-reads the configuration. Nothing changes unless the whole of it is
   * read and the new metrics address (if it moved) is open; then the rules
   * (or the balancer's sections) change without a gap, the metrics listener moves, the log level and
   * format apply, and every other changed setting is named as needing a
   * restart.
   */
  async #reloadNow(): Promise<void> {
    if (!this.#running) {
      if (this.stopping) this.#log.info('stopping; reload skipped');
      return;
    }
    const opts = this.#opts;
    const log = this.#log;
    if (opts.configPaths.length === 0) {
      log.warn('SIGHUP: no --config to reload; rules unchanged');
      return;
    }
    let config: Reloaded;
    try {
      config = await this.#role.reload();
    } catch (err) {
      this.#reloadFailed(`reload refused; the old ${this.#role.configured} keep running`, err);
      return;
    }
    for (const w of config.warnings) log.warn(w);
    const plan = planReload(this.#settings, opts.flags, config.daemon);
    let metrics: MetricsChange | undefined;
    if (plan.next.metrics !== this.#settings.metrics) {
      try {
        metrics = await this.#control.prepareMetrics(plan.next.metrics);
      } catch (err) {
        this.#reloadFailed('reload refused; the old configuration keeps running', err);
        return;
      }
    }
    try {
      await config.apply((path) => this.#configureQueues(path));
      await this.#saveState();
    } catch (err) {
      await metrics?.abandon().catch((e: Error) => log.error('metrics listener', { error: e.message }));
      this.#reloadFailed('reload failed while applying', err);
      return;
    }
    await metrics?.commit();
    log.adjust({ level: plan.next.logLevel, format: plan.next.logFormat });
    this.#settings = plan.next;
    for (const c of plan.needRestart) log.warn('setting changed: it needs a restart, the running value stays until then', { ...c });
    for (const c of plan.overridden) log.info('setting changed in the configuration, but the command line wins', { ...c });
    this.#reloads.ok++;
    log.info('reloaded', { ...this.#role.summary(), applied: plan.applied.map((c) => c.setting).join(',') || undefined });
  }

  async #configureQueues(path: PathConfig): Promise<void> {
    await Promise.all(this.#queues.map((w) => w.configure(path)));
  }

  #reloadFailed(what: string, err: unknown): void {
    this.#reloads.failed++;
    this.#reloads.lastError = (err as Error).message;
    this.#log.error(what, { error: (err as Error).message });
  }

  async #snapshot(full: boolean): Promise<DaemonSnapshot> {
    const opts = this.#opts;
    const queues = await Promise.all(this.#queues.map((w) => w.snapshot()));
    const txDropped = await readFile(`/sys/class/net/${opts.tun}/statistics/tx_dropped`, 'utf8').then(Number).catch(() => undefined);
    return {
      command: opts.command, pid: process.pid, tun: opts.tun, startedAt: this.#startedAt, configPaths: opts.configPaths,
      warnings: opts.warnings, queues, reloads: this.#reloads, kernelTxDropped: txDropped,
      ...await this.#role.snapshot(full, queues),
    };
  }
}

/**
 * The whole life of `l3dsr run` or `l3dsr lb` (the `role`): checks, signals
 * wired, start, run until a stop or a failure, teardown. Resolves with the
 * exit status; throws an L3dsrError when the daemon cannot start before
 * anything was changed.
 */
export async function runDaemon(
  opts: DaemonCommon, log: AdjustableLogger, role: (record: () => Promise<void>) => DaemonRole,
): Promise<number> {
  const command = opts.command;
  const checked = await preflight({ command, tun: opts.tun, interfaces: opts.steer, controlSocket: opts.controlSocket });
  const daemon = new Daemon(opts, log, checked, role);
  const signals = new DaemonSignals(daemon, log);
  signals.install();
  try {
    try {
      await daemon.start();
    } catch {
      await daemon.teardown();
      return EXIT.failure;
    }
    if (!daemon.stopping) await once(daemon.stopSignal, 'abort');
    await daemon.teardown();
    return daemon.exitStatus;
  } finally {
    signals.remove();
  }
}
