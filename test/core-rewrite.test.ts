// One hand-built packet per rule of docs/semantics.md,
// through the WASM core, each checked on its own terms and against the
// from-scratch oracle.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadCore } from '../src/core/loader.js';
import { createRewriter, decodeResult, type Rewriter } from '../src/core/rewriter.js';
import { validateRules } from '../src/core/rules.js';
import { buildPacket, tcp, udp, dccp, echo, type PacketSpec } from '../tools/packets/build.js';
import { checksumReport, oracleRewrite } from '../tools/oracle/oracle.js';
import { read16 } from '../tools/packets/bytes.js';
import { checksumFor, onesSum, pseudoHeaderSum } from '../tools/packets/checksum.js';
import { PROTO } from '../tools/packets/layout.js';

const RULES = ['1=203.0.113.10', '1=2001:db8:203::10', '17=203.0.113.20', '17=2001:db8:203::20'];
const V4 = { src: '192.0.2.1', dst: '198.51.100.2' };
const V6 = { src: '2001:db8:192::1', dst: '2001:db8:198::2' };
const VIP4 = [203, 0, 113, 10];

let rw: Rewriter;
before(async () => { rw = await createRewriter({ rules: RULES }); });

function run(spec: PacketSpec) {
  const input = buildPacket(spec);
  const out = input.slice();
  const result = rw.rewrite(out);
  const expected = oracleRewrite(input, validateRules(RULES).rules);
  assert.deepEqual(result, { verdict: expected.verdict, ...(expected.reason ? { reason: expected.reason } : {}), ...(expected.rule !== undefined ? { rule: expected.rule } : {}) });
  assert.deepEqual(out, expected.output, 'bytes differ from the oracle');
  return { input, out, result };
}

