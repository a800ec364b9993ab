// Transport checksums that cover a pseudo-header, as the oracle knows them.

import { onesSum, pseudoHeaderSum, read16 } from './checksum.js';
import type { ParsedPacket, TransportInfo } from './packet.js';

export interface TransportChecksum {
  name: 'tcp' | 'udp' | 'udplite' | 'dccp' | 'icmpv6';
  /** Offset of the checksum inside the transport header. */
  field: number;
  /** Bytes of transport header needed to reach it. */
  minBytes: number;
  /** UDP: a zero checksum means "none". */
  zeroIsNone: boolean;
}

const table: Record<number, TransportChecksum> = {
  6: { name: 'tcp', field: 16, minBytes: 18, zeroIsNone: false },
  17: { name: 'udp', field: 6, minBytes: 8, zeroIsNone: true },
  136: { name: 'udplite', field: 6, minBytes: 8, zeroIsNone: false },
  33: { name: 'dccp', field: 6, minBytes: 8, zeroIsNone: false },
};
const icmpv6: TransportChecksum = { name: 'icmpv6', field: 2, minBytes: 4, zeroIsNone: false };

export function transportChecksum(family: 4 | 6, protocol: number): TransportChecksum | undefined {
  if (family === 6 && protocol === 58) return icmpv6;
  return table[protocol];
}

/**
 * The folded sum of the pseudo-header and the transport bytes the IP
 * header says are there (the checksum field included): 0xFFFF when the
 * checksum is valid over that span.
 */
export function transportSum(p: Uint8Array, h: ParsedPacket, t: TransportInfo): number {
  const src = p.subarray(h.dstAt - h.addrLen, h.dstAt);
  const dst = p.subarray(h.dstAt, h.dstAt + h.addrLen);
  const seed = pseudoHeaderSum(src, dst, t.protocol, t.length);
  return onesSum(p.subarray(t.offset, t.offset + t.length), seed);
}

export function storedChecksum(p: Uint8Array, t: TransportInfo, c: TransportChecksum): number {
  return read16(p, t.offset + c.field);
}
