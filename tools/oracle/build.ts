// Builds IPv4/IPv6 packets with correct lengths and checksums, for tests,
// the fuzzer's seed corpus and benchmarks.

import { parseAddress } from '../../src/core/address.js';
import { checksumFor, onesSum, pseudoHeaderSum, write16 } from './checksum.js';
import { transportChecksum } from './transport.js';

export const PROTO = { ICMP: 1, IGMP: 2, TCP: 6, UDP: 17, GRE: 47, ESP: 50, AH: 51, ICMPV6: 58, NONE: 59, SCTP: 132, DCCP: 33, UDPLITE: 136 } as const;

export type ExtHeader =
  | { type: 'hop-by-hop' | 'destination-options'; length?: number }
  | { type: 'routing'; segmentsLeft: number; addresses?: number }
  | { type: 'fragment'; offset: number; more: boolean; id?: number }
  | { type: 'ah'; length?: number };

export interface PacketSpec {
  src: string;
  dst: string;
  dscp?: number;
  ecn?: number;
  ttl?: number;
  protocol: number;
  /** Transport header and payload (checksum field as given unless `checksum` says otherwise). */
  transport: Uint8Array;
  /** 'valid' (default): computed over the transport bytes; 'zero': 0; a number: that value. */
  checksum?: 'valid' | 'zero' | number;
  /** IPv4 only: options (padded to 4 bytes). */
  options?: Uint8Array;
  /** IPv4 only: fragment offset in 8-byte units and More Fragments. */
  fragment?: { offset: number; more: boolean };
  /** IPv4 only: a wrong header checksum (this value) instead of the right one. */
  headerChecksum?: number;
  /** IPv6 only: extension headers in order. */
  ext?: ExtHeader[];
  /** Bytes after the IP packet (link padding). */
  padding?: number;
}

const EXT_CODE = { 'hop-by-hop': 0, routing: 43, fragment: 44, 'destination-options': 60, ah: 51 } as const;

function addr(text: string): Uint8Array {
  const a = parseAddress(text);
  if (typeof a === 'string') throw new Error(`${text}: ${a}`);
  return a.bytes;
}

function extBytes(h: ExtHeader, next: number): Uint8Array {
  let b: Uint8Array;
  switch (h.type) {
    case 'hop-by-hop':
    case 'destination-options': {
      const units = h.length ?? 0;
      b = new Uint8Array((units + 1) * 8);
      b[1] = units;
      b[2] = 1; // PadN option filling the rest
      b[3] = b.length - 4;
      break;
    }
    case 'routing': {
      const n = h.addresses ?? Math.max(1, h.segmentsLeft);
      b = new Uint8Array(8 + 16 * n);
      b[1] = 2 * n;
      b[2] = 4; // Segment Routing; any type works for the walk
      b[3] = h.segmentsLeft;
      break;
    }
    case 'fragment':
      b = new Uint8Array(8);
      write16(b, 2, (h.offset << 3) | (h.more ? 1 : 0));
      write16(b, 6, h.id ?? 0x1234);
      break;
    case 'ah': {
      const words = h.length ?? 4; // payload length in 4-byte units minus 2
      b = new Uint8Array((words + 2) * 4);
      b[1] = words;
      break;
    }
  }
  b[0] = next;
  return b;
}

