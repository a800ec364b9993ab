// TCP bulk upload through the three-namespace lab, with TUN offload and
// without, against the kernel doing the same rewrite, in one run with
// interleaved repetitions (docs/lab.md: the machine drifts; only ratios
// measured together mean anything). Then a short UDP 64-byte flood with
// offload on and off, to see that small packets do not pay for it.
//
//   npm run bench:tcp -- [options]      (--help lists them; --reps 0: UDP only)
//
// TCP cases (iperf3 -c VIP -S 4 from cli through the nftables LB, receiver in srv):
//   a) no rewrite: the LB forwards the VIP unchanged (no DSCP, no DNAT), srv delivers it
//   b) nftables on srv: `ip dscp 1 ip daddr set VIP` (the reference)
//   c) l3dsr --no-offload, 1 queue       d) l3dsr --offload, 1 queue
//   e) l3dsr --offload, 2 queues
//   f) bench/c/tun-loop.c, io_uring, IFF_VNET_HDR and TSO (IPv4 only): the same
//      data path in plain C, what a TUN rewriter costs without JavaScript
// Reported: receiver Gbit/s, median (min–max), ratio of the medians to (b),
// the rewriter's CPU per byte (nanoseconds on CPU of all its threads, from
// /proc/PID/task/*/schedstat), the
// whole machine's busy CPU per byte (/proc/stat; includes the sender, the
// kernel and anything else running), and for l3dsr the share of reads that
// were GSO super-packets.
// --pin R,S[,W] puts the receiving iperf3 on CPU R, the sending iperf3 on
// CPU S and the rewriter (l3dsr's or the C loop's threads) on CPU W
// (default R: the TUN write delivers to the receiver's socket); the kernel's
// own work (nftables, softirqs) runs where the packets take it. Without it
// the scheduler places everything.
// --profile DIR records every CPU with perf during the first repetition of
// each case (the middle of the run, `seconds` - 2 s) into DIR/<case>-P<n>.data
// and reports its CPU per byte by kind of work (bench/support/cpu-profile.ts).
// Needs root, iperf3, a C compiler (labtool, for the UDP sender and sink).
import { LabDaemon, type StatusJson } from '../tools/demo/lab-daemon.js';
import { Lab, LAB_INTERFACES, LAB_PLAN, destroyLabsOnExit, lbRuleset, type LabVip } from '../tools/lab/index.js';
import { deleteTableCommands, LB_TABLE } from '../tools/lab/nft-rulesets.js';
import { ip, nft, nftApply } from '../src/system/index.js';
import { startSink } from '../test/support/daemon-traffic.js';
import { hasTrafgen, socketFlood, trafgenFlood, type FloodSpec, type Offered } from './lab-senders.js';
import { benchArgs } from './support/args.js';
import { buildCPrograms, type CPrograms } from './support/c-programs.js';
import { machineCpuSeconds, processCpuNs } from './support/process-cpu.js';
import { interleaved, kpps as k, pad, runRecord, sleep } from './support/report.js';
import { median, spread } from './support/stats.js';
import { TunLoop } from './support/tun-loop.js';
import { hasPerf, nsPerByte, PROFILE_KINDS, readProfile, recordCpus } from './support/cpu-profile.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const IPERF_PORT = 5201;
const FLOOD_PORT = 9000;
/** TOS byte 4 = DSCP 1 (the LB sets it anyway; the nftables and l3dsr rules match DSCP 1). */
const IPERF_TOS = '4';
/** Time for the path to settle after a setup, and to drain after a run. */
const SETTLE_MS = 300;

const VIPS: readonly LabVip[] = [
  { family: 4, address: '203.0.113.10', dscp: 1 },
  { family: 6, address: '2001:db8:203::10', dscp: 1 },
];
const vipOf = (family: 4 | 6) => VIPS.find((v) => v.family === family)!.address;

type CaseId = 'a' | 'b' | 'c' | 'd' | 'e' | 'f';

interface Setup {
  daemon?: LabDaemon;
  /** The rewriter's process, when there is one. */
  pid?: number;
  stop(): Promise<void>;
}

interface Case {
  id: CaseId;
  label: string;
  /** `cpu`: where the rewriter runs (--pin), else anywhere. */
  setup(lab: Lab, c: CPrograms, cpu?: number): Promise<Setup>;
  /** The families it rewrites (default both). */
  families?: readonly (4 | 6)[];
}

