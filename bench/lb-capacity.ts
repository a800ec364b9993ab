// What one core balances: `l3dsr lb` against an nftables balancer doing the
// same job (a jhash map from the flow to a RIP, and the DSCP set), the
// balancer's work on CPU 0, the sender on CPU 1, every case measured in one
// run with interleaved repetitions (docs/lab.md: the machine drifts; only
// ratios measured together mean anything).
//
//   npm run bench:lb-capacity -- [options]      (--help lists them)
//
// The three-namespace lab with its own nftables LB taken out: a 64-byte UDP
// flow set from cli to the VIP, through the balancer under test in lb, to
// two RIPs in srv, where one socket on both counts what arrives (nothing in
// srv rewrites: it only receives). Balancers (--cases):
//   nft      the lab's stand-in balancer (tools/lab/nft-rulesets.ts), in lb's prerouting:
//            `ip daddr VIP … ip dscp set 1 ip daddr set jhash ip saddr . th sport . th dport mod 2 … map { RIPs }`
//   lb-auto  l3dsr lb --engine io_uring --queues 1 (offload = auto, the default), steering lb-c
//   lb-no    the same with --no-offload
// Where the work runs (--ingress): the daemon is pinned to CPU 0. The
// kernel's part of either balancer (lb-c's receive, nftables or tc, the
// forwarding) runs where lb-c's packets are taken in:
//   napi  (default) in lb-c's own NAPI thread, pinned to CPU 0 (bench/support/ingress.ts):
//         its schedstat is the kernel's part, measured as the daemon's is
//   rps   in softirq on CPU 0 (rps_cpus on lb-c): only /proc/stat's sampled softirq time says
//         what it cost, and under load trafgen may stop with EAGAIN (its packets queue on CPU 0)
//   none  wherever the kernel takes them (the sender's CPU): to see the others' effect
// srv's receive goes to CPU 1 (RPS on s-lb, except with none), with the
// sender and the counting socket, as if srv were another machine.
// Reported per rate and case, median (min–max) over the repetitions, per
// packet balanced (the daemon's counters, the nftables rule's counter):
//   daemon      ns on CPU of all the daemon's threads (/proc/PID/task/*/schedstat)
//   lb-c NAPI   ns on CPU of lb-c's NAPI thread (napi only)
//   balancer    the two added: all the balancing CPU 0 did, whoever else used CPU 0
//   CPU0 softirq ns of CPU 0 in softirq (/proc/stat, sampled at the kernel's HZ)
// and CPU 0's busy share (anything, other users of the machine too), the
// packets each CPU's network stack took in per packet offered
// (/proc/net/softnet_stat: where the receive ran), and the packets the
// counting socket dropped (srv's UDP RcvbufErrors).
// Needs root, a C compiler (labtool), python3 (the ethtool ioctl), trafgen
// (netsniff-ng) for the flood.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabDaemon, sumQueues } from '../tools/demo/lab-daemon.js';
import {
  Lab, LAB_INTERFACES, LAB_PLAN, destroyLabsOnExit, installStandIn, removeStandIn, standInPackets, type LabVip, type StandInVip,
} from '../tools/lab/index.js';
import { ip } from '../src/system/index.js';
import { startSink } from '../test/support/daemon-traffic.js';
import {
  capacityFlags, capacitySettings, offer, pairedRatios, rateTable, runTrials, type CapacityCase, type CapacitySettings, type CapacityTrial,
  type Figure, type Rate,
} from './support/capacity-run.js';
import { napiThreadOn, receiveOn } from './support/ingress.js';
import { cpuTimes, pinProcess, processCpuNs, softnet, type CpuTimes } from './support/process-cpu.js';
import { benchArgs } from './support/args.js';
import { kpps, runRecord, sleep } from './support/report.js';

