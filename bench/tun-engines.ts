// Throughput of the TUN engines in one run. A UDP 64-byte flood is injected
// into the TUN's transmit side (trafgen on the device, as tc mirred
// steering does), the rewriter reads it in batches into WebAssembly memory,
// swaps the addresses in place (checksum-neutral) and writes it back; the
// kernel delivers it to a UDP socket in the namespace.
//
//   npm run bench:tun -- [options]      (--help lists them)
//
// Needs root, trafgen (netsniff-ng), python3 and a built addon. Variants
// run interleaved, and only ratios within one run mean anything (docs/lab.md:
// the machine drifts 2x between runs): the report gives each variant's
// median (min–max) and its ratios to read()/write() within each repetition.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TunDevice, type TunOpenOptions } from '../src/tun/device.js';
import { PYTHON } from '../test/support/python.js';
import { spread } from './support/stats.js';
import { benchArgs, positiveInt, positiveNumber } from './support/args.js';
import { interleaved, kpps, runRecord, sleep } from './support/report.js';
import { L3dsrError } from '../src/errors.js';
import { IPV4 } from '../tools/packets/layout.js';
import { trafgenUdp } from './support/trafgen.js';

const SINK_ADDRESS = '198.51.100.1';
const TARGET_ADDRESS = '203.0.113.7';
const SOURCE_PORT = 5000;
const SINK_PORT = 6000;
const PAYLOAD_BYTES = 64;
const WARMUP_MS = 500;
const REWRITER_CPU = 0;
const SENDER_CPU = 1;

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

interface Variant {
  label: string;
  options: Partial<TunOpenOptions>;
}
const VARIANTS: Variant[] = [
  { label: 'readwrite', options: { engine: 'readwrite' } },
  { label: 'io_uring', options: { engine: 'io_uring' } },
  { label: 'io_uring-nodefer', options: { engine: 'io_uring', deferTaskrun: false } },
  { label: 'io_uring-single', options: { engine: 'io_uring', readMode: 'single' } },
];

interface Snapshot {
  t: number;
  cpuUs: number;
  stats: ReturnType<TunDevice['stats']>;
  udp: { inDatagrams: number; rcvbufErrors: number };
  detail: string | null;
}

/** Udp InDatagrams / RcvbufErrors of this process's namespace. */
function udpCounters(): Snapshot['udp'] {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0].split(/\s+/);
  const values = lines[1].split(/\s+/).map(Number);
  return { inDatagrams: values[names.indexOf('InDatagrams')], rcvbufErrors: values[names.indexOf('RcvbufErrors')] };
}

/** Runs inside the namespace: the rewriter under test. Answers `mark` with
 * a snapshot line, `quit` by closing. */
function rewriter(label: string, name: string, batchMax: number, slotsPerBatch: number): void {
  const variant = VARIANTS.find((v) => v.label === label);
  if (!variant) throw new Error(`unknown variant ${label}`);
  const dev = TunDevice.open({ name, ...variant.options, log: () => {} });
  sh('ip', 'link', 'set', name, 'up');
  sh('ip', 'route', 'add', '203.0.113.0/24', 'dev', name);
  const slotSize = 2048;
  const slotCount = batchMax * slotsPerBatch;
  const slotBase = 65536;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((slotBase + slotSize * slotCount) / 65536) });
  const layout = { slotBase, slotSize, slotCount, slotsOffset: 0, lengthsOffset: batchMax * 4, batchMax };
  const bytes = new Uint8Array(memory.buffer);
  const slots = new Uint32Array(memory.buffer, layout.slotsOffset, batchMax);
  const lengths = new Uint32Array(memory.buffer, layout.lengthsOffset, batchMax);
  const dv = new DataView(memory.buffer);
  dev.attach(memory, layout, (n) => {
    for (let i = 0; i < n; i++) {
      const p = slotBase + slots[i] * slotSize;
      if (lengths[i] < IPV4.SIZE || bytes[p] >> 4 !== 4) {
        lengths[i] = 0;
        continue;
      }
      // Swapping source and destination keeps every checksum valid.
      const src = dv.getUint32(p + IPV4.SOURCE);
      dv.setUint32(p + IPV4.SOURCE, dv.getUint32(p + IPV4.DESTINATION));
      dv.setUint32(p + IPV4.DESTINATION, src);
    }
  });
  dev.onError = (err) => {
    process.stderr.write(`rewriter: ${err.message}\n`);
    process.exit(1);
  };
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line === 'mark') {
      const cpu = process.cpuUsage();
      const snap: Snapshot = { t: Number(process.hrtime.bigint()), cpuUs: cpu.user + cpu.system, stats: dev.stats(), udp: udpCounters(), detail: dev.detail };
      process.stdout.write(`${JSON.stringify(snap)}\n`);
    } else if (line === 'quit') {
      dev.close();
      rl.close();
      process.stdin.destroy();
    }
  });
  process.stdout.write('ready\n');
}

