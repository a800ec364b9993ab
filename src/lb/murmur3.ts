// MurmurHash3, the 32-bit x86 variant (MurmurHash3_x86_32, Austin Appleby,
// public domain): the one hash of the balancer. It places backends in the
// Maglev table and flows on it (docs/maglev.md, docs/lb.md), so it must give
// the same value everywhere: the WASM core, another balancer, another
// language. Chosen because it is small, needs only 32-bit multiplies, and has
// a reference implementation and published test values in most languages.
// Blocks are read little-endian, as the reference does on x86.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

const rotl32 = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

/** Mixes one 32-bit block before it enters the state. */
function scramble(k: number): number {
  return Math.imul(rotl32(Math.imul(k, C1), 15), C2);
}

/** MurmurHash3_x86_32 of `bytes` with `seed` (both as unsigned 32-bit), as an unsigned 32-bit integer. */
export function murmur3(bytes: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  const blocks = bytes.length >>> 2;
  for (let i = 0; i < blocks; i++) {
    const at = i * 4;
    const k = bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24);
    h ^= scramble(k);
    h = (Math.imul(rotl32(h, 13), 5) + 0xe6546b64) | 0;
  }
  const tail = blocks * 4;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = bytes[tail];
    if (rest > 1) k |= bytes[tail + 1] << 8;
    if (rest > 2) k |= bytes[tail + 2] << 16;
    h ^= scramble(k);
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
