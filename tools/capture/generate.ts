// Synthetic captures for tests and benchmarks: IPv4/IPv6 TCP/UDP packets
// with valid checksums, some marked with DSCP 1 and addressed to the real
// server (what an L3DSR load balancer sends), the rest unmarked and
// addressed elsewhere. Deterministic for a seed; written streaming, so a
// capture of millions of packets needs no more memory than one chunk.
import ipaddr from 'ipaddr.js';
import type { Family } from '../../src/core/types.js';
import { ETHERNET, ETHERTYPE, LINKTYPE } from '../../src/pcap/linklayer.js';
import { NANOSECONDS, MICROSECONDS } from '../../src/pcap/record.js';
import { PcapWriter, type TimestampPrecision } from '../../src/pcap/writer.js';
import { checksumFor, onesSum, pseudoHeaderSum } from '../oracle/checksum.js';

export const IPV4 = { VERSION_IHL: 0, TOS: 1, TOTAL_LENGTH: 2, ID: 4, FLAGS_FRAGMENT: 6, TTL: 8, PROTOCOL: 9, CHECKSUM: 10, SOURCE: 12, DESTINATION: 16, SIZE: 20 } as const;
export const IPV6 = { VERSION_CLASS_FLOW: 0, PAYLOAD_LENGTH: 4, NEXT_HEADER: 6, HOP_LIMIT: 7, SOURCE: 8, DESTINATION: 24, SIZE: 40 } as const;
export const TCP = { SOURCE_PORT: 0, DESTINATION_PORT: 2, SEQUENCE: 4, ACK: 8, DATA_OFFSET: 12, FLAGS: 13, WINDOW: 14, CHECKSUM: 16, URGENT: 18, SIZE: 20 } as const;
export const UDP = { SOURCE_PORT: 0, DESTINATION_PORT: 2, LENGTH: 4, CHECKSUM: 6, SIZE: 8 } as const;
export const PROTOCOL = { TCP: 6, UDP: 17 } as const;

const DSCP_SHIFT = 2;
const IPV4_VERSION_IHL = 0x45;
const IPV4_DONT_FRAGMENT = 0x4000;
const TCP_DATA_OFFSET_5_WORDS = 5 << 4;
const TCP_FLAGS_PSH_ACK = 0x18;
const DEFAULT_TTL = 64;
const MAX_WINDOW = 0xffff;
const ETHERNET_SOURCE = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const ETHERNET_DESTINATION = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

export interface PacketSpec {
  family: Family;
  protocol: 'tcp' | 'udp';
  source: string;
  destination: string;
  dscp?: number;
  ecn?: number;
  sourcePort?: number;
  destinationPort?: number;
  payload?: Uint8Array;
  /** IPv4 identification / TCP sequence: anything that varies per packet. */
  id?: number;
}

function addressBytes(text: string, family: Family): Uint8Array {
  const parsed = ipaddr.parse(text);
  if ((family === 4) !== (parsed.kind() === 'ipv4')) throw new RangeError(`${text} is not an IPv${family} address`);
  return Uint8Array.from(parsed.toByteArray());
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, v >>> 16);
  put16(b, at + 2, v & 0xffff);
}

interface Encodable {
  family: Family;
  protocol: number;
  source: Uint8Array;
  destination: Uint8Array;
  tos: number;
  sourcePort: number;
  destinationPort: number;
  id: number;
}

