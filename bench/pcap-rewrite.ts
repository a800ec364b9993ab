// Offline rewrite throughput: `l3dsr rewrite` against `tcprewrite
// --dstipmap … --fixcsum` (tcpreplay) on the same generated capture, in the
// same run, repetitions interleaved so that drift on a noisy machine hits
// both alike. Each run is a fresh process (start-up included, as a user sees
// it). Prints each run, then per tool the median (min–max) over the
// repetitions, the ratios of the two within each repetition (only those
// compare on a shared machine), and whether both produced the same packets.
//
//   npm run bench:pcap -- [options]      (--help lists them)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENERATED, generateCapture } from '../tools/capture/generate.js';
import { checksumReport } from '../tools/oracle/oracle.js';
import { openCapture } from '../src/pcap/reader.js';
import { locateL3 } from '../src/pcap/linklayer.js';
import { benchArgs, positiveInt } from './support/args.js';
import { interleaved, kpps, runRecord } from './support/report.js';
import { spread } from './support/stats.js';
import { L3dsrError } from '../src/errors.js';

const VIP4 = '203.0.113.10';
const VIP6 = '2001:db8:203::10';

/** The largest payload the generator is asked for: what fits in one IPv6/TCP packet, with room to spare. */
const MAX_PAYLOAD = 65_000;

/** `--payload MIN-MAX` as the pair of byte counts. */
function payloadRange(text: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(text);
  if (m === null || Number(m[1]) > Number(m[2]) || Number(m[2]) > MAX_PAYLOAD) {
    throw new L3dsrError('ERR_L3DSR_USAGE', `--payload: expected MIN-MAX bytes, MIN <= MAX <= ${MAX_PAYLOAD} (e.g. 0-1400), got "${text}"`);
  }
  return [Number(m[1]), Number(m[2])];
}

const { packets, reps, payload: [minPayload, maxPayload], keep } = benchArgs({
  command: 'npm run bench:pcap --',
  about: `l3dsr rewrite against tcprewrite --dstipmap … --fixcsum (tcpreplay) on the same generated
capture, each run a fresh process, repetitions interleaved. Per tool, median (min–max) of
packets/s, MB/s, CPU seconds and peak RSS; the ratios within each repetition; and whether
the two outputs hold the same packets. Needs tcprewrite (Debian: tcpreplay), and GNU time
(Debian: time) for CPU and RSS.`,
  options: {
    packets: { type: 'string', default: '1000000', value: 'N', help: 'packets in the generated capture' },
    reps: { type: 'string', default: '5', value: 'N', help: 'interleaved repetitions of each tool' },
    payload: { type: 'string', default: '0-1400', value: 'MIN-MAX', help: 'L4 payload bytes, drawn uniformly' },
    keep: { type: 'boolean', default: false, help: 'keep the capture and both outputs (prints where)' },
  },
}, (v) => ({ packets: positiveInt('packets', v.packets), reps: positiveInt('reps', v.reps), payload: payloadRange(v.payload), keep: v.keep }));
const record = runRecord();

const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = join(distRoot, '..');

/** The command line that runs `l3dsr rewrite ARGS`: the real CLI when it is built, else the subcommand module directly. */
function l3dsrArgv(args: string[]): string[] {
  const main = join(distRoot, 'src/cli/main.js');
  if (existsSync(main)) return [process.execPath, join(repoRoot, 'bin/l3dsr.js'), 'rewrite', ...args];
  const mod = join(distRoot, 'src/cli/rewrite.js');
  const code = `import(${JSON.stringify(mod)}).then(async (m) => { process.exitCode = await m.rewriteCommand(process.argv.slice(1)); })`;
  return [process.execPath, '--input-type=module', '-e', code, '--', ...args];
}

interface Timing {
  seconds: number;
  /** User + system CPU seconds, and peak RSS in MB (from GNU time, when installed). */
  cpu?: number;
  rssMb?: number;
}

/** GNU time (Debian's `time` package), looked up on the PATH: the shell's `time` cannot report peak RSS. */
const GNU_TIME = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '').map((dir) => join(dir, 'time')).find((p) => existsSync(p));

