// The Maglev table (src/lb/maglev.ts) and its hash (src/lb/murmur3.ts):
// published MurmurHash3 values, the table against a second implementation
// written from the paper's pseudo-code in this file, fixed digests (so a
// change to the table is a deliberate one: docs/maglev.md publishes them),
// weights, canonical order and disruption.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAddress } from '../src/core/address.js';
import {
  buildMaglevTable, canonicalOrder, DEFAULT_TABLE_SIZE, EMPTY_SLOT, isPrime, MAX_TABLE_SIZE, permutationOf, slotOf, type MaglevBackend,
} from '../src/lb/maglev.js';
import { murmur3 } from '../src/lb/murmur3.js';
import { jhash } from '../bench/jhash.js';


/** The checkout: this file runs as dist/test/NAME.test.js. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const bytes = (text: string): Uint8Array => {
  const a = parseAddress(text);
  if (typeof a === 'string') throw new Error(a);
  return a.bytes;
};
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** `n` IPv4 backends 198.51.x.y (or IPv6 2001:db8::x:y), weights from `weight(i)`, in canonical order. */
function backends(n: number, weight: (i: number) => number = () => 1, v6 = false): MaglevBackend[] {
  return canonicalOrder(Array.from({ length: n }, (_, i) => ({
    address: bytes(v6 ? `2001:db8::${(i >> 8).toString(16)}:${(i & 255).toString(16)}` : `198.51.${i >> 8}.${i & 255}`),
    weight: weight(i),
  })));
}

/** The table's bytes as docs/maglev.md defines them: each slot a little-endian 16-bit index. */
const tableBytes = (t: Uint16Array): Buffer => {
  const b = Buffer.alloc(t.length * 2);
  t.forEach((x, i) => b.writeUInt16LE(x, i * 2));
  return b;
};
const digest = (t: Uint16Array): string => createHash('sha256').update(tableBytes(t)).digest('hex');

/**
 * Pseudo-code 1 of the paper (populate), with the permutation tables
 * written out in full, and weights as docs/maglev.md states them: in round
 * r a backend of weight w takes a turn when floor(r*w/W) > floor((r-1)*w/W).
 * The seeds 1 and 2 are the documented ones, written here again on purpose.
 */
function naiveMaglev(list: readonly MaglevBackend[], M: number): Int32Array {
  const permutation = list.map((b) => {
    const offset = murmur3(b.address, 1) % M;
    const skip = (murmur3(b.address, 2) % (M - 1)) + 1;
    return Int32Array.from({ length: M }, (_, j) => Number((BigInt(offset) + BigInt(j) * BigInt(skip)) % BigInt(M)));
  });
  const entry = new Int32Array(M).fill(-1);
  const next = new Array<number>(list.length).fill(0);
  const W = Math.max(0, ...list.map((b) => b.weight));
  if (W === 0) return entry;
  let n = 0;
  for (let r = 1; ; r++) {
    for (let i = 0; i < list.length; i++) {
      const w = list[i].weight;
      if (Math.floor((r * w) / W) === Math.floor(((r - 1) * w) / W)) continue;
      let c = permutation[i][next[i]];
      while (entry[c] >= 0) {
        next[i]++;
        c = permutation[i][next[i]];
      }
      entry[c] = i;
      next[i]++;
      n++;
      if (n === M) return entry;
    }
  }
}

const counts = (t: Uint16Array, n: number): number[] => {
  const c = new Array<number>(n).fill(0);
  for (const x of t) if (x !== EMPTY_SLOT) c[x]++;
  return c;
};

describe('MurmurHash3 x86_32', () => {
  // Published values of the reference implementation (SMHasher's MurmurHash3_x86_32).
  const vectors: [Uint8Array, number, number][] = [
    [new Uint8Array(0), 0, 0],
    [new Uint8Array(0), 1, 0x514e28b7],
    [new Uint8Array(0), 0xffffffff, 0x81f16f39],
    [new Uint8Array(4), 0, 0x2362f9de],
    [text('aaaa'), 0x9747b28c, 0x5a97808a],
    [text('test'), 0, 0xba6bd213],
    [text('Hello, world!'), 1234, 0xfaf6cdb3],
    [text('The quick brown fox jumps over the lazy dog'), 0x9747b28c, 0x2fa826cd],
  ];
  for (const [input, seed, want] of vectors) {
    it(`"${Buffer.from(input).toString('latin1')}" (${input.length} bytes), seed ${seed.toString(16)}: ${want.toString(16)}`, () => {
      assert.equal(murmur3(input, seed), want);
    });
  }
});

