// What one core rewrites: the rewriter and the receiving socket share CPU
// 0, the sender has CPU 1, and every rewriter is measured in one run with
// interleaved repetitions (docs/lab.md: the machine drifts; only ratios
// measured together mean anything).
//
//   npm run bench:capacity -- [options]      (--help lists them)
//
// A 64-byte UDP flow set from cli through the nftables LB to srv, where the
// rewriter restores the VIP and a socket on the VIP counts what arrives.
// Rewriters (--cases):
//   c-uring          bench/c/tun-loop.c, io_uring (multishot read, DEFER_TASKRUN)
//   c-uring-vnet     the same with IFF_VNET_HDR, TSO and the daemon's offload slot size
//   c-uring-vnet-2k  IFF_VNET_HDR and TSO, but the slots of --no-offload: what the header
//                    costs apart from the slot size (safe here only: no super-packets come)
//   c-readwrite      bench/c/tun-loop.c, read()/write()
//   uring-auto       l3dsr run --engine io_uring (offload = auto, the default)
//   uring-no         l3dsr run --engine io_uring --no-offload
//   readwrite-auto   l3dsr run --engine readwrite
//   readwrite-no     l3dsr run --engine readwrite --no-offload
// Rates: paced (labtool, sendmmsg from a UDP socket) at each number of
// packets/s, and `flood` (trafgen, else labtool unpaced).
// Reported per rate and case, median (min–max) over the repetitions:
// packets/s delivered to the socket, and the rewriter's CPU per packet it
// rewrote: nanoseconds on CPU of all its threads from
// /proc/PID/task/*/schedstat (this includes the kernel's work in its
// system calls: the TUN write carries the packet up to the socket).
// Needs root, a C compiler, trafgen (netsniff-ng) for the flood.
import { LabDaemon } from '../tools/demo/lab-daemon.js';
import { Lab, LAB_INTERFACES, destroyLabsOnExit } from '../tools/lab/index.js';
import { startSink } from '../test/support/daemon-traffic.js';
import { slotSizeFor } from '../src/daemon/daemon.js';
import { hasTrafgen, socketFlood, trafgenFlood, type FloodSpec } from './lab-senders.js';
import { benchArgs } from './support/args.js';
import { buildCPrograms, type CPrograms } from './support/c-programs.js';
import { pinProcess, processCpuNs } from './support/process-cpu.js';
import { interleaved, kpps, pad, runRecord, sleep } from './support/report.js';
import { median, spread } from './support/stats.js';
import { TunLoop } from './support/tun-loop.js';

const REWRITER_CPU = 0;
const SENDER_CPU = 1;
const FLOOD_PORT = 9000;
const VIP = '203.0.113.10';
const DSCP = 1;
const SETTLE_MS = 300;
/** The lab's links: the daemon sizes its slots from the steered link's MTU. */
const LAB_MTU = 1500;

interface Rewriter {
  pid: number;
  /** Packets rewritten so far. */
  packets(): Promise<number>;
  stop(): Promise<void>;
}

interface Case {
  id: string;
  label: string;
  start(lab: Lab, c: CPrograms): Promise<Rewriter>;
}

function daemon(engine: 'io_uring' | 'readwrite', offload: 'auto' | 'no') {
  return async (lab: Lab): Promise<Rewriter> => {
    const d = await LabDaemon.start(lab, [
      '--rule', `${DSCP}=${VIP}`, '--steer', LAB_INTERFACES.srvToLb, '--engine', engine, '--queues', '1',
      ...(offload === 'no' ? ['--no-offload'] : []),
    ], { prefix: ['taskset', '-c', String(REWRITER_CPU)] });
    return {
      pid: d.pid,
      async packets() {
        const s = await d.status();
        return s.queues.reduce((n, q) => n + Number(q.counters.verdicts.rewritten), 0);
      },
      stop: async () => { await d.stop(); },
    };
  };
}

function cLoop(engine: 'uring' | 'readwrite', vnet: boolean, slot = slotSizeFor(LAB_MTU, vnet ? 'auto' : 'no')) {
  return async (lab: Lab, c: CPrograms): Promise<Rewriter> => {
    const loop = await TunLoop.start(lab, c.tunLoop, { engine, dscp: DSCP, vip: VIP, vnet, cpu: REWRITER_CPU, slot });
    return { pid: loop.pid, packets: () => loop.packets(), stop: () => loop.stop() };
  };
}