function l3dsr(offload: boolean, queues: number) {
  return async (lab: Lab, _c?: CPrograms, cpu?: number): Promise<Setup> => {
    // The VIPs are on srv's lo from the start; the daemon only rewrites.
    const daemon = await LabDaemon.start(lab, [
      ...VIPS.flatMap((v) => ['--rule', `${v.dscp}=${v.address}`]),
      '--steer', LAB_INTERFACES.srvToLb, '--engine', 'io_uring', '--queues', String(queues), offload ? '--offload' : '--no-offload',
    ], cpu === undefined ? {} : { prefix: taskset(cpu) });
    return { daemon, pid: daemon.pid, stop: async () => { await daemon.stop(); } };
  };
}

async function cTunLoop(lab: Lab, c: CPrograms, cpu?: number): Promise<Setup> {
  const v = VIPS.find((x) => x.family === 4)!;
  const loop = await TunLoop.start(lab, c.tunLoop, { engine: 'uring', dscp: v.dscp, vip: v.address, vnet: true, ...(cpu === undefined ? {} : { cpu }) });
  return { pid: loop.pid, stop: () => loop.stop() };
}

/** The LB stops rewriting and routes the VIPs to srv as they are: no rewrite anywhere. */
async function noRewrite(lab: Lab): Promise<Setup> {
  const lb = lab.where('lb');
  for (const args of deleteTableCommands(VIPS, LB_TABLE)) await nft(args, lb);
  const routes = VIPS.map((v) => [`-${v.family}`, 'route', 'add', `${v.address}/${v.family === 4 ? 32 : 128}`, 'via', LAB_PLAN[v.family].rip, 'dev', LAB_INTERFACES.lbToSrv]);
  for (const r of routes) await ip(r, lb);
  return {
    async stop() {
      for (const r of routes) await ip(r.map((x) => (x === 'add' ? 'del' : x)), lb);
      await nftApply(lbRuleset(lab.vips), lb);
    },
  };
}

const TCP_CASES: Case[] = [
  { id: 'a', label: 'no rewrite (LB forwards the VIP)', setup: noRewrite },
  {
    id: 'b', label: 'nftables on srv', setup: async (lab) => {
      await lab.installKernelRewrite();
      return { stop: () => lab.removeKernelRewrite() };
    },
  },
  { id: 'c', label: 'l3dsr, no offload, 1 queue', setup: l3dsr(false, 1) },
  { id: 'd', label: 'l3dsr, offload, 1 queue', setup: l3dsr(true, 1) },
  { id: 'e', label: 'l3dsr, offload, 2 queues', setup: l3dsr(true, 2) },
  { id: 'f', label: 'C TUN loop, vnet + TSO', setup: cTunLoop, families: [4] },
];

const taskset = (cpu: number) => ['taskset', '-c', String(cpu)];

interface Placement { receiver: number; sender: number; rewriter: number }

const sum = (s: StatusJson, pick: (q: StatusJson['queues'][number]) => number) => s.queues.reduce((n, q) => n + Number(pick(q)), 0);

interface TcpTrial {
  id: CaseId;
  streams: number;
  gbps: number;
  retransmits: number;
  rewriterNsPerByte?: number;
  machineNsPerByte: number;
  gsoShare?: number;
  /** CPU per byte by kind of work, when this trial was profiled. */
  profile?: ReturnType<typeof nsPerByte>;
}

/** Where a trial's perf recording goes, when it is profiled. */
interface ProfileSpec { file: string }

interface IperfJson {
  error?: string;
  end: { sum_received: { bytes: number; bits_per_second: number }; sum_sent: { retransmits?: number } };
}

