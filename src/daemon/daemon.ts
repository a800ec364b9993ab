// `l3dsr run`: the lifecycle of the daemon. Start the queue workers (each
// opens a TUN queue), bring the TUN up, steer marked packets into it, serve
// status and metrics; SIGHUP reloads the config, SIGTERM/SIGINT drain and
// tear everything down; a failing TUN ends the daemon with an error.

import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { OffloadMode } from '../config/config.js';
import { loadConfiguration, type L2dsrVip } from '../config/load.js';
import type { Rule } from '../core/types.js';
import type { Logger } from '../log.js';
import { LoopbackVips, Steering } from '../steering/index.js';
import { formatCommand, ip, ipJson } from '../system/index.js';
import { CAP_NET_ADMIN, hasCapability, netnsInode, processStartTime } from '../system/process.js';
import { loadAddon } from '../tun/addon.js';
import { OFFLOAD_MIN_SLOT_SIZE, VNET_HEADER_BYTES } from '../tun/device.js';
import { ControlServers } from './control.js';
import type { DaemonOptions } from './options.js';
import type { FromWorker } from './messages.js';
import { QueueWorker } from './queues.js';
import { claimSocketPath, prepareRuntimeDirectory, statePath } from './runtime-dir.js';
import type { DaemonSnapshot } from './snapshot.js';
import { StartError } from './start-error.js';
import { earlierRun, removeState, writeState, type EarlierRun, type NetnsIdentity } from './state-file.js';
import { vipRows } from './vip-state.js';

export { StartError };

const SLOT_ALIGN = 64;
const DEFAULT_MTU = 1500;
/**
 * Packets the kernel queues for us per TUN queue. Without offloads the
 * default (500) overflows under a single TCP upload in the lab: the
 * sender's GSO bursts are cut to MTU-sized packets at the redirect, and
 * 4-10 % were dropped (tx_dropped) while the reader was between batches;
 * 4096 dropped none. (With offloads the same upload is ~300 super-packets.)
 */
const TUN_TX_QUEUE_LEN = 4096;

/**
 * Checks what can be checked without changing anything, then makes the
 * runtime directory and the control socket's path ready.
 */
async function preflight(opts: DaemonOptions): Promise<number> {
  const uid = process.geteuid!();
  if (!(await hasCapability(CAP_NET_ADMIN))) {
    throw new StartError(`l3dsr run needs CAP_NET_ADMIN to create its TUN device, tc filters and VIPs on lo and to set rp_filter; uid ${uid} does not have it: run it as root, or with the capability (systemd: AmbientCapabilities=CAP_NET_ADMIN, as in deploy/l3dsr.service)`, 'EPERM');
  }
  await access('/dev/net/tun', constants.R_OK | constants.W_OK).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new StartError('/dev/net/tun is missing: load the tun module (modprobe tun)', 'ENOENT');
    throw new StartError(`/dev/net/tun: uid ${uid} may not open it (${err.code}); distributions ship it with mode 0666 (crw-rw-rw-)`, err.code);
  });
  let mtu = DEFAULT_MTU;
  for (const dev of opts.steer) {
    const links = await ipJson<{ mtu?: number }[]>(['link', 'show', 'dev', dev]).catch(() => undefined);
    if (!links?.length) throw new StartError(`steer interface ${dev}: no such interface`, 'ENODEV');
    mtu = Math.max(mtu, links[0].mtu ?? DEFAULT_MTU);
  }
  const existing = await ipJson<{ ifname: string }[]>(['link', 'show', 'dev', opts.tun]).catch(() => []);
  if (existing.length) {
    // Our TUN disappears with the process; one that exists belongs to someone else
    // (or is a persistent TUN of another tool).
    throw new StartError(`--tun ${opts.tun}: an interface of that name already exists (another l3dsr, or another tool)`, 'EEXIST');
  }
  await prepareRuntimeDirectory(dirname(opts.controlSocket));
  await claimSocketPath(opts.controlSocket);
  return mtu;
}

