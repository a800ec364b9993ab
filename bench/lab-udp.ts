// The daemon's throughput and latency in the three-namespace lab, against
// the kernel doing the same rewrite, in one run (docs/lab.md: the machine drifts,
// only ratios measured together mean anything).
//
//   npm run bench:lab -- [options]      (--help lists them; --reps 0: no floods, e.g. latency only)
//
// Throughput: a UDP flood from cli through the nftables LB; packets/s
// delivered to a socket in srv, medians of interleaved repetitions, for
//   a) baseline: no rewrite, the flood goes to the RIP and the socket is there
//   b) nftables in srv's prerouting: `ip dscp 1 ip daddr set VIP`
//   c) l3dsr, io_uring, 1 queue        d) l3dsr, read()/write(), 1 queue
//   e) l3dsr, io_uring, 2 queues (the flood has several flows)
// plus the rewriter's CPU per packet (ns on CPU of all its threads, from
// schedstat, over the flood / packets it rewrote), the highest offered
// rate (c) delivers with < 0.1 % loss, and UDP and TCP round trips through
// (a), (b), (c), (d).
// Needs root, a C compiler, and trafgen for the default sender.
import { LabDaemon, type StatusJson } from '../tools/demo/lab-daemon.js';
import { Lab, LAB_INTERFACES, LAB_PLAN, destroyLabsOnExit } from '../tools/lab/index.js';
import { writeSysctl } from '../src/system/index.js';
import { roundTrips, startEcho, startSink } from '../test/support/daemon-traffic.js';
import { hasTrafgen, linkStats, socketFlood, trafgenFlood, type FloodSpec, type Offered } from './lab-senders.js';
import { benchArgs } from './support/args.js';
import { processCpuNs } from './support/process-cpu.js';
import { interleaved, kpps as k, pad, runRecord, sleep } from './support/report.js';
import { median, percentile, spread } from './support/stats.js';

const FLOOD_PORT = 9000;
const UDP_ECHO_PORT = 9001;
const TCP_ECHO_PORT = 9002;
/** Time for the path to settle after a daemon starts, and to drain after a flood. */
const SETTLE_MS = 300;
/** "Lossless": fewer than this fraction of offered packets lost. */
const LOSSLESS = 0.001;
const SEARCH_STEPS = 7;
const MIN_SEARCH_RATE = 10_000;
const DEFAULT_SEARCH_HIGH = 300_000;

type CaseId = 'a' | 'b' | 'c' | 'd' | 'e';

interface Setup {
  /** The rewriter's process, when there is one. */
  daemon?: LabDaemon;
  stop(): Promise<void>;
}

interface Case {
  id: CaseId;
  label: string;
  /** Where the flood goes and the socket listens. */
  target: 'rip' | 'vip';
  setup(lab: Lab): Promise<Setup>;
}

const VIP = '203.0.113.10';
const RIP = LAB_PLAN[4].rip;

function l3dsr(engine: 'io_uring' | 'readwrite', queues: number) {
  return async (lab: Lab): Promise<Setup> => {
    // The VIPs are on lo from the start (the lab put them there), so the daemon only rewrites.
    const daemon = await LabDaemon.start(lab, ['--rule', `1=${VIP}`, '--steer', LAB_INTERFACES.srvToLb, '--engine', engine, '--queues', String(queues)]);
    return { daemon, stop: async () => { await daemon.stop(); } };
  };
}

const CASES: Case[] = [
  { id: 'a', label: 'baseline: RIP, no rewrite', target: 'rip', setup: async () => ({ stop: async () => {} }) },
  {
    id: 'b', label: 'nftables prerouting rewrite', target: 'vip',
    setup: async (lab) => {
      await lab.installKernelRewrite();
      return { stop: () => lab.removeKernelRewrite() };
    },
  },
  { id: 'c', label: 'l3dsr io_uring, 1 queue', target: 'vip', setup: l3dsr('io_uring', 1) },
  { id: 'd', label: 'l3dsr readwrite, 1 queue', target: 'vip', setup: l3dsr('readwrite', 1) },
  { id: 'e', label: 'l3dsr io_uring, 2 queues', target: 'vip', setup: l3dsr('io_uring', 2) },
];

