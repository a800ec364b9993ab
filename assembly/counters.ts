// Packet counters per verdict and per reason; per-rule counters live in the
// rule records (rules.ts). All are u64 so they never wrap in practice.

import {
  VERDICT_PASSED, VERDICT_REWRITTEN, VERDICT_MALFORMED, VERDICT_DROPPED, VERDICT_COUNT, REASON_COUNT,
} from "./abi.generated";

/** verdicts: u64[VERDICT_COUNT], then reasons: u64[REASON_COUNT]. */
export const counters: usize = memory.data(<i32>((VERDICT_COUNT + REASON_COUNT) * 8), 8);
const reasons: usize = counters + <usize>VERDICT_COUNT * 8;

// @ts-ignore: decorator
@inline function bump(p: usize, n: u64): void {
  store<u64>(p, load<u64>(p) + n);
}

/** Adds a batch's tallies to the verdict counters. */
// @ts-ignore: decorator
@inline export function countVerdicts(passed: u64, rewritten: u64, malformed: u64, dropped: u64): void {
  bump(counters + (<usize>VERDICT_PASSED << 3), passed);
  bump(counters + (<usize>VERDICT_REWRITTEN << 3), rewritten);
  bump(counters + (<usize>VERDICT_MALFORMED << 3), malformed);
  bump(counters + (<usize>VERDICT_DROPPED << 3), dropped);
}

// @ts-ignore: decorator
@inline export function countReason(reason: u32): void {
  bump(reasons + (<usize>reason << 3), 1);
}

export function reset(): void {
  memory.fill(counters, 0, <usize>(VERDICT_COUNT + REASON_COUNT) * 8);
}