async function tcpTrial(lab: Lab, c: Case, progs: CPrograms, family: 4 | 6, streams: number, seconds: number, pin?: Placement, profile?: ProfileSpec): Promise<TcpTrial> {
  const setup = await c.setup(lab, progs, pin?.rewriter);
  try {
    await sleep(SETTLE_MS);
    const pid = setup.pid;
    const st0 = await setup.daemon?.status();
    const cpu0 = pid ? processCpuNs(pid) : 0;
    const m0 = machineCpuSeconds();
    const window = seconds - 2;
    const recording = profile && sleep(1000).then(() => recordCpus(profile.file, window));
    const out = await lab.exec('cli', ...withPrefix(pin && taskset(pin.sender), 'iperf3', [
      '-c', vipOf(family), '-p', String(IPERF_PORT), '-t', String(seconds), '-S', IPERF_TOS, '-P', String(streams), '-J',
    ]));
    const m1 = machineCpuSeconds();
    const cpu1 = pid ? processCpuNs(pid) : 0;
    const st1 = await setup.daemon?.status();
    const r = JSON.parse(out) as IperfJson;
    if (r.error) throw new Error(`iperf3 (${c.id}): ${r.error}`);
    // Bytes over the whole run (slow start lasts milliseconds here); CPU sampled around the same run.
    const bytes = r.end.sum_received.bytes;
    const t: TcpTrial = {
      id: c.id, streams, gbps: r.end.sum_received.bits_per_second / 1e9, retransmits: r.end.sum_sent.retransmits ?? 0,
      machineNsPerByte: ((m1 - m0) * 1e9) / bytes,
    };
    if (pid) t.rewriterNsPerByte = (cpu1 - cpu0) / bytes;
    if (recording) {
      await recording;
      // The recording's window is inside the run, whose rate is steady after its first milliseconds.
      t.profile = nsPerByte(readProfile(profile!.file), (r.end.sum_received.bits_per_second / 8) * window);
    }
    if (st0 && st1) {
      const reads = sum(st1, (q) => q.tun.packetsRead) - sum(st0, (q) => q.tun.packetsRead);
      t.gsoShare = (sum(st1, (q) => q.tun.gsoPackets) - sum(st0, (q) => q.tun.gsoPackets)) / Math.max(1, reads);
    }
    return t;
  } finally {
    await setup.stop();
  }
}

interface UdpTrial { offload: boolean; sender: string; offeredPps: number; deliveredPps: number; cpuUsPerPacket: number }

async function udpTrial(lab: Lab, offload: boolean, sender: string, spec: Omit<FloodSpec, 'address'>): Promise<UdpTrial> {
  const sink = await startSink(lab, vipOf(4), FLOOD_PORT);
  const setup = await l3dsr(offload, 1)(lab);
  try {
    await sleep(SETTLE_MS);
    const pid = setup.daemon!.pid;
    const cpu0 = processCpuNs(pid);
    const st0 = await setup.daemon!.status();
    const full = { ...spec, address: vipOf(4) };
    const offered: Offered = sender === 'trafgen' ? await trafgenFlood(lab, full) : await socketFlood(lab, full);
    await sleep(SETTLE_MS);
    const delivered = await sink.count();
    const st1 = await setup.daemon!.status();
    const cpu1 = processCpuNs(pid);
    const rewritten = sum(st1, (q) => Number(q.counters.verdicts.rewritten)) - sum(st0, (q) => Number(q.counters.verdicts.rewritten));
    return {
      offload, sender, offeredPps: offered.packets / offered.seconds, deliveredPps: delivered / offered.seconds,
      cpuUsPerPacket: (cpu1 - cpu0) / 1000 / Math.max(1, rewritten),
    };
  } finally {
    await setup.stop();
    await sink.stop();
  }
}


function tcpLines(trials: TcpTrial[], cases: readonly Case[], streams: number): string[] {
  const of = (id: CaseId) => trials.filter((t) => t.id === id && t.streams === streams);
  const med = (id: CaseId, f: (t: TcpTrial) => number | undefined) => {
    const xs = of(id).map(f).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const gbps = (id: CaseId) => med(id, (t) => t.gbps)!;
  const out = [`${'case'.padEnd(36)}${pad('Gbit/s', 20)}${pad('÷ (b)', 7)}${pad('rewriter ns/B', 22)}${pad('machine ns/B', 14)}${pad('super-pkt reads', 17)}${pad('retrans', 9)}`];
  for (const c of cases) {
    const rw = of(c.id).map((t) => t.rewriterNsPerByte).filter((x): x is number => x !== undefined);
    const share = med(c.id, (t) => t.gsoShare);
    out.push(`${`${c.id}) ${c.label}`.padEnd(36)}${pad(spread(of(c.id).map((t) => t.gbps), (x) => x.toFixed(2)), 20)}`
      + `${pad(gbps('b') ? (gbps(c.id) / gbps('b')).toFixed(2) : '-', 7)}${pad(rw.length ? spread(rw, (x) => x.toFixed(3)) : '-', 22)}`
      + `${pad(med(c.id, (t) => t.machineNsPerByte)!.toFixed(3), 14)}${pad(share === undefined ? '-' : `${(share * 100).toFixed(0)} %`, 17)}`
      + `${pad(String(Math.round(med(c.id, (t) => t.retransmits)!)), 9)}`);
  }
  const has = (id: CaseId) => cases.some((c) => c.id === id);
  const ratios = ([['d', 'b'], ['e', 'b'], ['c', 'b'], ['f', 'b'], ['d', 'f'], ['b', 'a']] as const)
    .filter(([x, y]) => has(x) && has(y)).map(([x, y]) => `(${x}) / (${y}) = ${(gbps(x) / gbps(y)).toFixed(2)}`);
  if (ratios.length) out.push(`ratios of medians: ${ratios.join('; ')}  (target: (d) / (b) >= 0.8)`);
  return out;
}