const rewritten = (s: StatusJson) => s.queues.reduce((n, q) => n + Number(q.counters.verdicts.rewritten), 0);

interface Trial {
  id: CaseId;
  offeredPps: number;
  /** Packets/s that arrived on srv's link from the LB. */
  arrivedPps: number;
  deliveredPps: number;
  cpuUsPerPacket?: number;
  kernelTxDropped?: number;
}

type Sender = (lab: Lab, spec: FloodSpec) => Promise<Offered>;

async function trial(lab: Lab, c: Case, spec: Omit<FloodSpec, 'address'>, send: Sender): Promise<Trial> {
  const address = c.target === 'rip' ? RIP : VIP;
  const sink = await startSink(lab, address, FLOOD_PORT);
  const setup = await c.setup(lab);
  try {
    await sleep(SETTLE_MS);
    const pid = setup.daemon?.pid;
    const cpu0 = pid ? processCpuNs(pid) : 0;
    const st0 = await setup.daemon?.status();
    const rx0 = (await linkStats(lab, 'srv', LAB_INTERFACES.srvToLb)).rx.packets;
    const offered = await send(lab, { ...spec, address });
    await sleep(SETTLE_MS);
    const delivered = await sink.count();
    const rx1 = (await linkStats(lab, 'srv', LAB_INTERFACES.srvToLb)).rx.packets;
    const st1 = await setup.daemon?.status();
    const cpu1 = pid ? processCpuNs(pid) : 0;
    const t: Trial = {
      id: c.id,
      offeredPps: offered.packets / offered.seconds,
      arrivedPps: (rx1 - rx0) / offered.seconds,
      deliveredPps: delivered / offered.seconds,
    };
    if (st0 && st1) {
      t.cpuUsPerPacket = (cpu1 - cpu0) / 1000 / Math.max(1, rewritten(st1) - rewritten(st0));
      t.kernelTxDropped = (st1.kernelTxDropped ?? 0) - (st0.kernelTxDropped ?? 0);
    }
    return t;
  } finally {
    await setup.stop();
    await sink.stop();
  }
}

interface Probe { rate: number; offeredPps: number; loss: number }

/** Highest paced rate that (c) delivers with < 0.1 % loss (binary search between MIN_SEARCH_RATE and `high`). */
async function losslessSearch(lab: Lab, spec: Omit<FloodSpec, 'address'>, high: number): Promise<{ best?: Probe; probes: Probe[] }> {
  const sink = await startSink(lab, VIP, FLOOD_PORT);
  const setup = await CASES.find((c) => c.id === 'c')!.setup(lab);
  const probes: Probe[] = [];
  try {
    await sleep(SETTLE_MS);
    const once = async (rate: number): Promise<Probe> => {
      const before = await sink.count();
      const offered = await socketFlood(lab, { ...spec, address: VIP }, rate);
      await sleep(SETTLE_MS);
      const got = (await sink.count()) - before;
      return { rate, offeredPps: offered.packets / offered.seconds, loss: offered.packets === 0 ? 1 : 1 - got / offered.packets };
    };
    // The machine is noisy: a rate passes only if two runs in a row pass; the worse run is kept.
    const at = async (rate: number): Promise<Probe> => {
      const runs = [await once(rate), await once(rate)];
      const p = runs.reduce((a, b) => (b.loss > a.loss ? b : a));
      p.offeredPps = Math.min(...runs.map((r) => r.offeredPps));
      probes.push(p);
      process.stderr.write(`  search: asked ${k(rate)} pps, offered ${k(p.offeredPps)}, worse loss of two runs ${(p.loss * 100).toFixed(3)} %\n`);
      return p;
    };
    let lo = MIN_SEARCH_RATE;
    let hi = high;
    if ((await at(lo)).loss >= LOSSLESS) return { probes };
    for (let i = 0; i < SEARCH_STEPS; i++) {
      const mid = Math.round((lo + hi) / 2);
      if ((await at(mid)).loss < LOSSLESS) lo = mid;
      else hi = mid;
    }
    // The sender may fall short of the asked rate: judge by what was really
    // offered. Losses come in bursts here, so a rate above a failed one that
    // happened to pass does not count: the answer is the highest passing rate
    // below the lowest failing one.
    const lowestFail = Math.min(...probes.filter((p) => p.loss >= LOSSLESS).map((p) => p.offeredPps));
    const passed = probes.filter((p) => p.loss < LOSSLESS && p.offeredPps < lowestFail);
    return { best: passed.length ? passed.reduce((a, b) => (b.offeredPps > a.offeredPps ? b : a)) : undefined, probes };
  } finally {
    await setup.stop();
    await sink.stop();
  }
}

