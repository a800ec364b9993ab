// Big-endian (network order) fields in a byte array, for the packet
// builders and readers of the tests, the fuzzer and the benchmarks.

export function read16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

export function write16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

export function write32(b: Uint8Array, at: number, v: number): void {
  write16(b, at, v >>> 16);
  write16(b, at + 2, v & 0xffff);
}