/** Builds the packet; checksums valid unless the spec asks otherwise. */
export function buildPacket(spec: PacketSpec): Uint8Array {
  const src = addr(spec.src);
  const dst = addr(spec.dst);
  if (src.length !== dst.length) throw new Error('source and destination families differ');
  const v6 = src.length === 16;
  const transport = spec.transport.slice();
  const family = v6 ? 6 : 4;
  const c = transportChecksum(family, spec.protocol);
  const fragmentOffset = v6 ? spec.ext?.find((e) => e.type === 'fragment') : spec.fragment;
  const carriesTransportHeader = !fragmentOffset || (fragmentOffset as { offset: number }).offset === 0;
  if (c && carriesTransportHeader && transport.length >= c.field + 2 && spec.checksum !== undefined && spec.checksum !== 'valid') {
    write16(transport, c.field, spec.checksum === 'zero' ? 0 : spec.checksum);
  } else if (c && carriesTransportHeader && transport.length >= c.field + 2) {
    write16(transport, c.field, 0);
    const seed = pseudoHeaderSum(src, dst, spec.protocol, transport.length);
    write16(transport, c.field, checksumFor(onesSum(transport, seed)));
  }
  const tos = ((spec.dscp ?? 0) << 2) | ((spec.ecn ?? 0) & 3);
  if (!v6) {
    const options = spec.options ?? new Uint8Array(0);
    const ihl = 20 + Math.ceil(options.length / 4) * 4;
    const total = ihl + transport.length;
    const p = new Uint8Array(total + (spec.padding ?? 0));
    p[0] = 0x40 | (ihl / 4);
    p[1] = tos;
    write16(p, 2, total);
    write16(p, 4, 0xbeef);
    if (spec.fragment) write16(p, 6, (spec.fragment.more ? 0x2000 : 0) | spec.fragment.offset);
    p[8] = spec.ttl ?? 64;
    p[9] = spec.protocol;
    p.set(src, 12);
    p.set(dst, 16);
    p.set(options, 20);
    write16(p, 10, spec.headerChecksum ?? checksumFor(onesSum(p.subarray(0, ihl))));
    p.set(transport, ihl);
    return p;
  }
  const ext = spec.ext ?? [];
  const parts: Uint8Array[] = [];
  ext.forEach((h, i) => parts.push(extBytes(h, i + 1 < ext.length ? EXT_CODE[ext[i + 1].type] : spec.protocol)));
  const extLen = parts.reduce((n, b) => n + b.length, 0);
  const payload = extLen + transport.length;
  const p = new Uint8Array(40 + payload + (spec.padding ?? 0));
  p[0] = 0x60 | (tos >> 4);
  p[1] = (tos & 0x0f) << 4;
  write16(p, 4, payload);
  p[6] = ext.length > 0 ? EXT_CODE[ext[0].type] : spec.protocol;
  p[7] = spec.ttl ?? 64;
  p.set(src, 8);
  p.set(dst, 24);
  let at = 40;
  for (const b of parts) { p.set(b, at); at += b.length; }
  p.set(transport, at);
  return p;
}

/** A TCP header (20 bytes, ACK|PSH) plus `payload` bytes of a pattern. */
export function tcp(payload = 0, ports: [number, number] = [40000, 80]): Uint8Array {
  const b = new Uint8Array(20 + payload);
  write16(b, 0, ports[0]);
  write16(b, 2, ports[1]);
  b.set([0, 0, 0x10, 0x01, 0, 0, 0x20, 0x02], 4);
  b[12] = 5 << 4;
  b[13] = 0x18;
  write16(b, 14, 65535);
  for (let i = 20; i < b.length; i++) b[i] = (i * 7) & 0xff;
  return b;
}

/** A UDP header (length filled in) plus `payload` bytes. UDP-Lite: the same layout, coverage 0 = whole. */
export function udp(payload = 0, ports: [number, number] = [40000, 53], lite = false): Uint8Array {
  const b = new Uint8Array(8 + payload);
  write16(b, 0, ports[0]);
  write16(b, 2, ports[1]);
  write16(b, 4, lite ? 0 : b.length);
  for (let i = 8; i < b.length; i++) b[i] = (i * 13) & 0xff;
  return b;
}

/** A DCCP generic header (16 bytes with extended sequence numbers, CsCov 0). */
export function dccp(payload = 0): Uint8Array {
  const b = new Uint8Array(16 + payload);
  write16(b, 0, 40000);
  write16(b, 2, 5001);
  b[4] = 4; // data offset in 32-bit words
  b[8] = (2 << 1) | 1; // type Request? (X=1)
  for (let i = 16; i < b.length; i++) b[i] = i & 0xff;
  return b;
}

/** An ICMP or ICMPv6 echo request. */
export function echo(v6: boolean, payload = 8): Uint8Array {
  const b = new Uint8Array(8 + payload);
  b[0] = v6 ? 128 : 8;
  write16(b, 4, 0x4242);
  write16(b, 6, 1);
  for (let i = 8; i < b.length; i++) b[i] = i & 0xff;
  if (!v6) write16(b, 2, checksumFor(onesSum(b)));
  return b;
}
