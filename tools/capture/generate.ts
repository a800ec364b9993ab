// Synthetic captures for tests and benchmarks: IPv4/IPv6 TCP/UDP packets
// with valid checksums, some marked with DSCP 1 and addressed to the real
// server (what an L3DSR load balancer sends), the rest unmarked and
// addressed elsewhere. Deterministic for a seed; written streaming, so a
// capture of millions of packets needs no more memory than one chunk: each
// packet is written in place into one frame buffer with tools/packets/'s
// header writers.
import type { Family } from '../../src/core/types.js';
import { ETHERNET, LINKTYPE } from '../../src/pcap/linklayer.js';
import { NANOSECONDS, MICROSECONDS } from '../../src/pcap/record.js';
import { PcapWriter, type TimestampPrecision } from '../../src/pcap/writer.js';
import { addressBytes } from '../packets/address.js';
import { fillTransportChecksum, writeEthernetHeader, writeIpv4Header, writeIpv6Header, writeTcpHeader, writeUdpHeader } from '../packets/build.js';
import { IPV4, IPV4_FLAGS, IPV6, PROTO, TCP, UDP } from '../packets/layout.js';
import { Rng } from '../packets/rng.js';

const DSCP_SHIFT = 2;
const DEFAULT_TTL = 64;

/** One generated packet; the addresses are bytes, looked up once per capture. */
interface Encodable {
  family: Family;
  protocol: typeof PROTO.TCP | typeof PROTO.UDP;
  source: Uint8Array;
  destination: Uint8Array;
  tos: number;
  sourcePort: number;
  destinationPort: number;
  /** IPv4 identification, IPv6 flow label, TCP sequence: what varies per packet. */
  id: number;
}

/** Writes an IP packet with valid IP and L4 checksums at `out[at..]`; returns its length. */
function encodePacket(out: Uint8Array, at: number, p: Encodable, payload: Uint8Array, payloadStart: number, payloadLength: number): number {
  const ipSize = p.family === 4 ? IPV4.SIZE : IPV6.SIZE;
  const tcp = p.protocol === PROTO.TCP;
  const l4 = at + ipSize;
  const l4Size = tcp ? TCP.SIZE : UDP.SIZE;
  const l4Length = l4Size + payloadLength;
  out.set(payload.subarray(payloadStart, payloadStart + payloadLength), l4 + l4Size);
  const ports = [p.sourcePort, p.destinationPort] as const;
  if (tcp) writeTcpHeader(out, l4, { ports, sequence: p.id, ack: 1 });
  else writeUdpHeader(out, l4, ports, l4Length);
  if (p.family === 4) {
    writeIpv4Header(out, at, {
      tos: p.tos, totalLength: ipSize + l4Length, id: p.id & 0xffff, flagsFragment: IPV4_FLAGS.DONT_FRAGMENT, ttl: DEFAULT_TTL,
      protocol: p.protocol, src: p.source, dst: p.destination,
    });
  } else {
    writeIpv6Header(out, at, {
      trafficClass: p.tos, flowLabel: p.id, payloadLength: l4Length, nextHeader: p.protocol, hopLimit: DEFAULT_TTL, src: p.source, dst: p.destination,
    });
  }
  fillTransportChecksum(out.subarray(l4, l4 + l4Length), tcp ? TCP.CHECKSUM : UDP.CHECKSUM, p.protocol, p.source, p.destination);
  return ipSize + l4Length;
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

/** Writes `options.packets` packets to a classic pcap at `path`. */
export async function generateCapture(path: string, options: GenerateOptions): Promise<GenerateSummary> {
  const rng = new Rng(options.seed ?? 1);
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
  pool.set(rng.bytes(pool.length));

  const linkHeader = linkType === LINKTYPE.ETHERNET ? ETHERNET.SIZE : 0;
  const frame = new Uint8Array(linkHeader + IPV6.SIZE + TCP.SIZE + maxPayload);
  const summary: GenerateSummary = { packets: 0, ipv4: 0, ipv6: 0, tcp: 0, udp: 0, marked: 0, ipBytes: 0, fileBytes: 0 };
  const record = { linkType, tsSec: options.startSeconds ?? 1_700_000_000, tsFrac: 0, tsResolution: unitsPerSec, originalLength: 0, data: frame };
  const writer = await PcapWriter.create(path, { linkType, precision, snapLength: 262144 });
  try {
    for (let i = 0; i < options.packets; i++) {
      const family: Family = rng.fraction() < ipv6Share ? 6 : 4;
      const udp = rng.fraction() < udpShare;
      const marked = rng.fraction() < markedShare;
      const packet: Encodable = {
        family,
        protocol: udp ? PROTO.UDP : PROTO.TCP,
        source: addresses.client[family],
        destination: marked ? addresses.rip[family] : addresses.other[family],
        tos: marked ? 1 << DSCP_SHIFT : 0,
        sourcePort: 1024 + rng.below(60000),
        destinationPort: udp ? 9999 : 8080,
        id: rng.next(),
      };
      const payloadLength = rng.range(minPayload, maxPayload);
      if (linkType === LINKTYPE.ETHERNET) writeEthernetHeader(frame, family);
      const l3Length = encodePacket(frame, linkHeader, packet, pool, rng.below(4096), payloadLength);
      record.data = frame.subarray(0, linkHeader + l3Length);
      record.originalLength = record.data.length;
      // 1-1000 µs apart, in whichever unit the file uses.
      record.tsFrac += Math.floor((1 + rng.fraction() * 999) * (unitsPerSec / MICROSECONDS));
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
