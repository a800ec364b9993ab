// IPv6 header (RFC 8200) and its extension headers.

export const VER_TC_FLOW: usize = 0;
export const PAYLOAD_LENGTH: usize = 4;
export const NEXT_HEADER: usize = 6;
export const SRC: usize = 8;
export const DST: usize = 24;

export const HEADER: u32 = 40;
export const ADDRESS_BYTES: usize = 16;

// Next Header values the extension-header walk knows.
export const HOP_BY_HOP: u32 = 0;
export const ROUTING: u32 = 43;
export const FRAGMENT: u32 = 44;
export const ESP: u32 = 50;
export const AH: u32 = 51;
export const NO_NEXT_HEADER: u32 = 59;
export const DESTINATION_OPTIONS: u32 = 60;

// Offsets inside an extension header.
export const EXT_NEXT_HEADER: usize = 0;
export const EXT_LENGTH: usize = 1;
/** Routing header: segments left. */
export const ROUTING_SEGMENTS_LEFT: usize = 3;
/** Fragment header: offset (13 bits) << 3 | reserved | M, big-endian. */
export const FRAGMENT_OFFSET_FLAGS: usize = 2;
/** The M (more fragments) bit of that word (host order). */
export const FRAGMENT_MORE: u32 = 1;
export const FRAGMENT_HEADER_BYTES: u32 = 8;

/** DSCP: the top six bits of the traffic class, which straddles bytes 0 and 1. */
// @ts-ignore: decorator
@inline export function dscp(p: usize): u32 {
  return ((<u32>load<u8>(p) & 0x0f) << 2) | (<u32>load<u8>(p, 1) >> 6);
}
