// Property tests: generated packets through the WASM core, held to the
// from-scratch oracle and to the invariants of the semantics document.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createRewriter, decodeResult, type Rewriter } from '../src/core/rewriter.js';
import { buildPacket, tcp, udp, dccp, echo, PROTO, type ExtHeader, type PacketSpec } from '../src/oracle/build.js';
import { checksumReport, oracleRewrite } from '../src/oracle/oracle.js';
import type { Rule } from '../src/core/types.js';

const RULES = [
  '1=203.0.113.10', '1=2001:db8:203::10', '17=203.0.113.20', '17=2001:db8:203::20',
  { dscp: 5, destination: '203.0.113.50', match: '198.51.100.0/25', setDscp: 0 },
  { dscp: 5, destination: '2001:db8:203::50', match: '2001:db8:198::/64', setDscp: 46 },
];
const RUNS = 3000;

let rw: Rewriter;
let rules: readonly Rule[];
before(async () => {
  rw = await createRewriter({ rules: RULES, slotSize: 512, slotCount: 64 });
  rules = rw.rules;
});

const dscp = fc.oneof(fc.constantFrom(1, 17, 5), fc.integer({ min: 0, max: 63 }));
const transport = fc.oneof(
  fc.record({ protocol: fc.constant(PROTO.TCP), transport: fc.nat(60).map((n) => tcp(n)) }),
  fc.record({ protocol: fc.constant(PROTO.UDP), transport: fc.nat(60).map((n) => udp(n)) }),
  fc.record({ protocol: fc.constant(PROTO.UDPLITE), transport: fc.nat(60).map((n) => udp(n, [7, 9], true)) }),
  fc.record({ protocol: fc.constant(PROTO.DCCP), transport: fc.nat(30).map((n) => dccp(n)) }),
  fc.record({ protocol: fc.constantFrom(PROTO.ICMP, PROTO.ICMPV6), transport: fc.nat(30).map((n) => echo(false, n)) }),
  fc.record({ protocol: fc.constantFrom(PROTO.ESP, PROTO.SCTP, PROTO.GRE, PROTO.NONE), transport: fc.uint8Array({ maxLength: 40 }) }),
  // Truncated transport headers.
  fc.record({ protocol: fc.constantFrom(PROTO.TCP, PROTO.UDP, PROTO.UDPLITE, PROTO.DCCP, PROTO.ICMPV6), transport: fc.uint8Array({ maxLength: 19 }) }),
);
const checksum = fc.oneof(fc.constant('valid' as const), fc.constant('zero' as const), fc.integer({ min: 0, max: 0xffff }));
const ext: fc.Arbitrary<ExtHeader> = fc.oneof(
  fc.record({ type: fc.constantFrom('hop-by-hop' as const, 'destination-options' as const), length: fc.nat(3) }),
  fc.record({ type: fc.constant('routing' as const), segmentsLeft: fc.nat(2) }),
  fc.record({ type: fc.constant('fragment' as const), offset: fc.oneof(fc.constant(0), fc.nat(100)), more: fc.boolean() }),
  fc.record({ type: fc.constant('ah' as const), length: fc.nat(6) }),
);

const v4spec: fc.Arbitrary<PacketSpec> = fc.record({
  src: fc.constantFrom('192.0.2.1', '203.0.113.99'),
  dst: fc.constantFrom('198.51.100.2', '198.51.100.200', '203.0.113.10', '192.0.2.77'),
  dscp, ecn: fc.nat(3), ttl: fc.integer({ min: 1, max: 255 }),
  options: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
  fragment: fc.option(fc.record({ offset: fc.oneof(fc.constant(0), fc.nat(0x1fff)), more: fc.boolean() }), { nil: undefined }),
  headerChecksum: fc.option(fc.integer({ min: 0, max: 0xffff }), { freq: 5, nil: undefined }),
  padding: fc.option(fc.nat(8), { nil: undefined }),
  checksum,
}).chain((ip) => transport.map((t) => ({ ...ip, ...t })));

const v6spec: fc.Arbitrary<PacketSpec> = fc.record({
  src: fc.constant('2001:db8:192::1'),
  dst: fc.constantFrom('2001:db8:198::2', '2001:db8:199::2', '2001:db8:203::10'),
  dscp, ecn: fc.nat(3), ttl: fc.integer({ min: 1, max: 255 }),
  ext: fc.array(ext, { maxLength: 4 }),
  padding: fc.option(fc.nat(8), { nil: undefined }),
  checksum,
}).chain((ip) => transport.map((t) => ({ ...ip, ...t })));

const packet = fc.oneof(v4spec, v6spec).map(buildPacket);

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
      const all = rw.core.slotBytes;
      all.fill(GUARD);
      // Every other slot is used, so each packet has an untouched neighbour slot on both sides.
      packets.forEach((p, i) => {
        rw.slot(2 * i).set(p);
        rw.batchSlots[i] = 2 * i;
        rw.batchLengths[i] = p.length;
      });
      rw.runBatch(packets.length);
      packets.forEach((p, i) => {
        const slot = rw.slot(2 * i);
        for (let k = p.length; k < slot.length; k++) assert.equal(slot[k], GUARD, `slot tail byte ${k} of packet ${i}`);
        const neighbour = rw.slot(2 * i + 1);
        assert.ok(neighbour.every((v) => v === GUARD), `neighbour slot of packet ${i}`);
        const expected = oracleRewrite(p, rules);
        assert.deepEqual(decodeResult(rw.batchResults[i]).verdict, expected.verdict);
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
