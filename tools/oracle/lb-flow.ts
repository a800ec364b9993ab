// What the balancer reads of a packet to a VIP, for the reference model
// (tools/oracle/lb.ts): the protocol, the ports when it has them, whether it is
// a fragment, and for an ICMP/ICMPv6 error the flow of the packet it quotes,
// turned around. docs/lb.md#what-the-balancer-reads is the specification.

import type { Family } from '../../src/core/types.js';
import { PORT_PROTOCOLS } from '../../src/lb/types.js';
import { read16 } from '../packets/bytes.js';
import { ICMP, PROTO, transportChecksum } from '../packets/layout.js';
import { findTransport, type ParsedPacket, type TransportInfo } from './packet.js';

/** How a packet to a VIP reads. */
export type FlowReading =
  /** Its own ports (a port protocol, not a fragment). */
  | { type: 'ports'; protocol: number; ports: { src: number; dst: number } }
  /**
   * No ports to read: a fragment (first or not) or a protocol without
   * ports. `short`: a first fragment too short for its checksum to be fixed,
   * dropped with this reason once a section takes it.
   */
  | { type: 'portless'; protocol: number; fragment: boolean; short?: string }
  /** An ICMP/ICMPv6 error about a packet the VIP sent: that flow, as the client sent it. */
  | { type: 'icmp-error'; src: Uint8Array; dst: Uint8Array; protocol: number; ports?: { src: number; dst: number } }
  /** Not for a backend: ICMPv6 messages of the link and the host (neighbour discovery, MLD, router messages). */
  | { type: 'local' }
  /** Not a fragment, and cannot be read as far as the balancer needs: dropped with this reason (if a section takes the protocol). */
  | { type: 'short'; protocol: number; reason: string };

const PORT_PROTOCOL_NUMBERS = new Set<number>(Object.values(PORT_PROTOCOLS));
/** Destination unreachable, time exceeded, parameter problem. */
const ICMP_ERRORS = new Set([3, 11, 12]);
/** Destination unreachable, packet too big, time exceeded, parameter problem. */
const ICMPV6_ERRORS = new Set([1, 2, 3, 4]);
const ICMPV6_ECHO = new Set([128, 129]);
/** Type, code and checksum: what must be there to read an ICMP message at all. */
const ICMP_MIN_BYTES = ICMP.CHECKSUM + 2;

export const isPortProtocol = (protocol: number): boolean => PORT_PROTOCOL_NUMBERS.has(protocol);

/** The name of a port protocol's truncation reason: `tcp-truncated`... */
function truncated(protocol: number): string {
  const name = Object.entries(PORT_PROTOCOLS).find(([, n]) => n === protocol)![0];
  return `${name}-truncated`;
}

/** Reads a packet already known to be for a VIP, whose transport header `t` was found. */
export function readFlow(p: Uint8Array, h: ParsedPacket, t: TransportInfo): FlowReading {
  const { protocol } = t;
  const checksum = transportChecksum(h.family, protocol);
  if (t.fragment !== 'none') {
    // Only a first fragment carries the transport header, and its checksum is fixed.
    const short = t.fragment === 'first' && checksum && t.length < checksum.minBytes ? `${checksum.name}-truncated` : undefined;
    return { type: 'portless', protocol, fragment: true, ...(short ? { short } : {}) };
  }
  if (isPortProtocol(protocol)) {
    if (t.length < Math.max(4, checksum?.minBytes ?? 0)) return { type: 'short', protocol, reason: truncated(protocol) };
    return { type: 'ports', protocol, ports: { src: read16(p, t.offset), dst: read16(p, t.offset + 2) } };
  }
  const icmp = (h.family === 4 && protocol === PROTO.ICMP) || (h.family === 6 && protocol === PROTO.ICMPV6);
  if (!icmp || t.opaque) return { type: 'portless', protocol, fragment: false };
  if (t.length < ICMP_MIN_BYTES) return { type: 'short', protocol, reason: h.family === 4 ? 'icmp-truncated' : 'icmpv6-truncated' };
  const type = p[t.offset];
  if ((h.family === 4 ? ICMP_ERRORS : ICMPV6_ERRORS).has(type)) {
    return quotedFlow(p.subarray(t.offset + ICMP.SIZE, h.end), h, p.subarray(h.dstAt, h.dstAt + h.addrLen), t.length >= ICMP.SIZE);
  }
  if (h.family === 6 && !ICMPV6_ECHO.has(type) && type >= 128) return { type: 'local' };
  return { type: 'portless', protocol, fragment: false };
}

/**
 * The flow an ICMP error quotes, turned around: the quoted packet went from
 * the VIP (its source must be the VIP the error came to) to the client, so
 * the client's flow has the quoted destination as its source and the ports
 * swapped. Ports are read when the quoted packet is not a non-first fragment.
 */
function quotedFlow(q: Uint8Array, outer: ParsedPacket, vip: Uint8Array, headerThere: boolean): FlowReading {
  const embedded = { type: 'short', protocol: outer.family === 4 ? PROTO.ICMP : PROTO.ICMPV6, reason: 'icmp-embedded' } as const;
  if (!headerThere) return embedded;
  const family: Family = outer.family;
  const fixed = family === 4 ? 20 : 40;
  if (q.length < fixed || q[0] >> 4 !== family) return embedded;
  const headerLength = family === 4 ? (q[0] & 0x0f) * 4 : 40;
  if (headerLength < 20 || headerLength > q.length) return embedded;
  const addrLen = family === 4 ? 4 : 16;
  const srcAt = family === 4 ? 12 : 8;
  // Bounded by what was quoted, not by the quoted packet's own length field: an error quotes only the start.
  const inner: ParsedPacket = { family, dscp: 0, dstAt: srcAt + addrLen, addrLen, headerLength, end: q.length };
  const t = findTransport(q, inner);
  if ('malformed' in t) return embedded;
  const src = q.subarray(srcAt, srcAt + addrLen);
  const dst = q.subarray(srcAt + addrLen, srcAt + 2 * addrLen);
  if (!src.every((b, i) => b === vip[i])) return embedded;
  const flow = { type: 'icmp-error', src: dst, dst: src, protocol: t.protocol } as const;
  if (t.fragment === 'non-first' || t.opaque || !isPortProtocol(t.protocol)) return flow;
  if (t.length < 4) return embedded;
  return { ...flow, ports: { src: read16(q, t.offset + 2), dst: read16(q, t.offset) } };
}