const CASES: Case[] = [
  { id: 'c-uring', label: 'C io_uring', start: cLoop('uring', false) },
  { id: 'c-uring-vnet', label: `C io_uring, vnet, ${slotSizeFor(LAB_MTU, 'auto')} B slots`, start: cLoop('uring', true) },
  { id: 'c-uring-vnet-2k', label: `C io_uring, vnet, ${slotSizeFor(LAB_MTU, 'no')} B slots`, start: cLoop('uring', true, slotSizeFor(LAB_MTU, 'no')) },
  { id: 'c-readwrite', label: 'C read/write', start: cLoop('readwrite', false) },
  { id: 'uring-no', label: 'l3dsr io_uring --no-offload', start: daemon('io_uring', 'no') },
  { id: 'uring-auto', label: 'l3dsr io_uring offload=auto', start: daemon('io_uring', 'auto') },
  { id: 'readwrite-no', label: 'l3dsr readwrite --no-offload', start: daemon('readwrite', 'no') },
  { id: 'readwrite-auto', label: 'l3dsr readwrite offload=auto', start: daemon('readwrite', 'auto') },
];

type Rate = number | 'flood';

interface Trial {
  id: string;
  rate: Rate;
  rep: number;
  offeredPps: number;
  deliveredPps: number;
  cpuNsPerPacket: number;
}

async function trial(lab: Lab, c: Case, progs: CPrograms, rate: Rate, rep: number, spec: Omit<FloodSpec, 'address'>, sender: string): Promise<Trial> {
  const sink = await startSink(lab, VIP, FLOOD_PORT);
  pinProcess(sink.child.pid!, REWRITER_CPU);
  const rw = await c.start(lab, progs);
  try {
    await sleep(SETTLE_MS);
    const full = { ...spec, address: VIP, cpu: SENDER_CPU };
    const d0 = await sink.count();
    const p0 = await rw.packets();
    const cpu0 = processCpuNs(rw.pid);
    const offered = rate === 'flood'
      ? await (sender === 'trafgen' ? trafgenFlood(lab, full) : socketFlood(lab, full))
      : await socketFlood(lab, full, rate);
    await sleep(SETTLE_MS);
    const cpu1 = processCpuNs(rw.pid);
    const p1 = await rw.packets();
    const d1 = await sink.count();
    return {
      id: c.id, rate, rep, offeredPps: offered.packets / offered.seconds, deliveredPps: (d1 - d0) / offered.seconds,
      cpuNsPerPacket: (cpu1 - cpu0) / Math.max(1, p1 - p0),
    };
  } finally {
    await rw.stop();
    await sink.stop();
  }
}

const ns = (x: number) => x.toFixed(0);

function rateLines(trials: Trial[], cases: Case[], rate: Rate, sender: string): string[] {
  const at = trials.filter((t) => t.rate === rate);
  const of = (id: string) => at.filter((t) => t.id === id);
  const how = rate === 'flood' ? `flood (${sender})` : `paced ${kpps(rate)} pps (labtool)`;
  const out = [`${how}:`, `${'case'.padEnd(38)}${pad('offered', 9)}${pad('delivered pps', 26)}${pad('rewriter CPU ns/packet', 26)}`];
  for (const c of cases) {
    const ts = of(c.id);
    out.push(`${c.label.padEnd(38)}${pad(kpps(median(ts.map((t) => t.offeredPps))), 9)}`
      + `${pad(spread(ts.map((t) => t.deliveredPps), kpps), 26)}${pad(spread(ts.map((t) => t.cpuNsPerPacket), ns), 26)}`);
  }
  // Ratios of the same repetition (measured seconds apart), then their spread.
  const paired = (a: string, b: string, f: (t: Trial) => number) => {
    const xs = of(a).flatMap((t) => of(b).filter((u) => u.rep === t.rep).map((u) => f(t) / f(u)));
    return xs.length ? spread(xs, (x) => x.toFixed(3)) : '-';
  };
  const has = (id: string) => cases.some((c) => c.id === id);
  for (const [a, b] of [['uring-auto', 'uring-no'], ['readwrite-auto', 'readwrite-no'], ['uring-no', 'c-uring'], ['readwrite-no', 'c-readwrite'], ['c-uring-vnet', 'c-uring'], ['c-uring-vnet-2k', 'c-uring'], ['c-uring-vnet', 'c-uring-vnet-2k']]) {
    if (!has(a!) || !has(b!)) continue;
    out.push(`  ${a} / ${b}: delivered ${paired(a!, b!, (t) => t.deliveredPps)}, CPU per packet ${paired(a!, b!, (t) => t.cpuNsPerPacket)}`);
  }
  return out;
}