const BALANCER_CPU = 0;
const SENDER_CPU = 1;
const FLOOD_PORT = 9000;
const SETTLE_MS = 300;
/**
 * trafgen's ring: its packets wait for CPU 0 (in lb-c's NAPI ring, or CPU
 * 0's backlog) charged to its socket, and more than its send buffer (208
 * KiB by default, not settable per namespace) makes it stop with EAGAIN.
 */
const TRAFGEN_RING_KIB = 384;
const VIP: LabVip = { family: 4, address: '203.0.113.10', dscp: 1 };
/** srv's RIP and a second address of srv on the same link: two backends, as the stand-in's map and the Maglev table spread them. */
const BACKENDS = [LAB_PLAN[4].rip, '198.51.100.3'];
const STAND_IN: StandInVip[] = [{ ...VIP, backends: BACKENDS.map((address) => ({ address })) }];

interface Balancer {
  /** The balancer's process, when it has one. */
  pid?: number;
  /** Packets balanced so far. */
  packets(): Promise<number>;
  stop(): Promise<void>;
}

interface Case extends CapacityCase {
  start(lab: Lab, config: string): Promise<Balancer>;
}

/** The [lb] section the daemon balances: the stand-in's VIP and backends, no health checks (the stand-in has none). */
const lbConfig = (): string => [
  `[lb bench]`, `vip = ${VIP.address}`, `dscp = ${VIP.dscp}`, `backends = ${BACKENDS.join(', ')}`, 'check = none', '',
].join('\n');

function daemon(offload: 'auto' | 'no') {
  return async (lab: Lab, config: string): Promise<Balancer> => {
    const d = await LabDaemon.start(lab, [
      '--config', config, '--steer', LAB_INTERFACES.lbToCli, '--engine', 'io_uring', '--queues', '1', ...(offload === 'no' ? ['--no-offload'] : []),
    ], { role: 'lb', command: 'lb', prefix: ['taskset', '-c', String(BALANCER_CPU)] });
    return {
      pid: d.pid,
      packets: async () => Number(sumQueues(await d.status(), (q) => q.counters.verdicts.rewritten)),
      stop: async () => { await d.stop(); },
    };
  };
}

async function nftables(lab: Lab): Promise<Balancer> {
  const where = lab.where('lb');
  await installStandIn(where, STAND_IN);
  return { packets: () => standInPackets(where, VIP), stop: () => removeStandIn(where) };
}

const CASES: Case[] = [
  { id: 'nft', label: 'nftables (jhash map, dscp set)', start: nftables },
  { id: 'lb-auto', label: 'l3dsr lb io_uring offload=auto', start: daemon('auto') },
  { id: 'lb-no', label: 'l3dsr lb io_uring --no-offload', start: daemon('no') },
];