// The sink is a small Python program: it is either a reader that counts,
// or a bound socket that is never read.
const SINK_PY = `
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
n = 0
def read():
    global n
    while True:
        s.recv(2048)
        n += 1
if sys.argv[3] == 'read':
    threading.Thread(target=read, daemon=True).start()
print('ready', flush=True)
sys.stdin.readline()
print(n, flush=True)
`;

// Paced sender for --rate (trafgen's own rate mode sends nothing on a TUN):
// a UDP socket in the namespace, bursts once per millisecond.
const PACED_SENDER_PY = `
import os, socket, sys, time
os.sched_setaffinity(0, {int(sys.argv[5])})
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
dst = (sys.argv[3], int(sys.argv[4]))
rate = int(sys.argv[6])
payload = b'a' * int(sys.argv[7])
start = time.monotonic()
sent = 0
while True:
    due = int((time.monotonic() - start) * rate)
    while sent < due:
        try:
            s.sendto(payload, dst)
        except OSError:
            pass
        sent += 1
    time.sleep(0.001)
`;

// trafgen pins its workers itself: -P 2 with the packet on cpu(1) keeps
// the sender on CPU 1 (with -P 1 it would sit on CPU 0).
const trafgenConfig = (): string =>
  trafgenUdp({ src: SINK_ADDRESS, dst: TARGET_ADDRESS, srcPort: SOURCE_PORT, dstPort: SINK_PORT, size: PAYLOAD_BYTES, cpu: SENDER_CPU });

/** A process inside the namespace spoken to line by line. */
class Child {
  readonly proc: ChildProcess;
  readonly #lines: string[] = [];
  readonly #waiters: ((l: string) => void)[] = [];
  constructor(ns: string, args: string[]) {
    this.proc = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      const w = this.#waiters.shift();
      if (w) w(l);
      else this.#lines.push(l);
    });
  }
  next(): Promise<string> {
    const l = this.#lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      this.#waiters.push(resolve);
      this.proc.once('exit', (code) => reject(new Error(`${this.proc.spawnargs.join(' ')} exited (${code}) before answering`)));
    });
  }
  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }
  exited(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.resolve();
    return new Promise((r) => this.proc.once('exit', () => r()));
  }
}

interface Settings {
  ns: string;
  seconds: number;
  batchMax: number;
  slotsPerBatch: number;
  sink: 'read' | 'hold';
  pin: boolean;
  /** Sender rate in pps; flood when undefined. */
  rate?: number;
  cfg: string;
}

interface Trial {
  label: string;
  /** The repetition it was measured in (0-based). */
  rep: number;
  writtenPps: number;
  /** Reached the socket layer: queued (InDatagrams) or refused for a full buffer. */
  deliveredPps: number;
  receivedPps: number;
  cpuUsPerPacket: number;
  cpuLoad: number;
  meanBatch: number;
  tunTxDroppedPps: number;
  wakeupsPerSecond: number;
  bufferRingEmpty: number;
  writeErrors: number;
  detail: string;
}

