// Core throughput: ns/packet and Mpps for 64-byte and 1500-byte mixes of
// IPv4/IPv6 TCP/UDP, every packet marked and rewritten, in one run:
//   - the WASM batch path (packets already in slots, one call per batch),
//   - the balancer's WASM batch path on the same packets (createBalancer:
//     VIP lookup, flow hash, connection-table hit, Maglev table, DSCP and
//     destination rewrite); each packet's destination is a VIP whose one
//     backend is the VIP itself, so every cycle balances every packet again
//     with all the work done (a config refuses such a VIP: built here),
//   - the WASM one-call-per-packet path (no copies: call overhead only),
//   - rw.rewrite(packet) (copy in, call, copy out),
//   - the TypeScript oracle (from-scratch checksums).
//   - a plain C loop doing the same rewrite (bench/c/rewrite-loop.c, gcc -O2),
//     when gcc is there: the yardstick for what the machine can do.
// Ratios are against the batch path measured in the same run.
// Run: npm run bench   (or: node dist/bench/core.js)

import Benchmark from 'benchmark';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCore } from '../src/core/loader.js';
import { createBalancer } from '../src/core/balancer.js';
import { createRewriter } from '../src/core/rewriter.js';
import type { LbVip } from '../src/lb/types.js';
import { buildPacket, tcp, udp } from '../tools/packets/build.js';
import { PROTO } from '../tools/packets/layout.js';
import { oracleRewrite } from '../tools/oracle/oracle.js';
import { benchArgs } from './support/args.js';

benchArgs({
  command: 'npm run bench --',
  about: `The core's ns/packet on 64-byte and 1500-byte IPv4/IPv6 TCP/UDP mixes: the WASM batch path,
the balancer's batch path, one call per packet, rw.rewrite() with copies, the TypeScript
oracle and a plain C loop (gcc -O2, when installed), in one run; ratios to the batch path.`,
  options: {},
});

const BATCH = 256;
const RULES = ['1=203.0.113.10', '1=2001:db8:203::10'];

function mix(size: number): Uint8Array[] {
  const kinds = [
    { src: '192.0.2.1', dst: '198.51.100.2', protocol: PROTO.TCP, header: 20 + 20 },
    { src: '192.0.2.1', dst: '198.51.100.2', protocol: PROTO.UDP, header: 20 + 8 },
    { src: '2001:db8:192::1', dst: '2001:db8:198::2', protocol: PROTO.TCP, header: 40 + 20 },
    { src: '2001:db8:192::1', dst: '2001:db8:198::2', protocol: PROTO.UDP, header: 40 + 8 },
  ];
  return Array.from({ length: BATCH }, (_, i) => {
    const k = kinds[i % kinds.length];
    const payload = size - k.header;
    return buildPacket({ src: k.src, dst: k.dst, dscp: 1, protocol: k.protocol, transport: k.protocol === PROTO.TCP ? tcp(payload, [40000 + i, 80]) : udp(payload, [40000 + i, 53]) });
  });
}

