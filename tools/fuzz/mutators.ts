// The mutators: each takes a packet (a private copy it may change) and
// returns the mutated packet, aiming at the fields the core reads: version,
// lengths, IHL, the extension-header chain, fragment fields, DSCP, the
// destination, checksum fields and the transport protocol.

import { parseAddress } from '../../src/core/address.js';
import type { Rule } from '../../src/core/types.js';
import { read16 } from '../packets/bytes.js';
import { checksumFor, onesSum } from '../packets/checksum.js';
import { EXT, EXT_HEADER, IPV4, IPV6, IPV6_OPTION, UDP, transportChecksum } from '../packets/layout.js';
import type { Rng } from '../packets/rng.js';
import { VNET, VNET_F_NEEDS_CSUM, readVnet, vnetHeader } from '../packets/vnet.js';
import { findRule } from '../oracle/oracle.js';
import { findTransport, parseFixedHeader } from '../oracle/packet.js';
import { transportSum } from '../oracle/transport.js';
import { fitLengthField, viewOf, write16Within, type PacketView } from './packet-view.js';
import type { FuzzInput } from './harness.js';
import { pseudoSum, seedPlace } from './vnet.js';

export interface MutationContext {
  rng: Rng;
  /** Other inputs to splice with. */
  corpus: readonly FuzzInput[];
  /** Longest input to produce (the slot size), virtio-net header included. */
  maxLength: number;
  rules: readonly Rule[];
  /** Header size of the core's vnet mode; 0: no vnet inputs. */
  vnetBytes?: number;
}

export type Mutator = (p: Uint8Array, ctx: MutationContext) => Uint8Array;

const INTERESTING_8 = [0, 1, 2, 4, 5, 6, 8, 0x0f, 0x10, 0x11, 0x14, 0x20, 0x21, 0x28, 0x2c, 0x32, 0x33, 0x3a, 0x3b, 0x3c,
  0x40, 0x44, 0x45, 0x46, 0x4f, 0x60, 0x61, 0x64, 0x7f, 0x80, 0x88, 0xfe, 0xff];
const PROTOCOLS = [6, 17, 136, 33, 58, 1, 2, 47, 132, 50, 51, 59, 0, 43, 44, 60, 255];
// DSCP values of the fuzz rule set and their neighbours.
const DSCPS = [0, 1, 2, 5, 9, 16, 17, 18, 46, 63];

function clampLength(p: Uint8Array, max: number): Uint8Array {
  return p.length > max ? p.slice(0, max) : p;
}

/** An offset biased towards the headers, where the core looks. */
function offset(p: Uint8Array, rng: Rng): number {
  if (p.length === 0) return 0;
  return rng.oneIn(4) ? rng.below(p.length) : rng.below(Math.min(p.length, 80));
}

const flipBits: Mutator = (p, { rng }) => {
  if (p.length === 0) return p;
  for (let n = rng.range(1, 4); n > 0; n--) p[offset(p, rng)] ^= 1 << rng.below(8);
  return p;
};

const interestingByte: Mutator = (p, { rng }) => {
  if (p.length > 0) p[offset(p, rng)] = rng.pick(INTERESTING_8);
  return p;
};

const randomByte: Mutator = (p, { rng }) => {
  if (p.length > 0) p[offset(p, rng)] = rng.byte();
  return p;
};

const interesting16: Mutator = (p, { rng }) => {
  if (p.length < 2) return p;
  const at = Math.min(offset(p, rng), p.length - 2);
  const v = viewOf(p);
  write16Within(p, at, rng.pick([0, 1, 7, 8, 0x7fff, 0x8000, 0xfffe, 0xffff, p.length, p.length - 1, p.length + 1,
    p.length - v.transportAt, p.length - IPV6.SIZE, rng.next() & 0xffff]));
  return p;
};

