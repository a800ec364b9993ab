// Builds packets for the tests, the fuzzer's seed corpus and the benchmarks:
// IPv4 (options, fragments) and IPv6 (extension headers) around TCP, UDP,
// UDP-Lite, DCCP and ICMP segments, Ethernet frames and ARP, with correct
// lengths and every checksum computed from scratch (./checksum.ts) unless a
// spec asks for a wrong one. It uses nothing of the core, so the kernel
// reference tests build with it too. The header writers work in place, so
// the streaming capture generator (tools/capture/generate.ts) needs no
// allocation per packet.

import { ETHERNET, ETHERTYPE, LINUX_SLL, LINUX_SLL2 } from '../../src/pcap/linklayer.js';
import { addressBytes } from './address.js';
import { write16, write32 } from './bytes.js';
import { checksumFor, onesSum, pseudoHeaderSum } from './checksum.js';
import { ARP, DCCP, EXT, EXT_HEADER, ICMP, IPV4, IPV4_FLAGS, IPV6, IPV6_OPTION, TCP, UDP, transportChecksum } from './layout.js';

export type ExtHeader =
  | { type: 'hop-by-hop' | 'destination-options'; length?: number }
  /** `addresses`: a count of zero addresses, or the addresses themselves. */
  | { type: 'routing'; segmentsLeft: number; addresses?: number | readonly string[]; routingType?: number }
  | { type: 'fragment'; offset: number; more: boolean; id?: number }
  | { type: 'ah'; length?: number; spi?: number };

export interface PacketSpec {
  src: string;
  dst: string;
  dscp?: number;
  ecn?: number;
  ttl?: number;
  protocol: number;
  /** Transport header and payload (checksum field as given unless `checksum` says otherwise). */
  transport: Uint8Array;
  /**
   * 'valid' (default): computed over the transport bytes; 'zero': 0; 'keep':
   * as the transport bytes have it (a fragment of a datagram checksummed
   * whole); a number: that value.
   */
  checksum?: 'valid' | 'zero' | 'keep' | number;
  /** IPv4 only: options (padded to 4 bytes). */
  options?: Uint8Array;
  /** IPv4 only: fragment offset in 8-byte units and More Fragments. */
  fragment?: { offset: number; more: boolean };
  /** IPv4 only: Don't Fragment. */
  dontFragment?: boolean;
  /** IPv4 only: the identification (default 0xBEEF). */
  id?: number;
  /** IPv4 only: a wrong header checksum (this value) instead of the right one. */
  headerChecksum?: number;
  /** IPv6 only: the flow label. */
  flowLabel?: number;
  /** IPv6 only: extension headers in order. */
  ext?: ExtHeader[];
  /** IPv6 only: the destination the transport checksum covers when it is not `dst` (a Routing header's last address, RFC 8200 §8.1). */
  finalDestination?: string;
  /** Bytes after the IP packet (link padding). */
  padding?: number;
}

const EXT_CODE = { 'hop-by-hop': EXT.HOP_BY_HOP, routing: EXT.ROUTING, fragment: EXT.FRAGMENT, 'destination-options': EXT.DEST_OPTS, ah: EXT.AH } as const;
const DEFAULT_TTL = 64;
const DEFAULT_IPV4_ID = 0xbeef;
const DEFAULT_FRAGMENT_ID = 0x1234;
const SEGMENT_ROUTING = 4;
const TCP_PSH_ACK = 0x18;
const DCCP_DATA_X = (2 << 1) | 1;
const ICMP_ECHO_REQUEST = 8;
const ICMPV6_ECHO_REQUEST = 128;
const ARP_REQUEST = 1;
const ARPHRD_ETHER = 1;

