// The TCP segments of a health check (docs/lb.md#health-checks), built and
// read without the kernel's TCP: a SYN and an RST to the backend, and the
// SYN-ACK or RST that comes back. Only the 20-byte header, no options.
import { parseAddress } from '../core/address.js';
import type { Family } from '../core/types.js';

export const TCP_PROTOCOL = 6;
export const TCP_FLAGS = { fin: 0x01, syn: 0x02, rst: 0x04, ack: 0x10 } as const;
const HEADER_BYTES = 20;
/** What a SYN offers; the answer is never more than its SYN-ACK. */
const WINDOW = 1024;

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
}

/** The one's-complement sum of 16-bit big-endian words, folded to 16 bits, not complemented. */
function sum16(chunks: readonly Uint8Array[]): number {
  let sum = 0;
  for (const c of chunks) {
    for (let k = 0; k + 1 < c.length; k += 2) sum += (c[k]! << 8) | c[k + 1]!;
    if (c.length % 2 === 1) sum += c[c.length - 1]! << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function addressBytes(text: string, family: Family): Uint8Array {
  const a = parseAddress(text);
  if (typeof a === 'string' || a.family !== family) throw new TypeError(`${text}: not an IPv${family} address`);
  return a.bytes;
}

/** The header as sent from `src` to `dst`, its checksum over their pseudo-header (RFC 9293, RFC 8200 §8.1). */
export function buildTcp(family: Family, src: string, dst: string, s: TcpSegment): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt16BE(s.srcPort, 0);
  b.writeUInt16BE(s.dstPort, 2);
  b.writeUInt32BE(s.seq >>> 0, 4);
  b.writeUInt32BE(s.ack >>> 0, 8);
  b[12] = (HEADER_BYTES / 4) << 4;
  b[13] = s.flags;
  b.writeUInt16BE(s.flags & TCP_FLAGS.rst ? 0 : WINDOW, 14);
  const pseudo = Buffer.alloc(family === 4 ? 12 : 40);
  pseudo.set(addressBytes(src, family), 0);
  pseudo.set(addressBytes(dst, family), family === 4 ? 4 : 16);
  if (family === 4) {
    pseudo[9] = TCP_PROTOCOL;
    pseudo.writeUInt16BE(HEADER_BYTES, 10);
  } else {
    pseudo.writeUInt32BE(HEADER_BYTES, 32);
    pseudo[39] = TCP_PROTOCOL;
  }
  b.writeUInt16BE(~sum16([pseudo, b]) & 0xffff, 16);
  return b;
}

/**
 * The TCP header of a packet as a raw socket hands it over: an IPv4 packet
 * from its IP header (whose source it returns too), an IPv6 one from the
 * TCP header. Undefined for anything that is not a whole first TCP header
 * (a fragment, another protocol, too short).
 */
export function readTcp(family: Family, packet: Buffer, source: string): { source: string; tcp: TcpSegment } | undefined {
  let at = 0;
  let from = source;
  if (family === 4) {
    if (packet.length < 20 || packet[0]! >> 4 !== 4) return undefined;
    at = (packet[0]! & 0x0f) * 4;
    const fragment = packet.readUInt16BE(6) & 0x3fff;
    if (at < 20 || packet[9] !== TCP_PROTOCOL || fragment !== 0) return undefined;
    from = [...packet.subarray(12, 16)].join('.');
  }
  if (packet.length < at + HEADER_BYTES) return undefined;
  const tcp = {
    srcPort: packet.readUInt16BE(at),
    dstPort: packet.readUInt16BE(at + 2),
    seq: packet.readUInt32BE(at + 4),
    ack: packet.readUInt32BE(at + 8),
    flags: packet[at + 13]!,
  };
  const canonical = parseAddress(from);
  return { source: typeof canonical === 'string' ? from : canonical.text, tcp };
}