function udpLines(trials: UdpTrial[]): string[] {
  const out = [`${'case'.padEnd(36)}${pad('offered', 10)}${pad('delivered', 11)}${pad('CPU µs/pkt', 12)}  runs (delivered pps)`];
  const senders = [...new Set(trials.map((t) => t.sender))];
  for (const sender of senders) {
    for (const offload of [false, true]) {
      const ts = trials.filter((t) => t.sender === sender && t.offload === offload);
      out.push(`${`l3dsr ${offload ? 'offload' : 'no offload'}, ${sender} sender`.padEnd(36)}${pad(k(median(ts.map((t) => t.offeredPps))), 10)}`
        + `${pad(k(median(ts.map((t) => t.deliveredPps))), 11)}${pad(median(ts.map((t) => t.cpuUsPerPacket)).toFixed(2), 12)}`
        + `  ${ts.map((t) => k(t.deliveredPps)).join(' ')}`);
    }
    const d = (o: boolean) => median(trials.filter((t) => t.sender === sender && t.offload === o).map((t) => t.deliveredPps));
    out.push(`  ${sender}: offload / no offload delivered = ${(d(true) / d(false)).toFixed(2)}`);
  }
  return out;
}

/** `program args`, run under `prefix` when there is one: [file, args] for lab.exec/spawn. */
function withPrefix(prefix: readonly string[] | undefined, program: string, args: string[]): [string, string[]] {
  return prefix ? [prefix[0]!, [...prefix.slice(1), program, ...args]] : [program, args];
}

function parsePin(text: string): Placement {
  const cpus = text.split(',').map(Number);
  if (cpus.length < 2 || cpus.length > 3 || !cpus.every((n) => Number.isInteger(n) && n >= 0)) {
    throw new Error(`--pin: R,S[,W] (the receiver's CPU, the sender's, the rewriter's: default R), got ${text}`);
  }
  return { receiver: cpus[0]!, sender: cpus[1]!, rewriter: cpus[2] ?? cpus[0]! };
}

