// The WASM core's exports: a narrow boundary of plain integers.
// Memory layout: layout.ts. Rules: rules.ts. Per-packet behaviour: rewrite.ts
// (the real server) and lb.ts (the balancer, with lb-tables.ts and
// lb-connections.ts).

import { LB_CONNECTION_WAYS } from "./abi.generated";
import * as batch from "./batch";
import * as counters from "./counters";
import * as layout from "./layout";
import * as connections from "./lb-connections";
import * as lbTables from "./lb-tables";
import * as rules from "./rules";

/** Lays out `count` slots of `size` bytes; 1 on success, 0 if memory cannot grow. Call once, first (or initBalancer). */
export function init(size: u32, count: u32): u32 {
  if (!layout.setup(rules.TABLE_BYTES, size, count, 0)) return 0;
  rules.setup();
  return 1;
}

/**
 * Lays out the slots as init does, and after them the balancer's memory: a
 * connection table of `entries` (a power of two, at least the ways of a
 * bucket) with bucket seed `seed`, and two table-set regions of
 * `regionBytes` each (lbRegionBytes says how much a set needs). 1 on
 * success, 0 if the sizes are wrong or memory cannot grow.
 */
export function initBalancer(size: u32, count: u32, entries: u32, seed: u32, regionBytes: u32): u32 {
  if (entries < <u32>LB_CONNECTION_WAYS || (entries & (entries - 1)) != 0 || regionBytes < <u32>lbTables.bytesFor(0, 0, 0, 0)) return 0;
  const tableBytes = <u64>entries * <u64>connections.ENTRY_BYTES;
  if (!layout.setup(rules.TABLE_BYTES, size, count, tableBytes + 2 * <u64>regionBytes)) return 0;
  rules.setup();
  connections.setup(layout.extra, entries, seed);
  lbTables.setup(layout.extra + <usize>tableBytes, regionBytes);
  return 1;
}

export function slotsBase(): usize { return layout.slots; }
export function slotIndexesBase(): usize { return layout.slotIndexes; }
export function lengthsBase(): usize { return layout.lengths; }
export function resultsBase(): usize { return layout.results; }
export function detailsBase(): usize { return layout.details; }
export function slotSize(): u32 { return layout.slotSize; }
export function slotCount(): u32 { return layout.slotCount; }

/**
 * Slots hold a virtio-net header of `bytes` (10 or 12) before each packet,
 * as a TUN with IFF_VNET_HDR reads and writes them; 0 turns it off.
 * Lengths then include the header.
 */
export function setVnetHeaderBytes(bytes: u32): void { layout.vnetHeaderBytes = bytes; }

// Both rewrite packets in place in their slots: nothing is copied in or
// out. (The shell's copying API, Rewriter.rewrite and rewritePackets, copies
// packets through the slots and calls these.)

/** Entries 0..n-1 of the batch descriptors, one call per batch: the hot path. */
export function rewriteSlots(n: u32): void { batch.run(n); }

/** The packet of `len` bytes in slot `slot`, as batch entry 0; returns its result word. */
export function rewriteSlot(slot: u32, len: u32): u32 {
  store<u32>(layout.slotIndexes, slot);
  store<u32>(layout.lengths, len);
  batch.run(1);
  return load<u32>(layout.results);
}

/** Balances entries 0..n-1 in place (lb.ts): results as rewriteSlots, and an lb detail word per entry at detailsBase(). */
export function balanceSlots(n: u32): void { batch.runBalancer(n); }

/** The packet of `len` bytes in slot `slot`, balanced as batch entry 0; returns its result word. */
export function balanceSlot(slot: u32, len: u32): u32 {
  store<u32>(layout.slotIndexes, slot);
  store<u32>(layout.lengths, len);
  batch.runBalancer(1);
  return load<u32>(layout.results);
}

// Counters: u64 per verdict, then per reason, at countersBase().
export function countersBase(): usize { return counters.counters; }
export function resetCounters(): void { counters.reset(); }

// A rule set: rulesBegin, rulesAdd per rule (its two addresses first written
// to the scratch buffers: match at +0, destination at +16), rulesCommit.
const scratch: usize = memory.data(32, 16);
export function ruleScratchBase(): usize { return scratch; }
export function rulesBegin(): void { rules.begin(); }
export function rulesAdd(family: u32, dscp: u32, prefixLength: i32, setDscp: i32, packets: u64, bytes: u64): i32 {
  return rules.add(family, dscp, prefixLength, scratch, scratch + 16, setDscp, packets, bytes);
}
export function rulesCommit(): void { rules.commit(); }
export function ruleCount(): i32 { return rules.count(); }
export function rulePackets(index: i32): u64 { return index >= 0 && index < rules.count() ? rules.rule(index).packets : 0; }
export function ruleBytes(index: i32): u64 { return index >= 0 && index < rules.count() ? rules.rule(index).bytes : 0; }

// The balancer's table set: lbBegin, lbAddSection per section (its VIP first
// written to the scratch buffer; the sections of one VIP one after the
// other), lbAddBackend per backend in canonical order (its address in the
// scratch buffer), lbAddRange per port range, the Maglev table written at
// lbTableBase, then lbCommit, which makes the whole set live at once.
export function lbRegionBytes(sections: u32, backends: u32, ranges: u32, slots: u32): u64 {
  return lbTables.bytesFor(sections, backends, ranges, slots);
}
export function lbBegin(): void { lbTables.begin(); }
export function lbAddSection(id: u32, family: u32, dscp: u32, hash: u32, tableSize: u32, backendCount: u32, rangeCount: i32): i32 {
  return lbTables.addSection(id, family, scratch, dscp, hash, tableSize, backendCount, rangeCount);
}
export function lbAddBackend(section: i32, up: u32): i32 { return lbTables.addBackend(section, scratch, up != 0); }
export function lbAddRange(section: i32, protocol: u32, from: u32, to: u32): i32 { return lbTables.addRange(section, protocol, from, to); }
export function lbTableBase(section: i32): usize { return lbTables.tableOf(section); }
export function lbCommit(): u32 { return lbTables.commit() ? 1 : 0; }
export function lbSectionCount(): i32 { return lbTables.sectionCount(); }

// The connection table, read back for status and tests: entry i's section
// id (0: empty) answered, its key and backend copied to lbEntryScratchBase().
const entryOut: usize = memory.data(<i32>(connections.KEY_BYTES + 16), 8);
export function lbEntryScratchBase(): usize { return entryOut; }
export function lbConnectionEntries(): u32 { return connections.entries; }
export function lbEntryRead(i: u32): u32 { return connections.read(i, entryOut); }
export function lbEntryKeyLength(i: u32): u32 { return connections.keyLength(i); }
export function lbEvictions(): u64 { return connections.evictions; }
export function lbBackendPackets(section: i32, backend: u32): u64 { return lbTables.backendPackets(section, backend); }