/** Offsets where two packets differ. */
function diff(a: Uint8Array, b: Uint8Array): number[] {
  assert.equal(a.length, b.length);
  const d: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) d.push(i);
  return d;
}
const within = (offsets: number[], allowed: number[]) => offsets.every((o) => allowed.includes(o));
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe('IPv4 rewrite', () => {
  for (const [name, protocol, transport, field] of [
    ['TCP', PROTO.TCP, tcp(100), 16],
    ['UDP', PROTO.UDP, udp(100), 6],
    ['UDP-Lite', PROTO.UDPLITE, udp(100, [1, 2], true), 6],
    ['DCCP', PROTO.DCCP, dccp(40), 6],
  ] as const) {
    it(`${name}: destination set, IP header and ${name} checksums fixed, nothing else changed`, () => {
      const { input, out, result } = run({ ...V4, dscp: 1, protocol, transport });
      assert.equal(result.verdict, 'rewritten');
      assert.deepEqual([...out.subarray(16, 20)], VIP4);
      assert.deepEqual(checksumReport(out), { ipv4Header: true, transport: { name: name.toLowerCase().replace('-', ''), valid: true, none: false } });
      assert.ok(within(diff(input, out), [...range(16, 4), 10, 11, 20 + field, 21 + field]));
    });
  }

  for (const [name, protocol, transport] of [
    ['ICMP', PROTO.ICMP, echo(false)], ['IGMP', PROTO.IGMP, new Uint8Array(8)], ['GRE', PROTO.GRE, new Uint8Array(8)],
    ['ESP', PROTO.ESP, new Uint8Array(16)], ['SCTP', PROTO.SCTP, new Uint8Array(16)],
  ] as const) {
    it(`${name}: only the IP header changes (no pseudo-header)`, () => {
      const { input, out } = run({ ...V4, dscp: 1, protocol, transport });
      assert.ok(within(diff(input, out), [...range(16, 4), 10, 11]));
      assert.equal(checksumReport(out).ipv4Header, true);
    });
  }

  it('a zero UDP checksum means "none" and stays zero', () => {
    const { out } = run({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(20), checksum: 'zero' });
    assert.equal(read16(out, 26), 0);
    assert.equal(checksumReport(out).ipv4Header, true);
  });

  it('a zero UDP-Lite checksum is not special: it is updated', () => {
    const { input, out } = run({ ...V4, dscp: 1, protocol: PROTO.UDPLITE, transport: udp(20, [1, 2], true), checksum: 'zero' });
    assert.notEqual(read16(out, 26), 0);
    assert.notDeepEqual(out.subarray(26, 28), input.subarray(26, 28));
  });

  it('an updated checksum that comes out 0x0000 is written 0xFFFF', () => {
    // Choose two payload bytes so that the rewritten UDP data sums to 0xFFFF without its checksum.
    const base = udp(2);
    base[8] = 0; base[9] = 0;
    const after = buildPacket({ ...V4, dst: '203.0.113.10', dscp: 1, protocol: PROTO.UDP, transport: base, checksum: 'zero' });
    const seed = pseudoHeaderSum(after.subarray(12, 16), after.subarray(16, 20), PROTO.UDP, base.length);
    const rest = onesSum(after.subarray(20), seed);
    const word = checksumFor(rest);
    base[8] = word >> 8; base[9] = word & 0xff;
    const { out } = run({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: base });
    assert.equal(read16(out, 26), 0xffff);
    assert.equal(checksumReport(out).transport?.valid, true);
  });

  it('IPv4 options: the transport header is found after them', () => {
    const options = new Uint8Array([0x94, 0x04, 0, 0, 1, 1, 1, 0]); // router alert, NOPs, EOL
    const { input, out } = run({ ...V4, dscp: 1, protocol: PROTO.TCP, transport: tcp(10), options });
    assert.equal(checksumReport(out).transport?.valid, true);
    assert.ok(within(diff(input, out), [...range(16, 4), 10, 11, 28 + 16, 28 + 17]));
  });

  it('first fragment: transport checksum fixed; non-first: IP header only', () => {
    const first = run({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(64), fragment: { offset: 0, more: true } });
    assert.ok(diff(first.input, first.out).includes(26));
    const later = run({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(64), fragment: { offset: 9, more: false } });
    assert.ok(within(diff(later.input, later.out), [...range(16, 4), 10, 11]));
    assert.equal(checksumReport(later.out).ipv4Header, true);
  });

  it('TCP shorter than 18 bytes is dropped untouched (tcp-truncated)', () => {
    const { input, out, result } = run({ ...V4, dscp: 1, protocol: PROTO.TCP, transport: new Uint8Array(17) });
    assert.equal(result.verdict, 'dropped');
    assert.equal(result.reason, 'tcp-truncated');
    assert.deepEqual(out, input);
  });

  it('UDP and DCCP shorter than 8 bytes are dropped', () => {
    assert.equal(run({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: new Uint8Array(7) }).result.reason, 'udp-truncated');
    assert.equal(run({ ...V4, dscp: 1, protocol: PROTO.DCCP, transport: new Uint8Array(7) }).result.reason, 'dccp-truncated');
    assert.equal(run({ ...V4, dscp: 1, protocol: PROTO.UDPLITE, transport: new Uint8Array(7) }).result.reason, 'udplite-truncated');
  });

  it('the transport length comes from total length: bytes past it are padding, kept as they are', () => {
    const spec = { ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(10), padding: 6 };
    const input = buildPacket(spec);
    input.fill(0xaa, input.length - 6);
    const out = input.slice();
    rw.rewrite(out);
    assert.deepEqual(out.subarray(out.length - 6), input.subarray(input.length - 6));
    assert.equal(checksumReport(out).transport?.valid, true);
    // 10 bytes of TCP by total length, though the buffer holds more: dropped.
    const short = buildPacket({ ...V4, dscp: 1, protocol: PROTO.TCP, transport: new Uint8Array(10), padding: 20 });
    assert.equal(rw.rewrite(short).reason, 'tcp-truncated');
  });

  it('a wrong header checksum stays exactly as wrong', () => {
    const good = run({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(8) });
    const wrongBy = 0x1234;
    const bad = buildPacket({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(8), headerChecksum: (read16(good.input, 10) + wrongBy) % 0x10000 });
    const before = onesSum(bad.subarray(0, 20));
    rw.rewrite(bad);
    assert.equal(onesSum(bad.subarray(0, 20)), before);
    assert.notEqual(before, 0xffff);
  });

  it('ECN bits are never changed; a rule may set the DSCP', async () => {
    const { out } = run({ ...V4, dscp: 1, ecn: 3, protocol: PROTO.UDP, transport: udp(4) });
    assert.equal(out[1], (1 << 2) | 3);
    const setter = await createRewriter({ rules: [{ dscp: 1, destination: '203.0.113.10', setDscp: 46 }] });
    const p = buildPacket({ ...V4, dscp: 1, ecn: 2, protocol: PROTO.TCP, transport: tcp(4) });
    assert.equal(setter.rewrite(p).verdict, 'rewritten');
    assert.equal(p[1], (46 << 2) | 2);
    assert.deepEqual(checksumReport(p), { ipv4Header: true, transport: { name: 'tcp', valid: true, none: false } });
    const expected = oracleRewrite(buildPacket({ ...V4, dscp: 1, ecn: 2, protocol: PROTO.TCP, transport: tcp(4) }), setter.rules);
    assert.deepEqual(p, expected.output);
  });

  it('the destination is written even when it already is the target', () => {
    const { out, result } = run({ src: V4.src, dst: '203.0.113.10', dscp: 1, protocol: PROTO.TCP, transport: tcp(0) });
    assert.equal(result.verdict, 'rewritten');
    assert.equal(checksumReport(out).ipv4Header, true);
  });
});