async function main(): Promise<void> {
  const values = benchArgs({
    command: 'npm run bench:tcp --',
    about: `TCP bulk upload (iperf3) through the three-namespace lab: no rewrite, nftables, l3dsr with
and without TUN offload, 2 queues, the C TUN loop; in one run with interleaved repetitions,
then a short UDP 64-byte flood with offload on and off.
Needs root, iperf3, a C compiler.`,
    options: {
      seconds: { type: 'string', default: '4', value: 'S', help: 'seconds per iperf3 run' },
      reps: { type: 'string', default: '3', value: 'N', help: 'interleaved repetitions of the TCP cases (0: UDP only)' },
      streams: { type: 'string', default: '1,4', value: 'LIST', help: 'iperf3 parallel streams, one set of cases each' },
      family: { type: 'string', default: '4', value: '4|6', help: 'IP version' },
      'udp-seconds': { type: 'string', default: '3', value: 'S', help: 'seconds per UDP flood' },
      'udp-reps': { type: 'string', default: '3', value: 'N', help: 'repetitions of the UDP floods' },
      'udp-senders': { type: 'string', value: 'LIST', help: 'socket, trafgen (default both when trafgen is installed)' },
      'no-udp': { type: 'boolean', help: 'skip the UDP floods' },
      cases: { type: 'string', default: TCP_CASES.map((c) => c.id).join(','), value: 'LIST', help: 'the TCP cases (bench/lab-tcp.ts says what each is)' },
      pin: { type: 'string', value: 'R,S[,W]', help: "receiving iperf3 on CPU R, sending on S, the rewriter on W (default R)" },
      profile: { type: 'string', value: 'DIR', help: 'perf record every CPU in each case\'s first repetition into DIR, report CPU per byte by kind' },
    },
  });
  if (process.getuid?.() !== 0) throw new Error('bench/lab-tcp needs root (network namespaces, TUN, tc)');
  const seconds = Number(values.seconds);
  const reps = Number(values.reps);
  const streamsList = values.streams!.split(',').map(Number);
  const family = Number(values.family) as 4 | 6;
  if (family !== 4 && family !== 6) throw new Error(`--family: 4 or 6, got ${values.family}`);
  const cases = values.cases!.split(',').map((id) => {
    const c = TCP_CASES.find((x) => x.id === id);
    if (!c) throw new Error(`--cases: unknown case ${id} (known: ${TCP_CASES.map((x) => x.id).join(', ')})`);
    return c;
  }).filter((c) => c.families?.includes(family) ?? true);
  const pin = values.pin === undefined ? undefined : parsePin(values.pin);
  const profileDir = values.profile;
  if (profileDir !== undefined) {
    if (!hasPerf()) throw new Error('--profile needs perf (Debian: linux-perf)');
    if (seconds < 4) throw new Error('--profile needs --seconds 4 or more (it records the middle seconds - 2)');
    mkdirSync(profileDir, { recursive: true });
  }
  const senders = values['udp-senders']?.split(',') ?? ((await hasTrafgen()) ? ['socket', 'trafgen'] : ['socket']);
  const record = runRecord();

  destroyLabsOnExit();
  const progs = buildCPrograms();
  const lab = await Lab.create({ vips: VIPS, vipsOnLoopback: true });
  const tcp: TcpTrial[] = [];
  const udp: UdpTrial[] = [];
  try {
    lab.spawn('srv', ...withPrefix(pin && taskset(pin.receiver), 'iperf3', ['-s', '-p', String(IPERF_PORT)]), { stdio: 'ignore' });
    await sleep(SETTLE_MS);
    for (let r = 0; r < reps; r++) {
      record.sample();
      for (const streams of streamsList) {
        for (const c of interleaved(cases, r)) {
          const profile = profileDir !== undefined && r === 0 ? { file: join(profileDir, `${c.id}-P${streams}.data`) } : undefined;
          const t = await tcpTrial(lab, c, progs, family, streams, seconds, pin, profile);
          tcp.push(t);
          process.stderr.write(`rep ${r + 1} -P ${streams} ${c.id}) ${c.label.padEnd(34)} ${t.gbps.toFixed(2)} Gbit/s, machine ${t.machineNsPerByte.toFixed(3)} ns/B`
            + `${t.rewriterNsPerByte === undefined ? '' : `, rewriter ${t.rewriterNsPerByte.toFixed(3)} ns/B`}`
            + `${t.gsoShare === undefined ? '' : `, ${(t.gsoShare * 100).toFixed(0)} % super-packet reads`}\n`);
        }
      }
    }
    if (!values['no-udp']) {
      const spec = { port: FLOOD_PORT, seconds: Number(values['udp-seconds']), flows: 16, size: 64, cpus: 2 };
      for (let r = 0; r < Number(values['udp-reps']); r++) {
        for (const sender of senders) {
          for (const offload of interleaved([false, true], r)) {
            const t = await udpTrial(lab, offload, sender, spec);
            udp.push(t);
            process.stderr.write(`udp rep ${r + 1} ${sender} offload ${offload ? 'on ' : 'off'}: offered ${k(t.offeredPps)}, delivered ${k(t.deliveredPps)} pps, ${t.cpuUsPerPacket.toFixed(2)} µs CPU/pkt\n`);
          }
        }
      }
    }
  } finally {
    await lab.destroy();
    progs.remove();
  }

  const out = record.lines();
  for (const streams of tcp.length ? streamsList : []) {
    out.push('', `TCP upload, IPv${family}, iperf3 -P ${streams} -S ${IPERF_TOS}, ${seconds} s, ${reps} interleaved reps, medians:`);
    out.push(...tcpLines(tcp, cases, streams));
    const profiled = tcp.filter((t) => t.streams === streams && t.profile);
    if (profiled.length) {
      out.push('', `CPU per byte by kind of work, ns/B (perf record -a, rep 1, ${seconds - 2} s in the middle of the run; ${profileDir}/<case>-P${streams}.data):`);
      const kinds = ['data path', ...PROFILE_KINDS] as const;
      out.push(`${'case'.padEnd(36)}${kinds.map((k) => pad(k, k.length + 2)).join('')}`);
      for (const t of profiled) {
        const label = cases.find((c) => c.id === t.id)!.label;
        out.push(`${`${t.id}) ${label}`.padEnd(36)}${kinds.map((k) => pad(t.profile![k].toFixed(3), k.length + 2)).join('')}`);
      }
    }
  }
  if (udp.length) {
    out.push('', `UDP 64-byte payload, 16 flows, l3dsr io_uring 1 queue, ${values['udp-reps']} interleaved reps of ${values['udp-seconds']} s, medians:`);
    out.push(...udpLines(udp));
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`lab-tcp: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