interface Latency { id: CaseId; udp: number[]; tcp: number[]; lost: number }

async function latency(lab: Lab, ids: CaseId[], count: number, reps: number): Promise<Latency[]> {
  const echoes = [
    await startEcho(lab, 'udp', VIP, UDP_ECHO_PORT), await startEcho(lab, 'udp', RIP, UDP_ECHO_PORT),
    await startEcho(lab, 'tcp', VIP, TCP_ECHO_PORT), await startEcho(lab, 'tcp', RIP, TCP_ECHO_PORT),
  ];
  const results = ids.map((id) => ({ id, udp: [] as number[], tcp: [] as number[], lost: 0 }));
  try {
    for (let r = 0; r < reps; r++) {
      for (const res of interleaved(results, r)) {
        const c = CASES.find((x) => x.id === res.id)!;
        const address = c.target === 'rip' ? RIP : VIP;
        const setup = await c.setup(lab);
        try {
          await sleep(SETTLE_MS);
          const u = await roundTrips(lab, 'udp', address, UDP_ECHO_PORT, count);
          const t = await roundTrips(lab, 'tcp', address, TCP_ECHO_PORT, count);
          res.udp.push(...u.ns);
          res.tcp.push(...t.ns);
          res.lost += u.lost;
        } finally {
          await setup.stop();
        }
      }
    }
  } finally {
    for (const e of echoes) e.kill('SIGTERM');
  }
  return results;
}

const us = (ns: number) => `${(ns / 1000).toFixed(1)}`;

function throughputLines(trials: Trial[]): string[] {
  const med = (id: CaseId, f: (t: Trial) => number | undefined) => {
    const xs = trials.filter((t) => t.id === id).map(f).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const delivered = (id: CaseId) => med(id, (t) => t.deliveredPps)!;
  const out = [`${'case'.padEnd(34)}${pad('offered', 10)}${pad('arrived', 10)}${pad('delivered (min–max)', 26)}${pad('÷ (a)', 8)}${pad('CPU µs/pkt (min–max)', 24)}${pad('tx_dropped', 12)}`];
  for (const c of CASES) {
    const cpu = med(c.id, (t) => t.cpuUsPerPacket);
    const drops = med(c.id, (t) => t.kernelTxDropped);
    out.push(`${`${c.id}) ${c.label}`.padEnd(34)}${pad(k(med(c.id, (t) => t.offeredPps)!), 10)}${pad(k(med(c.id, (t) => t.arrivedPps)!), 10)}`
      + `${pad(spread(trials.filter((t) => t.id === c.id).map((t) => t.deliveredPps), k), 26)}${pad((delivered(c.id) / delivered('a')).toFixed(2), 8)}`
      + `${pad(cpu === undefined ? '-' : spread(trials.filter((t) => t.id === c.id && t.cpuUsPerPacket !== undefined).map((t) => t.cpuUsPerPacket!), (x) => x.toFixed(2)), 24)}${pad(drops === undefined ? '-' : String(Math.round(drops)), 12)}`);
  }
  const ratio = (x: CaseId, y: CaseId) => (delivered(x) / delivered(y)).toFixed(2);
  out.push('');
  out.push(`ratios: (d) readwrite / (a) baseline = ${ratio('d', 'a')} (target >= 0.22); (c) io_uring / (b) nftables = ${ratio('c', 'b')} (target >= 0.8);`);
  out.push(`        (c) io_uring / (d) readwrite = ${ratio('c', 'd')}; (e) 2 queues / (c) 1 queue = ${ratio('e', 'c')}; (b) nftables / (a) = ${ratio('b', 'a')}`);
  const cpuC = med('c', (t) => t.cpuUsPerPacket);
  const cpuD = med('d', (t) => t.cpuUsPerPacket);
  if (cpuC && cpuD) {
    out.push(`rewriter CPU: io_uring ${cpuC.toFixed(2)} µs/packet (${k(1e6 / cpuC)} packets per CPU-second), readwrite ${cpuD.toFixed(2)} µs/packet (${k(1e6 / cpuD)})`);
  }
  return out;
}

