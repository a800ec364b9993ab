// One's-complement checksum arithmetic (RFC 1071, RFC 1624).
//
// Every sum here is taken over words loaded in the machine's (little-endian)
// order and stored back the same way. One's-complement addition commutes
// with byte swapping, so the bytes written are exactly those a big-endian
// computation would produce, without a byte swap per word.

/** Folds a 64-bit one's-complement accumulator down to 16 bits (end-around carry). */
// @ts-ignore: decorator
@inline export function fold(acc: u64): u32 {
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return <u32>acc;
}

/** Sum of a 4-byte field (an IPv4 address) as two 16-bit words. */
// @ts-ignore: decorator
@inline export function sum32(p: usize): u64 {
  return <u64>load<u32>(p);
}

/** Sum of a 16-byte field (an IPv6 address). */
// @ts-ignore: decorator
@inline export function sum128(p: usize): u64 {
  const a = load<u64>(p);
  const b = load<u64>(p, 8);
  return (a & 0xffffffff) + (a >> 32) + (b & 0xffffffff) + (b >> 32);
}

/** The one's-complement negation of a 4-byte field, i.e. what `~m` adds. */
// @ts-ignore: decorator
@inline export function negSum32(p: usize): u64 {
  // Complement at 32 bits: in a u64 context AS would load (and complement) 64 bits.
  const w: u32 = ~load<u32>(p);
  return <u64>w;
}

/** The one's-complement negation of a 16-byte field. */
// @ts-ignore: decorator
@inline export function negSum128(p: usize): u64 {
  const a = ~load<u64>(p);
  const b = ~load<u64>(p, 8);
  return (a & 0xffffffff) + (a >> 32) + (b & 0xffffffff) + (b >> 32);
}

/**
 * RFC 1624 eqn. 3 on the checksum stored at `field`: HC' = ~(~HC + delta),
 * where delta is the folded sum of `~m + m'` over the changed words. A
 * result of 0x0000 is written as 0xFFFF, the other one's-complement zero,
 * as the Linux kernel does (CSUM_MANGLED_0), so our bytes match nftables'.
 */
// @ts-ignore: decorator
@inline export function updateChecksum(field: usize, delta: u32): void {
  // Two 16-bit values: one end-around carry is enough.
  let x = (~<u32>load<u16>(field) & 0xffff) + delta;
  x = (x & 0xffff) + (x >> 16);
  let r = ~x & 0xffff;
  if (r == 0) r = 0xffff;
  store<u16>(field, <u16>r);
}

/**
 * The same change for a field that holds an uncomplemented partial sum
 * (a virtio-net NEEDS_CSUM pseudo-header seed): S' = S + delta.
 */
// @ts-ignore: decorator
@inline export function updatePartialSum(field: usize, delta: u32): void {
  let x = <u32>load<u16>(field) + delta;
  x = (x & 0xffff) + (x >> 16);
  store<u16>(field, <u16>x);
}

/** Reads a big-endian 16-bit field. */
// @ts-ignore: decorator
@inline export function be16(p: usize): u32 {
  return (<u32>load<u8>(p) << 8) | <u32>load<u8>(p, 1);
}
