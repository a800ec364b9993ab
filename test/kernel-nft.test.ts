// The kernel reference harness (test/support/kernel-nft.ts) checked against
// checksums computed here from scratch, plus what the kernel's nftables
// actually does in the corner cases docs/semantics.md talks about. The
// second part asserts measured kernel behaviour: if a kernel changes it,
// these tests say which claim no longer holds. Needs root (skipped without it).
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rewriteWithKernel, undoIpv4TtlDecrement, type KernelResult, type KernelRule } from './support/kernel-nft.js';
import { privileged } from './support/privilege.js';
import { addressBytes } from '../tools/packets/address.js';
import { buildPacket, dccp, echo, tcp, udp, type ExtHeader, type PacketSpec } from '../tools/packets/build.js';
import { read16 as word } from '../tools/packets/bytes.js';
import { onesSum, pseudoHeaderSum } from '../tools/packets/checksum.js';
import { EXT, ICMP, PROTO, transportChecksum } from '../tools/packets/layout.js';
import { Rng } from '../tools/packets/rng.js';

const RIP4 = '198.51.100.2';
const RIP6 = '2001:db8:198::2';
const CLIENT4 = '192.0.2.1';
const CLIENT6 = '2001:db8:192::1';
const RULES: KernelRule[] = [
  { family: 4, dscp: 1, destination: '203.0.113.10' },
  { family: 6, dscp: 1, destination: '2001:db8:203::10' },
  { family: 4, dscp: 17, destination: '203.0.113.20' },
  { family: 6, dscp: 17, destination: '2001:db8:203::20' },
];
const VIP4 = RULES[0]!.destination;
const VIP6 = RULES[1]!.destination;

function requireRoot(): void {
  assert.equal(process.getuid?.(), 0, 'the kernel reference needs root (namespaces, TUN devices, nftables)');
}

// ---- checksums from scratch ---------------------------------------------------

/** The one's-complement sum of `parts` one after the other. */
const sumOf = (...parts: Uint8Array[]): number => parts.reduce((sum, p) => onesSum(p, sum), 0);

interface L4View {
  protocol: number;
  /** Absolute offset of the L4 header. */
  offset: number;
  /** L4 length according to the IP header. */
  length: number;
  /** The pseudo-header's sum. */
  pseudo: number;
  /** Fragment offset (non-zero: no L4 header here). */
  fragmentOffset: number;
}

function l4Of(p: Uint8Array, finalDestination?: Uint8Array): L4View {
  if (p[0]! >> 4 === 4) {
    const ihl = (p[0]! & 0x0f) * 4;
    const length = word(p, 2) - ihl;
    const pseudo = pseudoHeaderSum(p.subarray(12, 16), p.subarray(16, 20), p[9]!, length);
    return { protocol: p[9]!, offset: ihl, length, pseudo, fragmentOffset: word(p, 6) & 0x1fff };
  }
  let next = p[6]!;
  let at = 40;
  let fragmentOffset = 0;
  for (;;) {
    if (next === EXT.HOP_BY_HOP || next === EXT.ROUTING || next === EXT.DEST_OPTS) {
      [next, at] = [p[at]!, at + (p[at + 1]! + 1) * 8];
    } else if (next === EXT.FRAGMENT) {
      fragmentOffset = word(p, at + 2) >> 3;
      [next, at] = [p[at]!, at + 8];
    } else break;
  }
  const length = 40 + word(p, 4) - at;
  const pseudo = pseudoHeaderSum(p.subarray(8, 24), finalDestination ?? p.subarray(24, 40), next, length);
  return { protocol: next, offset: at, length, pseudo, fragmentOffset };
}

/** Where the L4 checksum of a protocol sits and whether it covers a pseudo-header (all but ICMP's do). */
function l4Checksum(p: Uint8Array, protocol: number): { at: number; pseudo: boolean } | undefined {
  if (protocol === PROTO.ICMP) return { at: ICMP.CHECKSUM, pseudo: false };
  const c = transportChecksum(p[0]! >> 4 === 4 ? 4 : 6, protocol);
  return c && { at: c.field, pseudo: true };
}

