// From-scratch Internet checksums (RFC 1071), written independently of the
// WASM core: plain big-endian 16-bit words, no incremental tricks. The
// oracle recomputes with these; the packet builders fill with them.

/** One's-complement sum of `bytes` (odd length padded with zero), folded to 16 bits, plus `initial`. */
export function onesSum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length & 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Adds two folded sums with end-around carry. */
export function addSums(a: number, b: number): number {
  const s = a + b;
  return s > 0xffff ? (s & 0xffff) + 1 : s;
}

/** The IPv4/IPv6 pseudo-header sum for a transport segment of `length` bytes. */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  let s = addSums(onesSum(src), onesSum(dst));
  s = addSums(s, protocol);
  s = addSums(s, length & 0xffff);
  return addSums(s, Math.floor(length / 0x10000));
}

/**
 * The checksum value that makes the covered data sum to `target`
 * (0xFFFF for a valid checksum), given the sum `rest` of everything else.
 * Results are in 1..0xFFFF: a zero is written as 0xFFFF, as the core and
 * the Linux kernel do.
 */
export function checksumFor(rest: number, target = 0xffff): number {
  // c such that rest + c ≡ target (mod 0xFFFF)
  let c = (target - rest) % 0xffff;
  if (c <= 0) c += 0xffff;
  return c;
}