/** IPv4 total length / IHL, IPv6 payload length, an extension header's length, the UDP length. */
const lengthLie: Mutator = (p, { rng }) => {
  const v = viewOf(p);
  const choice = rng.below(4);
  if (v.family === 4) {
    if (choice === 0) {
      p[0] = (p[0] & 0xf0) | rng.pick([0, 1, 4, 5, 6, 7, 15, rng.below(16)]);
    } else if (choice === 1) {
      const ihl = (p[0] & 0x0f) * 4;
      write16Within(p, IPV4.TOTAL_LENGTH, rng.pick([0, 0xffff, ihl, ihl - 1, ihl + 1, p.length, p.length - 1, p.length + 1,
        ihl + rng.below(24), rng.below(p.length + 1)]) & 0xffff);
    } else {
      udpLengthLie(p, v, rng);
    }
  } else if (v.family === 6) {
    if (choice === 0 && v.exts.length > 0) {
      const e = rng.pick(v.exts);
      p[e.at + EXT_HEADER.LENGTH] = rng.pick([0, 1, 2, 3, 0x7f, 0xff, rng.byte()]);
    } else if (choice === 1) {
      const payload = p.length - IPV6.SIZE;
      write16Within(p, IPV6.PAYLOAD_LENGTH, rng.pick([0, 0xffff, payload, payload - 1, payload + 1,
        v.transportAt - IPV6.SIZE, v.transportAt - IPV6.SIZE + rng.below(24), rng.below(payload + 1)]) & 0xffff);
    } else {
      udpLengthLie(p, v, rng);
    }
  }
  return p;
};

function udpLengthLie(p: Uint8Array, v: PacketView, rng: Rng): void {
  write16Within(p, v.transportAt + UDP.LENGTH, rng.pick([0, 7, 8, 9, p.length - v.transportAt, 0xffff, rng.next() & 0xffff]));
}

/** Cuts the packet, often at a header boundary, and often fixes the length field so the cut reaches the L4 checks. */
const truncate: Mutator = (p, { rng }) => {
  if (p.length === 0) return p;
  const v = viewOf(p);
  const n = rng.pick([
    rng.below(p.length), 0, 1, 19, 20, 21, 39, 40, 41, v.transportAt, v.transportAt + rng.below(20),
    v.transportAt + rng.pick([3, 4, 7, 8, 17, 18]), p.length - 1,
  ]);
  const out = p.slice(0, Math.max(0, Math.min(n, p.length)));
  if (rng.below(3) !== 0) fitLengthField(out);
  return out;
};

/** Appends bytes: as link padding (length field kept) or as payload (length field grown). */
const extend: Mutator = (p, { rng, maxLength }) => {
  const add = rng.pick([1, 2, 4, 8, rng.range(1, 64)]);
  const out = new Uint8Array(Math.min(p.length + add, maxLength));
  out.set(p.subarray(0, out.length));
  const fill = rng.below(3);
  for (let i = p.length; i < out.length; i++) out[i] = fill === 0 ? 0 : fill === 1 ? 0xff : rng.byte();
  if (rng.oneIn(2)) fitLengthField(out);
  return out;
};

function newExtHeader(rng: Rng, type: number, next: number): Uint8Array {
  let b: Uint8Array;
  if (type === EXT.HOP_BY_HOP || type === EXT.DEST_OPTS) {
    const units = rng.pick([0, 0, 1, 2, 3]);
    b = new Uint8Array((units + 1) * 8);
    b[EXT_HEADER.LENGTH] = units;
    // One PadN option over the rest of the header.
    b[EXT_HEADER.OPTIONS] = IPV6_OPTION.PADN;
    b[EXT_HEADER.OPTIONS + 1] = b.length - EXT_HEADER.OPTIONS - 2;
  } else if (type === EXT.ROUTING) {
    const n = rng.pick([0, 1, 1, 2, 3]);
    b = new Uint8Array(EXT_HEADER.ROUTING_ADDRESSES + 16 * n);
    b[EXT_HEADER.LENGTH] = 2 * n;
    b[EXT_HEADER.ROUTING_TYPE] = rng.pick([0, 2, 3, 4]);
    b[EXT_HEADER.SEGMENTS_LEFT] = rng.pick([0, 0, n, 1, 255]);
    for (let i = EXT_HEADER.ROUTING_ADDRESSES; i < b.length; i++) b[i] = rng.byte();
  } else if (type === EXT.FRAGMENT) {
    b = new Uint8Array(EXT_HEADER.FRAGMENT_SIZE);
    write16Within(b, EXT_HEADER.FRAGMENT_OFFSET_FLAGS, (rng.pick([0, 0, 1, 185, rng.below(0x2000)]) << 3) | rng.below(2));
    write16Within(b, EXT_HEADER.FRAGMENT_ID, rng.next() & 0xffff);
  } else if (type === EXT.AH) {
    const words = rng.range(1, 6);
    b = new Uint8Array((words + 2) * 4);
    b[EXT_HEADER.LENGTH] = words;
  } else {
    // ESP or No Next Header: whatever follows is opaque to the walk.
    b = new Uint8Array(type === EXT.ESP ? rng.pick([8, 16, 24]) : rng.pick([0, 8]));
    for (let i = 0; i < b.length; i++) b[i] = rng.byte();
    return b;
  }
  b[0] = next;
  return b;
}