/** ns/packet of the C loop on the same packets (median of 5 runs), or undefined without gcc. */
function cLoop(packets: Uint8Array[]): number | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-bench-'));
  try {
    const exe = join(dir, 'rewrite-loop');
    try {
      execFileSync('gcc', ['-O2', '-o', exe, fileURLToPath(new URL('../../bench/c/rewrite-loop.c', import.meta.url))], { stdio: 'ignore' });
    } catch {
      console.error('gcc not available: no C baseline');
      return undefined;
    }
    const file = join(dir, 'packets');
    writeFileSync(file, Buffer.concat(packets.flatMap((p) => [Buffer.from([p.length & 0xff, p.length >> 8]), Buffer.from(p)])));
    const runs = Array.from({ length: 5 }, () => Number(execFileSync(exe, [file, '20000'], { encoding: 'utf8' })));
    return runs.sort((a, b) => a - b)[2];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A VIP balanced to itself (see above), every packet to it balanced. */
const selfVip = (name: string, vip: string, family: 4 | 6): LbVip => ({
  name, family, vip, dscp: 1, ports: null, hash: '5-tuple', tableSize: 65537,
  backends: [{ address: vip, weight: 1, drain: false, origin: 'bench' }],
  check: { type: 'none' }, intervalMs: 1000, timeoutMs: 1000, rise: 2, fall: 2, origin: 'bench',
});

interface Row { size: number; path: string; nsPerPacket: number; mpps: number; rme: number }

async function measure(size: number): Promise<Row[]> {
  const packets = mix(size);
  const rw = await createRewriter({ rules: RULES, slotSize: 2048, slotCount: BATCH });
  packets.forEach((p, i) => { rw.batch.slot(i).set(p); rw.batch.setEntry(i, i, p.length); });
  // A core of our own, to call its one-packet export directly.
  const core = await loadCore({ slotSize: 2048, slotCount: 1 });
  const single = await createRewriter({ rules: RULES, core });
  core.batch.slot(0).set(packets[0]);
  const rewriteSlot = core.exports.rewriteSlot;
  const len0 = packets[0].length;
  const copies = packets.map((p) => p.slice());
  const rules = rw.rules;
  const lb = await createBalancer({ vips: [selfVip('v4', '198.51.100.2', 4), selfVip('v6', '2001:db8:198::2', 6)], slotSize: 2048, slotCount: BATCH });
  packets.forEach((p, i) => { lb.batch.slot(i).set(p); lb.batch.setEntry(i, i, p.length); });

  const rows: Row[] = [];
  await new Promise<void>((resolve) => {
    new Benchmark.Suite()
      .add('wasm batch', () => {
        // Lengths of dropped entries would be zeroed; none drop here, but keep the input exact.
        rw.rewriteSlots(BATCH);
      })
      .add('wasm balancer batch', () => {
        lb.balanceSlots(BATCH);
      })
      .add('wasm call per packet', () => {
        for (let i = 0; i < BATCH; i++) rewriteSlot(0, len0);
      })
      .add('rw.rewrite (copy in/out)', () => {
        for (let i = 0; i < BATCH; i++) single.rewrite(copies[i]);
      })
      .add('TS oracle', () => {
        for (let i = 0; i < BATCH; i++) oracleRewrite(copies[i], rules);
      })
      .on('cycle', (ev: Benchmark.Event) => {
        const b = ev.target as Benchmark.Target & { stats: { rme: number } };
        const hz = b.hz ?? 0;
        rows.push({ size, path: String(b.name), nsPerPacket: 1e9 / hz / BATCH, mpps: hz * BATCH / 1e6, rme: b.stats.rme });
      })
      .on('complete', () => resolve())
      .run({ async: false });
  });
  const c = cLoop(packets);
  if (c !== undefined) rows.push({ size, path: 'C loop (gcc -O2)', nsPerPacket: c, mpps: 1e3 / c, rme: 0 });
  // The batch rewrote every packet of every cycle: prove it, so the figure is for real work.
  const k = rw.counters();
  if (k.verdicts.rewritten === 0n || k.verdicts.passed + k.verdicts.malformed + k.verdicts.dropped !== 0n) {
    throw new Error(`benchmark packets were not all rewritten: ${JSON.stringify(k.verdicts, (_, v) => typeof v === 'bigint' ? String(v) : v)}`);
  }
  const l = lb.counters();
  if (l.verdicts.rewritten === 0n || l.verdicts.passed + l.verdicts.malformed + l.verdicts.dropped !== 0n) {
    throw new Error(`benchmark packets were not all balanced: ${JSON.stringify(l.verdicts, (_, v) => typeof v === 'bigint' ? String(v) : v)}`);
  }
  return rows;
}

const all: Row[] = [];
for (const size of [64, 1500]) all.push(...await measure(size));
console.log(`core rewrite, ${BATCH}-packet mixes of IPv4/IPv6 TCP/UDP, all rewritten (node ${process.version})`);
console.log('size  path                         ns/packet      Mpps   ±%    vs batch');
for (const r of all) {
  const base = all.find((x) => x.size === r.size && x.path === 'wasm batch')!;
  console.log(`${String(r.size).padStart(4)}  ${r.path.padEnd(27)} ${r.nsPerPacket.toFixed(2).padStart(10)} ${r.mpps.toFixed(1).padStart(9)} ${r.rme.toFixed(1).padStart(5)}  ${(r.nsPerPacket / base.nsPerPacket).toFixed(2).padStart(6)}x`);
}
