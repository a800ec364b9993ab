// MurmurHash3_x86_32 (docs/maglev.md#the-hash-murmurhash3-x86-32-bit): the
// balancer's one hash, here for the flow hash and the connection table's
// bucket, and in src/lb/murmur3.ts for the Maglev table. The two must give
// the same value for the same bytes and seed (test/core-lb.test.ts holds
// them together); blocks are read little-endian, as WebAssembly loads them.

const C1: u32 = 0xcc9e2d51;
const C2: u32 = 0x1b873593;

// @ts-ignore: decorator
@inline function scramble(k: u32): u32 {
  return rotl<u32>(k * C1, 15) * C2;
}

/** MurmurHash3_x86_32 of the `len` bytes at `p` with `seed`. */
// @ts-ignore: decorator
@inline export function murmur3(p: usize, len: u32, seed: u32): u32 {
  let h = seed;
  const end = p + <usize>(len & ~3);
  for (let q = p; q < end; q += 4) {
    h ^= scramble(load<u32>(q));
    h = rotl<u32>(h, 13) * 5 + 0xe6546b64;
  }
  const rest = len & 3;
  if (rest != 0) {
    let k = <u32>load<u8>(end);
    if (rest > 1) k |= <u32>load<u8>(end, 1) << 8;
    if (rest > 2) k |= <u32>load<u8>(end, 2) << 16;
    h ^= scramble(k);
  }
  h ^= len;
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}
