// The WASM core's exports: a narrow boundary of plain integers.
// Memory layout: layout.ts. Rules: rules.ts. Per-packet behaviour: rewrite.ts.

import * as batch from "./batch";
import * as counters from "./counters";
import * as layout from "./layout";
import * as rules from "./rules";

/** Lays out `count` slots of `size` bytes; 1 on success, 0 if memory cannot grow. Call once, first. */
export function init(size: u32, count: u32): u32 {
  if (!layout.setup(rules.TABLE_BYTES, size, count)) return 0;
  rules.setup();
  return 1;
}

export function slotsBase(): usize { return layout.slots; }
export function slotIndexesBase(): usize { return layout.slotIndexes; }
export function lengthsBase(): usize { return layout.lengths; }
export function resultsBase(): usize { return layout.results; }
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
