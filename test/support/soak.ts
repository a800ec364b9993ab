// A soak under faults (`npm run soak`, test/soak.test.ts): numbered UDP
// datagrams at a fixed rate from cli to the four VIPs while `l3dsr run`
// serves them in srv under a supervisor that restarts it as systemd would,
// and faults are injected in a seeded random order at random intervals:
//
//   kill             kill -9 of the running daemon
//   kill-in-startup  kill -9, and kill -9 again at a random moment of the restart
//   tun-deleted      `ip link del dsr0` (the daemon exits 1)
//   reload-good      SIGHUP after writing another good configuration
//   reload-bad       SIGHUP after writing a configuration with one bad line
//   metrics-flood    pipelined GET /metrics on 4 connections, never read, 2-4 s
//
// A down window runs from a kill or a deletion until the restarted daemon
// says `running` (TUN up, steering installed, VIPs on lo). Afterwards every
// datagram must have been delivered once and whole, or lost inside a down
// window (or in flight when it began); the system must look as it did
// before the first start.
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, sameAddress } from '../../tools/lab/index.js';
import { Rng } from '../../tools/packets/rng.js';
import { median } from '../../bench/support/stats.js';
import { writeSysctl } from '../../src/system/index.js';
import { runL3dsr } from './daemon.js';
import { httpGet, startHttpFlood } from './http-flood.js';
import { account, readReceived, readSendTimes, startSeqSender, startSeqSink, type Accounting, type Window } from './seq-traffic.js';
import { BAD_CONFIGS, EXTRA_VIPS, GOOD_CONFIGS, METRICS_HOST, METRICS_PORT, TRAFFIC_VIPS, type ConfigVariant } from './soak-configs.js';
import { Supervisor, now, type SupervisedRun } from './supervisor.js';
import { diffSnapshots, settledSnapshot, snapshotLab } from './system-snapshot.js';