const ipv4HeaderValid = (p: Uint8Array): boolean => sumOf(p.subarray(0, (p[0]! & 0x0f) * 4)) === 0xffff;

function l4ChecksumValid(p: Uint8Array, finalDestination?: Uint8Array): boolean {
  const l4 = l4Of(p, finalDestination);
  const spec = l4Checksum(p, l4.protocol);
  assert.ok(spec !== undefined && l4.fragmentOffset === 0, 'no L4 checksum to check');
  return onesSum(p.subarray(l4.offset, l4.offset + l4.length), spec.pseudo ? l4.pseudo : 0) === 0xffff;
}

const l4ChecksumField = (p: Uint8Array): number => {
  const l4 = l4Of(p);
  return word(p, l4.offset + l4Checksum(p, l4.protocol)!.at);
};

const destinationOf = (p: Uint8Array): Uint8Array => (p[0]! >> 4 === 4 ? p.subarray(16, 20) : p.subarray(24, 40));

const hex = (p: Uint8Array | null): string => (p === null ? 'null' : Buffer.from(p).toString('hex'));

function emitted(r: KernelResult | undefined, label: string): Uint8Array {
  assert.ok(r?.output, `${label}: kernel emitted nothing (${r?.note})`);
  return r.output;
}

// ---- a corpus of ordinary packets ---------------------------------------------

interface Case {
  label: string;
  packet: Uint8Array;
  /** The rule's destination, or undefined when no rule matches. */
  expect?: string;
}

function corpus(): Case[] {
  const cases: Case[] = [];
  const dscps = [1, 17, 0, 5, 63];
  let seed = 1;
  for (let k = 0; k < 320; k++) {
    const family = k % 2 === 0 ? 4 : 6;
    const dscp = dscps[k % dscps.length]!;
    const ecn = (k >> 3) % 4;
    const payload = new Rng(seed++).bytes((k * 37) % 301);
    const kind = Math.floor(k / 2) % 4;
    const segments: Pick<PacketSpec, 'protocol' | 'transport'>[] = [
      { protocol: PROTO.TCP, transport: tcp(payload, [1024 + k, 80]) },
      { protocol: PROTO.UDP, transport: udp(payload, [2048 + k, 53]) },
      { protocol: PROTO.UDPLITE, transport: udp(payload, [4096 + k, 5000], true) },
      { protocol: family === 4 ? PROTO.ICMP : PROTO.ICMPV6, transport: echo(family === 6, payload, k) },
    ];
    const seg = segments[kind]!;
    const rule = RULES.find((r) => r.family === family && r.dscp === dscp);
    let packet: Uint8Array;
    if (family === 4) {
      const options = k % 7 === 0 ? new Uint8Array([1, 1, 1, 0]) : undefined; // NOP NOP NOP EOL
      packet = buildPacket({ src: CLIENT4, dst: RIP4, dscp, ecn, id: k, dontFragment: k % 3 === 0, options, ...seg });
    } else {
      const ext: ExtHeader[] = k % 5 === 0 ? [{ type: 'hop-by-hop' }, { type: 'destination-options' }] : [];
      packet = buildPacket({ src: CLIENT6, dst: RIP6, dscp, ecn, flowLabel: k * 977, ext, ...seg });
    }
    cases.push({ label: `#${k} IPv${family} proto ${seg.protocol} DSCP ${dscp} len ${packet.length}`, packet, expect: rule?.destination });
  }
  return cases;
}

/** Byte positions where two packets of equal length differ. */
function differences(a: Uint8Array, b: Uint8Array): number[] {
  assert.equal(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) out.push(k);
  return out;
}