async function main(): Promise<void> {
  const values = benchArgs({
    command: 'npm run bench:capacity --',
    about: `What one core rewrites: the rewriter and the receiving socket on CPU ${REWRITER_CPU}, the sender on CPU ${SENDER_CPU};
the C TUN loops and l3dsr run, in one run with interleaved repetitions; per rate and case,
median (min–max) of packets/s delivered and the rewriter's CPU per packet.
Needs root, a C compiler, trafgen (netsniff-ng) for the flood.`,
    options: {
      seconds: { type: 'string', default: '3', value: 'S', help: 'seconds per case, rate and repetition' },
      reps: { type: 'string', default: '5', value: 'N', help: 'interleaved repetitions' },
      rates: { type: 'string', default: '20000,80000,flood', value: 'LIST', help: 'packets/s of the paced sender, or flood' },
      cases: { type: 'string', default: CASES.map((c) => c.id).join(','), value: 'LIST', help: 'the rewriters (bench/capacity.ts says what each is)' },
      flows: { type: 'string', default: '16', value: 'N', help: 'UDP flows' },
      size: { type: 'string', default: '64', value: 'BYTES', help: 'UDP payload' },
      sender: { type: 'string', value: 'trafgen|socket', help: 'the flood\'s sender (default trafgen when installed, else socket)' },
    },
  });
  if (process.getuid?.() !== 0) throw new Error('bench/capacity needs root (network namespaces, TUN, tc, trafgen)');
  const cases = values.cases!.split(',').map((id) => {
    const c = CASES.find((x) => x.id === id);
    if (!c) throw new Error(`--cases: unknown case ${id} (known: ${CASES.map((x) => x.id).join(', ')})`);
    return c;
  });
  const rates: Rate[] = values.rates!.split(',').map((r) => {
    if (r === 'flood') return 'flood';
    const n = Number(r);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--rates: packets/s or flood, got ${r}`);
    return n;
  });
  const sender = values.sender ?? ((await hasTrafgen()) ? 'trafgen' : 'socket');
  if (sender !== 'trafgen' && sender !== 'socket') throw new Error(`--sender: trafgen or socket, got ${sender}`);
  const reps = Number(values.reps);
  const spec = { port: FLOOD_PORT, seconds: Number(values.seconds), flows: Number(values.flows), size: Number(values.size) };
  const record = runRecord();

  destroyLabsOnExit();
  const progs = buildCPrograms();
  const lab = await Lab.create({ vipsOnLoopback: true });
  const trials: Trial[] = [];
  try {
    for (let r = 0; r < reps; r++) {
      record.sample();
      for (const rate of rates) {
        for (const c of interleaved(cases, r)) {
          const t = await trial(lab, c, progs, rate, r, spec, sender);
          trials.push(t);
          process.stderr.write(`rep ${r + 1} ${String(rate).padStart(6)} ${c.label.padEnd(38)} offered ${kpps(t.offeredPps)}, delivered ${kpps(t.deliveredPps)} pps, ${ns(t.cpuNsPerPacket)} ns CPU/packet\n`);
        }
      }
    }
  } finally {
    await lab.destroy();
    progs.remove();
  }
  const out = record.lines();
  out.push(`UDP ${spec.size}-byte payload, ${spec.flows} flows; rewriter and receiving socket on CPU ${REWRITER_CPU}, sender on CPU ${SENDER_CPU}; `
    + `${reps} interleaved reps of ${spec.seconds} s; median (min–max):`);
  for (const rate of rates) out.push('', ...rateLines(trials, cases, rate, sender));
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`capacity: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