describe("the Linux kernel's jhash (the benchmark's comparison)", () => {
  // lookup3.c's own driver prints these for hashlittle(), which jhash() is on a little-endian machine.
  const vectors: [Uint8Array, number, number][] = [
    [new Uint8Array(0), 0, 0xdeadbeef],
    [new Uint8Array(0), 0xdeadbeef, 0xbd5b7dde],
    [text('Four score and seven years ago'), 0, 0x17770551],
    [text('Four score and seven years ago'), 1, 0xcd628161],
  ];
  for (const [input, seed, want] of vectors) {
    it(`${input.length} bytes, initval ${seed.toString(16)}: ${want.toString(16)}`, () => assert.equal(jhash(input, seed), want));
  }
});

describe('the Maglev table', () => {
  const cases: [string, MaglevBackend[], number][] = [
    ['3 backends, 13 slots', backends(3), 13],
    ['5 backends, 65537 slots', backends(5), DEFAULT_TABLE_SIZE],
    ['20 IPv6 backends, 65537 slots', backends(20, () => 1, true), DEFAULT_TABLE_SIZE],
    ['weights 1-4 and one 0, 65537 slots', backends(5, (i) => i), DEFAULT_TABLE_SIZE],
    ['100 backends of weights 1, 2, 5 and 1000, 1009 slots', backends(100, (i) => [1, 2, 5, 1000][i % 4]), 1009],
    ['one backend', backends(1), 101],
  ];
  for (const [name, list, size] of cases) {
    it(`${name}: the same as the paper's pseudo-code, slot for slot`, () => {
      const table = buildMaglevTable(list, size);
      const naive = naiveMaglev(list, size);
      assert.deepEqual([...table], [...naive]);
    });
  }

  it('known answers: the digests docs/maglev.md publishes', () => {
    const doc = readFileSync(join(ROOT, 'docs/maglev.md'), 'utf8');
    for (const [name, list, size] of KNOWN) {
      const d = digest(buildMaglevTable(list(), size));
      assert.ok(doc.includes(`| ${name} | ${size} | \`${d}\` |`), `docs/maglev.md lacks the row for ${name}: | ${name} | ${size} | \`${d}\` |`);
    }
  });

  it('the small example of docs/maglev.md, slot by slot', () => {
    const doc = readFileSync(join(ROOT, 'docs/maglev.md'), 'utf8');
    const list = canonicalOrder(['198.51.100.3', '198.51.100.1', '198.51.100.2'].map((a) => ({ address: bytes(a), weight: 1 })));
    const lines = list.map((b) => {
      const { offset, skip } = permutationOf(b.address, 13);
      return `${[...b.address].join('.')}: h1 ${murmur3(b.address, 1)} h2 ${murmur3(b.address, 2)} offset ${offset} skip ${skip}`;
    });
    for (const line of lines) assert.ok(doc.includes(line), `docs/maglev.md lacks "${line}"`);
    assert.ok(doc.includes(`table: ${[...buildMaglevTable(list, 13)].join(' ')}`), 'docs/maglev.md lacks the 13-slot table');
    const weighted = canonicalOrder([['198.51.100.1', 1], ['198.51.100.2', 2], ['198.51.100.3', 0]].map(([a, w]) => ({ address: bytes(a as string), weight: w as number })));
    assert.ok(doc.includes(`weighted: ${[...buildMaglevTable(weighted, 13)].join(' ')}`), 'docs/maglev.md lacks the weighted 13-slot table');
  });

  it('takes slots in proportion to the weights; weight 0 takes none', () => {
    for (const [list, size] of [[backends(5, (i) => i), 65537], [backends(50, (i) => 1 + (i % 7)), 65537], [backends(8, (i) => [1, 1000][i % 2]), 1009]] as const) {
      const c = counts(buildMaglevTable(list, size), list.length);
      const total = list.reduce((n, b) => n + b.weight, 0);
      assert.equal(c.reduce((a, b) => a + b, 0), size, 'every slot taken');
      list.forEach((b, i) => {
        // Whole rounds give exact shares; the last, partial round is off by at most one turn per backend.
        const ideal = (size * b.weight) / total;
        assert.ok(Math.abs(c[i] - ideal) <= 1 + (list.length * b.weight) / total, `backend ${i} (weight ${b.weight}): ${c[i]} slots, ideal ${ideal}`);
        if (b.weight === 0) assert.equal(c[i], 0);
      });
    }
  });

  it('equal weights: every backend within one slot of the others', () => {
    for (const n of [10, 100, 1000]) {
      const c = counts(buildMaglevTable(backends(n)), n);
      assert.ok(Math.max(...c) - Math.min(...c) <= 1, `${n} backends: ${Math.min(...c)}..${Math.max(...c)}`);
    }
  });

  it('no backend with a weight: every slot empty; one backend: every slot its', () => {
    assert.ok(buildMaglevTable(backends(3, () => 0), 13).every((x) => x === EMPTY_SLOT));
    assert.ok(buildMaglevTable([], 13).every((x) => x === EMPTY_SLOT));
    assert.ok(buildMaglevTable(backends(3, (i) => (i === 1 ? 4 : 0)), 13).every((x) => x === 1));
  });

  it('depends on the set, not on the order it was given in: the builder takes canonical order only', () => {
    const list = backends(30);
    const shuffled = [...list].reverse();
    assert.deepEqual(buildMaglevTable(canonicalOrder(shuffled)), buildMaglevTable(list));
    assert.throws(() => buildMaglevTable(shuffled), /canonical order/);
    assert.throws(() => buildMaglevTable([list[0], list[0]]), /without repeats/);
    assert.throws(() => buildMaglevTable([list[0], { address: bytes('2001:db8::1'), weight: 1 }]), /one family/);
  });

  it('refuses a size that is not a prime in range, and weights out of range', () => {
    for (const size of [65536, 12, 11, MAX_TABLE_SIZE + 2]) assert.throws(() => buildMaglevTable(backends(2), size), /expected a prime/);
    assert.throws(() => buildMaglevTable(backends(2, () => 1001)), /weight 1001/);
    assert.ok(isPrime(65537) && isPrime(MAX_TABLE_SIZE) && !isPrime(65535));
  });

  it('removing one of N backends moves its slots and few others (the paper: close to minimal)', () => {
    for (const n of [10, 100]) {
      const before = backends(n);
      const gone = 3;
      const after = before.filter((_, i) => i !== gone);
      const t1 = buildMaglevTable(before);
      const t2 = buildMaglevTable(after);
      let others = 0;
      t1.forEach((b, slot) => {
        if (b !== gone && after[t2[slot]] !== before[b]) others++;
      });
      assert.ok(t2.every((b) => b !== EMPTY_SLOT && b < after.length));
      // Deterministic: these are the figures bench/maglev.ts reports, bounded loosely here.
      assert.ok(others / t1.length < 0.01, `${n} backends: ${(100 * others / t1.length).toFixed(2)} % of the slots of remaining backends moved`);
    }
  });

  it('slotOf: the flow hash modulo the size', () => {
    assert.equal(slotOf(0xffffffff, DEFAULT_TABLE_SIZE), 0xffffffff % DEFAULT_TABLE_SIZE);
    assert.equal(slotOf(-1, 13), 0xffffffff % 13);
  });
});

/** The sets whose digests docs/maglev.md publishes. */
const KNOWN: [string, () => MaglevBackend[], number][] = [
  ['198.51.100.1-3', () => canonicalOrder([1, 2, 3].map((i) => ({ address: bytes(`198.51.100.${i}`), weight: 1 }))), 65537],
  ['198.51.0.0-198.51.0.99', () => backends(100), 65537],
  ['198.51.0.0-198.51.3.231 (1000)', () => backends(1000), 65537],
  ['2001:db8::0:0-2001:db8::0:9', () => backends(10, () => 1, true), 65537],
  ['198.51.0.0-198.51.0.9, weight i', () => backends(10, (i) => i), 65537],
  ['198.51.100.1-3', () => canonicalOrder([1, 2, 3].map((i) => ({ address: bytes(`198.51.100.${i}`), weight: 1 }))), 131071],
];
