// The rule table: family + DSCP (+ destination prefix) => new destination
// (+ new DSCP). Two copies exist; a new rule set is built in the idle one and
// made live by one store, so a packet never sees half a rule set.

import { MAX_RULES } from "./abi.generated";
import { sum32, sum128 } from "./checksum";
import * as layout from "./layout";

const DSCP_VALUES: i32 = 64;
const NONE: i32 = -1;

/** One rule. Addresses are kept as the packet holds them (network order bytes). */
@unmanaged export class RuleRecord {
  /** Destination prefix to match, already masked. */
  match0: u64;
  match1: u64;
  mask0: u64;
  mask1: u64;
  /** The new destination; an IPv4 address sits in the low 4 bytes of dest0. */
  dest0: u64;
  dest1: u64;
  /** One's-complement sum of the new destination, for the checksum delta. */
  destSum: u64;
  packets: u64;
  bytes: u64;
  /** Next rule of the same family and DSCP (longer prefixes first), or -1. */
  next: i32;
  /** New DSCP, or -1 to keep the packet's. */
  setDscp: i32;
  prefixLength: i32;
  family: i32;
}

const RECORD_BYTES: usize = (offsetof<RuleRecord>() + 15) & ~15;
// heads: [family 4 | family 6][dscp] -> first rule index
const HEADS_BYTES: usize = 2 * <usize>DSCP_VALUES * 4;
const COUNT_BYTES: usize = 16;
/** Bytes one table takes; layout.ts places two of them. */
export const TABLE_BYTES: usize = HEADS_BYTES + COUNT_BYTES + <usize>MAX_RULES * RECORD_BYTES;

let active: usize = 0;
let building: usize = 0;

// @ts-ignore: decorator
@inline function headsOf(table: usize, family: u32): usize {
  return table + (family == 6 ? <usize>DSCP_VALUES * 4 : 0);
}
// @ts-ignore: decorator
@inline function countOf(table: usize): usize {
  return table + HEADS_BYTES;
}
// @ts-ignore: decorator
@inline function recordOf(table: usize, index: i32): RuleRecord {
  return changetype<RuleRecord>(table + HEADS_BYTES + COUNT_BYTES + <usize>index * RECORD_BYTES);
}

function clear(table: usize): void {
  for (let i: usize = 0; i < 2 * <usize>DSCP_VALUES; i++) store<i32>(table + (i << 2), NONE);
  store<i32>(countOf(table), 0);
}

/** Starts with an empty live table, so packets pass until rules are loaded. */
export function setup(): void {
  active = layout.tables;
  clear(active);
}

/** Starts a new rule set in the idle table. */
export function begin(): void {
  building = active == layout.tables ? layout.tables + layout.tableBytes : layout.tables;
  clear(building);
}

/**
 * Adds a rule to the table being built. `match` and `dest` point at 16-byte
 * address buffers (IPv4 in the first 4 bytes). The counters carry a rule's
 * totals across a reload. Returns the rule's index, or -1 when full.
 */
export function add(
  family: u32, dscp: u32, prefixLength: i32, match: usize, dest: usize,
  setDscp: i32, packets: u64, bytes: u64,
): i32 {
  const count = load<i32>(countOf(building));
  if (count >= MAX_RULES || dscp >= <u32>DSCP_VALUES) return NONE;
  const rec = recordOf(building, count);
  const bits = family == 6 ? 128 : 32;
  const len = prefixLength < 0 ? 0 : min(prefixLength, bits);
  // Masks as byte strings: the first `len` bits set, in packet byte order.
  rec.mask0 = 0;
  rec.mask1 = 0;
  for (let bit = 0; bit < len; bit++) {
    const byte = bit >> 3;
    const m = <u64>(0x80 >> (bit & 7)) << (<u64>(byte & 7) << 3);
    if (byte < 8) rec.mask0 |= m; else rec.mask1 |= m;
  }
  rec.match0 = load<u64>(match) & rec.mask0;
  rec.match1 = load<u64>(match, 8) & rec.mask1;
  if (family == 6) {
    rec.dest0 = load<u64>(dest);
    rec.dest1 = load<u64>(dest, 8);
    rec.destSum = sum128(dest);
  } else {
    rec.dest0 = <u64>load<u32>(dest);
    rec.dest1 = 0;
    rec.destSum = sum32(dest);
  }
  rec.setDscp = setDscp;
  rec.prefixLength = len;
  rec.family = family;
  rec.packets = packets;
  rec.bytes = bytes;

  // Keep each chain ordered by prefix length, longest first.
  let link = headsOf(building, family) + (<usize>dscp << 2);
  let cur = load<i32>(link);
  while (cur != NONE && recordOf(building, cur).prefixLength >= len) {
    link = changetype<usize>(recordOf(building, cur)) + offsetof<RuleRecord>("next");
    cur = load<i32>(link);
  }
  rec.next = cur;
  store<i32>(link, count);
  store<i32>(countOf(building), count + 1);
  return count;
}

/** Makes the table being built the live one. */
export function commit(): void {
  active = building;
}

export function count(): i32 {
  return load<i32>(countOf(active));
}

/** The live rule at `index`; the caller keeps index < count(). */
// @ts-ignore: decorator
@inline export function rule(index: i32): RuleRecord {
  return recordOf(active, index);
}

/** The first live IPv4 rule for this DSCP whose prefix holds the destination at `dst`, or -1. */
// @ts-ignore: decorator
@inline export function lookup4(dscp: u32, dst: usize): i32 {
  let r = load<i32>(active + (<usize>dscp << 2));
  if (r == NONE) return NONE;
  const d = <u64>load<u32>(dst);
  do {
    const rec = recordOf(active, r);
    if ((d & rec.mask0) == rec.match0) return r;
    r = rec.next;
  } while (r != NONE);
  return NONE;
}

/** The first live IPv6 rule for this DSCP whose prefix holds the destination at `dst`, or -1. */
// @ts-ignore: decorator
@inline export function lookup6(dscp: u32, dst: usize): i32 {
  let r = load<i32>(active + <usize>DSCP_VALUES * 4 + (<usize>dscp << 2));
  if (r == NONE) return NONE;
  const d0 = load<u64>(dst);
  const d1 = load<u64>(dst, 8);
  do {
    const rec = recordOf(active, r);
    if ((d0 & rec.mask0) == rec.match0 && (d1 & rec.mask1) == rec.match1) return r;
    r = rec.next;
  } while (r != NONE);
  return NONE;
}