function extBytes(h: ExtHeader, next: number): Uint8Array {
  let b: Uint8Array;
  switch (h.type) {
    case 'hop-by-hop':
    case 'destination-options': {
      const units = h.length ?? 0;
      b = new Uint8Array((units + 1) * 8);
      b[EXT_HEADER.LENGTH] = units;
      // One PadN option filling the rest.
      b[EXT_HEADER.OPTIONS] = IPV6_OPTION.PADN;
      b[EXT_HEADER.OPTIONS + 1] = b.length - EXT_HEADER.OPTIONS - 2;
      break;
    }
    case 'routing': {
      const list = typeof h.addresses === 'object' ? h.addresses : undefined;
      const n = list?.length ?? (h.addresses as number | undefined) ?? Math.max(1, h.segmentsLeft);
      b = new Uint8Array(EXT_HEADER.ROUTING_ADDRESSES + 16 * n);
      b[EXT_HEADER.LENGTH] = 2 * n;
      // Segment Routing by default: any type works for the walk.
      b[EXT_HEADER.ROUTING_TYPE] = h.routingType ?? SEGMENT_ROUTING;
      b[EXT_HEADER.SEGMENTS_LEFT] = h.segmentsLeft;
      list?.forEach((a, k) => b.set(addressBytes(a, 6), EXT_HEADER.ROUTING_ADDRESSES + 16 * k));
      break;
    }
    case 'fragment':
      b = new Uint8Array(EXT_HEADER.FRAGMENT_SIZE);
      write16(b, EXT_HEADER.FRAGMENT_OFFSET_FLAGS, (h.offset << 3) | (h.more ? 1 : 0));
      write32(b, EXT_HEADER.FRAGMENT_ID, h.id ?? DEFAULT_FRAGMENT_ID);
      break;
    case 'ah': {
      const words = h.length ?? 4; // payload length in 4-byte units minus 2
      b = new Uint8Array((words + 2) * 4);
      b[EXT_HEADER.LENGTH] = words;
      write32(b, EXT_HEADER.AH_SPI, h.spi ?? 0);
      break;
    }
  }
  b[EXT_HEADER.NEXT_HEADER] = next;
  return b;
}

export interface Ipv4Header {
  tos: number;
  totalLength: number;
  id: number;
  /** Flags and fragment offset (IPV4_FLAGS). */
  flagsFragment: number;
  ttl: number;
  protocol: number;
  src: Uint8Array;
  dst: Uint8Array;
  options?: Uint8Array;
  /** Written instead of the right header checksum. */
  headerChecksum?: number;
}

/** Writes an IPv4 header (options padded to 4 bytes) and its checksum at `out[at..]`; returns its length. */
export function writeIpv4Header(out: Uint8Array, at: number, h: Ipv4Header): number {
  const options = h.options ?? new Uint8Array(0);
  const ihl = IPV4.SIZE + Math.ceil(options.length / 4) * 4;
  out.fill(0, at, at + ihl);
  out[at + IPV4.VERSION_IHL] = 0x40 | (ihl / 4);
  out[at + IPV4.TOS] = h.tos;
  write16(out, at + IPV4.TOTAL_LENGTH, h.totalLength);
  write16(out, at + IPV4.ID, h.id);
  write16(out, at + IPV4.FLAGS_FRAGMENT, h.flagsFragment);
  out[at + IPV4.TTL] = h.ttl;
  out[at + IPV4.PROTOCOL] = h.protocol;
  out.set(h.src, at + IPV4.SOURCE);
  out.set(h.dst, at + IPV4.DESTINATION);
  out.set(options, at + IPV4.OPTIONS);
  write16(out, at + IPV4.CHECKSUM, h.headerChecksum ?? checksumFor(onesSum(out.subarray(at, at + ihl))));
  return ihl;
}

export interface Ipv6Header {
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  src: Uint8Array;
  dst: Uint8Array;
}

/** Writes the fixed IPv6 header at `out[at..]`. */
export function writeIpv6Header(out: Uint8Array, at: number, h: Ipv6Header): void {
  write32(out, at + IPV6.VERSION_CLASS_FLOW, ((6 << 28) | (h.trafficClass << 20) | (h.flowLabel & 0xfffff)) >>> 0);
  write16(out, at + IPV6.PAYLOAD_LENGTH, h.payloadLength);
  out[at + IPV6.NEXT_HEADER] = h.nextHeader;
  out[at + IPV6.HOP_LIMIT] = h.hopLimit;
  out.set(h.src, at + IPV6.SOURCE);
  out.set(h.dst, at + IPV6.DESTINATION);
}

export interface TcpHeader {
  ports: readonly [number, number];
  sequence: number;
  ack: number;
  /** Default PSH|ACK. */
  flags?: number;
  /** Default 65535. */
  window?: number;
}