/** Writes an IP packet with valid IP and L4 checksums at `out[at..]`; returns its length. */
function encodePacket(out: Uint8Array, at: number, p: Encodable, payload: Uint8Array, payloadStart: number, payloadLength: number): number {
  const ipSize = p.family === 4 ? IPV4.SIZE : IPV6.SIZE;
  const l4Size = p.protocol === PROTOCOL.TCP ? TCP.SIZE : UDP.SIZE;
  const l4 = at + ipSize;
  const l4Length = l4Size + payloadLength;
  out.set(payload.subarray(payloadStart, payloadStart + payloadLength), l4 + l4Size);
  put16(out, l4 + TCP.SOURCE_PORT, p.sourcePort);
  put16(out, l4 + TCP.DESTINATION_PORT, p.destinationPort);
  if (p.protocol === PROTOCOL.TCP) {
    put32(out, l4 + TCP.SEQUENCE, p.id);
    put32(out, l4 + TCP.ACK, 1);
    out[l4 + TCP.DATA_OFFSET] = TCP_DATA_OFFSET_5_WORDS;
    out[l4 + TCP.FLAGS] = TCP_FLAGS_PSH_ACK;
    put16(out, l4 + TCP.WINDOW, MAX_WINDOW);
    put16(out, l4 + TCP.CHECKSUM, 0);
    put16(out, l4 + TCP.URGENT, 0);
  } else {
    put16(out, l4 + UDP.LENGTH, l4Length);
    put16(out, l4 + UDP.CHECKSUM, 0);
  }
  if (p.family === 4) {
    out[at + IPV4.VERSION_IHL] = IPV4_VERSION_IHL;
    out[at + IPV4.TOS] = p.tos;
    put16(out, at + IPV4.TOTAL_LENGTH, ipSize + l4Length);
    put16(out, at + IPV4.ID, p.id & 0xffff);
    put16(out, at + IPV4.FLAGS_FRAGMENT, IPV4_DONT_FRAGMENT);
    out[at + IPV4.TTL] = DEFAULT_TTL;
    out[at + IPV4.PROTOCOL] = p.protocol;
    put16(out, at + IPV4.CHECKSUM, 0);
    out.set(p.source, at + IPV4.SOURCE);
    out.set(p.destination, at + IPV4.DESTINATION);
    put16(out, at + IPV4.CHECKSUM, checksumFor(onesSum(out.subarray(at, at + IPV4.SIZE))));
  } else {
    put32(out, at + IPV6.VERSION_CLASS_FLOW, (6 << 28) | (p.tos << 20) | (p.id & 0xfffff));
    put16(out, at + IPV6.PAYLOAD_LENGTH, l4Length);
    out[at + IPV6.NEXT_HEADER] = p.protocol;
    out[at + IPV6.HOP_LIMIT] = DEFAULT_TTL;
    out.set(p.source, at + IPV6.SOURCE);
    out.set(p.destination, at + IPV6.DESTINATION);
  }
  // A computed zero is sent as all ones (for UDP, zero would mean "no checksum").
  const seed = pseudoHeaderSum(p.source, p.destination, p.protocol, l4Length);
  put16(out, l4 + (p.protocol === PROTOCOL.TCP ? TCP.CHECKSUM : UDP.CHECKSUM), checksumFor(onesSum(out.subarray(l4, l4 + l4Length), seed)));
  return ipSize + l4Length;
}

function encodable(spec: PacketSpec): Encodable {
  return {
    family: spec.family,
    protocol: spec.protocol === 'tcp' ? PROTOCOL.TCP : PROTOCOL.UDP,
    source: addressBytes(spec.source, spec.family),
    destination: addressBytes(spec.destination, spec.family),
    tos: ((spec.dscp ?? 0) << DSCP_SHIFT) | (spec.ecn ?? 0),
    sourcePort: spec.sourcePort ?? 40000,
    destinationPort: spec.destinationPort ?? 80,
    id: spec.id ?? 1,
  };
}

/** One IP packet (no link layer) with valid checksums. */
export function buildIpPacket(spec: PacketSpec): Uint8Array {
  const payload = spec.payload ?? new Uint8Array(0);
  const out = new Uint8Array(IPV6.SIZE + TCP.SIZE + payload.length);
  const n = encodePacket(out, 0, encodable(spec), payload, 0, payload.length);
  return out.slice(0, n);
}

/** Wraps an L3 packet in an Ethernet header, with VLAN tags given as [tpid, vlan id] pairs, outermost first. */
export function ethernetFrame(l3: Uint8Array, family: Family | number, tags: readonly (readonly [number, number])[] = []): Uint8Array {
  const etherType = family === 4 ? ETHERTYPE.IPV4 : family === 6 ? ETHERTYPE.IPV6 : family;
  const out = new Uint8Array(ETHERNET.SIZE + 4 * tags.length + l3.length);
  out.set(ETHERNET_DESTINATION, 0);
  out.set(ETHERNET_SOURCE, 6);
  let at = ETHERNET.ETHERTYPE;
  for (const [tpid, vid] of tags) {
    put16(out, at, tpid);
    put16(out, at + 2, vid);
    at += 4;
  }
  put16(out, at, etherType);
  out.set(l3, at + 2);
  return out;
}

export interface GenerateOptions {
  packets: number;
  /** PRNG seed; the same seed gives the same file. */
  seed?: number;
  /** ETHERNET (default) or RAW. */
  linkType?: typeof LINKTYPE.ETHERNET | typeof LINKTYPE.RAW;
  precision?: TimestampPrecision;
  /** Share of IPv6 packets, 0-1. Default 0.25. */
  ipv6Share?: number;
  /** Share of UDP packets (the rest TCP), 0-1. Default 0.5. */
  udpShare?: number;
  /** Share marked with DSCP 1 and sent to the real server, 0-1. Default 0.5. */
  markedShare?: number;
  /** L4 payload sizes are drawn uniformly from this range. Default 0-1400. */
  payloadBytes?: readonly [number, number];
  /** First timestamp, seconds since the epoch. Default 1700000000. */
  startSeconds?: number;
}