async function trial(s: Settings, variant: Variant, rep: number): Promise<Trial> {
  const self = fileURLToPath(import.meta.url);
  const name = `tb${process.pid % 100000}`;
  const pin = s.pin ? ['taskset', '-c', String(REWRITER_CPU)] : [];
  const rw = new Child(s.ns, [...pin, process.execPath, self, '--role', 'rewriter', '--variant', variant.label, '--name', name, '--batch', String(s.batchMax), '--slots', String(s.slotsPerBatch)]);
  const sink = new Child(s.ns, [PYTHON, '-c', SINK_PY, SINK_ADDRESS, String(SINK_PORT), s.sink]);
  let sender: ChildProcess | undefined;
  try {
    if ((await rw.next()) !== 'ready' || (await sink.next()) !== 'ready') throw new Error('children did not start');
    // Own process group: trafgen forks a worker that a signal to its
    // parent alone does not stop.
    const command = s.rate
      ? [PYTHON, '-c', PACED_SENDER_PY, SINK_ADDRESS, String(SOURCE_PORT), TARGET_ADDRESS, String(SINK_PORT), String(SENDER_CPU), String(s.rate), String(PAYLOAD_BYTES)]
      : ['trafgen', '-P', String(SENDER_CPU + 1), '--dev', name, '--conf', s.cfg];
    sender = spawn('ip', ['netns', 'exec', s.ns, ...command], { stdio: 'ignore', detached: true });
    await sleep(WARMUP_MS);
    const dropped0 = tunTxDropped(s.ns, name);
    rw.send('mark');
    const a: Snapshot = JSON.parse(await rw.next());
    await sleep(s.seconds * 1000);
    rw.send('mark');
    const b: Snapshot = JSON.parse(await rw.next());
    const dropped = tunTxDropped(s.ns, name) - dropped0;
    const senderExit = new Promise((r) => sender!.once('exit', r));
    killGroup(sender, 'SIGTERM');
    await senderExit;
    sender = undefined;
    sink.send('quit');
    const received = Number(await sink.next());
    rw.send('quit');
    await rw.exited();
    const dt = (b.t - a.t) / 1e9;
    const written = b.stats.packetsWritten - a.stats.packetsWritten;
    const delivered = b.udp.inDatagrams + b.udp.rcvbufErrors - a.udp.inDatagrams - a.udp.rcvbufErrors;
    return {
      label: variant.label,
      rep,
      writtenPps: written / dt,
      deliveredPps: delivered / dt,
      receivedPps: received / (dt + WARMUP_MS / 1000),
      cpuUsPerPacket: (b.cpuUs - a.cpuUs) / written,
      cpuLoad: (b.cpuUs - a.cpuUs) / 1e6 / dt,
      meanBatch: (b.stats.packetsRead - a.stats.packetsRead) / (b.stats.batches - a.stats.batches),
      tunTxDroppedPps: dropped / dt,
      wakeupsPerSecond: (b.stats.wakeups - a.stats.wakeups) / dt,
      bufferRingEmpty: b.stats.bufferRingEmpty - a.stats.bufferRingEmpty,
      writeErrors: b.stats.writeErrors,
      detail: b.detail ?? '',
    };
  } finally {
    if (sender) killGroup(sender, 'SIGKILL');
    rw.proc.kill();
    sink.proc.kill();
  }
}

/** Signals a detached child's whole process group; it may be gone already. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function tunTxDropped(ns: string, name: string): number {
  const [link] = JSON.parse(sh('ip', '-n', ns, '-j', '-s', 'link', 'show', 'dev', name));
  return link.stats64.tx.dropped;
}

const BENCH = {
  command: 'npm run bench:tun --',
  about: `The TUN engines alone: a UDP ${PAYLOAD_BYTES}-byte flood injected into a TUN's transmit side (trafgen, as tc
mirred steering does), a rewriter that reads it in batches into WebAssembly memory, swaps
the addresses and writes it back, and a UDP socket it is delivered to; each variant in
one run, repetitions interleaved. Per variant, median (min–max) of packets/s written,
delivered and the rewriter's CPU per packet, and the ratios to readwrite within each
repetition. The sender runs on CPU ${SENDER_CPU}. Needs root, trafgen (netsniff-ng), python3.`,
  options: {
    seconds: { type: 'string', default: '3', value: 'S', help: 'seconds measured per variant and repetition' },
    reps: { type: 'string', default: '5', value: 'N', help: 'interleaved repetitions' },
    batch: { type: 'string', default: '64', value: 'N', help: 'packets per batch, at most' },
    slots: { type: 'string', default: '4', value: 'N', help: 'packet slots per batch entry (slots = batch x N)' },
    sink: {
      type: 'string', default: 'read', value: 'read|hold',
      help: 'read: a process reads every datagram (three busy processes on two CPUs);\n'
        + 'hold: the socket is bound but never read: the kernel still delivers every\n'
        + 'packet up to it (Udp InDatagrams + RcvbufErrors), and no reader competes\n'
        + 'with the rewriter for the CPUs',
    },
    pin: { type: 'boolean', default: false, help: `put the rewriter on CPU ${REWRITER_CPU}` },
    rate: { type: 'string', value: 'PPS', help: 'a paced UDP socket offers this many packets/s instead of the flood\n(CPU per packet below saturation, where batches are small)' },
    variants: { type: 'string', default: VARIANTS.map((v) => v.label).join(','), value: 'LIST', help: 'the engines to compare' },
    role: { type: 'string', internal: true, help: 'rewriter: this process is the rewriter under test' },
    variant: { type: 'string', internal: true, help: 'the rewriter\'s variant' },
    name: { type: 'string', internal: true, help: 'the rewriter\'s TUN' },
  },
} as const;

/** What a repetition's variant is worth against readwrite's in the same repetition. */
function ratioLines(trials: readonly Trial[], variants: readonly Variant[], reps: number): string[] {
  const of = (label: string, r: number) => trials.find((t) => t.label === label && t.rep === r);
  const out: string[] = [];
  for (const v of variants.filter((x) => x.label !== 'readwrite')) {
    const pairs = Array.from({ length: reps }, (_, r) => [of(v.label, r), of('readwrite', r)] as const).filter(([a, b]) => a && b);
    if (pairs.length === 0) continue;
    out.push(`  ${v.label.padEnd(17)} ${spread(pairs.map(([a, b]) => a!.writtenPps / b!.writtenPps), (x) => x.toFixed(2))}x packets/s written, `
      + `${spread(pairs.map(([a, b]) => b!.cpuUsPerPacket / a!.cpuUsPerPacket), (x) => x.toFixed(2))}x less CPU per packet`);
  }
  return out.length ? ['', 'against readwrite, within each repetition, median (min–max):', ...out] : [];
}