/** Writes a 20-byte TCP header with a zero checksum at `out[at..]`. */
export function writeTcpHeader(out: Uint8Array, at: number, h: TcpHeader): void {
  write16(out, at + TCP.SOURCE_PORT, h.ports[0]);
  write16(out, at + TCP.DESTINATION_PORT, h.ports[1]);
  write32(out, at + TCP.SEQUENCE, h.sequence);
  write32(out, at + TCP.ACK, h.ack);
  out[at + TCP.DATA_OFFSET] = (TCP.SIZE / 4) << 4;
  out[at + TCP.FLAGS] = h.flags ?? TCP_PSH_ACK;
  write16(out, at + TCP.WINDOW, h.window ?? 0xffff);
  write16(out, at + TCP.CHECKSUM, 0);
  write16(out, at + TCP.URGENT, 0);
}

/** Writes a UDP header with a zero checksum at `out[at..]`; `length` is the coverage for UDP-Lite. */
export function writeUdpHeader(out: Uint8Array, at: number, ports: readonly [number, number], length: number): void {
  write16(out, at + UDP.SOURCE_PORT, ports[0]);
  write16(out, at + UDP.DESTINATION_PORT, ports[1]);
  write16(out, at + UDP.LENGTH, length);
  write16(out, at + UDP.CHECKSUM, 0);
}

/** Fills the checksum at `field` of a transport segment so that it is valid under the pseudo-header of `src`, `dst`. */
export function fillTransportChecksum(segment: Uint8Array, field: number, protocol: number, src: Uint8Array, dst: Uint8Array): void {
  write16(segment, field, 0);
  write16(segment, field, checksumFor(onesSum(segment, pseudoHeaderSum(src, dst, protocol, segment.length))));
}

function isFragment(h: ExtHeader): h is Extract<ExtHeader, { type: 'fragment' }> {
  return h.type === 'fragment';
}

/** Sets the transport checksum of `transport` as the spec asks, where it has one that covers a pseudo-header. */
function setTransportChecksum(transport: Uint8Array, spec: PacketSpec, src: Uint8Array, dst: Uint8Array): void {
  const v6 = src.length === 16;
  const c = transportChecksum(v6 ? 6 : 4, spec.protocol);
  const fragment = v6 ? spec.ext?.find(isFragment) : spec.fragment;
  // Only a first fragment (or a whole datagram) carries the transport header.
  const carriesTransportHeader = !fragment || fragment.offset === 0;
  if (!c || !carriesTransportHeader || transport.length < c.field + 2 || spec.checksum === 'keep') return;
  if (spec.checksum === undefined || spec.checksum === 'valid') {
    fillTransportChecksum(transport, c.field, spec.protocol, src, spec.finalDestination === undefined ? dst : addressBytes(spec.finalDestination, 6));
  } else {
    write16(transport, c.field, spec.checksum === 'zero' ? 0 : spec.checksum);
  }
}

/** Builds the packet; checksums valid unless the spec asks otherwise. */
export function buildPacket(spec: PacketSpec): Uint8Array {
  const src = addressBytes(spec.src);
  const dst = addressBytes(spec.dst);
  if (src.length !== dst.length) throw new Error('source and destination families differ');
  const transport = spec.transport.slice();
  setTransportChecksum(transport, spec, src, dst);
  const tos = ((spec.dscp ?? 0) << 2) | ((spec.ecn ?? 0) & 3);
  const ttl = spec.ttl ?? DEFAULT_TTL;
  if (src.length === 4) {
    const ihl = IPV4.SIZE + Math.ceil((spec.options?.length ?? 0) / 4) * 4;
    const totalLength = ihl + transport.length;
    const p = new Uint8Array(totalLength + (spec.padding ?? 0));
    const fragment = spec.fragment ? (spec.fragment.more ? IPV4_FLAGS.MORE_FRAGMENTS : 0) | spec.fragment.offset : 0;
    const flagsFragment = (spec.dontFragment ? IPV4_FLAGS.DONT_FRAGMENT : 0) | fragment;
    writeIpv4Header(p, 0, {
      tos, totalLength, id: spec.id ?? DEFAULT_IPV4_ID, flagsFragment, ttl, protocol: spec.protocol, src, dst,
      options: spec.options, headerChecksum: spec.headerChecksum,
    });
    p.set(transport, ihl);
    return p;
  }
  const ext = spec.ext ?? [];
  const parts = ext.map((h, i) => extBytes(h, i + 1 < ext.length ? EXT_CODE[ext[i + 1].type] : spec.protocol));
  const payloadLength = parts.reduce((n, b) => n + b.length, 0) + transport.length;
  const p = new Uint8Array(IPV6.SIZE + payloadLength + (spec.padding ?? 0));
  writeIpv6Header(p, 0, {
    trafficClass: tos, flowLabel: spec.flowLabel ?? 0, payloadLength,
    nextHeader: ext.length > 0 ? EXT_CODE[ext[0].type] : spec.protocol, hopLimit: ttl, src, dst,
  });
  let at = IPV6.SIZE;
  for (const b of parts) { p.set(b, at); at += b.length; }
  p.set(transport, at);
  return p;
}