/** Datagrams srv's UDP dropped for a full receive buffer so far (/proc/net/snmp of its namespace). */
async function socketDrops(lab: Lab): Promise<number> {
  const udp = (await lab.exec('srv', 'cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = udp.map((l) => l.split(/\s+/));
  return Number(values![names!.indexOf('RcvbufErrors')]);
}

interface Trial extends CapacityTrial {
  balanced: number;
  /** Per packet balanced: the daemon's threads, lb-c's NAPI thread, CPU 0's softirq. */
  daemonNs?: number;
  napiNs?: number;
  softirqNs: number;
  /** CPU 0's busy share while the load was offered. */
  cpu0BusyShare: number;
  /** Packets each CPU took in, per packet offered. */
  rxPerOffered: number[];
  socketDrops: number;
}

const minus = (a: CpuTimes, b: CpuTimes): CpuTimes => ({ busy: a.busy - b.busy, softirq: a.softirq - b.softirq, total: a.total - b.total });

/** Nanoseconds on CPU so far of the process `pid`, if there is one. */
const cpuOf = (pid: number | undefined): number => (pid === undefined ? 0 : processCpuNs(pid));

async function trial(lab: Lab, c: Case, config: string, napi: number | undefined, rate: Rate, rep: number, s: CapacitySettings<Case>): Promise<Trial> {
  const sink = await startSink(lab, '0.0.0.0', FLOOD_PORT);
  pinProcess(sink.child.pid!, SENDER_CPU);
  const b = await c.start(lab, config);
  try {
    await sleep(SETTLE_MS);
    const d0 = await sink.count();
    const p0 = await b.packets();
    const drops0 = await socketDrops(lab);
    const own0 = cpuOf(b.pid);
    const napi0 = cpuOf(napi);
    const rx0 = softnet();
    const t0 = cpuTimes(BALANCER_CPU);
    const offered = await offer(lab, rate, { ...s.spec, address: VIP.address, cpu: SENDER_CPU, ringKiB: TRAFGEN_RING_KIB }, s.sender);
    const t1 = cpuTimes(BALANCER_CPU);
    await sleep(SETTLE_MS);
    const t2 = cpuTimes(BALANCER_CPU);
    const rx2 = softnet();
    const own2 = cpuOf(b.pid);
    const napi2 = cpuOf(napi);
    const p2 = await b.packets();
    const d2 = await sink.count();
    const drops2 = await socketDrops(lab);
    const balanced = Math.max(1, p2 - p0);
    const during = minus(t1, t0);
    return {
      id: c.id, rate, rep, offeredPps: offered.packets / offered.seconds, deliveredPps: (d2 - d0) / offered.seconds, balanced,
      ...(b.pid === undefined ? {} : { daemonNs: (own2 - own0) / balanced }),
      ...(napi === undefined ? {} : { napiNs: (napi2 - napi0) / balanced }),
      softirqNs: minus(t2, t0).softirq / balanced,
      cpu0BusyShare: during.busy / Math.max(1, during.total),
      rxPerOffered: rx2.map((x) => (x.processed - (rx0.find((y) => y.cpu === x.cpu)?.processed ?? 0)) / Math.max(1, offered.packets)),
      socketDrops: drops2 - drops0,
    };
  } finally {
    await b.stop();
    await sink.stop();
  }
}

const ns = (x: number) => x.toFixed(0);
/** All the balancing CPU 0 did per packet: the daemon's threads and lb-c's NAPI thread (where they are). */
const balancerNs = (t: Trial): number | undefined => (t.daemonNs === undefined && t.napiNs === undefined ? undefined : (t.daemonNs ?? 0) + (t.napiNs ?? 0));
const LABEL_WIDTH = 32;
const FIGURES: Figure<Trial>[] = [
  { title: 'daemon ns/packet', width: 20, value: (t) => t.daemonNs, format: ns },
  { title: 'lb-c NAPI ns/packet', width: 22, value: (t) => t.napiNs, format: ns },
  { title: 'balancer ns/packet', width: 22, value: balancerNs, format: ns },
  { title: 'CPU0 softirq ns/packet', width: 24, value: (t) => t.softirqNs, format: ns },
  { title: 'CPU0 busy %', width: 16, value: (t) => 100 * t.cpu0BusyShare, format: (x) => x.toFixed(0) },
  { title: 'rx cpu0/offered', width: 20, value: (t) => t.rxPerOffered[0], format: (x) => x.toFixed(2) },
  { title: 'rx cpu1/offered', width: 20, value: (t) => t.rxPerOffered[1], format: (x) => x.toFixed(2) },
  { title: 'socket drops', width: 16, value: (t) => t.socketDrops, format: ns },
];
const PAIRS = [['lb-auto', 'nft'], ['lb-no', 'nft'], ['lb-auto', 'lb-no']] as const;
const INGRESS = ['napi', 'rps', 'none'] as const;

async function main(): Promise<void> {
  const values = benchArgs({
    command: 'npm run bench:lb-capacity --',
    about: `What one core balances: l3dsr lb against an nftables balancer doing the same job (a jhash map
to a RIP, the DSCP set), the balancer's work on CPU ${BALANCER_CPU}, the sender on CPU ${SENDER_CPU}, in one run with
interleaved repetitions; per rate and case, median (min–max) of packets/s delivered and CPU per packet.
Needs root, a C compiler, python3, trafgen (netsniff-ng) for the flood.`,
    options: {
      ...capacityFlags(CASES, '80000,flood', 'balancers'),
      ingress: { type: 'string', default: 'napi', value: 'napi|rps|none', help: "where lb-c's receive (and nftables) runs: its own NAPI thread on the balancer's CPU, RPS there, or where the kernel takes it" },
    },
  });
  if (process.getuid?.() !== 0) throw new Error('bench/lb-capacity needs root (network namespaces, TUN, tc, nftables, trafgen)');
  const s = await capacitySettings(values, CASES, FLOOD_PORT);
  const ingress = INGRESS.find((x) => x === values.ingress);
  if (!ingress) throw new Error(`--ingress: ${INGRESS.join(', ')}, got ${values.ingress}`);
  const record = runRecord();

  destroyLabsOnExit();
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-lb-capacity-'));
  const config = join(dir, 'lb.conf');
  writeFileSync(config, lbConfig());
  const lab = await Lab.create();
  let trials: Trial[];
  try {
    await lab.removeLbRuleset();
    await ip(['-4', 'addr', 'add', `${BACKENDS[1]}/${LAB_PLAN[4].ripLength}`, 'dev', LAB_INTERFACES.srvToLb], lab.where('srv'));
    if (ingress !== 'none') await receiveOn(lab, 'srv', LAB_INTERFACES.srvToLb, SENDER_CPU);
    if (ingress === 'rps') await receiveOn(lab, 'lb', LAB_INTERFACES.lbToCli, BALANCER_CPU);
    const napi = ingress !== 'napi' ? undefined
      : await napiThreadOn(lab, { role: 'cli', dev: LAB_INTERFACES.cliToLb }, { role: 'lb', dev: LAB_INTERFACES.lbToCli }, BALANCER_CPU);
    const opt = (x: number | undefined) => (x === undefined ? '-' : ns(x));
    trials = await runTrials(s, LABEL_WIDTH, (c, rate, rep) => trial(lab, c, config, napi, rate, rep, s), (t) => `offered ${kpps(t.offeredPps)}, `
      + `delivered ${kpps(t.deliveredPps)} pps; ns/packet: daemon ${opt(t.daemonNs)}, NAPI ${opt(t.napiNs)}, CPU0 softirq ${ns(t.softirqNs)}; `
      + `CPU0 ${(100 * t.cpu0BusyShare).toFixed(0)} % busy; rx/offered ${t.rxPerOffered.map((x) => x.toFixed(2)).join('/')}; socket drops ${t.socketDrops}`, record);
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  const out = record.lines();
  const where = {
    napi: `lb-c's receive in its NAPI thread on CPU ${BALANCER_CPU}, s-lb's on CPU ${SENDER_CPU} (RPS)`,
    rps: `lb-c's receive on CPU ${BALANCER_CPU}, s-lb's on CPU ${SENDER_CPU} (RPS)`,
    none: 'lb-c and s-lb take packets in where the kernel does',
  }[ingress];
  out.push(`UDP ${s.spec.size}-byte payload, ${s.spec.flows} flows to ${VIP.address}, balanced over ${BACKENDS.join(' and ')}; daemon on CPU ${BALANCER_CPU}, `
    + `sender and counting socket on CPU ${SENDER_CPU}; ${where}; ${s.reps} interleaved reps of ${s.spec.seconds} s; median (min–max):`);
  for (const rate of s.rates) {
    out.push('', ...rateTable(trials, s.cases, rate, s.sender, LABEL_WIDTH, FIGURES),
      ...pairedRatios(trials, s.cases, rate, PAIRS, [
        { name: 'delivered', value: (t) => t.deliveredPps }, { name: 'balancer CPU per packet', value: balancerNs },
      ]));
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`lb-capacity: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