/** Which network namespace this is: the inode names it among the living, the cookie forever. */
function thisNetns(): NetnsIdentity {
  try {
    return { inode: netnsInode(), cookie: String(loadAddon().netnsCookie()) };
  } catch (err) {
    throw new StartError(`cannot tell which network namespace this is: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code);
  }
}

/** What a crashed run left in the state file, judged before anything is changed; refuses to start beside a live one. */
async function judgeEarlierRun(stateFile: string, tun: string, netns: NetnsIdentity): Promise<EarlierRun> {
  let earlier: EarlierRun;
  try {
    earlier = await earlierRun(stateFile, tun, netns);
  } catch (err) {
    throw new StartError(`state file ${stateFile}: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code);
  }
  if (earlier.kind === 'running') {
    throw new StartError(`state file ${stateFile}: the l3dsr that wrote it (pid ${earlier.pid}) is still running; stop it first`, 'EBUSY');
  }
  return earlier;
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

const classesOf = (rules: readonly Rule[]) => rules.map((r) => ({ family: r.family, dscp: r.dscp }));
/** With loopback-vips, every VIP goes on lo, L3DSR and L2DSR alike (dsrctl puts them all there). */
const vipsOf = (rules: readonly Rule[], l2dsr: readonly L2dsrVip[]) => [
  ...rules.map((r) => ({ family: r.family, address: r.destination })), ...l2dsr.map(({ family, address }) => ({ family, address })),
];

export async function runDaemon(opts: DaemonOptions, log: Logger): Promise<number> {
  const mtu = await preflight(opts);
  // With offload a read can carry a 64 KiB GSO super-packet behind its header; the TUN's MTU stays that of the links.
  const slotBytes = opts.offload === 'no' ? Math.max(mtu, 2048) : Math.max(OFFLOAD_MIN_SLOT_SIZE, mtu + VNET_HEADER_BYTES);
  // An odd number of cache lines per slot: with a power-of-two stride (64 KiB)
  // every packet header lands in the same cache sets, and the core ran ~30 %
  // slower in bench measurements.
  let slotSize = Math.ceil(slotBytes / SLOT_ALIGN) * SLOT_ALIGN;
  if ((slotSize / SLOT_ALIGN) % 2 === 0) slotSize += SLOT_ALIGN;
  let rules = opts.rules;
  let l2dsr = opts.l2dsr;
  const startedAt = Date.now();
  const reloads = { ok: 0, failed: 0, lastError: undefined as string | undefined };
  const workers: QueueWorker[] = [];
  // Each records a change in the state file before making it (saveState), so a kill -9 at any moment loses none.
  const steering = opts.noSteer ? undefined : new Steering({ interfaces: opts.steer, tun: opts.tun, recordOwnership: () => saveState() });
  // Always there, so that VIPs an earlier run added are removed even if this run adds none.
  const loopback = new LoopbackVips({ recordAdded: () => saveState() });
  const stateFile = statePath(opts.controlSocket);
  const netns = thisNetns();
  const startTime = (await processStartTime('self'))!;
  const earlier = await judgeEarlierRun(stateFile, opts.tun, netns);
  const saveState = (): Promise<void> => writeState(stateFile, {
    pid: process.pid, startTime, netns, tun: opts.tun, steering: steering?.ownership, loopback: [...loopback.added],
  });
  const control = new ControlServers();
  let failure: { code: string; message: string } | undefined;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((r) => { finish = r; });

  for (const w of opts.warnings) log.warn(w);
  if (earlier.kind === 'refused') log.warn('state file refused: nothing in it is taken over', { error: earlier.reason, kept_as: earlier.keptAs });

  // Prometheus scrapes /metrics often: it does not need the steering, which is read with tc.
  const snapshot = async (full: boolean): Promise<DaemonSnapshot> => {
    const queues = await Promise.all(workers.map((w) => w.snapshot()));
    const txDropped = await readFile(`/sys/class/net/${opts.tun}/statistics/tx_dropped`, 'utf8').then(Number).catch(() => undefined);
    const status = steering && full ? await steering.status().catch((e: Error) => e.message) : undefined;
    return {
      pid: process.pid, tun: opts.tun, startedAt, configPaths: opts.configPaths, rules, l2dsr, warnings: opts.warnings, queues, reloads,
      kernelTxDropped: txDropped,
      steering: { mode: steering ? 'tc' : 'none', interfaces: opts.steer, status },
      loopbackVips: loopback.added.map((a) => a.address),
      vips: full ? vipRows({ rules, l2dsr, lo: await loopback.present(), steering: status, tun: opts.tun }) : undefined,
    };
  };

  const fail = (code: string, message: string) => {
    if (failure) return;
    failure = { code, message };
    log.error('data path failed; shutting down', { code, error: message });
    finish(1);
  };

  // Signal handlers go in before anything is installed and stay until the
  // teardown is over: a stop requested during startup, or a second signal
  // during the teardown, must not kill the process with filters and VIPs
  // left behind (Node applies the default action whenever no listener is
  // registered). A SIGHUP that arrives during startup waits for it.
  let stopping = false;
  let markStarted!: () => void;
  let reloading = new Promise<void>((r) => { markStarted = r; });
  const onHup = () => {
    if (stopping) log.info('stopping; SIGHUP ignored');
    else reloading = reloading.then(reload);
  };
  const onStop = (sig: string) => () => {
    if (stopping) { log.info('already stopping', { signal: sig }); return; }
    stopping = true;
    log.info('stopping', { signal: sig });
    finish(0);
  };
  const onTerm = onStop('SIGTERM');
  const onInt = onStop('SIGINT');
  process.on('SIGHUP', onHup);
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  const removeSignalHandlers = () => {
    process.off('SIGHUP', onHup);
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  };

  try {
    if (earlier.kind === 'dead') {
      // A run that died (kill -9) left qdiscs, sysctls or VIPs: ours to undo now.
      const { state } = earlier;
      log.info('taking over what an earlier run left', { pid: state.pid, file: stateFile, vips: state.loopback.map((a) => a.address).join(',') || undefined });
      if (steering && state.steering) steering.adopt(state.steering);
      await loopback.adopt(state.loopback);
    }
    // IFF_VNET_HDR belongs to the device and each queue's open sets it: the
    // other queues follow what the first one ended up with.
    let offload = opts.offload;
    for (let q = 0; q < opts.queues; q++) {
      const w = new QueueWorker({
        queue: q, tun: opts.tun, multiQueue: opts.queues > 1, engine: opts.engine, offload, rules,
        slotSize, slotCount: opts.batch * 2, batchMax: opts.batch,
      }, log);
      workers.push(w);
      w.onFailure = fail;
      const ready = await w.ready;
      log.info('queue ready', { queue: q, tun: ready.name, engine: ready.mode, detail: ready.detail, fallback: ready.fallbackReason ?? undefined });
      // Offloads belong to the device: every queue reports the same.
      if (q === 0) {
        logOffloads(log, opts.offload, ready, slotSize);
        if (ready.offloads === null) offload = 'no';
      }
    }
    // No link-local address: the kernel would send RS/MLD into the TUN, and we would read them.
    await ip(['link', 'set', 'dev', opts.tun, 'addrgenmode', 'none']);
    await ip(['link', 'set', 'dev', opts.tun, 'mtu', String(mtu), 'txqueuelen', String(TUN_TX_QUEUE_LEN), 'up']);

    if (steering) {
      await saveState();
      const cmds = await steering.install(classesOf(rules));
      log.info('steering installed', { interfaces: opts.steer.join(','), commands: cmds.length });
    } else {
      const plan = new Steering({ interfaces: opts.steer.length ? opts.steer : ['IFACE'], tun: opts.tun, dryRun: true });
      const cmds = await plan.install(classesOf(rules));
      log.warn('--no-steer: steer marked packets into the TUN yourself, for example with:');
      for (const c of cmds) process.stdout.write(`${formatCommand(c)}\n`);
    }
    if (opts.loopbackVips) {
      const cmds = await loopback.add(vipsOf(rules, l2dsr));
      log.info('VIPs on lo', { added: cmds.length, vips: vipsOf(rules, l2dsr).map((v) => v.address).join(',') });
    }
    await saveState();
    await control.start(snapshot, opts.controlSocket, opts.metrics);
    log.info('running', {
      tun: opts.tun, queues: opts.queues, rules: rules.length, control: opts.controlSocket, metrics: opts.metrics,
    });
  } catch (err) {
    log.error('start failed', { error: (err as Error).message });
    await teardown();
    removeSignalHandlers();
    return 1;
  }
  markStarted();

  async function reload(): Promise<void> {
    if (opts.configPaths.length === 0) {
      log.warn('SIGHUP: no --config to reload; rules unchanged');
      return;
    }
    let next: Rule[];
    let nextL2dsr: L2dsrVip[];
    try {
      const config = await loadConfiguration({ configs: opts.configPaths, rules: opts.ruleSpecs });
      next = config.rules;
      nextL2dsr = config.l2dsr;
      for (const w of config.warnings) log.warn(w);
    } catch (err) {
      reloads.failed++;
      reloads.lastError = (err as Error).message;
      log.error('reload refused; the old rules keep running', { error: (err as Error).message });
      return;
    }
    // Steering first adds filters for new DSCPs, the core then knows them; filters
    // for DSCPs that went away are removed last, so no marked packet meets a gap.
    const union = [...new Map([...rules, ...next].map((r) => [`${r.family}/${r.dscp}`, r])).values()];
    try {
      if (steering) await steering.update(classesOf(union));
      await Promise.all(workers.map((w) => w.setRules(next)));
      if (steering) await steering.update(classesOf(next));
      if (opts.loopbackVips) {
        await loopback.add(vipsOf(next, nextL2dsr));
        await loopback.retain(vipsOf(next, nextL2dsr));
      }
      await saveState();
    } catch (err) {
      reloads.failed++;
      reloads.lastError = (err as Error).message;
      log.error('reload failed while applying', { error: (err as Error).message });
      return;
    }
    rules = next;
    l2dsr = nextL2dsr;
    reloads.ok++;
    log.info('reloaded', { rules: rules.length });
  }

  const code = await finished;
  stopping = true;
  await reloading;
  await teardown();
  removeSignalHandlers();
  return failure ? 1 : code;

  async function teardown(): Promise<void> {
    // Steering goes first, so no packet is sent to a TUN that is closing.
    const steps: [string, () => Promise<unknown>][] = [
      ['remove steering', async () => steering?.remove()],
      ['stop queues', async () => {
        const last = await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
        const total = last.reduce((n, s) => n + (s ? s.tun.packetsRead : 0), 0);
        log.info('queues stopped', { packets: total });
      }],
      ['remove VIPs from lo', async () => loopback.remove()],
      ['close control socket', () => control.close()],
    ];
    let undone = true;
    for (const [what, step] of steps) {
      try { await step(); } catch (err) { undone = false; log.warn(`${what} failed`, { error: (err as Error).message }); }
    }
    // Keep the record of what is left if something could not be undone: the next run takes it over.
    if (undone) await removeState(stateFile).catch(() => {});
  }
}
