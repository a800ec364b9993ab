// The balancer's table set: its VIPs, their [lb] sections (DSCP, hash mode,
// ports), each section's backends in canonical order and its Maglev table
// (built in TypeScript by src/lb/maglev.ts and written here). Two regions
// hold a set each; a new set is built in the idle one and made live by one
// store (commit), so a batch never sees half of one, as with rules.ts.

import { MAX_LB_SECTIONS } from "./abi.generated";
import { sum32, sum128 } from "./checksum";

const NONE: i32 = -1;

/** A VIP: its address as the packet holds it (IPv4 in the low 4 bytes of addr0) and its sections, contiguous. */
@unmanaged export class VipRecord {
  addr0: u64;
  addr1: u64;
  family: u32;
  first: u32;
  count: u32;
}

/** One [lb] section. */
@unmanaged export class SectionRecord {
  /** The shell's id of the section's name: what the connection table knows it by across reloads. */
  id: u32;
  dscp: u32;
  /** LB_FLOW_5_TUPLE or LB_FLOW_3_TUPLE: the key of a packet that has ports. */
  hash: u32;
  /** The Maglev table's size M. */
  tableSize: u32;
  backendCount: u32;
  backendsAdded: u32;
  /** Port ranges; -1: no ports list, every packet to the VIP. */
  rangeCount: i32;
  rangesAdded: i32;
  backends: usize;
  ranges: usize;
  /** M u16 slots: a backend index, or LB_EMPTY_SLOT. */
  table: usize;
}

/**
 * A backend: its address as loaded from the packet, that address's
 * one's-complement sum, the packets sent to it while this set is live, and
 * whether it is up.
 */
@unmanaged export class BackendRecord {
  addr0: u64;
  addr1: u64;
  sum: u64;
  packets: u64;
  up: u32;
}

/** Destination ports `from`..`to` of one protocol. */
@unmanaged export class RangeRecord {
  protocol: u32;
  from: u32;
  to: u32;
}

// @ts-ignore: decorator
@inline function aligned(x: usize): usize { return (x + 7) & ~7; }

const VIP_BYTES: usize = aligned(offsetof<VipRecord>());
const SECTION_BYTES: usize = aligned(offsetof<SectionRecord>());
const BACKEND_BYTES: usize = aligned(offsetof<BackendRecord>());
const RANGE_BYTES: usize = offsetof<RangeRecord>();

// The VIP index: open addressing, twice as many slots as VIPs can be.
const INDEX_BITS: u64 = 9;
const INDEX_SLOTS: usize = 1 << <usize>INDEX_BITS;

// A region: counts, the index, the VIP and section records, then a heap for
// the backends, ranges and Maglev tables of the sections.
const VIP_COUNT: usize = 0;
const SECTION_COUNT: usize = 4;
const HEAP_USED: usize = 8;
const INDEX: usize = 16;
const VIPS: usize = INDEX + INDEX_SLOTS * 4;
const SECTIONS: usize = VIPS + <usize>MAX_LB_SECTIONS * VIP_BYTES;
const HEAP: usize = SECTIONS + <usize>MAX_LB_SECTIONS * SECTION_BYTES;

let regionBytes: usize = 0;
let first: usize = 0;
let active: usize = 0;
let building: usize = 0;

/** Bytes a region needs for `sections` sections with these totals of backends, port ranges and Maglev slots. */
export function bytesFor(sections: u32, backends: u32, ranges: u32, slots: u64): u64 {
  // Each section's three allocations may each lose up to 7 bytes to alignment.
  return <u64>HEAP + <u64>sections * 24 + <u64>backends * BACKEND_BYTES + <u64>ranges * RANGE_BYTES + slots * 2;
}

function clear(region: usize): void {
  store<u32>(region + VIP_COUNT, 0);
  store<u32>(region + SECTION_COUNT, 0);
  store<usize>(region + HEAP_USED, 0);
  memory.fill(region + INDEX, 0xff, INDEX_SLOTS * 4);
}

/** Places the two regions of `bytes` each at `at`; the live one starts empty, so every packet passes. */
export function setup(at: usize, bytes: usize): void {
  regionBytes = bytes;
  first = at;
  active = at;
  clear(active);
}

// @ts-ignore: decorator
@inline function vipOf(region: usize, i: i32): VipRecord {
  return changetype<VipRecord>(region + VIPS + <usize>i * VIP_BYTES);
}