function searchLine(search: { best?: Probe; probes: Probe[] }, seconds: number): string {
  const probes = search.probes.map((p) => `${k(p.offeredPps)} ${(p.loss * 100).toFixed(2)}%`).join(', ');
  const failed = search.probes.filter((p) => p.loss >= LOSSLESS).map((p) => p.offeredPps);
  if (!search.best) return `lossless (c): even ${k(MIN_SEARCH_RATE)} pps lost >= 0.1 % (probes: ${probes})`;
  return `lossless (c): ${k(search.best.offeredPps)} pps (every probe up to it lost < 0.1 %${failed.length ? `; lowest failing rate ${k(Math.min(...failed))}` : ''})`
    + ` (socket sender, paced, 2 x ${seconds} s per probe; probes: ${probes})`;
}

function latencyLines(lat: Latency[]): string[] {
  const out = [`${'case'.padEnd(34)}${pad('UDP p50', 9)}${pad('UDP p99', 9)}${pad('TCP p50', 9)}${pad('TCP p99', 9)}${pad('UDP lost', 10)}`];
  for (const l of lat) {
    const c = CASES.find((x) => x.id === l.id)!;
    out.push(`${`${c.id}) ${c.label}`.padEnd(34)}${pad(us(percentile(l.udp, 50)), 9)}${pad(us(percentile(l.udp, 99)), 9)}`
      + `${pad(us(percentile(l.tcp, 50)), 9)}${pad(us(percentile(l.tcp, 99)), 9)}${pad(String(l.lost), 10)}`);
  }
  const p50 = (id: CaseId, kind: 'udp' | 'tcp') => percentile(lat.find((l) => l.id === id)![kind], 50);
  out.push(`added by l3dsr over nftables, p50: io_uring UDP ${us(p50('c', 'udp') - p50('b', 'udp'))} µs, TCP ${us(p50('c', 'tcp') - p50('b', 'tcp'))} µs; `
    + `readwrite UDP ${us(p50('d', 'udp') - p50('b', 'udp'))} µs, TCP ${us(p50('d', 'tcp') - p50('b', 'tcp'))} µs (target <= 100 µs)`);
  return out;
}

