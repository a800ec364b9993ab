// IPv4 header (RFC 791): byte offsets of the fields the rewriter touches.

export const VER_IHL: usize = 0;
export const TOS: usize = 1;
export const TOTAL_LENGTH: usize = 2;
export const FLAGS_FRAGMENT: usize = 6;
export const PROTOCOL: usize = 9;
export const CHECKSUM: usize = 10;
export const SRC: usize = 12;
export const DST: usize = 16;

export const MIN_HEADER: u32 = 20;
export const ADDRESS_BYTES: usize = 4;
/** Fragment offset bits of the flags/fragment word (host order). */
export const FRAGMENT_OFFSET_MASK: u32 = 0x1fff;
/** More Fragments, in the same word. */
export const MORE_FRAGMENTS: u32 = 0x2000;

/** Header length in bytes, from the IHL nibble. */
// @ts-ignore: decorator
@inline export function headerLength(p: usize): u32 {
  return (<u32>load<u8>(p, VER_IHL) & 0x0f) << 2;
}

/** DSCP: the top six bits of the TOS byte. */
// @ts-ignore: decorator
@inline export function dscp(p: usize): u32 {
  return <u32>load<u8>(p, TOS) >> 2;
}