// @ts-ignore: decorator
@inline function sectionOf(region: usize, i: i32): SectionRecord {
  return changetype<SectionRecord>(region + SECTIONS + <usize>i * SECTION_BYTES);
}

/** Takes `bytes` (8-aligned) from the building region's heap, or 0 when it is full. */
function allocate(bytes: usize): usize {
  const used = load<usize>(building + HEAP_USED);
  const size = aligned(bytes);
  if (<u64>HEAP + <u64>used + <u64>size > <u64>regionBytes) return 0;
  store<usize>(building + HEAP_USED, used + size);
  return building + HEAP + used;
}

/** Starts a new set in the idle region. */
export function begin(): void {
  building = active == first ? first + regionBytes : first;
  clear(building);
}

/**
 * Adds a section of the VIP at `addr` (16 bytes, IPv4 in the first 4) to
 * the set being built. The sections of one VIP are added one after the
 * other. Returns the section's index, -1 when the region is full, -2 when
 * the VIP's sections were not added together.
 */
export function addSection(id: u32, family: u32, addr: usize, dscp: u32, hash: u32, tableSize: u32, backendCount: u32, rangeCount: i32): i32 {
  const n = load<i32>(building + SECTION_COUNT);
  if (n >= MAX_LB_SECTIONS || tableSize == 0) return NONE;
  const a0 = family == 6 ? load<u64>(addr) : <u64>load<u32>(addr);
  const a1 = family == 6 ? load<u64>(addr, 8) : 0;
  const vips = load<i32>(building + VIP_COUNT);
  let v = vips - 1;
  if (v < 0 || vipOf(building, v).family != family || vipOf(building, v).addr0 != a0 || vipOf(building, v).addr1 != a1) {
    for (let i = 0; i < vips; i++) {
      const o = vipOf(building, i);
      if (o.family == family && o.addr0 == a0 && o.addr1 == a1) return -2;
    }
    v = vips;
    const rec = vipOf(building, v);
    rec.addr0 = a0;
    rec.addr1 = a1;
    rec.family = family;
    rec.first = n;
    rec.count = 0;
    store<i32>(building + VIP_COUNT, vips + 1);
  }
  const backends = allocate(<usize>backendCount * BACKEND_BYTES);
  const ranges = allocate(<usize>max(rangeCount, 0) * RANGE_BYTES);
  const table = allocate(<usize>tableSize * 2);
  if (backends == 0 || ranges == 0 || table == 0) return NONE;
  vipOf(building, v).count += 1;
  const s = sectionOf(building, n);
  s.id = id;
  s.dscp = dscp;
  s.hash = hash;
  s.tableSize = tableSize;
  s.backendCount = backendCount;
  s.backendsAdded = 0;
  s.rangeCount = rangeCount;
  s.rangesAdded = 0;
  s.backends = backends;
  s.ranges = ranges;
  s.table = table;
  store<i32>(building + SECTION_COUNT, n + 1);
  return n;
}

/** Adds the next backend (in canonical order) of a section being built, its address at `addr`; its index, or -1. */
export function addBackend(section: i32, addr: usize, up: bool): i32 {
  if (section < 0 || section >= load<i32>(building + SECTION_COUNT)) return NONE;
  const s = sectionOf(building, section);
  if (s.backendsAdded >= s.backendCount) return NONE;
  const b = changetype<BackendRecord>(s.backends + <usize>s.backendsAdded * BACKEND_BYTES);
  const v6 = vipOf(building, load<i32>(building + VIP_COUNT) - 1).family == 6;
  b.addr0 = v6 ? load<u64>(addr) : <u64>load<u32>(addr);
  b.addr1 = v6 ? load<u64>(addr, 8) : 0;
  b.sum = v6 ? sum128(addr) : sum32(addr);
  b.packets = 0;
  b.up = up ? 1 : 0;
  const i = s.backendsAdded;
  s.backendsAdded = i + 1;
  return <i32>i;
}

/** Adds a port range to a section being built; its index, or -1. */
export function addRange(section: i32, protocol: u32, from: u32, to: u32): i32 {
  if (section < 0 || section >= load<i32>(building + SECTION_COUNT)) return NONE;
  const s = sectionOf(building, section);
  if (s.rangesAdded >= s.rangeCount) return NONE;
  const r = changetype<RangeRecord>(s.ranges + <usize>s.rangesAdded * RANGE_BYTES);
  r.protocol = protocol;
  r.from = from;
  r.to = to;
  const i = s.rangesAdded;
  s.rangesAdded = i + 1;
  return i;
}