describe('kernel reference harness', privileged('runs nftables in a network namespace with TUN devices'), () => {
  const cases = corpus();
  let netdev: KernelResult[];

  before(async () => {
    requireRoot();
    netdev = await rewriteWithKernel(cases.map((c) => c.packet), RULES);
  });

  it('returns one result per packet', () => {
    assert.equal(netdev.length, cases.length);
  });

  it('rewrites matching packets to the rule destination with every checksum valid, and nothing else changed', () => {
    let rewritten = 0;
    cases.forEach((c, k) => {
      const out = emitted(netdev[k], c.label);
      assert.equal(netdev[k]!.note, undefined, `${c.label}: ${netdev[k]!.note}`);
      if (c.expect === undefined) {
        assert.deepEqual(out, c.packet, `${c.label}: unmatched packet changed`);
        return;
      }
      rewritten++;
      const v4 = c.packet[0]! >> 4 === 4;
      assert.deepEqual(destinationOf(out), addressBytes(c.expect), `${c.label}: destination`);
      if (v4) assert.ok(ipv4HeaderValid(out), `${c.label}: IPv4 header checksum ${hex(out)}`);
      assert.ok(l4ChecksumValid(out), `${c.label}: L4 checksum ${hex(out)}`);
      const l4 = l4Of(c.packet);
      const csum = l4.offset + l4Checksum(c.packet, l4.protocol)!.at;
      const allowed = new Set([...(v4 ? [10, 11, 16, 17, 18, 19] : Array.from({ length: 16 }, (_, j) => 24 + j)), csum, csum + 1]);
      for (const at of differences(c.packet, out)) assert.ok(allowed.has(at), `${c.label}: byte ${at} changed`);
    });
    assert.ok(rewritten > 100, 'the corpus should exercise the rules');
  });

  it('the forward path (ip/ip6 prerouting + forwarding, TTL undone) gives the same bytes on valid packets', async () => {
    const forward = await rewriteWithKernel(cases.map((c) => c.packet), RULES, { path: 'forward' });
    cases.forEach((c, k) => {
      const f = forward[k]!;
      // An IPv4 header checksum whose pre-decrement value cannot be recovered is flagged, not compared.
      if (f.note?.includes('cannot tell which')) return;
      assert.equal(f.note, undefined, `${c.label}: ${f.note}`);
      assert.equal(hex(f.output), hex(netdev[k]!.output), `${c.label}: forward and netdev paths differ`);
    });
  });

  it('also applies a destination prefix match and a DSCP change when a rule has them', async () => {
    const rules: KernelRule[] = [
      { family: 4, dscp: 1, match: '198.51.100.0/25', setDscp: 9, destination: VIP4 },
      { family: 6, dscp: 1, match: '2001:db8:198::/64', setDscp: 9, destination: VIP6 },
    ];
    const inside4 = buildPacket({ src: CLIENT4, dst: RIP4, dscp: 1, ecn: 3, protocol: PROTO.UDP, transport: udp(new Rng(5).bytes(30), [1, 2]) });
    const outside4 = buildPacket({ src: CLIENT4, dst: '198.51.100.200', dscp: 1, protocol: PROTO.UDP, transport: udp(new Rng(5).bytes(30), [1, 2]) });
    const inside6 = buildPacket({ src: CLIENT6, dst: RIP6, dscp: 1, ecn: 1, flowLabel: 0xabcde, protocol: PROTO.TCP, transport: tcp(new Rng(6).bytes(30), [1, 2]) });
    const [a, b, c] = await rewriteWithKernel([inside4, outside4, inside6], rules);
    const o4 = emitted(a, 'inside4');
    assert.equal(o4[1], (9 << 2) | 3, 'DSCP set, ECN kept');
    assert.ok(ipv4HeaderValid(o4) && l4ChecksumValid(o4));
    assert.deepEqual(destinationOf(o4), addressBytes(VIP4));
    assert.deepEqual(emitted(b, 'outside4'), outside4);
    const o6 = emitted(c, 'inside6');
    assert.equal(((o6[0]! & 0x0f) << 4) | (o6[1]! >> 4), (9 << 2) | 1, 'traffic class: DSCP set, ECN kept');
    assert.deepEqual(o6.subarray(1, 4).map((x, k) => (k === 0 ? x & 0x0f : x)), inside6.subarray(1, 4).map((x, k) => (k === 0 ? x & 0x0f : x)), 'flow label kept');
    assert.ok(l4ChecksumValid(o6));
  });

  it('undoes ip_decrease_ttl exactly: every checksum maps back to a set containing itself, only 0x0001 is ambiguous', () => {
    const forward = (c: number) => { const s = c + 1; return (s + (s >= 0xffff ? 1 : 0)) & 0xffff; };
    for (let c = 0; c <= 0xffff; c++) {
      const back = undoIpv4TtlDecrement(forward(c));
      assert.ok(back.includes(c), `checksum ${c}`);
      assert.equal(back.length, forward(c) === 1 ? 2 : 1);
    }
  });
});

