// Property tests: generated packets through the WASM core, held to the
// from-scratch oracle and to the invariants of the semantics document.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createRewriter, decodeResult, type Rewriter } from '../src/core/rewriter.js';
import { packet, RULES } from './support/arbitraries.js';
import { checksumReport, oracleRewrite } from '../tools/oracle/oracle.js';
import type { Rule } from '../src/core/types.js';

const RUNS = 3000;

let rw: Rewriter;
let rules: readonly Rule[];
before(async () => {
  rw = await createRewriter({ rules: RULES, slotSize: 512, slotCount: 64 });
  rules = rw.rules;
});



function sameResult(actual: ReturnType<Rewriter['rewrite']>, expected: ReturnType<typeof oracleRewrite>): void {
  const { output: _output, ...rest } = expected;
  assert.deepEqual(actual, rest);
}

describe('generated well-formed packets', () => {
  it('the core gives exactly the oracle\'s verdict and bytes', () => {
    fc.assert(fc.property(packet, (input) => {
      const out = input.slice();
      const expected = oracleRewrite(input, rules);
      sameResult(rw.rewrite(out), expected);
      assert.deepEqual(out, expected.output);
    }), { numRuns: RUNS });
  });

  it('after a rewrite, every checksum that was valid is still valid, and the destination is the rule\'s', () => {
    fc.assert(fc.property(packet, (input) => {
      const out = input.slice();
      const r = rw.rewrite(out);
      if (r.verdict !== 'rewritten') return;
      const before = checksumReport(input);
      const after = checksumReport(out);
      if (before.ipv4Header) assert.equal(after.ipv4Header, true);
      if (before.transport?.valid) assert.equal(after.transport?.valid, true);
      if (before.ipv4Header === false) assert.equal(after.ipv4Header, false);
      const v6 = (out[0] >> 4) === 6;
      const dst = v6 ? out.subarray(24, 40) : out.subarray(16, 20);
      const rule = rules[r.rule!];
      assert.equal(formatAddress(dst), rule.destination);
    }), { numRuns: RUNS });
  });

  it('packets no rule matches leave byte-identical', () => {
    fc.assert(fc.property(packet, (input) => {
      const out = input.slice();
      const r = rw.rewrite(out);
      if (r.verdict === 'passed' || r.verdict === 'malformed' || r.verdict === 'dropped') assert.deepEqual(out, input);
    }), { numRuns: RUNS });
  });
});

describe('arbitrary bytes', () => {
  // Valid packets with lies and cuts, and plain noise.
  const mutated = fc.tuple(packet, fc.array(fc.tuple(fc.nat(200), fc.nat(255)), { maxLength: 4 }), fc.option(fc.nat(200), { nil: undefined }))
    .map(([p, pokes, cut]) => {
      const b = p.slice(0, cut === undefined ? p.length : Math.min(cut, p.length));
      for (const [at, v] of pokes) if (at < b.length) b[at] = v;
      return b;
    });
  const noise = fc.oneof(
    fc.uint8Array({ maxLength: 120 }),
    fc.uint8Array({ minLength: 20, maxLength: 120 }).map((b) => { b[0] = (b[0] & 0x0f) | 0x40; return b; }),
    fc.uint8Array({ minLength: 40, maxLength: 120 }).map((b) => { b[0] = (b[0] & 0x0f) | 0x60; return b; }),
  );
  const bytes = fc.oneof(mutated, noise);

  it('never throw, agree with the oracle, and never break a checksum that was valid', () => {
    fc.assert(fc.property(bytes, (input) => {
      const out = input.slice();
      const expected = oracleRewrite(input, rules);
      sameResult(rw.rewrite(out), expected);
      assert.deepEqual(out, expected.output);
      const before = checksumReport(input);
      const after = checksumReport(out);
      if (before.ipv4Header) assert.equal(after.ipv4Header, true);
      if (before.transport?.valid) assert.equal(after.transport?.valid, true);
    }), { numRuns: RUNS });
  });

  it('never touch memory outside their slot (guard bytes around every slot)', () => {
    const GUARD = 0xa5;
    fc.assert(fc.property(fc.array(bytes, { minLength: 1, maxLength: 32 }), (packets) => {
      const { batch } = rw;
      for (let s = 0; s < batch.slotCount; s++) batch.slot(s).fill(GUARD);
      // Every other slot is used, so each packet has an untouched neighbour slot on both sides.
      packets.forEach((p, i) => {
        batch.slot(2 * i).set(p);
        batch.setEntry(i, 2 * i, p.length);
      });
      rw.rewriteSlots(packets.length);
      packets.forEach((p, i) => {
        const slot = batch.slot(2 * i);
        for (let k = p.length; k < slot.length; k++) assert.equal(slot[k], GUARD, `slot tail byte ${k} of packet ${i}`);
        const neighbour = batch.slot(2 * i + 1);
        assert.ok(neighbour.every((v) => v === GUARD), `neighbour slot of packet ${i}`);
        const expected = oracleRewrite(p, rules);
        assert.deepEqual(decodeResult(batch.result(i)).verdict, expected.verdict);
        assert.deepEqual(slot.subarray(0, p.length), expected.output);
      });
    }), { numRuns: 300 });
  });
});

function formatAddress(b: Uint8Array): string {
  if (b.length === 4) return [...b].join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i] << 8) | b[i + 1]).toString(16));
  // Compress the longest run of zero words, as the rule's canonical text does.
  const text = words.join(':');
  const runs = [...text.matchAll(/(^|:)0(:0)+(:|$)/g)].sort((a, b) => b[0].length - a[0].length);
  return runs.length ? text.replace(runs[0][0], '::') : text;
}