/** Where the shell writes the Maglev table of a section being built (tableSize u16s), or 0. */
export function tableOf(section: i32): usize {
  if (section < 0 || section >= load<i32>(building + SECTION_COUNT)) return 0;
  return sectionOf(building, section).table;
}

// @ts-ignore: decorator
@inline function indexSlot(family: u32, a0: u64, a1: u64): usize {
  const x = (a0 ^ (a1 * 0x9e3779b97f4a7c15) ^ <u64>family) * 0x9e3779b97f4a7c15;
  return <usize>(x >> (64 - INDEX_BITS));
}

/**
 * Makes the set being built live, once every section has all its backends
 * and ranges; false (and nothing changes) otherwise.
 */
export function commit(): bool {
  const sections = load<i32>(building + SECTION_COUNT);
  for (let i = 0; i < sections; i++) {
    const s = sectionOf(building, i);
    if (s.backendsAdded != s.backendCount || (s.rangeCount >= 0 && s.rangesAdded != s.rangeCount)) return false;
  }
  const vips = load<i32>(building + VIP_COUNT);
  for (let v = 0; v < vips; v++) {
    const rec = vipOf(building, v);
    let slot = indexSlot(rec.family, rec.addr0, rec.addr1);
    while (load<i32>(building + INDEX + (slot << 2)) != NONE) slot = (slot + 1) & (INDEX_SLOTS - 1);
    store<i32>(building + INDEX + (slot << 2), v);
  }
  active = building;
  return true;
}

export function sectionCount(): i32 {
  return load<i32>(active + SECTION_COUNT);
}

/** The live VIP whose address is at `dst` (4 or 16 bytes), or -1. */
// @ts-ignore: decorator
@inline export function lookupVip(family: u32, dst: usize): i32 {
  const a0 = family == 6 ? load<u64>(dst) : <u64>load<u32>(dst);
  const a1 = family == 6 ? load<u64>(dst, 8) : 0;
  let slot = indexSlot(family, a0, a1);
  while (true) {
    const v = load<i32>(active + INDEX + (slot << 2));
    if (v == NONE) return NONE;
    const rec = vipOf(active, v);
    if (rec.addr0 == a0 && rec.addr1 == a1 && rec.family == family) return v;
    slot = (slot + 1) & (INDEX_SLOTS - 1);
  }
}

// @ts-ignore: decorator
@inline export function vip(i: i32): VipRecord { return vipOf(active, i); }
// @ts-ignore: decorator
@inline export function section(i: i32): SectionRecord { return sectionOf(active, i); }
// @ts-ignore: decorator
@inline export function backend(s: SectionRecord, i: u32): BackendRecord {
  return changetype<BackendRecord>(s.backends + <usize>i * BACKEND_BYTES);
}
// @ts-ignore: decorator
@inline export function range(s: SectionRecord, i: i32): RangeRecord {
  return changetype<RangeRecord>(s.ranges + <usize>i * RANGE_BYTES);
}

/** Packets sent to backend `b` of live section `section` while this set is live; 0 for no such backend. */
export function backendPackets(section: i32, b: u32): u64 {
  if (section < 0 || section >= sectionCount()) return 0;
  const s = sectionOf(active, section);
  return b < s.backendCount ? backend(s, b).packets : 0;
}

/** The index of the backend of `s` at address (a0, a1), by binary search of the canonical order, or -1. */
// @ts-ignore: decorator
@inline export function findBackend(s: SectionRecord, a0: u64, a1: u64): i32 {
  // Canonical order compares address bytes first to last: byte-swapped, the loaded words compare as integers.
  const k0 = bswap<u64>(a0);
  const k1 = bswap<u64>(a1);
  let lo: i32 = 0;
  let hi: i32 = <i32>s.backendCount - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const b = backend(s, <u32>mid);
    const m0 = bswap<u64>(b.addr0);
    const m1 = bswap<u64>(b.addr1);
    if (m0 == k0 && m1 == k1) return mid;
    if (m0 < k0 || (m0 == k0 && m1 < k1)) lo = mid + 1;
    else hi = mid - 1;
  }
  return NONE;
}