// ---- what the kernel does in the corner cases ---------------------------------

/**
 * A packet whose rewritten form has a checksum summing to zero, so that the
 * kernel has to choose between 0x0000 and 0xFFFF: the fill word at `fillAt`
 * is the one's complement of everything else.
 */
function zeroAfterRewrite(family: 4 | 6, build: (fill: number, dst: string) => Uint8Array, fillAt: number, sumOf: (p: Uint8Array) => number): Uint8Array {
  const [vip, rip] = family === 4 ? [VIP4, RIP4] : [VIP6, RIP6];
  const fill = ~sumOf(build(0, vip)) & 0xffff;
  const packet = build(fill, rip);
  assert.equal(word(packet, fillAt), fill, 'fill word not where expected');
  return packet;
}

/** Sum of the L4 segment and pseudo-header with the checksum field counted as 0. */
function l4SumWithoutChecksum(p: Uint8Array): number {
  const l4 = l4Of(p);
  const seg = p.slice(l4.offset, l4.offset + l4.length);
  const at = l4Checksum(p, l4.protocol)!.at;
  seg[at] = 0;
  seg[at + 1] = 0;
  return onesSum(seg, l4.pseudo);
}

function headerSumWithoutChecksum(p: Uint8Array): number {
  const h = p.slice(0, (p[0]! & 0x0f) * 4);
  h[10] = 0;
  h[11] = 0;
  return sumOf(h);
}