/** Addresses of the generated traffic: documentation ranges only. */
export const GENERATED = {
  client4: '192.0.2.1',
  client6: '2001:db8:192::1',
  /** The real server: where marked packets go. */
  rip4: '198.51.100.2',
  rip6: '2001:db8:198::2',
  /** Unmarked packets go to another host. */
  other4: '198.51.100.3',
  other6: '2001:db8:198::3',
} as const;

export interface GenerateSummary {
  packets: number;
  ipv4: number;
  ipv6: number;
  tcp: number;
  udp: number;
  /** DSCP 1, addressed to the real server. */
  marked: number;
  /** Bytes of L3 packets. */
  ipBytes: number;
  fileBytes: number;
}

/** xorshift32: fast, deterministic, good enough to shuffle traffic shapes. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

/** Writes `options.packets` packets to a classic pcap at `path`. */
export async function generateCapture(path: string, options: GenerateOptions): Promise<GenerateSummary> {
  const random = prng(options.seed ?? 1);
  const linkType = options.linkType ?? LINKTYPE.ETHERNET;
  const precision = options.precision ?? 'us';
  const unitsPerSec = precision === 'ns' ? NANOSECONDS : MICROSECONDS;
  const [minPayload, maxPayload] = options.payloadBytes ?? [0, 1400];
  const ipv6Share = options.ipv6Share ?? 0.25;
  const udpShare = options.udpShare ?? 0.5;
  const markedShare = options.markedShare ?? 0.5;
  const addresses = {
    client: { 4: addressBytes(GENERATED.client4, 4), 6: addressBytes(GENERATED.client6, 6) },
    rip: { 4: addressBytes(GENERATED.rip4, 4), 6: addressBytes(GENERATED.rip6, 6) },
    other: { 4: addressBytes(GENERATED.other4, 4), 6: addressBytes(GENERATED.other6, 6) },
  };
  // Payload bytes come from one random pool at random offsets: cheap, and
  // different per packet so checksums are not all alike.
  const pool = new Uint8Array(maxPayload + 4096);
  for (let i = 0; i < pool.length; i++) pool[i] = (random() * 256) | 0;

  const linkHeader = linkType === LINKTYPE.ETHERNET ? ETHERNET.SIZE : 0;
  const frame = new Uint8Array(linkHeader + IPV6.SIZE + TCP.SIZE + maxPayload);
  if (linkType === LINKTYPE.ETHERNET) {
    frame.set(ETHERNET_DESTINATION, 0);
    frame.set(ETHERNET_SOURCE, 6);
  }
  const summary: GenerateSummary = { packets: 0, ipv4: 0, ipv6: 0, tcp: 0, udp: 0, marked: 0, ipBytes: 0, fileBytes: 0 };
  const record = { linkType, tsSec: options.startSeconds ?? 1_700_000_000, tsFrac: 0, tsResolution: unitsPerSec, originalLength: 0, data: frame };
  const writer = await PcapWriter.create(path, { linkType, precision, snapLength: 262144 });
  try {
    for (let i = 0; i < options.packets; i++) {
      const family: Family = random() < ipv6Share ? 6 : 4;
      const udp = random() < udpShare;
      const marked = random() < markedShare;
      const packet: Encodable = {
        family,
        protocol: udp ? PROTOCOL.UDP : PROTOCOL.TCP,
        source: addresses.client[family],
        destination: marked ? addresses.rip[family] : addresses.other[family],
        tos: marked ? 1 << DSCP_SHIFT : 0,
        sourcePort: 1024 + ((random() * 60000) | 0),
        destinationPort: udp ? 9999 : 8080,
        id: (random() * 0x100000000) >>> 0,
      };
      const payloadLength = minPayload + ((random() * (maxPayload - minPayload + 1)) | 0);
      if (linkType === LINKTYPE.ETHERNET) put16(frame, ETHERNET.ETHERTYPE, family === 4 ? ETHERTYPE.IPV4 : ETHERTYPE.IPV6);
      const l3Length = encodePacket(frame, linkHeader, packet, pool, (random() * 4096) | 0, payloadLength);
      record.data = frame.subarray(0, linkHeader + l3Length);
      record.originalLength = record.data.length;
      // 1-1000 µs apart, in whichever unit the file uses.
      record.tsFrac += Math.floor((1 + random() * 999) * (unitsPerSec / MICROSECONDS));
      if (record.tsFrac >= unitsPerSec) {
        record.tsSec += Math.floor(record.tsFrac / unitsPerSec);
        record.tsFrac %= unitsPerSec;
      }
      writer.write(record);
      if (writer.needsDrain) await writer.drain();
      summary.packets += 1;
      summary[family === 4 ? 'ipv4' : 'ipv6'] += 1;
      summary[udp ? 'udp' : 'tcp'] += 1;
      if (marked) summary.marked += 1;
      summary.ipBytes += l3Length;
    }
  } finally {
    await writer.close();
  }
  summary.fileBytes = writer.bytesWritten;
  return summary;
}