function timed(argv: string[], dir: string): Timing {
  const usage = join(dir, 'rusage.txt');
  const wrapped = GNU_TIME !== undefined ? [GNU_TIME, '-o', usage, '-f', '%U %S %M', ...argv] : argv;
  const start = process.hrtime.bigint();
  const r = spawnSync(wrapped[0], wrapped.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${argv.slice(0, 4).join(' ')}… exited ${r.status}: ${r.stderr.slice(-2000)}`);
  if (wrapped === argv) return { seconds };
  const [user, system, rssKb] = readFileSync(usage, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  return { seconds, cpu: user + system, rssMb: rssKb / 1024 };
}


/** Whether every checksum of a generated packet is right, recomputed from scratch by the oracle (over IPv6, UDP must have one). */
function checksumsValid(l3: Uint8Array): boolean {
  const r = checksumReport(l3);
  if (r.ipv4Header === false || r.transport === undefined) return false;
  return r.transport.none ? l3[0] >> 4 === 4 : r.transport.valid;
}

interface Comparison {
  records: number;
  /** Records whose IP packets differ. */
  l3Differ: number;
  /** Of those, how many have invalid checksums in each output. */
  badChecksums: { l3dsr: number; tcprewrite: number };
  /** Records whose link-layer headers differ (tcprewrite may rewrite MACs of IPv6 frames). */
  linkDiffer: number;
  firstL3Differs?: number;
}

async function compareOutputs(a: string, b: string): Promise<Comparison> {
  const ra = await openCapture(a);
  const rb = await openCapture(b);
  const out: Comparison = { records: 0, l3Differ: 0, linkDiffer: 0, badChecksums: { l3dsr: 0, tcprewrite: 0 } };
  const same = (p: Uint8Array, q: Uint8Array): boolean => p.length === q.length && p.every((v, i) => v === q[i]);
  for (;;) {
    // One record at a time from each: batches of the two files need not align.
    const [x, y] = await Promise.all([ra.nextBatch(1), rb.nextBatch(1)]);
    if (x === null || y === null) {
      if (x !== y) throw new Error(`${a} and ${b} hold different numbers of records (${out.records}+)`);
      break;
    }
    const p = x[0];
    const q = y[0];
    const lp = locateL3(p.linkType, p.data).offset;
    const lq = locateL3(q.linkType, q.data).offset;
    if (!same(p.data.subarray(0, lp), q.data.subarray(0, lq))) out.linkDiffer++;
    if (!same(p.data.subarray(lp), q.data.subarray(lq))) {
      out.l3Differ++;
      if (!checksumsValid(p.data.subarray(lp))) out.badChecksums.l3dsr++;
      if (!checksumsValid(q.data.subarray(lq))) out.badChecksums.tcprewrite++;
      out.firstL3Differs ??= out.records;
    }
    out.records++;
  }
  await ra.close();
  await rb.close();
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'l3dsr-bench-'));
try {
  const input = join(dir, 'in.pcap');
  const genStart = Date.now();
  const summary = await generateCapture(input, { packets, seed: 42, payloadBytes: [minPayload, maxPayload] });
  const size = statSync(input).size;
  const mb = size / 1e6;
  const capture =
    `capture: ${packets} packets (${summary.ipv4} IPv4, ${summary.ipv6} IPv6; ${summary.tcp} TCP, ${summary.udp} UDP; ` +
      `${summary.marked} marked DSCP 1 to ${GENERATED.rip4}/${GENERATED.rip6}), ${mb.toFixed(1)} MB, payload ${minPayload}-${maxPayload} B, ` +
      `generated in ${((Date.now() - genStart) / 1000).toFixed(1)} s`;
  process.stderr.write(`${capture}\n`);

  const ours = join(dir, 'l3dsr.pcap');
  const theirs = join(dir, 'tcprewrite.pcap');
  const tools = {
    l3dsr: l3dsrArgv(['--quiet', '--rule', `1=${VIP4}`, '--rule', `1=${VIP6}`, input, ours]),
    tcprewrite: [
      'tcprewrite',
      `--dstipmap=${GENERATED.rip4}/32:${VIP4}/32,[${GENERATED.rip6}]/128:[${VIP6}]/128`,
      '--fixcsum',
      '-i', input,
      '-o', theirs,
    ],
  };
  const names = Object.keys(tools) as (keyof typeof tools)[];
  const times: Record<keyof typeof tools, Timing[]> = { l3dsr: [], tcprewrite: [] };
  for (let rep = 0; rep < reps; rep++) {
    record.sample();
    // Alternate which goes first, so neither always gets the warmer page cache.
    for (const name of interleaved(names, rep)) {
      const t = timed(tools[name], dir);
      times[name].push(t);
      const cpu = t.cpu === undefined ? '' : `  cpu ${t.cpu.toFixed(2)} s (${(packets / t.cpu / 1e3).toFixed(0)} kpps per CPU-second), peak RSS ${t.rssMb!.toFixed(0)} MB`;
      process.stderr.write(`  rep ${rep + 1} ${name.padEnd(10)} ${t.seconds.toFixed(2)} s  ${(packets / t.seconds / 1e3).toFixed(0).padStart(6)} kpps  ${(mb / t.seconds).toFixed(0).padStart(5)} MB/s${cpu}\n`);
    }
  }
  const hasUsage = times.l3dsr[0]!.cpu !== undefined;
  const out = [...record.lines(), capture, `${reps} interleaved reps, median (min–max):`];
  for (const name of names) {
    const ts = times[name];
    out.push(`  ${name.padEnd(10)}  ${spread(ts.map((t) => t.seconds), (x) => x.toFixed(2))} s, ${spread(ts.map((t) => packets / t.seconds), kpps)} packets/s, `
      + `${spread(ts.map((t) => mb / t.seconds), (x) => x.toFixed(0))} MB/s`
      + (hasUsage ? `, CPU ${spread(ts.map((t) => t.cpu!), (x) => x.toFixed(2))} s, peak RSS ${spread(ts.map((t) => t.rssMb!), (x) => x.toFixed(0))} MB` : ''));
  }
  // Ratios of the two runs of the same repetition, seconds apart: what drifts between repetitions cancels.
  const paired = (f: (t: Timing) => number): string => spread(times.l3dsr.map((t, i) => f(times.tcprewrite[i]!) / f(t)), (x) => x.toFixed(2));
  out.push(`  l3dsr's packets/s / tcprewrite's, within a repetition: ${paired((t) => t.seconds)}`
    + (hasUsage ? `; tcprewrite's CPU / l3dsr's: ${paired((t) => t.cpu!)}` : ' (CPU and RSS: install GNU time)'));
  const cmp = await compareOutputs(ours, theirs);
  out.push(
    `outputs: ${cmp.records} records each; IP packets differ in ${cmp.l3Differ}` +
      `${cmp.firstL3Differs !== undefined ? ` (first: record index ${cmp.firstL3Differs})` : ''}, of which bad checksums: ` +
      `l3dsr ${cmp.badChecksums.l3dsr}, tcprewrite ${cmp.badChecksums.tcprewrite}; link-layer headers differ in ${cmp.linkDiffer}`,
  );
  if (keep) out.push(`kept: ${dir}`);
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