async function main(): Promise<void> {
  const values = benchArgs({
    command: 'npm run bench:lab --',
    about: `The daemon's UDP throughput and latency in the three-namespace lab against the kernel's
rewrite (no rewrite, nftables, l3dsr io_uring and read/write, io_uring 2 queues), in one
run with interleaved repetitions; then the highest lossless rate and the round trips.
Needs root, a C compiler, and trafgen for the default sender.`,
    options: {
      seconds: { type: 'string', default: '3', value: 'S', help: 'seconds per flood' },
      reps: { type: 'string', default: '5', value: 'N', help: 'interleaved repetitions of the floods (0: none)' },
      flows: { type: 'string', default: '16', value: 'N', help: 'UDP flows in the flood' },
      size: { type: 'string', default: '64', value: 'BYTES', help: 'UDP payload' },
      sender: { type: 'string', value: 'trafgen|socket', help: 'the flood\'s sender (default trafgen when installed, else socket)' },
      // One trafgen process does not outrun io_uring here; two do (and take CPU from everything else).
      'sender-cpus': { type: 'string', default: '2', value: 'N', help: 'trafgen processes (CPUs) sending' },
      'search-seconds': { type: 'string', default: '2', value: 'S', help: 'seconds per step of the lossless-rate search' },
      rtt: { type: 'string', default: '2000', value: 'N', help: 'round trips per latency measurement' },
      'rtt-reps': { type: 'string', default: '3', value: 'N', help: 'interleaved repetitions of the round trips' },
      'no-search': { type: 'boolean', help: 'skip the lossless-rate search' },
      'no-latency': { type: 'boolean', help: 'skip the round trips' },
    },
  });
  if (process.getuid?.() !== 0) throw new Error('bench/lab-udp needs root (network namespaces, TUN, tc, trafgen)');
  const senderName = values.sender ?? ((await hasTrafgen()) ? 'trafgen' : 'socket');
  if (senderName !== 'trafgen' && senderName !== 'socket') throw new Error(`--sender: trafgen or socket, got ${senderName}`);
  const send: Sender = senderName === 'trafgen' ? trafgenFlood : (lab, spec) => socketFlood(lab, spec);
  const spec = {
    port: FLOOD_PORT, seconds: Number(values.seconds), flows: Number(values.flows), size: Number(values.size), cpus: Number(values['sender-cpus']),
  };
  const reps = Number(values.reps);
  const record = runRecord();

  destroyLabsOnExit();
  const lab = await Lab.create({ vipsOnLoopback: true });
  const trials: Trial[] = [];
  let search: Awaited<ReturnType<typeof losslessSearch>> | undefined;
  let lat: Latency[] | undefined;
  try {
    // Sockets bound to the RIP and the VIP exist side by side.
    await writeSysctl('net.ipv4.ip_nonlocal_bind', '1', lab.where('srv'));
    for (let r = 0; r < reps; r++) {
      record.sample();
      for (const c of interleaved(CASES, r)) {
        const t = await trial(lab, c, spec, send);
        trials.push(t);
        process.stderr.write(`rep ${r + 1} ${c.id}) ${c.label.padEnd(28)} offered ${k(t.offeredPps)}, arrived ${k(t.arrivedPps)}, delivered ${k(t.deliveredPps)} pps`
          + `${t.cpuUsPerPacket === undefined ? '' : `, ${t.cpuUsPerPacket.toFixed(2)} µs CPU/pkt, tx_dropped ${t.kernelTxDropped}`}\n`);
      }
    }
    if (!values['no-search']) {
      // Up to what (c) was offered in the flood (or a guess when the floods were skipped).
      const high = Math.max(...trials.filter((t) => t.id === 'c').map((t) => t.offeredPps), trials.length ? MIN_SEARCH_RATE * 2 : DEFAULT_SEARCH_HIGH);
      search = await losslessSearch(lab, { ...spec, seconds: Number(values['search-seconds']) }, Math.round(high));
    }
    if (!values['no-latency']) lat = await latency(lab, ['a', 'b', 'c', 'd'], Number(values.rtt), Number(values['rtt-reps']));
  } finally {
    await lab.destroy();
  }

  const out = record.lines();
  if (trials.length) {
    out.push(`UDP ${spec.size}-byte payload, ${spec.flows} flows, sender ${senderName}${senderName === 'trafgen' ? ` on ${spec.cpus} CPU(s)` : ''}, ${reps} interleaved reps of ${spec.seconds} s, medians:`);
    out.push('', ...throughputLines(trials));
  }
  if (search) out.push(searchLine(search, Number(values['search-seconds'])));
  if (lat) out.push('', `round trips, ${values.rtt} x ${values['rtt-reps']} interleaved per case, 64-byte request and answer (µs):`, ...latencyLines(lat));
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`lab-udp: ${err.stack ?? err.message}\n`);
  process.exit(1);
});