function splice(p: Uint8Array, at: number, remove: number, insert: Uint8Array, payloadDelta: boolean): Uint8Array {
  const out = new Uint8Array(p.length - remove + insert.length);
  out.set(p.subarray(0, at));
  out.set(insert, at);
  out.set(p.subarray(at + remove), at + insert.length);
  if (payloadDelta && out.length >= IPV6.SIZE) {
    write16Within(out, IPV6.PAYLOAD_LENGTH, (read16(out, IPV6.PAYLOAD_LENGTH) + insert.length - remove) & 0xffff);
  }
  return out;
}

/** IPv6: inserts a new extension header anywhere in the chain, keeping the links and the payload length right. */
const extInsert: Mutator = (p, ctx) => {
  const v = viewOf(p);
  if (v.family !== 6) return p;
  const type = ctx.rng.pick([EXT.HOP_BY_HOP, EXT.ROUTING, EXT.ROUTING, EXT.FRAGMENT, EXT.FRAGMENT, EXT.DEST_OPTS, EXT.AH, EXT.ESP, EXT.NO_NEXT]);
  return insertExt(p, v, ctx.rng.below(v.exts.length + 1), type, ctx);
};

function insertExt(p: Uint8Array, v: PacketView, index: number, type: number, ctx: MutationContext): Uint8Array {
  const linkAt = index < v.exts.length ? v.exts[index].linkAt : v.protocolAt;
  const at = index < v.exts.length ? v.exts[index].at : v.transportAt;
  const h = newExtHeader(ctx.rng, type, p[linkAt]);
  const out = splice(p, at, 0, h, ctx.rng.below(8) !== 0);
  out[linkAt] = type;
  return clampLength(out, ctx.maxLength);
}

const extRemove: Mutator = (p, { rng }) => {
  const v = viewOf(p);
  if (v.family !== 6 || v.exts.length === 0) return p;
  const e = rng.pick(v.exts);
  const next = p[e.at];
  const out = splice(p, e.at, e.length, new Uint8Array(0), rng.below(8) !== 0);
  out[e.linkAt] = next;
  return out;
};

const extDuplicate: Mutator = (p, { rng, maxLength }) => {
  const v = viewOf(p);
  if (v.family !== 6 || v.exts.length === 0) return p;
  const e = rng.pick(v.exts);
  const copy = p.slice(e.at, e.at + e.length);
  const out = splice(p, e.at + e.length, 0, copy, rng.below(8) !== 0);
  out[e.at] = e.type; // the original now names its copy
  return clampLength(out, maxLength);
};

/** Changes what one link of the chain claims comes next, so the chain and the bytes disagree. */
const extRetag: Mutator = (p, { rng }) => {
  const v = viewOf(p);
  if (v.family !== 6) return p;
  const links = [...v.exts.map((e) => e.linkAt), v.protocolAt];
  p[rng.pick(links)] = rng.pick(PROTOCOLS);
  return p;
};

const fragment: Mutator = (p, ctx) => {
  const { rng } = ctx;
  const v = viewOf(p);
  const offsetValue = rng.pick([0, 0, 1, 2, 185, 0x1fff, rng.below(0x2000)]);
  if (v.family === 4) {
    const flags = rng.pick([0, 0x2000, 0x4000, 0x8000, read16(p, IPV4.FLAGS_FRAGMENT) & 0xe000]);
    write16Within(p, IPV4.FLAGS_FRAGMENT, flags | offsetValue);
  } else if (v.family === 6) {
    const frag = v.exts.find((e) => e.type === EXT.FRAGMENT);
    if (!frag) return insertExt(p, v, rng.below(v.exts.length + 1), EXT.FRAGMENT, ctx);
    write16Within(p, frag.at + EXT_HEADER.FRAGMENT_OFFSET_FLAGS, (offsetValue << 3) | rng.below(8));
  }
  return p;
};

function setDscpTo(p: Uint8Array, family: 4 | 6, dscp: number, ecn: number): void {
  if (family === 4) {
    p[IPV4.TOS] = (dscp << 2) | ecn;
  } else {
    const tc = (dscp << 2) | ecn;
    p[0] = (p[0] & 0xf0) | (tc >> 4);
    p[1] = ((tc & 0x0f) << 4) | (p[1] & 0x0f);
  }
}

