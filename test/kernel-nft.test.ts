// The kernel reference harness (test/support/kernel-nft.ts) checked against
// checksums computed here from scratch, plus what the kernel's nftables
// actually does in the corner cases docs/semantics.md talks about. The
// second part asserts measured kernel behaviour: if a kernel changes it,
// these tests say which claim no longer holds. Needs root (skipped without it).
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rewriteWithKernel, undoIpv4TtlDecrement, type KernelResult, type KernelRule } from './support/kernel-nft.js';
import { privileged } from './support/privilege.js';
import {
  PROTO, authHeader, bytes, dccp, fragmentHeader, icmpEcho, icmpv6Echo, ipv4, ipv6, opaque, optionsHeader, parseIpv4, parseIpv6,
  routingHeader, tcp, udp, udpLite, type ExtensionHeader, type Segment,
} from './support/kernel-nft-packets.js';

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

function onesSum(parts: readonly Uint8Array[]): number {
  let sum = 0;
  for (const p of parts) {
    for (let k = 0; k < p.length; k += 2) sum += (p[k]! << 8) | (p[k + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

const word = (p: Uint8Array, at: number): number => (p[at]! << 8) | p[at + 1]!;

interface L4View {
  protocol: number;
  /** Absolute offset of the L4 header. */
  offset: number;
  /** L4 length according to the IP header. */
  length: number;
  pseudo: Uint8Array;
  /** Fragment offset (non-zero: no L4 header here). */
  fragmentOffset: number;
}

function l4Of(p: Uint8Array, finalDestination?: Uint8Array): L4View {
  if (p[0]! >> 4 === 4) {
    const ihl = (p[0]! & 0x0f) * 4;
    const length = word(p, 2) - ihl;
    const pseudo = new Uint8Array([...p.subarray(12, 20), 0, p[9]!, length >> 8, length & 0xff]);
    return { protocol: p[9]!, offset: ihl, length, pseudo, fragmentOffset: word(p, 6) & 0x1fff };
  }
  let next = p[6]!;
  let at = 40;
  let fragmentOffset = 0;
  for (;;) {
    if (next === PROTO.hopByHop || next === PROTO.ipv6Routing || next === PROTO.ipv6DestOpts) {
      [next, at] = [p[at]!, at + (p[at + 1]! + 1) * 8];
    } else if (next === PROTO.ipv6Fragment) {
      fragmentOffset = word(p, at + 2) >> 3;
      [next, at] = [p[at]!, at + 8];
    } else break;
  }
  const length = 40 + word(p, 4) - at;
  const dst = finalDestination ?? p.subarray(24, 40);
  const pseudo = new Uint8Array([...p.subarray(8, 24), ...dst, 0, 0, length >> 8, length & 0xff, 0, 0, 0, next]);
  return { protocol: next, offset: at, length, pseudo, fragmentOffset };
}

/** Where the L4 checksum of a protocol sits and whether it covers a pseudo-header. */
const L4_CHECKSUM: Record<number, { at: number; pseudo: boolean }> = {
  [PROTO.tcp]: { at: 16, pseudo: true },
  [PROTO.udp]: { at: 6, pseudo: true },
  [PROTO.udpLite]: { at: 6, pseudo: true },
  [PROTO.dccp]: { at: 6, pseudo: true },
  [PROTO.icmpv6]: { at: 2, pseudo: true },
  [PROTO.icmp]: { at: 2, pseudo: false },
};

const ipv4HeaderValid = (p: Uint8Array): boolean => onesSum([p.subarray(0, (p[0]! & 0x0f) * 4)]) === 0xffff;

function l4ChecksumValid(p: Uint8Array, finalDestination?: Uint8Array): boolean {
  const l4 = l4Of(p, finalDestination);
  const spec = L4_CHECKSUM[l4.protocol];
  assert.ok(spec !== undefined && l4.fragmentOffset === 0, 'no L4 checksum to check');
  const segment = p.subarray(l4.offset, l4.offset + l4.length);
  return onesSum(spec.pseudo ? [l4.pseudo, segment] : [segment]) === 0xffff;
}

const l4ChecksumField = (p: Uint8Array): number => {
  const l4 = l4Of(p);
  return word(p, l4.offset + L4_CHECKSUM[l4.protocol]!.at);
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
    const payload = bytes((k * 37) % 301, seed++);
    const kind = Math.floor(k / 2) % 4;
    const segments: Segment[] = [
      tcp(1024 + k, 80, payload),
      udp(2048 + k, 53, payload),
      udpLite(4096 + k, 5000, payload),
      family === 4 ? icmpEcho(k, payload) : icmpv6Echo(k, payload),
    ];
    const seg = segments[kind]!;
    const rule = RULES.find((r) => r.family === family && r.dscp === dscp);
    const tos = (dscp << 2) | ecn;
    let packet: Uint8Array;
    if (family === 4) {
      const options = k % 7 === 0 ? new Uint8Array([1, 1, 1, 0]) : undefined; // NOP NOP NOP EOL
      packet = ipv4({ src: CLIENT4, dst: RIP4, tos, id: k, dontFragment: k % 3 === 0, options }, seg);
    } else {
      const ext: ExtensionHeader[] = k % 5 === 0 ? [optionsHeader(PROTO.hopByHop), optionsHeader(PROTO.ipv6DestOpts)] : [];
      packet = ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos, flowLabel: k * 977 }, seg, ext);
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
      assert.deepEqual(destinationOf(out), v4 ? parseIpv4(c.expect) : parseIpv6(c.expect), `${c.label}: destination`);
      if (v4) assert.ok(ipv4HeaderValid(out), `${c.label}: IPv4 header checksum ${hex(out)}`);
      assert.ok(l4ChecksumValid(out), `${c.label}: L4 checksum ${hex(out)}`);
      const l4 = l4Of(c.packet);
      const csum = l4.offset + L4_CHECKSUM[l4.protocol]!.at;
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
    const inside4 = ipv4({ src: CLIENT4, dst: RIP4, tos: (1 << 2) | 3 }, udp(1, 2, bytes(30, 5)));
    const outside4 = ipv4({ src: CLIENT4, dst: '198.51.100.200', tos: 1 << 2 }, udp(1, 2, bytes(30, 5)));
    const inside6 = ipv6({ src: CLIENT6, dst: RIP6, trafficClass: (1 << 2) | 1, flowLabel: 0xabcde }, tcp(1, 2, bytes(30, 6)));
    const [a, b, c] = await rewriteWithKernel([inside4, outside4, inside6], rules);
    const o4 = emitted(a, 'inside4');
    assert.equal(o4[1], (9 << 2) | 3, 'DSCP set, ECN kept');
    assert.ok(ipv4HeaderValid(o4) && l4ChecksumValid(o4));
    assert.deepEqual(destinationOf(o4), parseIpv4(VIP4));
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
  const at = L4_CHECKSUM[l4.protocol]!.at;
  seg[at] = 0;
  seg[at + 1] = 0;
  return onesSum([l4.pseudo, seg]);
}

function headerSumWithoutChecksum(p: Uint8Array): number {
  const h = p.slice(0, (p[0]! & 0x0f) * 4);
  h[10] = 0;
  h[11] = 0;
  return onesSum([h]);
}

describe('what the kernel nftables rewrite does (measured, reference for docs/semantics.md)', privileged('runs nftables in a network namespace with TUN devices'), () => {
  const tos1 = 1 << 2;
  const p = (n: number) => bytes(n, 99);
  const edge: Record<string, Uint8Array> = {};
  const add = (name: string, packet: Uint8Array) => { edge[name] = packet; };

  // Zero results: the fill word sits right after each L4 header.
  const filled = (w: number) => new Uint8Array([w >> 8, w & 0xff, ...p(10)]);
  add('tcp4-zero', zeroAfterRewrite(4, (w, dst) => ipv4({ src: CLIENT4, dst, tos: tos1 }, tcp(1, 2, filled(w))), 40, l4SumWithoutChecksum));
  add('udp4-zero', zeroAfterRewrite(4, (w, dst) => ipv4({ src: CLIENT4, dst, tos: tos1 }, udp(1, 2, filled(w))), 28, l4SumWithoutChecksum));
  add('udplite4-zero', zeroAfterRewrite(4, (w, dst) => ipv4({ src: CLIENT4, dst, tos: tos1 }, udpLite(1, 2, filled(w))), 28, l4SumWithoutChecksum));
  add('icmpv6-zero', zeroAfterRewrite(6, (w, dst) => ipv6({ src: CLIENT6, dst, trafficClass: tos1 }, icmpv6Echo(7, filled(w))), 48, l4SumWithoutChecksum));
  add('tcp6-zero', zeroAfterRewrite(6, (w, dst) => ipv6({ src: CLIENT6, dst, trafficClass: tos1 }, tcp(1, 2, filled(w))), 60, l4SumWithoutChecksum));
  add('ipv4-header-zero', zeroAfterRewrite(4, (w, dst) => ipv4({ src: CLIENT4, dst, tos: tos1, id: w }, icmpEcho(1, p(8))), 4, headerSumWithoutChecksum));

  const udp4 = ipv4({ src: CLIENT4, dst: RIP4, tos: tos1 }, udp(5, 6, p(20)));
  add('udp4-no-checksum', ipv4({ src: CLIENT4, dst: RIP4, tos: tos1 }, udp(5, 6, p(20), true)));
  add('udp6-zero-checksum', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, udp(5, 6, p(20), true)));
  const liteZero = ipv4({ src: CLIENT4, dst: RIP4, tos: tos1 }, udpLite(5, 6, p(20)));
  liteZero[26] = 0;
  liteZero[27] = 0;
  add('udplite4-zero-checksum', liteZero);
  add('dccp4', ipv4({ src: CLIENT4, dst: RIP4, tos: tos1 }, dccp(5, 6, p(24))));
  add('dccp6', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, dccp(5, 6, p(24))));

  // Fragments: the first carries the whole datagram's checksum, later ones no L4 header.
  const whole4 = udp(7, 8, p(64));
  add('udp4-whole', ipv4({ src: CLIENT4, dst: RIP4, tos: tos1, id: 77 }, whole4));
  const full4 = ipv4({ src: CLIENT4, dst: RIP4, tos: tos1, id: 77 }, whole4);
  add('udp4-first-fragment', ipv4({ src: CLIENT4, dst: RIP4, tos: tos1, id: 77, moreFragments: true }, opaque(PROTO.udp, full4.subarray(20, 20 + 48)), false));
  add('udp4-later-fragment', ipv4({ src: CLIENT4, dst: RIP4, tos: tos1, id: 77, fragmentOffset: 6 }, opaque(PROTO.udp, full4.subarray(20 + 48)), false));
  const whole6 = udp(7, 8, p(64));
  add('udp6-whole', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, whole6));
  const full6 = ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, whole6);
  add('udp6-first-fragment', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, opaque(PROTO.udp, full6.subarray(40, 40 + 48)), [fragmentHeader(0, true, 9)], undefined, false));
  add('udp6-later-fragment', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, opaque(PROTO.udp, full6.subarray(40 + 48)), [fragmentHeader(6, false, 9)], undefined, false));

  const final = '2001:db8:77::1';
  add('tcp6-routing-left1', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, tcp(1, 2, p(16)), [routingHeader(0, 1, [final])], final));
  add('tcp6-routing-left0', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, tcp(1, 2, p(16)), [routingHeader(0, 0, [final])]));
  add('tcp6-hbh-dstopts', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, tcp(1, 2, p(16)), [optionsHeader(PROTO.hopByHop), optionsHeader(PROTO.ipv6DestOpts)]));
  add('tcp6-ah', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, tcp(1, 2, p(16)), [authHeader(0x100)]));
  add('esp6', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, opaque(PROTO.esp, p(40))));

  // Record Route (7), length 11, pointer 4, room for two addresses, then EOL.
  add('udp4-options', ipv4({ src: CLIENT4, dst: RIP4, tos: tos1, options: new Uint8Array([7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]) }, udp(5, 6, p(20))));
  add('tcp4-truncated', ipv4({ src: CLIENT4, dst: RIP4, tos: tos1 }, opaque(PROTO.tcp, tcp(1, 2, new Uint8Array(0)).bytes.subarray(0, 10))));
  add('udp4-truncated', ipv4({ src: CLIENT4, dst: RIP4, tos: tos1 }, opaque(PROTO.udp, udp(1, 2, new Uint8Array(0)).bytes.subarray(0, 6))));
  add('tcp6-truncated', ipv6({ src: CLIENT6, dst: RIP6, trafficClass: tos1 }, opaque(PROTO.tcp, tcp(1, 2, new Uint8Array(0)).bytes.subarray(0, 10))));
  add('proto58-in-ipv4', ipv4({ src: CLIENT4, dst: RIP4, tos: tos1 }, opaque(PROTO.icmpv6, icmpv6Echo(3, p(12)).bytes)));
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
    assert.deepEqual(destinationOf(out('udp4-no-checksum')), parseIpv4(VIP4));
    assert.equal(l4ChecksumField(out('udp6-zero-checksum')), 0);
    // RFC 1624 eqn. 3 from an old checksum of 0: ~(~0 + ~m + m').
    const old = parseIpv4(RIP4);
    const vip = parseIpv4(VIP4);
    const notOld = old.map((b) => ~b & 0xff);
    const expected = ~onesSum([new Uint8Array([0xff, 0xff]), notOld, vip]) & 0xffff;
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
      assert.deepEqual(destinationOf(later), f === '4' ? parseIpv4(VIP4) : parseIpv6(VIP6));
      if (f === '4') assert.ok(ipv4HeaderValid(later));
    }
  });

  it('applies the L4 delta under a Routing header with Segments Left > 0 (breaking a checksum made for the final destination)', () => {
    const left1 = out('tcp6-routing-left1');
    const final = parseIpv6('2001:db8:77::1');
    assert.ok(l4ChecksumValid(edge['tcp6-routing-left1']!, final), 'input valid for its final destination');
    assert.notEqual(l4ChecksumField(left1), l4ChecksumField(edge['tcp6-routing-left1']!));
    assert.equal(l4ChecksumValid(left1, final), false);
    assert.ok(l4ChecksumValid(out('tcp6-routing-left0')), 'segments left 0: plain destination, valid');
  });

  it('finds TCP behind Hop-by-Hop and Destination Options, and stops at AH and ESP', () => {
    assert.ok(l4ChecksumValid(out('tcp6-hbh-dstopts')));
    const ah = out('tcp6-ah');
    assert.deepEqual(destinationOf(ah), parseIpv6(VIP6));
    assert.deepEqual(ah.subarray(40), edge['tcp6-ah']!.subarray(40), 'nothing after the IPv6 header changed');
    const esp = out('esp6');
    assert.deepEqual(esp.subarray(40), edge.esp6!.subarray(40));
    assert.deepEqual(destinationOf(esp), parseIpv6(VIP6));
  });

  it('handles IPv4 options: L4 found after them, both checksums valid', () => {
    const o = out('udp4-options');
    assert.ok(ipv4HeaderValid(o));
    assert.ok(l4ChecksumValid(o));
    assert.deepEqual(destinationOf(o), parseIpv4(VIP4));
  });

  it('IPv4 TCP shorter than 18 bytes: header checksum patched, address not written (leaves a broken header)', () => {
    const o = out('tcp4-truncated');
    assert.deepEqual(destinationOf(o), parseIpv4(RIP4));
    assert.notEqual(word(o, 10), word(edge['tcp4-truncated']!, 10));
    assert.equal(ipv4HeaderValid(o), false);
    assert.deepEqual(o.subarray(20), edge['tcp4-truncated']!.subarray(20));
  });

  it('truncated UDP (IPv4) is rewritten without an L4 fix; truncated TCP over IPv6 is left entirely alone', () => {
    const u = out('udp4-truncated');
    assert.deepEqual(destinationOf(u), parseIpv4(VIP4));
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
    assert.deepEqual(destinationOf(bad), parseIpv4(VIP4));
    assert.equal(onesSum([bad.subarray(0, 20)]), onesSum([edge['udp4-bad-header-checksum']!.subarray(0, 20)]), 'the error residue is preserved');
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
