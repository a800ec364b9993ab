// The transport checksum of a parsed packet, summed from scratch: which
// checksums there are is tools/packets/layout.ts's transportChecksum.

import { read16 } from '../packets/bytes.js';
import { onesSum, pseudoHeaderSum } from '../packets/checksum.js';
import type { TransportChecksum } from '../packets/layout.js';
import type { ParsedPacket, TransportInfo } from './packet.js';

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