function ecnOf(p: Uint8Array, family: 4 | 6): number {
  return family === 4 ? p[IPV4.TOS] & 3 : (p[1] >> 4) & 3;
}

const dscp: Mutator = (p, { rng }) => {
  const v = viewOf(p);
  if (v.family === 0) return p;
  setDscpTo(p, v.family, rng.oneIn(4) ? rng.below(64) : rng.pick(DSCPS), rng.oneIn(4) ? rng.below(4) : ecnOf(p, v.family));
  return p;
};

const DESTINATIONS_4 = ['198.51.100.20', '198.51.100.200', '198.51.100.128', '198.51.100.127', '203.0.113.50', '192.0.2.1'];
const DESTINATIONS_6 = ['2001:db8:100::20', '2001:db8:100:80::1', '2001:db8:100:80::ff01', '2001:db8:100:ff::1', '2001:db8:100:7f::1', '2001:db8:203::50', '2001:db8:1::1'];
const destinationBytes = {
  4: DESTINATIONS_4.map(addressBytes),
  6: DESTINATIONS_6.map(addressBytes),
};

function addressBytes(text: string): Uint8Array {
  const a = parseAddress(text);
  if (typeof a === 'string') throw new Error(`fuzz: bad built-in address ${text}: ${a}`);
  return a.bytes;
}

/** Moves the destination into or out of the rule set's prefixes. */
const destination: Mutator = (p, { rng }) => {
  const v = viewOf(p);
  if (v.family === 0) return p;
  const at = v.family === 4 ? IPV4.DESTINATION : IPV6.DESTINATION;
  const bytes = rng.pick(destinationBytes[v.family]);
  if (at + bytes.length <= p.length) p.set(bytes, at);
  if (rng.oneIn(3)) p[at + bytes.length - 1] = rng.byte();
  return p;
};

/** Breaks the IPv4 header or the transport checksum. */
const corruptChecksum: Mutator = (p, { rng }) => {
  const v = viewOf(p);
  if (v.family === 0) return p;
  const field = transportChecksum(v.family === 6 ? 6 : 4, v.protocol)?.field;
  const at = v.family === 4 && (field === undefined || rng.oneIn(2)) ? IPV4.CHECKSUM : field === undefined ? -1 : v.transportAt + field;
  if (at < 0 || at + 2 > p.length) return p;
  const old = read16(p, at);
  write16Within(p, at, rng.pick([0, 0xffff, old ^ 0xffff, (old + 1) & 0xffff, (old - 1) & 0xffff, rng.next() & 0xffff]));
  return p;
};

/**
 * Recomputes the IPv4 header and transport checksums from scratch, so a
 * mutated packet can again be one whose checksums are valid: the case where
 * "valid before, valid after" means something.
 */
export const fixChecksums: Mutator = (p) => {
  const h = parseFixedHeader(p);
  if ('malformed' in h) return p;
  if (h.family === 4) {
    write16Within(p, IPV4.CHECKSUM, 0);
    write16Within(p, IPV4.CHECKSUM, checksumFor(onesSum(p.subarray(0, h.headerLength))));
  }
  const t = findTransport(p, h);
  if ('malformed' in t || t.fragment === 'non-first' || t.opaque) return p;
  const c = transportChecksum(h.family, t.protocol);
  if (!c || t.length < c.minBytes) return p;
  write16Within(p, t.offset + c.field, 0);
  write16Within(p, t.offset + c.field, checksumFor(transportSum(p, h, t)));
  return p;
};

/**
 * Sets a checksum the core will update (IPv4 header or transport) to the
 * value whose incremental update comes out as 0x0000, the case that must be
 * written as 0xFFFF. RFC 1624: HC' = ~(~HC + ~m + m') is zero when
 * ~HC = m - m' (one's complement), m the old words and m' the new ones.
 */
