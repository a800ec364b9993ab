// The Maglev table (docs/maglev.md), in one run:
//   - balance: the slots' and 1 M random flows' spread over 10, 100 and 1000
//     backends (max/mean and min/mean share; with mixed weights, the share
//     per unit of weight), M = 65537;
//   - disruption: the fraction of 1 M random flows that change backend when
//     one of N backends is removed, against the ideal 1/N and against
//     `jhash(flow key) mod N` (the Linux kernel's jhash, bench/jhash.ts), the
//     flows keyed as docs/lb.md#flow-hash says;
//   - build time of a 1000-backend table, median of 9 builds.
// Deterministic flows (the seeded PRNG of tools/packets/rng.ts), so two runs
// differ only in the times. Run: npm run bench:maglev   (or: node dist/bench/maglev.js)

import { table } from '../src/cli/table.js';
import { flowHash } from '../src/lb/flow-hash.js';
import { buildMaglevTable, canonicalOrder, DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE, slotOf, type MaglevBackend } from '../src/lb/maglev.js';
import { Rng } from '../tools/packets/rng.js';
import { jhash } from './jhash.js';
import { benchArgs } from './support/args.js';

benchArgs({
  command: 'npm run bench:maglev --',
  about: `The Maglev table (docs/maglev.md): the balance of slots and of 1 M flows over 10, 100 and
1000 backends, the flows that move when a backend goes (against jhash mod N), and the
build time of a 1000-backend table.`,
  options: {},
});

const FLOWS = 1_000_000;
const BUILDS = 9;
const FLOW_SEED = 1;

/** `n` IPv4 backends 198.51.x.y (i = 256x + y), the documentation's sets. */
function backends(n: number, weight: (i: number) => number = () => 1): MaglevBackend[] {
  return canonicalOrder(Array.from({ length: n }, (_, i) => ({ address: Uint8Array.from([198, 51, i >> 8, i & 255]), weight: weight(i) })));
}

/** 1 M TCP flow keys to 203.0.113.10:80 from random clients and ports (13 bytes each, docs/lb.md#flow-hash). */
function flowKeys(): Uint8Array[] {
  const rng = new Rng(FLOW_SEED);
  return Array.from({ length: FLOWS }, () => {
    const src = rng.next();
    const port = rng.range(1024, 65535);
    return Uint8Array.from([src >>> 24, (src >>> 16) & 255, (src >>> 8) & 255, src & 255, 203, 0, 113, 10, port >> 8, port & 255, 0, 80, 6]);
  });
}

const KEYS = flowKeys();
const HASHES = Uint32Array.from(KEYS, flowHash);
const JHASHES = Uint32Array.from(KEYS, (k) => jhash(k));

/** Which backend each flow gets from the table (an index into `list`). */
function assign(list: readonly MaglevBackend[], size: number): Uint16Array {
  const t = buildMaglevTable(list, size);
  return Uint16Array.from(HASHES, (h) => t[slotOf(h, size)]);
}

const ratio = (values: number[], mean: number) => [Math.max(...values) / mean, Math.min(...values) / mean];
const f = (x: number, digits = 4) => x.toFixed(digits);
const pct = (x: number) => `${(100 * x).toFixed(3)} %`;

function balance(): string[] {
  const rows = [['backends', 'weights', 'slots max/mean', 'slots min/mean', 'flows max/mean', 'flows min/mean']];
  const cases: [number, string, (i: number) => number][] = [
    [10, 'equal', () => 1], [100, 'equal', () => 1], [1000, 'equal', () => 1],
    [100, '1, 2, 5, 10 in turn', (i) => [1, 2, 5, 10][i % 4]],
  ];
  for (const [n, name, weight] of cases) {
    const list = backends(n, weight);
    const totalWeight = list.reduce((s, b) => s + b.weight, 0);
    const t = buildMaglevTable(list, DEFAULT_TABLE_SIZE);
    const slots = new Array<number>(n).fill(0);
    for (const x of t) slots[x]++;
    const flows = new Array<number>(n).fill(0);
    for (const x of assign(list, DEFAULT_TABLE_SIZE)) flows[x]++;
    // Share per unit of weight: 1.0 everywhere is a perfect spread.
    const perWeight = (counts: number[], total: number) => counts.map((c, i) => c / list[i].weight / (total / totalWeight));
    const [smax, smin] = ratio(perWeight(slots, DEFAULT_TABLE_SIZE), 1);
    const [fmax, fmin] = ratio(perWeight(flows, FLOWS), 1);
    rows.push([String(n), name, f(smax), f(smin), f(fmax), f(fmin)]);
  }
  return table(rows, [0, 2, 3, 4, 5]);
}

function disruption(): string[] {
  const rows = [['backends', 'M', 'Maglev: flows moved', 'moved from a remaining backend', 'ideal 1/N', 'jhash mod N: moved']];
  for (const [n, size] of [[10, DEFAULT_TABLE_SIZE], [100, DEFAULT_TABLE_SIZE], [1000, DEFAULT_TABLE_SIZE], [1000, MAX_TABLE_SIZE]]) {
    const before = backends(n);
    const gone = Math.floor(n / 2);
    const after = before.filter((_, i) => i !== gone);
    const a1 = assign(before, size);
    const a2 = assign(after, size);
    let moved = 0;
    let others = 0;
    let jmoved = 0;
    for (let i = 0; i < FLOWS; i++) {
      if (before[a1[i]] !== after[a2[i]]) {
        moved++;
        if (a1[i] !== gone) others++;
      }
      if (before[JHASHES[i] % n] !== after[JHASHES[i] % (n - 1)]) jmoved++;
    }
    rows.push([String(n), String(size), pct(moved / FLOWS), pct(others / FLOWS), pct(1 / n), pct(jmoved / FLOWS)]);
  }
  return table(rows, [0, 1, 2, 3, 4, 5]);
}

function buildTime(): string[] {
  const rows = [['backends', 'weights', 'M', 'build, median of 9', 'min', 'max']];
  const cases: [number, string, (i: number) => number, number][] = [
    [1000, 'equal', () => 1, DEFAULT_TABLE_SIZE],
    [1000, '1, 2, 5, 10 in turn', (i) => [1, 2, 5, 10][i % 4], DEFAULT_TABLE_SIZE],
    [1000, 'equal', () => 1, MAX_TABLE_SIZE],
  ];
  for (const [n, name, weight, size] of cases) {
    const list = backends(n, weight);
    buildMaglevTable(list, size); // warm the JIT
    const ms = Array.from({ length: BUILDS }, () => {
      const t0 = process.hrtime.bigint();
      buildMaglevTable(list, size);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    }).sort((a, b) => a - b);
    rows.push([String(n), name, String(size), `${f(ms[BUILDS >> 1], 1)} ms`, `${f(ms[0], 1)} ms`, `${f(ms[BUILDS - 1], 1)} ms`]);
  }
  return table(rows, [0, 2, 3, 4, 5]);
}

console.log(`Maglev balance (M = ${DEFAULT_TABLE_SIZE}; ${FLOWS} random TCP flows; share per unit of weight, 1.0000 = exact)`);
for (const line of balance()) console.log(`  ${line}`);
console.log(`\nRemoving one of N backends: ${FLOWS} random flows`);
for (const line of disruption()) console.log(`  ${line}`);
console.log('\nTable build time');
for (const line of buildTime()) console.log(`  ${line}`);