export const FAULT_KINDS = ['kill', 'kill-in-startup', 'tun-deleted', 'reload-good', 'reload-bad', 'metrics-flood'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FAULT_NAMES: Record<FaultKind, string> = {
  'kill': 'kill -9',
  'kill-in-startup': 'kill -9 during start-up',
  'tun-deleted': 'TUN deleted',
  'reload-good': 'SIGHUP, good config',
  'reload-bad': 'SIGHUP, bad config',
  'metrics-flood': '/metrics flood',
};

/**
 * A datagram lost before a kill or a deletion counts as lost in its window
 * when it was still in flight: in the unbroken run of losses that goes on
 * into the window (see account()), and sent at most this long before it.
 * The TUN's queue holds 4096 packets, 1.4-2 s at the soak's rates.
 */
export const MAX_IN_FLIGHT_MS = 1000;
const SOAK_PORT = 9000;
/** Bounds on a hang: a daemon that never comes back, a reload that never ends. */
const RESTART_TIMEOUT_MS = 30_000;
const RELOAD_TIMEOUT_MS = 15_000;
const ANSWER_TIMEOUT_MS = 5000;
const FLOOD_CONNECTIONS = 4;
/** After the last fault: traffic through a settled daemon, then time for the last datagrams to arrive. */
const TAIL_MS = 2000;
const DRAIN_MS = 500;
/** The errors a daemon logs for faults we injected; any other error or warning is a finding. */
const EXPECTED_ERRORS: Record<string, FaultKind> = {
  'reload refused; the old rules keep running': 'reload-bad',
  'data path failed; shutting down': 'tun-deleted',
};

export interface SoakOptions {
  /** Faults go on until this many seconds have passed and minRounds are complete. */
  seconds: number;
  /** Rounds of faults; each round has every kind once, in random order. */
  minRounds: number;
  /** Datagrams per second over the four VIPs. */
  rate: number;
  seed: number;
  /** Pause before each fault, ms: uniform in [min, max]. */
  pauseMs?: readonly [number, number];
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface FaultRecord {
  kind: FaultKind;
  /** ms after the traffic started. */
  at: number;
  detail: string;
}

export interface DownWindow extends Window {
  cause: FaultKind;
}

export interface SoakReport {
  seed: number;
  rate: number;
  /** Traffic time, s. */
  seconds: number;
  faults: FaultRecord[];
  rounds: number;
  /** Daemon processes started (the first and every restart). */
  starts: number;
  /** Spawn to `running`, ms, over the runs that got there. */
  startupMs: number[];
  /** Of the kills during start-up: how many hit the daemon before it said `running`. */
  killedBeforeRunning: number;
  windows: DownWindow[];
  traffic: Accounting;
  /** Datagrams the sink got and how many of those were damaged (its own count). */
  sink: { received: number; damaged: number };
  /** Kernel UDP counters in srv over the run: checksum errors (a bad rewrite) and receive-buffer drops (the sink too slow). */
  udpErrors: { inCsumErrors: number; rcvbufErrors: number };
  /** What differs between the system before the first start and after the last stop. */
  leftBehind: string[];
  /** The host's 1-minute load average when the traffic started and when it stopped (the machine is shared). */
  loadAverage: [number, number];
  /** Everything that went against the rules above. */
  problems: string[];
  /** The runs' logs, one block per run. */
  logs: string;
}

/** The seed given (L3DSR_SOAK_SEED, --seed: an integer 0 to 2^32-1), or a random one. */
export function soakSeed(given: string | undefined): number {
  if (given === undefined || given === '') return randomInt(2 ** 32);
  const seed = Number(given);
  if (!/^\d+$/.test(given) || seed >= 2 ** 32) throw new Error(`soak seed ${JSON.stringify(given)}: expected an integer 0 to ${2 ** 32 - 1}`);
  return seed;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ms = (ns: number | bigint) => Number(ns) / 1e6;

/** The UDP counters of a namespace that say datagrams were dropped on arrival (IPv4 and IPv6 summed). */
async function udpCounters(lab: Lab): Promise<{ inCsumErrors: number; rcvbufErrors: number }> {
  const snmp = await lab.exec('srv', 'cat', ['/proc/net/snmp']);
  const [names, values] = snmp.split('\n').filter((l) => l.startsWith('Udp:')).map((l) => l.split(/\s+/).slice(1));
  const v4 = (name: string) => Number(values![names!.indexOf(name)]);
  const snmp6 = await lab.exec('srv', 'cat', ['/proc/net/snmp6']);
  const v6 = (name: string) => Number(new RegExp(`^${name}\\s+(\\d+)$`, 'm').exec(snmp6)?.[1] ?? NaN);
  return { inCsumErrors: v4('InCsumErrors') + v6('Udp6InCsumErrors'), rcvbufErrors: v4('RcvbufErrors') + v6('Udp6RcvbufErrors') };
}

/** Lines matching `re` in a run's log so far. */
const count = (run: SupervisedRun, re: RegExp) => run.daemon.log.split('\n').filter((l) => re.test(l)).length;

/** The next line matching `re` that a run logs (after the ones it has logged so far). */
async function nextLine(run: SupervisedRun, re: RegExp, seen: number, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const matching = run.daemon.log.split('\n').filter((l) => re.test(l));
    if (matching.length > seen) return matching[seen]!;
    if (run.exit !== undefined) throw new Error(`run #${run.index} exited (${JSON.stringify(run.exit)}) before logging ${re}:\n${run.daemon.log}`);
    if (Date.now() > deadline) throw new Error(`run #${run.index} did not log ${re} within ${timeoutMs} ms:\n${run.daemon.log}`);
    await sleep(20);
  }
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const say = o.log ?? (() => {});
  const rng = new Rng(o.seed);
  const [pauseMin, pauseMax] = o.pauseMs ?? [500, 2500];
  const problems: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-soak-'));
  // Not made here: the daemon creates its runtime directory, as on a fresh host.
  const runtime = join(dir, 'run');
  const config = join(dir, 'l3dsr.conf');
  const env = { ...process.env, RUNTIME_DIRECTORY: runtime };
  let lab: Lab | undefined;
  let supervisor: Supervisor | undefined;
  const stops: (() => Promise<unknown>)[] = [];
  try {
    lab = await Lab.create({ vips: [...TRAFFIC_VIPS, ...EXTRA_VIPS] });
    const srv = lab.where('srv');
    // The sink binds the VIPs while the daemon adds them to lo and takes them away.
    for (const family of ['ipv4', 'ipv6']) await writeSysctl(`net.${family}.ip_nonlocal_bind`, '1', srv);
    // Loose, not the lab's 0: the daemon sets it to 0 and must put this back.
    await writeSysctl('net/ipv4/conf/all/rp_filter', '2', srv);

    // Each configuration is what it claims to be, by the daemon's own check.
    for (const c of [...GOOD_CONFIGS, ...BAD_CONFIGS]) {
      writeFileSync(config, c.text);
      const r = await runL3dsr(lab, ['check', '--config', config]);
      const bad = BAD_CONFIGS.find((b) => b === c);
      if (!bad && r.code !== 0) throw new Error(`soak configuration "${c.name}" does not pass l3dsr check: ${r.stderr}`);
      if (bad && (r.code !== 2 || !r.stderr.includes(`${config}:${bad.line}: `))) {
        throw new Error(`soak configuration "${c.name}": l3dsr check should refuse line ${bad.line}, it said (exit ${r.code}): ${r.stderr}`);
      }
    }
    let good: ConfigVariant = GOOD_CONFIGS[0]!;
    writeFileSync(config, good.text);

    const before = await settledSnapshot(lab, { directories: [runtime] });
    const udpBefore = await udpCounters(lab);
    const addresses = TRAFFIC_VIPS.map((v) => v.address);
    const sink = await startSeqSink(lab, { addresses, port: SOAK_PORT, file: join(dir, 'received.bin') });
    stops.push(() => sink.stop());

    supervisor = new Supervisor(lab, ['--config', config], { env });
    const sup = supervisor;
    sup.start();
    await sup.runningAfter(0, RESTART_TIMEOUT_MS);
    const origin = now();
    const loadAtStart = loadavg()[0]!;
    const sender = await startSeqSender(lab, { addresses, port: SOAK_PORT, rate: o.rate, file: join(dir, 'sent.bin') });
    stops.push(() => sender.stop());
    say(`seed ${o.seed}: ${o.rate} datagrams/s to ${addresses.join(', ')}; faults for at least ${o.seconds} s and ${o.minRounds} rounds`);

    const faults: FaultRecord[] = [];
    const windows: DownWindow[] = [];
    /** Runs we ended on purpose, and how they must have exited. */
    const ended = new Map<number, 'SIGKILL' | 'exit 1'>();
    const at = () => ms(now() - origin);
    const startupEstimate = () => median(sup.runs.filter((r) => r.runningAt !== undefined).map((r) => ms(r.runningAt! - r.spawnedAt)));

    const inject: Record<FaultKind, (run: SupervisedRun) => Promise<string>> = {
      async 'kill'(run) {
        const start = now();
        ended.set(run.index, 'SIGKILL');
        run.daemon.signal('SIGKILL');
        const next = await sup.runningAfter(run.index, RESTART_TIMEOUT_MS);
        windows.push({ cause: 'kill', start: Number(start - origin), end: Number(next.runningAt! - origin) });
        return `run #${run.index} killed; #${next.index} running ${ms(next.runningAt! - start).toFixed(0)} ms later`;
      },
      async 'kill-in-startup'(run) {
        const delay = rng.range(0, Math.round(startupEstimate()));
        sup.killNextStartAfter(delay);
        const start = now();
        ended.set(run.index, 'SIGKILL');
        ended.set(run.index + 1, 'SIGKILL');
        run.daemon.signal('SIGKILL');
        const next = await sup.runningAfter(run.index + 1, RESTART_TIMEOUT_MS);
        const victim = sup.runs[run.index]!;
        windows.push({ cause: 'kill-in-startup', start: Number(start - origin), end: Number(next.runningAt! - origin) });
        const when = victim.runningAt === undefined ? 'before it said running' : `${ms(victim.killedInStartupAt! - victim.runningAt).toFixed(0)} ms after it said running`;
        return `run #${run.index} killed; #${victim.index} killed ${delay} ms after its spawn (${when}); #${next.index} running ${ms(next.runningAt! - start).toFixed(0)} ms after the first kill`;
      },
      async 'tun-deleted'(run) {
        const start = now();
        ended.set(run.index, 'exit 1');
        await lab!.exec('srv', 'ip', ['link', 'del', 'dsr0']);
        const next = await sup.runningAfter(run.index, RESTART_TIMEOUT_MS);
        windows.push({ cause: 'tun-deleted', start: Number(start - origin), end: Number(next.runningAt! - origin) });
        return `dsr0 of run #${run.index} deleted; #${next.index} running ${ms(next.runningAt! - start).toFixed(0)} ms later`;
      },
      async 'reload-good'(run) {
        const others = GOOD_CONFIGS.filter((c) => c !== good);
        good = rng.pick(others);
        writeFileSync(config, good.text);
        const seen = count(run, /msg=reloaded|msg="reload/);
        run.daemon.signal('SIGHUP');
        const line = await nextLine(run, /msg=reloaded|msg="reload/, seen, RELOAD_TIMEOUT_MS);
        if (!/msg=reloaded/.test(line)) problems.push(`run #${run.index}: a good configuration (${good.name}) was not reloaded: ${line}`);
        return `run #${run.index} reloaded "${good.name}"`;
      },
      async 'reload-bad'(run) {
        const bad = rng.pick(BAD_CONFIGS);
        writeFileSync(config, bad.text);
        const seen = count(run, /msg=reloaded|msg="reload/);
        run.daemon.signal('SIGHUP');
        const line = await nextLine(run, /msg=reloaded|msg="reload/, seen, RELOAD_TIMEOUT_MS);
        // Back to the good one before anything could restart the daemon: systemd would restart it with whatever is there.
        writeFileSync(config, good.text);
        if (!new RegExp(`msg="reload refused; the old rules keep running" error=.*${escape(config)}:${bad.line}: `).test(line)) {
          problems.push(`run #${run.index}: a bad configuration (${bad.name}, line ${bad.line}) was not refused naming the line: ${line}`);
        }
        return `run #${run.index} refused "${bad.name}"`;
      },
      async 'metrics-flood'(run) {
        const seconds = rng.range(2, 4);
        const target = { host: METRICS_HOST, port: METRICS_PORT };
        const place = { lab: lab!, role: 'srv' as const };
        const flood = await startHttpFlood({ target, connections: FLOOD_CONNECTIONS, seconds }, place).result;
        if ('error' in flood) problems.push(`run #${run.index}: the /metrics flood failed: ${flood.error}`);
        const after = await httpGet(target, '/metrics', ANSWER_TIMEOUT_MS, place);
        if ('error' in after || after.status !== 200 || !/^l3dsr_rules \d+$/m.test(after.body)) {
          problems.push(`run #${run.index}: GET /metrics right after the flood: ${JSON.stringify(after).slice(0, 300)}`);
        }
        if (run.exit !== undefined) problems.push(`run #${run.index} exited during the /metrics flood: ${JSON.stringify(run.exit)}`);
        const cut = 'error' in flood ? '?' : flood.cut;
        return `run #${run.index}: ${seconds} s, ${FLOOD_CONNECTIONS} connections at a time, ${cut} cut by the daemon and opened again`;
      },
    };

    const started = Date.now();
    let rounds = 0;
    while (Date.now() - started < o.seconds * 1000 || rounds < o.minRounds) {
      const deck = [...FAULT_KINDS];
      for (let i = deck.length - 1; i > 0; i--) {
        const j = rng.below(i + 1);
        [deck[i], deck[j]] = [deck[j]!, deck[i]!];
      }
      for (const kind of deck) {
        await sleep(rng.range(pauseMin, pauseMax));
        const run = await sup.runningAfter(0, RESTART_TIMEOUT_MS);
        const t = at();
        const detail = await inject[kind](run);
        faults.push({ kind, at: t, detail });
        say(`${(t / 1000).toFixed(1).padStart(6)} s  ${FAULT_NAMES[kind]}: ${detail}`);
      }
      rounds++;
    }

    // A settled daemon to the end, then the last datagrams.
    const last = await sup.runningAfter(0, RESTART_TIMEOUT_MS);
    await sleep(TAIL_MS);
    stops.length = 0;
    const sent = await sender.stop();
    const seconds = ms(now() - origin) / 1000;
    const loadAtEnd = loadavg()[0]!;
    await sleep(DRAIN_MS);
    const sinkSummary = await sink.stop();
    const udpAfter = await udpCounters(lab);

    // What `l3dsr status` says just before the stop: every VIP under traffic started.
    const status = await runL3dsr(lab, ['status', '--json'], { env });
    if (status.code !== 0) problems.push(`l3dsr status (exit ${status.code}): ${status.stderr}`);
    else {
      const rows = (JSON.parse(status.stdout) as { pid: number; vips: { vip: string; state: string }[] });
      if (rows.pid !== last.daemon.pid) problems.push(`l3dsr status answered for pid ${rows.pid}, not the running daemon ${last.daemon.pid}`);
      for (const v of TRAFFIC_VIPS) {
        const row = rows.vips.find((r) => sameAddress(r.vip, v.address));
        if (row?.state !== 'started') problems.push(`l3dsr status at the end: ${v.address} is ${row?.state ?? 'missing'}`);
      }
    }
    const exit = await sup.stop();
    if (exit?.code !== 0) problems.push(`the last run (#${last.index}) did not stop cleanly on SIGTERM: ${JSON.stringify(exit)}`);
    supervisor = undefined;

    // Nothing left: the same system as before, and the runtime directory the daemon made, empty.
    const after = await snapshotLab(lab, { directories: [runtime] });
    const leftBehind = diffSnapshots(before, after);
    const mode = statSync(runtime).mode & 0o7777;
    if (mode !== 0o700) problems.push(`the runtime directory ${runtime} has mode ${mode.toString(8)}, not 700`);

    for (const run of sup.runs) {
      const want = ended.get(run.index) ?? (run === last ? 'exit 0' : undefined);
      const got = run.exit?.signal ? run.exit.signal : `exit ${run.exit?.code}`;
      if (want !== got) problems.push(`run #${run.index} ended with ${got}, ${want ? `expected ${want}` : 'which no fault explains'}`);
      for (const line of run.daemon.log.split('\n')) {
        const m = /\blevel=(warn|error) msg=("(?:[^"\\]|\\.)*"|\S+)/.exec(line);
        if (!m) continue;
        const msg = m[2]!.startsWith('"') ? JSON.parse(m[2]!) as string : m[2]!;
        if (m[1] === 'error' && msg in EXPECTED_ERRORS) continue;
        problems.push(`run #${run.index} logged: ${line}`);
      }
    }

    const traffic = account(readSendTimes(join(dir, 'sent.bin'), origin), readReceived(join(dir, 'received.bin'), origin), windows, MAX_IN_FLIGHT_MS * 1e6);
    if (traffic.sent !== sent.sent) problems.push(`the sender says it sent ${sent.sent}, its log holds ${traffic.sent}`);
    if (traffic.sendErrors > 0) problems.push(`${traffic.sendErrors} datagrams could not be sent (sendto failed)`);
    for (const r of traffic.lostOutside) {
      problems.push(`datagrams ${r.first}-${r.last} (${r.last - r.first + 1}) sent ${(r.sentAt / 1e9).toFixed(3)} s after the start were lost outside every down window`);
    }
    if (traffic.duplicates > 0) problems.push(`${traffic.duplicates} datagrams arrived more than once`);
    if (traffic.damaged > 0 || sinkSummary.damaged > 0) problems.push(`${traffic.damaged} datagrams arrived damaged or misdirected (the sink counted ${sinkSummary.damaged})`);
    const udpErrors = { inCsumErrors: udpAfter.inCsumErrors - udpBefore.inCsumErrors, rcvbufErrors: udpAfter.rcvbufErrors - udpBefore.rcvbufErrors };
    if (udpErrors.inCsumErrors > 0) problems.push(`srv's kernel dropped ${udpErrors.inCsumErrors} UDP datagrams with a bad checksum`);
    if (udpErrors.rcvbufErrors > 0) problems.push(`srv's kernel dropped ${udpErrors.rcvbufErrors} UDP datagrams at the sink's full receive buffer`);
    for (const kind of FAULT_KINDS) {
      const n = faults.filter((f) => f.kind === kind).length;
      if (n < o.minRounds) problems.push(`${FAULT_NAMES[kind]}: injected ${n} times, fewer than ${o.minRounds}`);
    }
    problems.push(...leftBehind.map((d) => `left behind: ${d}`));

    const startupMs = sup.runs.filter((r) => r.runningAt !== undefined).map((r) => ms(r.runningAt! - r.spawnedAt));
    return {
      seed: o.seed, rate: o.rate, seconds, faults, rounds,
      starts: sup.runs.length,
      startupMs,
      killedBeforeRunning: sup.runs.filter((r) => r.killedInStartupAt !== undefined && r.runningAt === undefined).length,
      windows, traffic, sink: sinkSummary, udpErrors, leftBehind, loadAverage: [loadAtStart, loadAtEnd], problems,
      logs: sup.runs.map((r) => `--- run #${r.index} (pid ${r.daemon.pid}) ---\n${r.daemon.log}`).join(''),
    };
  } finally {
    await supervisor?.stop().catch(() => {});
    for (const stop of stops) await stop().catch(() => {});
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The report as lines of text: what the README's reliability section quotes. */
export function formatReport(r: SoakReport): string {
  const t = r.traffic;
  const lengths = r.windows.map((w) => ms(w.end - w.start));
  const spans = t.windows.map((w) => ms(w.lossSpan));
  const pct = (n: number) => `${((100 * n) / t.sent).toFixed(3)} %`;
  const kinds = FAULT_KINDS.map((k) => `${FAULT_NAMES[k]} ${r.faults.filter((f) => f.kind === k).length}`).join(', ');
  const fmt = (xs: number[]) => (xs.length ? `median ${median(xs).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms` : 'none');
  return [
    `seed ${r.seed}, ${r.rate} datagrams/s, ${r.seconds.toFixed(0)} s of traffic, ${r.rounds} rounds; load average ${r.loadAverage.map((l) => l.toFixed(1)).join(' at the start, ')} at the end`,
    `faults: ${r.faults.length} (${kinds})`,
    `daemon starts: ${r.starts} (start-up ${fmt(r.startupMs)}); kills during start-up that came before \`running\`: ${r.killedBeforeRunning}`,
    `datagrams: sent ${t.sent}, delivered ${t.delivered}, lost ${t.lost} (${pct(t.lost)}), of them inside down windows ${t.lostInWindows} (${t.lostInFlight} in flight at a fault, sent up to ${ms(t.inFlightMax).toFixed(1)} ms before it), outside ${t.lost - t.lostInWindows}; duplicated ${t.duplicates}, damaged ${t.damaged}`,
    `down windows: ${r.windows.length}, length ${fmt(lengths)}, ${(lengths.reduce((a, b) => a + b, 0) / 1000).toFixed(1)} s in all; loss span per window ${fmt(spans)}`,
    ...(['kill', 'kill-in-startup', 'tun-deleted'] as const).map((cause) => {
      const mine = r.windows.flatMap((w, i) => (w.cause === cause ? [i] : []));
      return `  after ${FAULT_NAMES[cause]}: ${mine.length}, length ${fmt(mine.map((i) => lengths[i]!))}; loss span ${fmt(mine.map((i) => spans[i]!))}`;
    }),
    `delivery latency: median ${(t.latency.p50 / 1e3).toFixed(0)} µs, p99 ${(t.latency.p99 / 1e3).toFixed(0)} µs, max ${(t.latency.max / 1e6).toFixed(1)} ms`,
    `srv's UDP errors: checksum ${r.udpErrors.inCsumErrors}, receive buffer ${r.udpErrors.rcvbufErrors}`,
    `left behind: ${r.leftBehind.length ? r.leftBehind.join('; ') : 'nothing'}`,
    `problems: ${r.problems.length}`,
  ].join('\n');
}