export const checksumToZero: Mutator = (p, { rng, rules }) => {
  let parsed = parseFixedHeader(p);
  if ('malformed' in parsed) return p;
  let r = findRule(rules, parsed.family, parsed.dscp, p.subarray(parsed.dstAt, parsed.dstAt + parsed.addrLen));
  if (r < 0) {
    setDscpTo(p, parsed.family, 1, ecnOf(p, parsed.family));
    parsed = parseFixedHeader(p);
    if ('malformed' in parsed) return p;
    r = findRule(rules, parsed.family, parsed.dscp, p.subarray(parsed.dstAt, parsed.dstAt + parsed.addrLen));
    if (r < 0) return p;
  }
  const h = parsed;
  const dst = () => p.subarray(h.dstAt, h.dstAt + h.addrLen);
  const rule = rules[r];
  const oldSum = onesSum(dst());
  const newSum = onesSum(addressBytes(rule.destination));
  const minus = (a: number, b: number) => (a + 0xffff - b) % 0xffff;
  if (h.family === 4 && rng.oneIn(2)) {
    let notHc = minus(oldSum, newSum);
    if (rule.setDscp !== undefined) {
      const word = read16(p, 0);
      const newWord = (p[0] << 8) | (rule.setDscp << 2) | (p[IPV4.TOS] & 3);
      notHc = (notHc + minus(word, newWord)) % 0xffff;
    }
    write16Within(p, IPV4.CHECKSUM, ~notHc & 0xffff);
    return p;
  }
  const t = findTransport(p, h);
  if ('malformed' in t) return p;
  const c = transportChecksum(h.family, t.protocol);
  if (!c || t.length < c.minBytes) return p;
  write16Within(p, t.offset + c.field, ~minus(oldSum, newSum) & 0xffff);
  return p;
};

const protocol: Mutator = (p, { rng }) => {
  const v = viewOf(p);
  if (v.protocolAt >= 0 && v.protocolAt < p.length) p[v.protocolAt] = rng.oneIn(8) ? rng.byte() : rng.pick(PROTOCOLS);
  return p;
};

const version: Mutator = (p, { rng }) => {
  if (p.length > 0) p[0] = (p[0] & 0x0f) | (rng.pick([4, 6, 0, 5, 7, 15]) << 4);
  return p;
};

/** Two-point crossover with another input: this one's head, the other's tail. */
const crossover: Mutator = (p, { rng, corpus, maxLength }) => {
  if (corpus.length === 0) return p;
  const q = rng.pick(corpus).bytes;
  const a = rng.below(p.length + 1);
  const b = rng.oneIn(2) ? a : rng.below(q.length + 1);
  const out = new Uint8Array(Math.min(a + q.length - Math.min(b, q.length), maxLength));
  out.set(p.subarray(0, Math.min(a, out.length)));
  if (out.length > a) out.set(q.subarray(b, b + out.length - a), a);
  if (rng.oneIn(2)) fitLengthField(out);
  return out;
};

/** Another input's transport (everything after the headers) behind this one's headers. */
const transportSwap: Mutator = (p, { rng, corpus, maxLength }) => {
  if (corpus.length === 0) return p;
  const q = rng.pick(corpus).bytes;
  const vp = viewOf(p);
  const vq = viewOf(q);
  const head = p.subarray(0, Math.min(vp.transportAt, p.length));
  const tail = q.subarray(Math.min(vq.transportAt, q.length));
  const out = new Uint8Array(Math.min(head.length + tail.length, maxLength));
  out.set(head.subarray(0, out.length));
  if (out.length > head.length) out.set(tail.subarray(0, out.length - head.length), head.length);
  if (vq.protocolAt >= 0 && vp.protocolAt >= 0 && vp.protocolAt < out.length) out[vp.protocolAt] = q[vq.protocolAt];
  fitLengthField(out);
  return out;
};

/** Every mutator with its relative weight. */
export const MUTATORS: readonly { name: string; weight: number; run: Mutator }[] = [
  { name: 'flip-bits', weight: 6, run: flipBits },
  { name: 'interesting-byte', weight: 4, run: interestingByte },
  { name: 'random-byte', weight: 3, run: randomByte },
  { name: 'interesting-16', weight: 3, run: interesting16 },
  { name: 'length-lie', weight: 5, run: lengthLie },
  { name: 'truncate', weight: 4, run: truncate },
  { name: 'extend', weight: 3, run: extend },
  { name: 'ext-insert', weight: 4, run: extInsert },
  { name: 'ext-remove', weight: 2, run: extRemove },
  { name: 'ext-duplicate', weight: 2, run: extDuplicate },
  { name: 'ext-retag', weight: 2, run: extRetag },
  { name: 'fragment', weight: 3, run: fragment },
  { name: 'dscp', weight: 4, run: dscp },
  { name: 'destination', weight: 3, run: destination },
  { name: 'corrupt-checksum', weight: 3, run: corruptChecksum },
  { name: 'fix-checksums', weight: 2, run: fixChecksums },
  { name: 'checksum-to-zero', weight: 2, run: checksumToZero },
  { name: 'protocol', weight: 3, run: protocol },
  { name: 'version', weight: 1, run: version },
  { name: 'crossover', weight: 2, run: crossover },
  { name: 'transport-swap', weight: 2, run: transportSwap },
];