// ---- transport segments -------------------------------------------------------

/** A header of `header` bytes (zero) and a payload: the bytes given, or that many bytes of a pattern (index × `step`). */
function segment(header: number, payload: number | Uint8Array, step: number): Uint8Array {
  if (typeof payload !== 'number') {
    const b = new Uint8Array(header + payload.length);
    b.set(payload, header);
    return b;
  }
  const b = new Uint8Array(header + payload);
  for (let i = header; i < b.length; i++) b[i] = (i * step) & 0xff;
  return b;
}

/** A TCP header (20 bytes, ACK|PSH) and a payload (bytes, or that many bytes of a pattern). */
export function tcp(payload: number | Uint8Array = 0, ports: readonly [number, number] = [40000, 80]): Uint8Array {
  const b = segment(TCP.SIZE, payload, 7);
  writeTcpHeader(b, 0, { ports, sequence: 0x1001, ack: 0x2002 });
  return b;
}

/** A UDP header (length filled in) and a payload. UDP-Lite: the same layout, coverage 0 = whole. */
export function udp(payload: number | Uint8Array = 0, ports: readonly [number, number] = [40000, 53], lite = false): Uint8Array {
  const b = segment(UDP.SIZE, payload, 13);
  writeUdpHeader(b, 0, ports, lite ? 0 : b.length);
  return b;
}

/** A DCCP-Data generic header (16 bytes with extended sequence numbers, CsCov 0: the whole packet) and a payload. */
export function dccp(payload: number | Uint8Array = 0, ports: readonly [number, number] = [40000, 5001]): Uint8Array {
  const b = segment(DCCP.SIZE, payload, 1);
  write16(b, DCCP.SOURCE_PORT, ports[0]);
  write16(b, DCCP.DESTINATION_PORT, ports[1]);
  b[DCCP.DATA_OFFSET] = DCCP.SIZE / 4;
  b[DCCP.TYPE_X] = DCCP_DATA_X;
  return b;
}

/**
 * An ICMP or ICMPv6 message: type, code, the 32-bit word after the checksum,
 * and a body. ICMP's checksum covers no pseudo-header and is filled here;
 * ICMPv6's is buildPacket's.
 */
export function icmp(v6: boolean, type: number, code: number, rest: number, body: number | Uint8Array): Uint8Array {
  const b = segment(ICMP.SIZE, body, 1);
  b[ICMP.TYPE] = type;
  b[ICMP.CODE] = code;
  write32(b, ICMP.REST, rest);
  if (!v6) write16(b, ICMP.CHECKSUM, checksumFor(onesSum(b)));
  return b;
}

/** An ICMP or ICMPv6 echo request. */
export function echo(v6: boolean, payload: number | Uint8Array = 8, id = 0x4242): Uint8Array {
  return icmp(v6, v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO_REQUEST, 0, ((id << 16) | 1) >>> 0, payload);
}

/** `length` bytes of a simple pattern that `seed` shifts: payloads that differ and are easy to recognise. */
export function filler(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 0xff);
}

// ---- link layer ---------------------------------------------------------------

/** Locally administered MACs, for frames whose link addresses nobody reads. */
export const DEFAULT_MACS = { dst: Uint8Array.of(0x02, 0, 0, 0, 0, 0x02), src: Uint8Array.of(0x02, 0, 0, 0, 0, 0x01) } as const;