describe('IPv6 rewrite', () => {
  const VIP6 = [0x20, 0x01, 0x0d, 0xb8, 0x02, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
  for (const [name, protocol, transport] of [
    ['tcp', PROTO.TCP, tcp(50)], ['udp', PROTO.UDP, udp(50)], ['udplite', PROTO.UDPLITE, udp(50, [1, 2], true)],
    ['dccp', PROTO.DCCP, dccp(8)], ['icmpv6', PROTO.ICMPV6, echo(true)],
  ] as const) {
    it(`${name}: destination set and its checksum fixed`, () => {
      const { input, out } = run({ ...V6, dscp: 1, protocol, transport });
      assert.deepEqual([...out.subarray(24, 40)], VIP6);
      assert.deepEqual(checksumReport(out).transport, { name, valid: true, none: false });
      assert.ok(diff(input, out).every((o) => (o >= 24 && o < 40) || o >= 40));
    });
  }

  for (const ext of [
    [{ type: 'hop-by-hop' as const }],
    [{ type: 'destination-options' as const, length: 2 }],
    [{ type: 'routing' as const, segmentsLeft: 0 }],
    [{ type: 'fragment' as const, offset: 0, more: true }],
    [{ type: 'hop-by-hop' as const }, { type: 'destination-options' as const }, { type: 'routing' as const, segmentsLeft: 0, addresses: 2 }, { type: 'fragment' as const, offset: 0, more: true }],
  ]) {
    it(`the transport checksum is fixed after ${ext.map((e) => e.type).join(', ')}`, () => {
      const { out, result } = run({ ...V6, dscp: 1, protocol: PROTO.TCP, transport: tcp(20), ext });
      assert.equal(result.verdict, 'rewritten');
      assert.equal(checksumReport(out).transport?.valid, true);
    });
  }

  for (const [why, ext, protocol] of [
    ['a non-first fragment', [{ type: 'fragment' as const, offset: 3, more: false }], PROTO.UDP],
    ['a Routing header with segments left', [{ type: 'routing' as const, segmentsLeft: 1 }], PROTO.UDP],
    ['AH', [{ type: 'ah' as const }], PROTO.TCP],
  ] as const) {
    it(`no transport fix under ${why}: only the destination changes`, () => {
      const { input, out, result } = run({ ...V6, dscp: 1, protocol, transport: protocol === PROTO.TCP ? tcp(8) : udp(8), ext: [...ext] });
      assert.equal(result.verdict, 'rewritten');
      assert.deepEqual(diff(input, out).filter((o) => o < 24 || o >= 40), []);
    });
  }

  it('ESP and No Next Header end the walk with no transport fix', () => {
    for (const protocol of [PROTO.ESP, PROTO.NONE]) {
      const { input, out } = run({ ...V6, dscp: 1, protocol, transport: new Uint8Array(24).fill(7) });
      assert.deepEqual(diff(input, out).filter((o) => o < 24 || o >= 40), []);
    }
  });

  it('an extension chain that runs past the packet is malformed (untouched)', () => {
    const p = buildPacket({ ...V6, dscp: 1, protocol: PROTO.TCP, transport: tcp(0), ext: [{ type: 'hop-by-hop' }] });
    p[41] = 10; // HBH claims 88 bytes
    const copy = p.slice();
    assert.deepEqual(rw.rewrite(p), { verdict: 'malformed', reason: 'ipv6-extension-chain' });
    assert.deepEqual(p, copy);
  });

  it('a broken chain in a packet no rule matches is simply passed', () => {
    const p = buildPacket({ ...V6, dscp: 5, protocol: PROTO.TCP, transport: tcp(0), ext: [{ type: 'hop-by-hop' }] });
    p[41] = 10;
    assert.deepEqual(rw.rewrite(p), { verdict: 'passed' });
  });

  it('ICMPv6 shorter than 4 bytes is dropped', () => {
    assert.equal(run({ ...V6, dscp: 1, protocol: PROTO.ICMPV6, transport: new Uint8Array(3) }).result.reason, 'icmpv6-truncated');
  });

  it('DSCP is read across the traffic class; ECN and the flow label stay', async () => {
    const { out } = run({ ...V6, dscp: 17, ecn: 1, protocol: PROTO.UDP, transport: udp(4) });
    assert.equal(out[39], 0x20);
    assert.equal(((out[0] & 0x0f) << 4 | out[1] >> 4) & 3, 1);
    const setter = await createRewriter({ rules: [{ dscp: 1, destination: '2001:db8:203::10', setDscp: 63 }] });
    const p = buildPacket({ ...V6, dscp: 1, ecn: 2, protocol: PROTO.UDP, transport: udp(4) });
    p[1] |= 0x0a; p[2] = 0xbc; p[3] = 0xde; // flow label
    const expected = oracleRewrite(p, setter.rules);
    setter.rewrite(p);
    assert.deepEqual(p, expected.output);
    assert.equal(((p[0] & 0x0f) << 4 | p[1] >> 4) >> 2, 63);
    assert.deepEqual([p[1] & 0x0f, p[2], p[3]], [0x0a, 0xbc, 0xde]);
  });
});

describe('parsing', () => {
  const malformed: [string, (p: Uint8Array) => Uint8Array, string][] = [
    ['an empty buffer', () => new Uint8Array(0), 'too-short'],
    ['version 5', (p) => { p[0] = 0x55; return p; }, 'bad-version'],
    ['IPv4 shorter than 20 bytes', (p) => p.subarray(0, 19), 'too-short'],
    ['IHL < 5', (p) => { p[0] = 0x44; return p; }, 'ipv4-header'],
    ['IHL past the buffer', (p) => { p[0] = 0x4f; return p.subarray(0, 40); }, 'ipv4-header'],
    ['total length past the buffer', (p) => { p[3] += 1; return p; }, 'ipv4-total-length'],
    ['total length below the header', (p) => { p[2] = 0; p[3] = 19; return p; }, 'ipv4-total-length'],
  ];
  for (const [name, mutate, reason] of malformed) {
    it(`${name}: malformed (${reason}), untouched`, () => {
      const p = mutate(buildPacket({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(32) }));
      const copy = p.slice();
      assert.deepEqual(rw.rewrite(p), { verdict: 'malformed', reason });
      assert.deepEqual(p, copy);
    });
  }
  it('IPv6 payload length past the buffer or a short header: malformed', () => {
    const p = buildPacket({ ...V6, dscp: 1, protocol: PROTO.UDP, transport: udp(8) });
    assert.deepEqual(rw.rewrite(p.subarray(0, 39).slice()), { verdict: 'malformed', reason: 'too-short' });
    p[5] += 1;
    assert.deepEqual(rw.rewrite(p), { verdict: 'malformed', reason: 'ipv6-payload-length' });
  });
  it('a packet with another DSCP, or for another family, is passed byte-identical', async () => {
    for (const spec of [{ ...V4, dscp: 2 }, { ...V6, dscp: 0 }]) {
      const p = buildPacket({ ...spec, protocol: PROTO.TCP, transport: tcp(4) });
      const copy = p.slice();
      assert.deepEqual(rw.rewrite(p), { verdict: 'passed' });
      assert.deepEqual(p, copy);
    }
    const v4only = await createRewriter({ rules: ['1=203.0.113.10'] });
    assert.deepEqual(v4only.rewrite(buildPacket({ ...V6, dscp: 1, protocol: PROTO.TCP, transport: tcp(4) })), { verdict: 'passed' });
  });
});

describe('rules with a destination prefix', () => {
  it('the longest matching prefix wins; a destination outside every prefix passes', async () => {
    const prw = await createRewriter({ rules: [
      { dscp: 1, destination: '203.0.113.10', origin: 'any' },
      { dscp: 1, destination: '203.0.113.11', match: '198.51.100.0/24', origin: 'slash24' },
      { dscp: 1, destination: '203.0.113.12', match: '198.51.100.2/32', origin: 'host' },
      { dscp: 2, destination: '203.0.113.13', match: '198.51.100.128/25', origin: 'only' },
      { dscp: 1, destination: '2001:db8:203::11', match: '2001:db8:198::/48' },
    ] });
    const dstOf = (dst: string, dscp: number) => {
      const p = buildPacket({ src: dst.includes(':') ? V6.src : V4.src, dst, dscp, protocol: PROTO.UDP, transport: udp(4) });
      const r = prw.rewrite(p);
      return r.verdict === 'rewritten' ? prw.rules[r.rule!].origin : r.verdict;
    };
    assert.equal(dstOf('198.51.100.2', 1), 'host');
    assert.equal(dstOf('198.51.100.3', 1), 'slash24');
    assert.equal(dstOf('192.0.2.77', 1), 'any');
    assert.equal(dstOf('198.51.100.200', 2), 'only');
    assert.equal(dstOf('198.51.100.2', 2), 'passed');
    assert.equal(dstOf('2001:db8:198::2', 1), '#5');
    assert.equal(dstOf('2001:db8:199::2', 1), 'passed');
  });
});

describe('counters and rule swaps', () => {
  it('counts per rule (packets, bytes), per verdict and per reason', async () => {
    const c = await createRewriter({ rules: RULES });
    const a = buildPacket({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(12) });
    const b = buildPacket({ ...V6, dscp: 17, protocol: PROTO.TCP, transport: tcp(30) });
    const results = c.rewritePackets([a, b, a.slice(0, 10), buildPacket({ ...V4, dscp: 1, protocol: PROTO.TCP, transport: new Uint8Array(4) }), buildPacket({ ...V4, dscp: 9, protocol: PROTO.TCP, transport: tcp(1) })]);
    assert.deepEqual(results.map((r) => r.verdict), ['rewritten', 'rewritten', 'malformed', 'dropped', 'passed']);
    const k = c.counters();
    assert.deepEqual(k.verdicts, { passed: 1n, rewritten: 2n, malformed: 1n, dropped: 1n });
    assert.equal(k.reasons['too-short'], 1n);
    assert.equal(k.reasons['tcp-truncated'], 1n);
    assert.deepEqual(k.rules.map((r) => [r.rule.origin, r.packets, r.bytes]), [
      ['--rule 1=203.0.113.10', 1n, BigInt(a.length)],
      ['--rule 1=2001:db8:203::10', 0n, 0n],
      ['--rule 17=203.0.113.20', 0n, 0n],
      ['--rule 17=2001:db8:203::20', 1n, BigInt(b.length)],
    ]);
  });

  it('a bad rule set throws and the old rules keep working; kept rules keep their counters', async () => {
    const c = await createRewriter({ rules: ['1=203.0.113.10'] });
    const packet = () => buildPacket({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(12) });
    c.rewrite(packet());
    assert.throws(() => c.setRules(['1=203.0.113.10', '2=203.0.113.300']), /rule --rule 2=203\.0\.113\.300: destination: "203\.0\.113\.300"/);
    assert.equal(c.rewrite(packet()).verdict, 'rewritten');
    c.setRules(['1=203.0.113.10', '2=203.0.113.30']);
    assert.equal(c.counters().rules[0].packets, 2n);
    assert.equal(c.counters().rules[1].packets, 0n);
    c.setRules(['2=203.0.113.30']);
    assert.equal(c.rewrite(packet()).verdict, 'passed');
  });
});

describe('the batch path', () => {
  it('gives the same bytes and results as one packet at a time, and empties dropped entries', async () => {
    const c = await createRewriter({ rules: RULES, slotSize: 256, slotCount: 8 });
    const specs: PacketSpec[] = [
      { ...V4, dscp: 1, protocol: PROTO.TCP, transport: tcp(30) },
      { ...V6, dscp: 17, protocol: PROTO.UDP, transport: udp(30) },
      { ...V4, dscp: 1, protocol: PROTO.TCP, transport: new Uint8Array(3) },
      { ...V6, dscp: 3, protocol: PROTO.UDP, transport: udp(30) },
    ];
    const packets = specs.map(buildPacket);
    // Place them out of order in the slots, as the TUN ring hands them over.
    const order = [5, 0, 7, 2];
    packets.forEach((p, i) => {
      c.batch.slot(order[i]).set(p);
      c.batch.setEntry(i, order[i], p.length);
    });
    c.rewriteSlots(packets.length);
    packets.forEach((p, i) => {
      const single = p.slice();
      const r = rw.rewrite(single);
      assert.deepEqual(c.batch.slot(order[i]).subarray(0, p.length), single);
      assert.equal(c.batch.result(i) & 0xff, ['passed', 'rewritten', 'malformed', 'dropped'].indexOf(r.verdict));
      assert.equal(c.batch.entryLength(i), r.verdict === 'dropped' ? 0 : p.length);
    });
  });

  it('refuses descriptors that do not fit their slot, without reading them', async () => {
    const c = await createRewriter({ rules: RULES, slotSize: 128, slotCount: 2 });
    c.batch.setEntry(0, 2, 20);
    c.batch.setEntry(1, 1, 129);
    c.rewriteSlots(2);
    assert.deepEqual([c.batch.result(0) & 0xff, c.batch.result(1) & 0xff], [2, 2]);
    assert.equal(c.counters().reasons['slot-overflow'], 2n);
    assert.deepEqual(c.rewrite(new Uint8Array(129)), { verdict: 'malformed', reason: 'slot-overflow' });
  });
});

describe('who owns the memory layout', () => {
  it('the rewriter keeps its core to itself, and hands out the slots and the TUN layout its core reports', async () => {
    const c = await createRewriter({ rules: RULES, slotSize: 256, slotCount: 8 });
    assert.equal((c as unknown as { core?: unknown }).core, undefined, 'a public handle on the core');
    const layout = c.batch.layout(4);
    assert.deepEqual({ slotSize: layout.slotSize, slotCount: layout.slotCount, batchMax: layout.batchMax }, { slotSize: 256, slotCount: 8, batchMax: 4 });
    // What the addon would do with the layout: put a packet in slot 5 and name it in entry 2, through the raw memory.
    const packet = buildPacket({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(12) });
    const memory = c.memory.buffer;
    new Uint8Array(memory, layout.slotBase + 5 * layout.slotSize, layout.slotSize).set(packet);
    new Uint32Array(memory, layout.slotsOffset, layout.batchMax)[2] = 5;
    new Uint32Array(memory, layout.lengthsOffset, layout.batchMax)[2] = packet.length;
    assert.deepEqual(c.batch.slot(5).subarray(0, packet.length), packet);
    assert.deepEqual([c.batch.entrySlot(2), c.batch.entryLength(2)], [5, packet.length]);
    c.batch.setEntry(0, 5, packet.length);
    c.rewriteSlots(1);
    assert.equal(decodeResult(c.batch.result(0)).verdict, 'rewritten');
    assert.deepEqual([...new Uint8Array(memory, layout.slotBase + 5 * layout.slotSize + 16, 4)], VIP4, 'rewritten where the layout says slot 5 is');
    assert.throws(() => c.batch.slot(8), { name: 'RangeError', message: 'slot must be 0..7, got 8' });
    assert.throws(() => c.batch.slot(-1), RangeError);
  });

  it('a rewriter on a core the caller loaded puts its rules in it; the caller then calls its exports itself', async () => {
    const core = await loadCore({ slotSize: 256, slotCount: 2 });
    const c = await createRewriter({ rules: RULES, core });
    const packet = buildPacket({ ...V4, dscp: 1, protocol: PROTO.UDP, transport: udp(12) });
    core.batch.slot(1).set(packet);
    assert.deepEqual(decodeResult(core.exports.rewriteSlot(1, packet.length)), { verdict: 'rewritten', rule: 0 });
    assert.deepEqual([...core.batch.slot(1).subarray(16, 20)], VIP4);
    assert.equal(c.counters().rules[0].packets, 1n);
    await assert.rejects(createRewriter({ rules: RULES, core, slotSize: 256 }), { name: 'TypeError', message: /give core alone/ });
  });
});
