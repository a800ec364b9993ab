// Reading a packet: the fixed header checks and the IPv6 extension-header
// walk, shared by the real server's rewrite (rewrite.ts) and the balancer
// (lb.ts). Each answers with one packed word, so that inlined into a caller
// the values stay in registers.

import {
  REASON_TOO_SHORT, REASON_IPV4_HEADER, REASON_IPV4_TOTAL_LENGTH, REASON_IPV6_PAYLOAD_LENGTH,
} from "./abi.generated";
import { be16 } from "./checksum";
import * as ipv4 from "./ipv4";
import * as ipv6 from "./ipv6";

/** Set in what fixed4/fixed6 answer when the header is malformed; the low byte is the reason. */
export const FIXED_MALFORMED: u32 = 0x80000000;

/**
 * The IPv4 fixed header of a packet of `len` (>= 1) bytes at `p`:
 * total length << 8 | header length, or FIXED_MALFORMED | reason.
 */
// @ts-ignore: decorator
@inline export function fixed4(p: usize, len: u32): u32 {
  if (len < ipv4.MIN_HEADER) return FIXED_MALFORMED | REASON_TOO_SHORT;
  const ihl = ipv4.headerLength(p);
  if (ihl < ipv4.MIN_HEADER || ihl > len) return FIXED_MALFORMED | REASON_IPV4_HEADER;
  const total = be16(p + ipv4.TOTAL_LENGTH);
  if (total < ihl || total > len) return FIXED_MALFORMED | REASON_IPV4_TOTAL_LENGTH;
  return (total << 8) | ihl;
}

/** The IPv6 fixed header: where the packet ends (40 + payload length), or FIXED_MALFORMED | reason. */
// @ts-ignore: decorator
@inline export function fixed6(p: usize, len: u32): u32 {
  if (len < ipv6.HEADER) return FIXED_MALFORMED | REASON_TOO_SHORT;
  const end = ipv6.HEADER + be16(p + ipv6.PAYLOAD_LENGTH);
  if (end > len) return FIXED_MALFORMED | REASON_IPV6_PAYLOAD_LENGTH;
  return end;
}

// What walk6 answers: the transport header's offset in the low 17 bits (it
// may reach 40 + 65535), the protocol above it, and flags.
export const WALK_OFFSET_MASK: u32 = 0x1ffff;
export const WALK_NEXT_SHIFT: u32 = 17;
/** A Routing header with Segments Left > 0: the pseudo-header carries the final destination. */
export const WALK_ROUTING_PENDING: u32 = 1 << 25;
/** A Fragment header with a non-zero offset: what follows is payload. */
export const WALK_NON_FIRST: u32 = 1 << 26;
/** The walk ended at ESP, AH or No Next Header. */
export const WALK_OPAQUE: u32 = 1 << 27;
/** The last Fragment header had offset 0 and M set: a first fragment (not an atomic one). */
export const WALK_FIRST_FRAGMENT: u32 = 1 << 28;
/** An extension header runs past the end. */
export const WALK_BROKEN: u32 = 0xffffffff;

/**
 * Walks the extension headers of the IPv6 packet at `p` from offset 40 to
 * the transport header, within `end` bytes: Hop-by-Hop, Routing and
 * Destination Options in any order and number, Fragment (a non-zero offset
 * ends the walk), ESP, AH and No Next Header end it. Answers the offset,
 * the protocol and the flags above, or WALK_BROKEN.
 */
// @ts-ignore: decorator
@inline export function walk6(p: usize, end: u32): u32 {
  let next = <u32>load<u8>(p, ipv6.NEXT_HEADER);
  let off: u32 = ipv6.HEADER;
  let flags: u32 = 0;
  while (true) {
    if (next == ipv6.HOP_BY_HOP || next == ipv6.ROUTING || next == ipv6.DESTINATION_OPTIONS) {
      if (off + 2 > end) return WALK_BROKEN;
      const extLen = (<u32>load<u8>(p + off, ipv6.EXT_LENGTH) + 1) << 3;
      if (off + extLen > end) return WALK_BROKEN;
      // RFC 8200 §8.1: with segments left, the pseudo-header carries the
      // final destination, which a rewrite does not change.
      if (next == ipv6.ROUTING && load<u8>(p + off, ipv6.ROUTING_SEGMENTS_LEFT) != 0) flags |= WALK_ROUTING_PENDING;
      next = <u32>load<u8>(p + off, ipv6.EXT_NEXT_HEADER);
      off += extLen;
    } else if (next == ipv6.FRAGMENT) {
      if (off + ipv6.FRAGMENT_HEADER_BYTES > end) return WALK_BROKEN;
      const offsetFlags = be16(p + off + ipv6.FRAGMENT_OFFSET_FLAGS);
      next = <u32>load<u8>(p + off, ipv6.EXT_NEXT_HEADER);
      off += ipv6.FRAGMENT_HEADER_BYTES;
      // What follows a non-first fragment header is payload, not headers.
      if ((offsetFlags >> 3) != 0) { flags |= WALK_NON_FIRST; break; }
      // Offset 0: a first fragment with M set, an atomic one (RFC 6946) without.
      if ((offsetFlags & ipv6.FRAGMENT_MORE) != 0) flags |= WALK_FIRST_FRAGMENT;
      else flags &= ~WALK_FIRST_FRAGMENT;
    } else {
      // ESP, AH, No Next Header and every transport end the walk; AH and ESP
      // leave nothing a rewrite could fix (AH's ICV covers the destination).
      if (next == ipv6.AH || next == ipv6.ESP || next == ipv6.NO_NEXT_HEADER) flags |= WALK_OPAQUE;
      break;
    }
  }
  return off | (next << WALK_NEXT_SHIFT) | flags;
}