async function main(): Promise<void> {
  const values = benchArgs(BENCH, (v) => {
    if (v.sink !== 'read' && v.sink !== 'hold') throw new L3dsrError('ERR_L3DSR_USAGE', `--sink: expected read or hold, got "${v.sink}"`);
    const variants = v.variants.split(',').map((l) => {
      const found = VARIANTS.find((x) => x.label === l);
      if (!found) throw new L3dsrError('ERR_L3DSR_USAGE', `--variants: unknown variant "${l}" (have ${VARIANTS.map((x) => x.label).join(', ')})`);
      return found;
    });
    return {
      ...v, sink: v.sink as Settings['sink'], variants,
      seconds: positiveNumber('seconds', v.seconds), reps: positiveInt('reps', v.reps), batch: positiveInt('batch', v.batch),
      slots: positiveInt('slots', v.slots), rate: positiveInt('rate', v.rate),
    };
  });
  const batchMax = values.batch;
  if (values.role === 'rewriter') return rewriter(values.variant!, values.name!, batchMax, values.slots);

  if (process.getuid?.() !== 0) throw new Error('needs root (network namespace, TUN, trafgen)');
  sh('sh', '-c', 'command -v trafgen');
  const { variants, reps } = values;
  const record = runRecord();
  const ns = `l3tb${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-tun-bench-'));
  const cfg = join(dir, 'udp64.cfg');
  writeFileSync(cfg, trafgenConfig());
  sh('ip', 'netns', 'add', ns);
  try {
    const inNs = (...args: string[]) => sh('ip', 'netns', 'exec', ns, ...args);
    inNs('ip', 'link', 'set', 'lo', 'up');
    inNs('ip', 'addr', 'add', `${SINK_ADDRESS}/24`, 'dev', 'lo');
    inNs('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0');
    const settings: Settings = { ns, seconds: values.seconds, batchMax, slotsPerBatch: values.slots, sink: values.sink, pin: values.pin, rate: values.rate, cfg };
    const trials: Trial[] = [];
    for (let r = 0; r < reps; r++) {
      record.sample();
      for (const v of interleaved(variants, r)) {
        const t = await trial(settings, v, r);
        trials.push(t);
        process.stderr.write(
          `rep ${r + 1} ${t.label.padEnd(17)} written ${kpps(t.writtenPps)} pps, delivered ${kpps(t.deliveredPps)}, received ${kpps(t.receivedPps)}, ` +
            `${t.cpuUsPerPacket.toFixed(2)} µs CPU/pkt at ${(t.cpuLoad * 100).toFixed(0)}% CPU, batch ${t.meanBatch.toFixed(1)}, ` +
            `${kpps(t.wakeupsPerSecond)} wakeups/s, TUN tx_dropped ${kpps(t.tunTxDroppedPps)}/s, ring empty ${t.bufferRingEmpty}, write errors ${t.writeErrors}\n`,
        );
      }
    }
    const out = record.lines();
    out.push(`UDP ${PAYLOAD_BYTES} B ${settings.rate ? `at ${kpps(settings.rate)} pps` : 'flood'} into the TUN, batchMax ${batchMax}, ${batchMax * settings.slotsPerBatch} slots, `
      + `sink ${values.sink}${values.pin ? ', rewriter pinned' : ''}, ${reps} interleaved reps of ${values.seconds} s, median (min–max):`);
    // Throughput says what the rewriter achieved with the CPU it got; CPU
    // per packet also holds when other load on the machine took some away.
    for (const v of variants) {
      const ts = trials.filter((t) => t.label === v.label);
      out.push(`  ${v.label.padEnd(17)} ${spread(ts.map((t) => t.writtenPps), kpps)} pps written, ${spread(ts.map((t) => t.deliveredPps), kpps)} delivered, `
        + `${spread(ts.map((t) => t.cpuUsPerPacket), (x) => x.toFixed(2))} µs rewriter CPU/pkt  [${ts[0]!.detail}]`);
    }
    out.push(...ratioLines(trials, variants, reps));
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    sh('ip', 'netns', 'del', ns);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