/** VLAN tags as [TPID, VLAN id] pairs, outermost first. */
export type VlanTags = readonly (readonly [number, number])[];

/**
 * Writes an Ethernet header at the start of `out`: the MACs, any VLAN tags,
 * then `type` (4 and 6 stand for the IP EtherTypes). Returns where the
 * payload starts.
 */
export function writeEthernetHeader(out: Uint8Array, type: number, tags: VlanTags = [], macs: { dst: Uint8Array; src: Uint8Array } = DEFAULT_MACS): number {
  out.set(macs.dst, 0);
  out.set(macs.src, 6);
  let at = ETHERNET.ETHERTYPE;
  for (const [tpid, vid] of tags) {
    write16(out, at, tpid);
    write16(out, at + 2, vid);
    at += 4;
  }
  write16(out, at, etherType(type));
  return at + 2;
}

/** 4 and 6 stand for the IP EtherTypes; anything else is an EtherType. */
const etherType = (type: number): number => (type === 4 ? ETHERTYPE.IPV4 : type === 6 ? ETHERTYPE.IPV6 : type);

/** `payload` in an Ethernet frame (see writeEthernetHeader). */
export function ethernetFrame(payload: Uint8Array, type: number, tags: VlanTags = [], macs?: { dst: Uint8Array; src: Uint8Array }): Uint8Array {
  const out = new Uint8Array(ETHERNET.SIZE + 4 * tags.length + payload.length);
  out.set(payload, writeEthernetHeader(out, type, tags, macs));
  return out;
}

/** `payload` behind a Linux cooked (SLL) header: sent to us, ARPHRD_ETHER, DEFAULT_MACS.src, then `type` (4, 6 or an EtherType). */
export function sllFrame(payload: Uint8Array, type: number): Uint8Array {
  const out = new Uint8Array(LINUX_SLL.SIZE + payload.length);
  write16(out, LINUX_SLL.ARPHRD_TYPE, ARPHRD_ETHER);
  write16(out, LINUX_SLL.ADDRESS_LENGTH, DEFAULT_MACS.src.length);
  out.set(DEFAULT_MACS.src, LINUX_SLL.ADDRESS);
  write16(out, LINUX_SLL.PROTOCOL, etherType(type));
  out.set(payload, LINUX_SLL.SIZE);
  return out;
}

/** `payload` behind a Linux cooked v2 (SLL2) header: `type` first, then the interface index, ARPHRD_ETHER, sent to us, DEFAULT_MACS.src. */
export function sll2Frame(payload: Uint8Array, type: number, interfaceIndex = 2): Uint8Array {
  const out = new Uint8Array(LINUX_SLL2.SIZE + payload.length);
  write16(out, LINUX_SLL2.PROTOCOL, etherType(type));
  write32(out, LINUX_SLL2.INTERFACE_INDEX, interfaceIndex);
  write16(out, LINUX_SLL2.ARPHRD_TYPE, ARPHRD_ETHER);
  out[LINUX_SLL2.ADDRESS_LENGTH] = DEFAULT_MACS.src.length;
  out.set(DEFAULT_MACS.src, LINUX_SLL2.ADDRESS);
  out.set(payload, LINUX_SLL2.SIZE);
  return out;
}

/** An ARP request "who has `target`, tell `sender`" (`hardwareType` 1 = Ethernet). */
export function arpRequest(senderMac: Uint8Array, sender: string, target: string, hardwareType = ARPHRD_ETHER): Uint8Array {
  const b = new Uint8Array(ARP.SIZE);
  write16(b, ARP.HARDWARE_TYPE, hardwareType);
  write16(b, ARP.PROTOCOL_TYPE, ETHERTYPE.IPV4);
  b[ARP.HARDWARE_SIZE] = 6;
  b[ARP.PROTOCOL_SIZE] = 4;
  write16(b, ARP.OPERATION, ARP_REQUEST);
  b.set(senderMac, ARP.SENDER_MAC);
  b.set(addressBytes(sender, 4), ARP.SENDER_IP);
  b.set(addressBytes(target, 4), ARP.TARGET_IP);
  return b;
}
