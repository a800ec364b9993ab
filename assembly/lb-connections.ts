// The connection table of one core (one TUN queue): docs/lb.md#connection-table,
// held entry for entry to tools/oracle/connection-table.ts. Buckets of
// LB_CONNECTION_WAYS entries, a flow's bucket chosen by murmur3 of its key
// with the table's own seed; within a bucket the entries are kept in order
// of last use, most recent first, empty ones last, so the least recently
// used is the one a new flow pushes out of a full bucket.

import { LB_CONNECTION_WAYS, LB_KEY_BYTES } from "./abi.generated";
import { murmur3 } from "./murmur3";

// An entry, one cache line: the section's id (0: empty), the key's length,
// the flow key (zero-padded), the backend's address as loaded from a packet.
const SECTION: usize = 0;
const KEY_LENGTH: usize = 4;
const KEY: usize = 8;
export const KEY_BYTES: usize = <usize>LB_KEY_BYTES;
const BACKEND: usize = KEY + KEY_BYTES;
export const ENTRY_BYTES: usize = 64;
const WAYS: usize = <usize>LB_CONNECTION_WAYS;
const BUCKET_BYTES: usize = WAYS * ENTRY_BYTES;

export let base: usize = 0;
export let entries: u32 = 0;
let bucketMask: u32 = 0;
let seed: u32 = 0;
/** Entries pushed out of a full bucket by a new flow. */
export let evictions: u64 = 0;

/** Places an empty table of `count` entries (a power of two, a multiple of the ways) at `at`. */
export function setup(at: usize, count: u32, tableSeed: u32): void {
  base = at;
  entries = count;
  bucketMask = count / <u32>WAYS - 1;
  seed = tableSeed;
  evictions = 0;
  memory.fill(at, 0, <usize>count * ENTRY_BYTES);
}

/** The bucket of the flow key at `key` (KEY_BYTES, zero-padded) of `len` bytes. */
// @ts-ignore: decorator
@inline export function bucketOf(key: usize, len: u32): usize {
  return base + <usize>(murmur3(key, len, seed) & bucketMask) * BUCKET_BYTES;
}

/** The way of the bucket holding the flow (section `id`, key), or -1. */
// @ts-ignore: decorator
@inline export function find(bucket: usize, id: u32, key: usize, len: u32): i32 {
  const k0 = load<u64>(key), k1 = load<u64>(key, 8), k2 = load<u64>(key, 16), k3 = load<u64>(key, 24), k4 = load<u64>(key, 32);
  for (let w: usize = 0; w < WAYS; w++) {
    const e = bucket + w * ENTRY_BYTES;
    const section = load<u32>(e, SECTION);
    if (section == 0) break;
    if (section == id && load<u32>(e, KEY_LENGTH) == len
      && load<u64>(e, KEY) == k0 && load<u64>(e, KEY + 8) == k1 && load<u64>(e, KEY + 16) == k2
      && load<u64>(e, KEY + 24) == k3 && load<u64>(e, KEY + 32) == k4) return <i32>w;
  }
  return -1;
}

/** The backend address of the entry at `way`: its two words. */
// @ts-ignore: decorator
@inline export function backend0(bucket: usize, way: i32): u64 { return load<u64>(bucket + <usize>way * ENTRY_BYTES, BACKEND); }
// @ts-ignore: decorator
@inline export function backend1(bucket: usize, way: i32): u64 { return load<u64>(bucket + <usize>way * ENTRY_BYTES, BACKEND + 8); }

/** Makes the entry at `way` the most recent (way 0). */
// @ts-ignore: decorator
@inline export function toFront(bucket: usize, way: i32, scratch: usize): void {
  if (way == 0) return;
  const e = bucket + <usize>way * ENTRY_BYTES;
  memory.copy(scratch, e, ENTRY_BYTES);
  memory.copy(bucket + ENTRY_BYTES, bucket, <usize>way * ENTRY_BYTES);
  memory.copy(bucket, scratch, ENTRY_BYTES);
}

/** Sets the backend of the most recent entry. */
// @ts-ignore: decorator
@inline export function setFrontBackend(bucket: usize, a0: u64, a1: u64): void {
  store<u64>(bucket, a0, BACKEND);
  store<u64>(bucket, a1, BACKEND + 8);
}

/** Records a new flow as the most recent entry; in a full bucket the least recent goes, counted. */
// @ts-ignore: decorator
@inline export function insertFront(bucket: usize, id: u32, key: usize, len: u32, a0: u64, a1: u64): void {
  if (load<u32>(bucket + (WAYS - 1) * ENTRY_BYTES, SECTION) != 0) evictions++;
  memory.copy(bucket + ENTRY_BYTES, bucket, (WAYS - 1) * ENTRY_BYTES);
  store<u32>(bucket, id, SECTION);
  store<u32>(bucket, len, KEY_LENGTH);
  memory.copy(bucket + KEY, key, KEY_BYTES);
  setFrontBackend(bucket, a0, a1);
}

/** Removes the most recent entry. */
// @ts-ignore: decorator
@inline export function removeFront(bucket: usize): void {
  memory.copy(bucket, bucket + ENTRY_BYTES, (WAYS - 1) * ENTRY_BYTES);
  store<u32>(bucket + (WAYS - 1) * ENTRY_BYTES, 0, SECTION);
}

/**
 * Copies entry `i` (0..entries-1, bucket by bucket, most recent first) to
 * `out`: its key (KEY_BYTES) then its backend (16 bytes); answers its
 * section id (0: empty). keyLength(i) says how much of the key is the key.
 */
export function read(i: u32, out: usize): u32 {
  if (i >= entries) return 0;
  const e = base + <usize>i * ENTRY_BYTES;
  memory.copy(out, e + KEY, KEY_BYTES + 16);
  return load<u32>(e, SECTION);
}

export function keyLength(i: u32): u32 {
  return i < entries ? load<u32>(base + <usize>i * ENTRY_BYTES, KEY_LENGTH) : 0;
}
