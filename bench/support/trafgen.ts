// An IPv4/UDP packet in trafgen's configuration language (netsniff-ng), for
// the benchmarks' floods: the header laid out as tools/packets/layout.ts
// says, trafgen computing the checksums (csumip, csumudp) and, for several
// flows, counting the low byte of the source port.
import { ETHERNET, ETHERTYPE } from '../../src/pcap/linklayer.js';
import { IPV4, IPV4_FLAGS, PROTO, UDP } from '../../tools/packets/layout.js';

export interface TrafgenUdp {
  src: string;
  dst: string;
  /** With `flows`, the high byte is kept and the low byte counts 0 … flows-1. */
  srcPort: number;
  dstPort: number;
  /** Payload bytes ('a'). */
  size: number;
  flows?: number;
  /** Destination and source MAC (aa:bb:…) of an Ethernet header; none: the packet starts at the IP header. */
  macs?: { dst: string; src: string };
  /** Without it, the UDP checksum is 0 (none). */
  udpChecksum?: boolean;
  /** The CPU trafgen sends this packet from. */
  cpu?: number;
}

const TTL = 64;
const FILL = 0x61;
const c16 = (v: number) => `c16(${v})`;
const ipv4 = (a: string) => a.split('.').join(', ');
const mac = (m: string) => m.split(':').map((b) => `0x${b}`).join(', ');

export function trafgenUdp(p: TrafgenUdp): string {
  const link = p.macs ? ETHERNET.SIZE : 0;
  const udpLength = UDP.SIZE + p.size;
  const fields = [
    ...(p.macs ? [mac(p.macs.dst), mac(p.macs.src), c16(ETHERTYPE.IPV4)] : []),
    `0x${(0x40 | (IPV4.SIZE / 4)).toString(16)}`, '0x00', c16(IPV4.SIZE + udpLength), c16(0), c16(IPV4_FLAGS.DONT_FRAGMENT), TTL, PROTO.UDP,
    `csumip(${link}, ${link + IPV4.SIZE - 1})`, ipv4(p.src), ipv4(p.dst),
    p.flows === undefined ? c16(p.srcPort) : `${p.srcPort >> 8}, dinc(0, ${p.flows - 1})`, c16(p.dstPort), c16(udpLength),
    p.udpChecksum ? `csumudp(${link}, ${link + IPV4.SIZE})` : c16(0), `fill(0x${FILL.toString(16)}, ${p.size})`,
  ];
  return `${p.cpu === undefined ? '' : `cpu(${p.cpu}): `}{ ${fields.join(', ')} }\n`;
}
