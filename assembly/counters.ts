// Packet counters per verdict and per reason; per-rule counters live in the
// rule records (rules.ts). All are u64 so they never wrap in practice.

import { VERDICT_COUNT, REASON_COUNT } from "./abi.generated";

/** verdicts: u64[VERDICT_COUNT], then reasons: u64[REASON_COUNT]. */
export const counters: usize = memory.data(<i32>((VERDICT_COUNT + REASON_COUNT) * 8), 8);
const reasons: usize = counters + <usize>VERDICT_COUNT * 8;

// @ts-ignore: decorator
@inline export function countVerdict(verdict: u32): void {
  const p = counters + (<usize>verdict << 3);
  store<u64>(p, load<u64>(p) + 1);
}

// @ts-ignore: decorator
@inline export function countReason(reason: u32): void {
  const p = reasons + (<usize>reason << 3);
  store<u64>(p, load<u64>(p) + 1);
}

export function reset(): void {
  memory.fill(counters, 0, <usize>(VERDICT_COUNT + REASON_COUNT) * 8);
}
