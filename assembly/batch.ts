// The batch: the shell (or the TUN addon) fills a descriptor per entry (slot
// index, length), makes one call, and reads a result word per entry. Nothing
// is allocated or copied per packet.

import {
  VERDICT_PASSED, VERDICT_REWRITTEN, VERDICT_MALFORMED, VERDICT_DROPPED,
  REASON_SLOT_OVERFLOW, REASON_VNET_HEADER, RESULT_REASON_SHIFT,
} from "./abi.generated";
import { countVerdicts, countReason } from "./counters";
import * as layout from "./layout";
import * as lb from "./lb";
import { rewritePacket } from "./rewrite";

/**
 * Rewrites entries 0..n-1 as the real server does. An entry whose slot
 * index or length does not fit its slot is reported malformed and its slot
 * is not read. A dropped entry's length is set to 0, so a writer that skips
 * empty entries needs no other look at the results.
 */
export function run(n: u32): void { runBatch(n, false); }

/** The same as the balancer (lb.ts), which also writes each entry's lb detail word. */
export function runBalancer(n: u32): void { runBatch(n, true); }

// `balancer` is a constant at both call sites: each gets its own loop with
// the per-packet code inlined, and no test of it per packet.
// @ts-ignore: decorator
@inline function runBatch(n: u32, balancer: bool): void {
  const slotIndexes = layout.slotIndexes;
  const lengths = layout.lengths;
  const results = layout.results;
  const details = layout.details;
  const slots = layout.slots;
  const slotSize = layout.slotSize;
  const slotCount = layout.slotCount;
  const vnet = layout.vnetHeaderBytes;
  if (n > slotCount) n = slotCount;
  // Verdict tallies stay in registers for the batch; reasons are rare.
  let passed: u64 = 0, rewritten: u64 = 0, malformed: u64 = 0, dropped: u64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const at = <usize>i << 2;
    const slot = load<u32>(slotIndexes + at);
    const len = load<u32>(lengths + at);
    let res: u32;
    let detail: u32 = 0;
    if (slot >= slotCount || len > slotSize) {
      res = VERDICT_MALFORMED | (<u32>REASON_SLOT_OVERFLOW << RESULT_REASON_SHIFT);
    } else if (len < vnet) {
      res = VERDICT_MALFORMED | (<u32>REASON_VNET_HEADER << RESULT_REASON_SHIFT);
    } else {
      // One call site, so the per-packet code is inlined into this loop.
      const start = slots + <usize>slot * <usize>slotSize;
      if (balancer) {
        res = lb.balancePacket(start + vnet, len - vnet, vnet != 0 ? start : 0);
        detail = lb.detail;
      } else res = rewritePacket(start + vnet, len - vnet, vnet != 0 ? start : 0);
    }
    store<u32>(results + at, res);
    if (balancer) store<u32>(details + at, detail);
    const verdict = res & 0xff;
    if (verdict == VERDICT_REWRITTEN) rewritten++;
    else if (verdict == VERDICT_PASSED) passed++;
    else {
      countReason((res >> RESULT_REASON_SHIFT) & 0xff);
      if (verdict == VERDICT_DROPPED) {
        dropped++;
        store<u32>(lengths + at, 0);
      } else malformed++;
    }
  }
  countVerdicts(passed, rewritten, malformed, dropped);
}