const totalWeight = MUTATORS.reduce((n, m) => n + m.weight, 0);

function pickMutator(rng: Rng): Mutator {
  let w = rng.below(totalWeight);
  for (const m of MUTATORS) {
    if (w < m.weight) return m.run;
    w -= m.weight;
  }
  return MUTATORS[0].run;
}

/**
 * AFL-style havoc: a stack of 1, 2, 4 or 8 random mutations on a copy of
 * `parent`, then, one time in three, checksums made valid again.
 */
export function mutate(parent: Uint8Array, ctx: MutationContext): Uint8Array {
  let p: Uint8Array = parent.slice();
  for (let n = 1 << ctx.rng.below(4); n > 0; n--) p = pickMutator(ctx.rng)(p, ctx);
  if (ctx.rng.oneIn(3)) p = fixChecksums(p, ctx);
  return clampLength(p, ctx.maxLength);
}

/** Writes the right NEEDS_CSUM seed (the pseudo-header sum) into the transport checksum field, if there is one. */
export function writeSeed(p: Uint8Array): Uint8Array {
  const place = seedPlace(p);
  if (place) write16Within(p, place.field, pseudoSum(p, place));
  return p;
}

/** A header that says NEEDS_CSUM at the field a rewrite would fix (UDP's place when there is none). */
function consistentHeader(p: Uint8Array): Uint8Array {
  const place = seedPlace(p);
  const v = viewOf(p);
  return vnetHeader({
    flags: VNET_F_NEEDS_CSUM,
    csumStart: place ? place.t.offset : v.transportAt,
    csumOffset: place ? place.c.field : transportChecksum(v.family === 6 ? 6 : 4, v.protocol)?.field ?? UDP.CHECKSUM,
  });
}

/** Changes the virtio-net header and, for a realistic NEEDS_CSUM packet, the seed. */
function mutateVnet(vnet: Uint8Array, p: Uint8Array, rng: Rng): { vnet: Uint8Array; bytes: Uint8Array } {
  // Only the fields the core reads: the fuzzer's headers keep the GSO fields zero.
  const { flags, csumStart, csumOffset } = vnet.length >= VNET.SIZE ? readVnet(vnet) : { flags: 0, csumStart: 0, csumOffset: 0 };
  const f = { flags, csumStart, csumOffset };
  switch (rng.below(6)) {
    case 0: return { vnet: consistentHeader(p), bytes: writeSeed(p) };
    case 1: return { vnet: consistentHeader(p), bytes: p };
    case 2: return { vnet: vnetHeader({ ...f, flags: rng.oneIn(2) ? f.flags ^ VNET_F_NEEDS_CSUM : rng.byte() }), bytes: p };
    case 3: return { vnet: vnetHeader({ ...f, csumStart: rng.pick([f.csumStart + 1, f.csumStart - 1, 20, 40, 48, rng.next() & 0xffff]) }), bytes: p };
    case 4: return { vnet: vnetHeader({ ...f, csumOffset: rng.pick([0, 2, 6, 16, f.csumOffset + 1, rng.next() & 0xffff]) }), bytes: p };
    // A slot too short to hold the header at all.
    default: return { vnet: vnet.slice(0, rng.below(VNET.SIZE)), bytes: new Uint8Array(0) };
  }
}

/**
 * Mutates an input: its packet by mutate(), and in a core with a vnet mode,
 * now and then its virtio-net header too (added, dropped or changed).
 */
export function mutateInput(parent: FuzzInput, ctx: MutationContext): FuzzInput {
  const vnetBytes = ctx.vnetBytes ?? 0;
  let vnet = parent.vnet?.length === vnetBytes ? parent.vnet : undefined;
  let bytes = mutate(parent.bytes, { ...ctx, maxLength: ctx.maxLength - vnetBytes });
  if (vnetBytes > 0) {
    if (ctx.rng.oneIn(16)) {
      vnet = vnet ? undefined : consistentHeader(bytes);
      if (vnet && ctx.rng.oneIn(2)) bytes = writeSeed(bytes);
    } else if (vnet && ctx.rng.oneIn(3)) {
      ({ vnet, bytes } = mutateVnet(vnet, bytes, ctx.rng));
    }
  }
  return vnet ? { vnet, bytes } : { bytes };
}