describe('what the kernel nftables rewrite does (measured, reference for docs/semantics.md)', privileged('runs nftables in a network namespace with TUN devices'), () => {
  const p = (n: number) => new Rng(99).bytes(n);
  /** Marked DSCP 1, from the client to the real server unless the spec says otherwise. */
  const v4 = (spec: Partial<PacketSpec> & Pick<PacketSpec, 'protocol' | 'transport'>) => buildPacket({ src: CLIENT4, dst: RIP4, dscp: 1, ...spec });
  const v6 = (spec: Partial<PacketSpec> & Pick<PacketSpec, 'protocol' | 'transport'>) => buildPacket({ src: CLIENT6, dst: RIP6, dscp: 1, ...spec });
  const edge: Record<string, Uint8Array> = {};
  const add = (name: string, packet: Uint8Array) => { edge[name] = packet; };

  // Zero results: the fill word sits right after each L4 header.
  const filled = (w: number) => new Uint8Array([w >> 8, w & 0xff, ...p(10)]);
  add('tcp4-zero', zeroAfterRewrite(4, (w, dst) => v4({ dst, protocol: PROTO.TCP, transport: tcp(filled(w), [1, 2]) }), 40, l4SumWithoutChecksum));
  add('udp4-zero', zeroAfterRewrite(4, (w, dst) => v4({ dst, protocol: PROTO.UDP, transport: udp(filled(w), [1, 2]) }), 28, l4SumWithoutChecksum));
  add('udplite4-zero', zeroAfterRewrite(4, (w, dst) => v4({ dst, protocol: PROTO.UDPLITE, transport: udp(filled(w), [1, 2], true) }), 28, l4SumWithoutChecksum));
  add('icmpv6-zero', zeroAfterRewrite(6, (w, dst) => v6({ dst, protocol: PROTO.ICMPV6, transport: echo(true, filled(w), 7) }), 48, l4SumWithoutChecksum));
  add('tcp6-zero', zeroAfterRewrite(6, (w, dst) => v6({ dst, protocol: PROTO.TCP, transport: tcp(filled(w), [1, 2]) }), 60, l4SumWithoutChecksum));
  add('ipv4-header-zero', zeroAfterRewrite(4, (w, dst) => v4({ dst, id: w, protocol: PROTO.ICMP, transport: echo(false, p(8), 1) }), 4, headerSumWithoutChecksum));

  const udp4 = v4({ protocol: PROTO.UDP, transport: udp(p(20), [5, 6]) });
  add('udp4-no-checksum', v4({ protocol: PROTO.UDP, transport: udp(p(20), [5, 6]), checksum: 'zero' }));
  add('udp6-zero-checksum', v6({ protocol: PROTO.UDP, transport: udp(p(20), [5, 6]), checksum: 'zero' }));
  add('udplite4-zero-checksum', v4({ protocol: PROTO.UDPLITE, transport: udp(p(20), [5, 6], true), checksum: 'zero' }));
  add('dccp4', v4({ protocol: PROTO.DCCP, transport: dccp(p(24), [5, 6]) }));
  add('dccp6', v6({ protocol: PROTO.DCCP, transport: dccp(p(24), [5, 6]) }));

  // Fragments: the first carries the whole datagram's checksum, later ones no L4 header.
  const whole4: Pick<PacketSpec, 'protocol' | 'transport'> = { protocol: PROTO.UDP, transport: udp(p(64), [7, 8]) };
  add('udp4-whole', v4({ id: 77, ...whole4 }));
  const full4 = v4({ id: 77, ...whole4 });
  add('udp4-first-fragment', v4({ id: 77, fragment: { offset: 0, more: true }, protocol: PROTO.UDP, transport: full4.subarray(20, 20 + 48), checksum: 'keep' }));
  add('udp4-later-fragment', v4({ id: 77, fragment: { offset: 6, more: false }, protocol: PROTO.UDP, transport: full4.subarray(20 + 48) }));
  const whole6: Pick<PacketSpec, 'protocol' | 'transport'> = { protocol: PROTO.UDP, transport: udp(p(64), [7, 8]) };
  add('udp6-whole', v6(whole6));
  const full6 = v6(whole6);
  add('udp6-first-fragment', v6({ protocol: PROTO.UDP, transport: full6.subarray(40, 40 + 48), ext: [{ type: 'fragment', offset: 0, more: true, id: 9 }], checksum: 'keep' }));
  add('udp6-later-fragment', v6({ protocol: PROTO.UDP, transport: full6.subarray(40 + 48), ext: [{ type: 'fragment', offset: 6, more: false, id: 9 }] }));

  const final = '2001:db8:77::1';
  const tcp16 = { protocol: PROTO.TCP, transport: tcp(p(16), [1, 2]) };
  add('tcp6-routing-left1', v6({ ...tcp16, ext: [{ type: 'routing', routingType: 0, segmentsLeft: 1, addresses: [final] }], finalDestination: final }));
  add('tcp6-routing-left0', v6({ ...tcp16, ext: [{ type: 'routing', routingType: 0, segmentsLeft: 0, addresses: [final] }] }));
  add('tcp6-hbh-dstopts', v6({ ...tcp16, ext: [{ type: 'hop-by-hop' }, { type: 'destination-options' }] }));
  add('tcp6-ah', v6({ ...tcp16, ext: [{ type: 'ah', spi: 0x100 }] }));
  add('esp6', v6({ protocol: PROTO.ESP, transport: p(40) }));

  // Record Route (7), length 11, pointer 4, room for two addresses, then EOL.
  add('udp4-options', v4({ options: new Uint8Array([7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]), protocol: PROTO.UDP, transport: udp(p(20), [5, 6]) }));
  add('tcp4-truncated', v4({ protocol: PROTO.TCP, transport: tcp(0, [1, 2]).subarray(0, 10) }));
  add('udp4-truncated', v4({ protocol: PROTO.UDP, transport: udp(0, [1, 2]).subarray(0, 6) }));
  add('tcp6-truncated', v6({ protocol: PROTO.TCP, transport: tcp(0, [1, 2]).subarray(0, 10) }));
  add('proto58-in-ipv4', v4({ protocol: PROTO.ICMPV6, transport: echo(true, p(12), 3) }));
  add('udp4-padded', new Uint8Array([...udp4, 0xde, 0xad, 0xbe, 0xef]));
  const badHeader = udp4.slice();
  badHeader[11] ^= 0x5a;
  add('udp4-bad-header-checksum', badHeader);

  const names = Object.keys(edge);
  const result: Record<string, KernelResult> = {};
  const forwarded: Record<string, KernelResult> = {};

  before(async () => {
    requireRoot();
    const packets = names.map((n) => edge[n]!);
    const [viaNetdev, viaForward] = [await rewriteWithKernel(packets, RULES), await rewriteWithKernel(packets, RULES, { path: 'forward' })];
    names.forEach((n, k) => {
      result[n] = viaNetdev[k]!;
      forwarded[n] = viaForward[k]!;
    });
  });

  const out = (name: string): Uint8Array => emitted(result[name], name);

  it('writes 0xFFFF, never 0x0000, when an updated checksum comes out zero (TCP, UDP, UDP-Lite, ICMPv6, IPv4 header)', () => {
    for (const name of ['tcp4-zero', 'udp4-zero', 'udplite4-zero', 'icmpv6-zero', 'tcp6-zero']) {
      assert.equal(l4ChecksumField(out(name)).toString(16), 'ffff', name);
      assert.ok(l4ChecksumValid(out(name)), name);
    }
    assert.equal(word(out('ipv4-header-zero'), 10).toString(16), 'ffff');
    assert.ok(ipv4HeaderValid(out('ipv4-header-zero')));
  });

  it('leaves a UDP checksum of 0 alone (IPv4 "none", and IPv6 too), but updates a UDP-Lite checksum of 0', () => {
    assert.equal(l4ChecksumField(out('udp4-no-checksum')), 0);
    assert.deepEqual(destinationOf(out('udp4-no-checksum')), addressBytes(VIP4));
    assert.equal(l4ChecksumField(out('udp6-zero-checksum')), 0);
    // RFC 1624 eqn. 3 from an old checksum of 0: ~(~0 + ~m + m').
    const old = addressBytes(RIP4);
    const vip = addressBytes(VIP4);
    const notOld = old.map((b) => ~b & 0xff);
    const expected = ~sumOf(Uint8Array.of(0xff, 0xff), notOld, vip) & 0xffff;
    assert.equal(l4ChecksumField(out('udplite4-zero-checksum')), expected || 0xffff);
    assert.notEqual(expected, 0);
  });

  it('does not fix DCCP: its checksum bytes stay as they were and are wrong afterwards', () => {
    for (const name of ['dccp4', 'dccp6']) {
      assert.equal(l4ChecksumField(out(name)), l4ChecksumField(edge[name]!), name);
      assert.ok(l4ChecksumValid(edge[name]!), `${name} input`);
      assert.equal(l4ChecksumValid(out(name)), false, name);
    }
  });

  it('fixes the L4 checksum in a first fragment only, and only the header of later fragments', () => {
    for (const f of ['4', '6']) {
      const whole = out(`udp${f}-whole`);
      const first = out(`udp${f}-first-fragment`);
      const later = out(`udp${f}-later-fragment`);
      assert.equal(l4ChecksumField(first), l4ChecksumField(whole), `IPv${f} first fragment got the same L4 update as the whole datagram`);
      const input = edge[`udp${f}-later-fragment`]!;
      const tail = (q: Uint8Array) => q.subarray(q.length - 16);
      assert.deepEqual(tail(later), tail(input), `IPv${f} later fragment payload touched`);
      assert.deepEqual(destinationOf(later), f === '4' ? addressBytes(VIP4) : addressBytes(VIP6));
      if (f === '4') assert.ok(ipv4HeaderValid(later));
    }
  });

  it('applies the L4 delta under a Routing header with Segments Left > 0 (breaking a checksum made for the final destination)', () => {
    const left1 = out('tcp6-routing-left1');
    const final = addressBytes('2001:db8:77::1');
    assert.ok(l4ChecksumValid(edge['tcp6-routing-left1']!, final), 'input valid for its final destination');
    assert.notEqual(l4ChecksumField(left1), l4ChecksumField(edge['tcp6-routing-left1']!));
    assert.equal(l4ChecksumValid(left1, final), false);
    assert.ok(l4ChecksumValid(out('tcp6-routing-left0')), 'segments left 0: plain destination, valid');
  });

  it('finds TCP behind Hop-by-Hop and Destination Options, and stops at AH and ESP', () => {
    assert.ok(l4ChecksumValid(out('tcp6-hbh-dstopts')));
    const ah = out('tcp6-ah');
    assert.deepEqual(destinationOf(ah), addressBytes(VIP6));
    assert.deepEqual(ah.subarray(40), edge['tcp6-ah']!.subarray(40), 'nothing after the IPv6 header changed');
    const esp = out('esp6');
    assert.deepEqual(esp.subarray(40), edge.esp6!.subarray(40));
    assert.deepEqual(destinationOf(esp), addressBytes(VIP6));
  });

  it('handles IPv4 options: L4 found after them, both checksums valid', () => {
    const o = out('udp4-options');
    assert.ok(ipv4HeaderValid(o));
    assert.ok(l4ChecksumValid(o));
    assert.deepEqual(destinationOf(o), addressBytes(VIP4));
  });

  it('IPv4 TCP shorter than 18 bytes: header checksum patched, address not written (leaves a broken header)', () => {
    const o = out('tcp4-truncated');
    assert.deepEqual(destinationOf(o), addressBytes(RIP4));
    assert.notEqual(word(o, 10), word(edge['tcp4-truncated']!, 10));
    assert.equal(ipv4HeaderValid(o), false);
    assert.deepEqual(o.subarray(20), edge['tcp4-truncated']!.subarray(20));
  });

  it('truncated UDP (IPv4) is rewritten without an L4 fix; truncated TCP over IPv6 is left entirely alone', () => {
    const u = out('udp4-truncated');
    assert.deepEqual(destinationOf(u), addressBytes(VIP4));
    assert.ok(ipv4HeaderValid(u));
    assert.deepEqual(u.subarray(20), edge['udp4-truncated']!.subarray(20));
    assert.deepEqual(out('tcp6-truncated'), edge['tcp6-truncated']);
  });

  it('patches bytes 2-3 of an IPv4 packet carrying protocol 58 (it applies the ICMPv6 rule regardless of family)', () => {
    const o = out('proto58-in-ipv4');
    assert.notEqual(word(o, 22), word(edge['proto58-in-ipv4']!, 22));
  });

  it('keeps bytes after total length, and keeps a wrong IPv4 header checksum exactly as wrong (incremental update)', () => {
    const padded = out('udp4-padded');
    assert.equal(padded.length, edge['udp4-padded']!.length);
    assert.deepEqual(padded.subarray(padded.length - 4), new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    assert.ok(l4ChecksumValid(padded));
    const bad = out('udp4-bad-header-checksum');
    assert.deepEqual(destinationOf(bad), addressBytes(VIP4));
    assert.equal(sumOf(bad.subarray(0, 20)), sumOf(edge['udp4-bad-header-checksum']!.subarray(0, 20)), 'the error residue is preserved');
  });

  it('forward path differs only where the IP stack acts: bad header dropped, padding trimmed, options rewritten', () => {
    assert.equal(forwarded['udp4-bad-header-checksum']!.output, null);
    assert.equal(emitted(forwarded['udp4-padded'], 'udp4-padded').length, edge['udp4-padded']!.length - 4);
    const explained = new Set(['udp4-bad-header-checksum', 'udp4-padded', 'udp4-options']);
    for (const n of names) {
      if (explained.has(n) || forwarded[n]!.note?.includes('cannot tell which')) continue;
      assert.equal(hex(forwarded[n]!.output), hex(result[n]!.output), `${n}: forward path differs (${forwarded[n]!.note ?? 'no note'})`);
    }
  });
});
