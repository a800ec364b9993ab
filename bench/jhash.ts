// The Linux kernel's jhash() (include/linux/jhash.h: Bob Jenkins' lookup3
// as adapted by Jozsef Kadlecsik), the hash of many kernel flow tables, for
// the comparison `jhash(flow) mod N` in bench/maglev.ts: what spreading flows
// over N backends without consistent hashing costs when N changes. Bytes are
// read as little-endian 32-bit words, as the kernel does on x86; on such a
// machine this equals lookup3's hashlittle(key, length, initval).

const JHASH_INITVAL = 0xdeadbeef;

const rol32 = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

/** The state (a, b, c) of lookup3, mutated in place. */
type State = [number, number, number];

function mix(s: State): void {
  let [a, b, c] = s;
  a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
  b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
  c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
  a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
  b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
  c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
  s[0] = a; s[1] = b; s[2] = c;
}

function final(s: State): void {
  let [a, b, c] = s;
  c ^= b; c = (c - rol32(b, 14)) | 0;
  a ^= c; a = (a - rol32(c, 11)) | 0;
  b ^= a; b = (b - rol32(a, 25)) | 0;
  c ^= b; c = (c - rol32(b, 16)) | 0;
  a ^= c; a = (a - rol32(c, 4)) | 0;
  b ^= a; b = (b - rol32(a, 14)) | 0;
  c ^= b; c = (c - rol32(b, 24)) | 0;
  s[0] = a; s[1] = b; s[2] = c;
}

/** Little-endian word of up to 4 bytes from `at` (missing bytes count as 0). */
function word(k: Uint8Array, at: number, end: number): number {
  let w = 0;
  for (let i = 3; i >= 0; i--) w = (w << 8) | (at + i < end ? k[at + i] : 0);
  return w;
}

/** jhash(key, length, initval), unsigned 32-bit. */
export function jhash(key: Uint8Array, initval = 0): number {
  const start = (JHASH_INITVAL + key.length + initval) | 0;
  const s: State = [start, start, start];
  let at = 0;
  let length = key.length;
  while (length > 12) {
    s[0] = (s[0] + word(key, at, key.length)) | 0;
    s[1] = (s[1] + word(key, at + 4, key.length)) | 0;
    s[2] = (s[2] + word(key, at + 8, key.length)) | 0;
    mix(s);
    length -= 12;
    at += 12;
  }
  // The last 1..12 bytes, zero-padded; none left means no final mixing at all.
  if (length === 0) return s[2] >>> 0;
  s[0] = (s[0] + word(key, at, key.length)) | 0;
  s[1] = (s[1] + word(key, at + 4, key.length)) | 0;
  s[2] = (s[2] + word(key, at + 8, key.length)) | 0;
  final(s);
  return s[2] >>> 0;
}
