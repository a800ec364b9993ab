// An independent reading of an L3 packet, for the oracle: where the
// destination, DSCP, transport header and checksums are, and whether the
// semantics call it malformed. See docs/semantics.md.

import { read16 } from '../packets/bytes.js';
import { EXT } from '../packets/layout.js';

export type Fragment = 'none' | 'first' | 'non-first';

export interface ParsedPacket {
  family: 4 | 6;
  dscp: number;
  /** Byte offset and length of the destination address. */
  dstAt: number;
  addrLen: number;
  /** IPv4 header length, or 40 for IPv6. */
  headerLength: number;
  /** IPv4 total length or 40 + IPv6 payload length: the L3 packet's end. */
  end: number;
}

export interface TransportInfo {
  /** Transport protocol after the extension headers (IPv6) or the IPv4 protocol. */
  protocol: number;
  offset: number;
  length: number;
  fragment: Fragment;
  /** IPv6 Routing header with Segments Left > 0 seen. */
  routingPending: boolean;
  /** IPv6 walk ended at AH, ESP or No Next Header. */
  opaque: boolean;
}

export type Malformed = { malformed: string };

export function parseFixedHeader(p: Uint8Array): ParsedPacket | Malformed {
  if (p.length < 1) return { malformed: 'too-short' };
  const version = p[0] >> 4;
  if (version === 4) {
    if (p.length < 20) return { malformed: 'too-short' };
    const ihl = (p[0] & 0x0f) * 4;
    if (ihl < 20 || ihl > p.length) return { malformed: 'ipv4-header' };
    const total = read16(p, 2);
    if (total < ihl || total > p.length) return { malformed: 'ipv4-total-length' };
    return { family: 4, dscp: p[1] >> 2, dstAt: 16, addrLen: 4, headerLength: ihl, end: total };
  }
  if (version === 6) {
    if (p.length < 40) return { malformed: 'too-short' };
    const end = 40 + read16(p, 4);
    if (end > p.length) return { malformed: 'ipv6-payload-length' };
    const trafficClass = ((p[0] & 0x0f) << 4) | (p[1] >> 4);
    return { family: 6, dscp: trafficClass >> 2, dstAt: 24, addrLen: 16, headerLength: 40, end };
  }
  return { malformed: 'bad-version' };
}

/** Finds the transport header: IPv4 directly, IPv6 by walking the extension headers. */
export function findTransport(p: Uint8Array, h: ParsedPacket): TransportInfo | Malformed {
  if (h.family === 4) {
    const fragOffset = read16(p, 6) & 0x1fff;
    const moreFragments = (p[6] & 0x20) !== 0;
    return {
      protocol: p[9], offset: h.headerLength, length: h.end - h.headerLength,
      fragment: fragOffset !== 0 ? 'non-first' : moreFragments ? 'first' : 'none',
      routingPending: false, opaque: false,
    };
  }
  let next = p[6];
  let at = 40;
  let fragment: Fragment = 'none';
  let routingPending = false;
  for (;;) {
    if (next === EXT.HOP_BY_HOP || next === EXT.ROUTING || next === EXT.DEST_OPTS) {
      if (at + 2 > h.end) return { malformed: 'ipv6-extension-chain' };
      const len = (p[at + 1] + 1) * 8;
      if (at + len > h.end) return { malformed: 'ipv6-extension-chain' };
      if (next === EXT.ROUTING && p[at + 3] > 0) routingPending = true;
      next = p[at];
      at += len;
      continue;
    }
    if (next === EXT.FRAGMENT) {
      if (at + 8 > h.end) return { malformed: 'ipv6-extension-chain' };
      const offset = read16(p, at + 2) >> 3;
      const more = (p[at + 3] & 1) !== 0;
      next = p[at];
      at += 8;
      if (offset !== 0) {
        return { protocol: next, offset: at, length: h.end - at, fragment: 'non-first', routingPending, opaque: false };
      }
      fragment = more ? 'first' : 'none';
      continue;
    }
    const opaque = next === EXT.AH || next === EXT.ESP || next === EXT.NO_NEXT;
    return { protocol: next, offset: at, length: h.end - at, fragment, routingPending, opaque };
  }
}
