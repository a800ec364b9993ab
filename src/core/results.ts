// What the core's result words and its verdict/reason counters mean, for
// the rewriter and the balancer alike (their layout: scripts/abi.mjs).

import {
  REASON_COUNT, REASON_NAMES, RESULT_REASON_SHIFT, RESULT_RULE_SHIFT, VERDICT_COUNT, VERDICT_NAMES,
} from './abi.generated.js';
import type { PacketResult, Tallies, Verdict } from './types.js';

/**
 * Turns a core result word into a PacketResult. `rule` is the index the
 * word carries: a rule's for the rewriter, an [lb] section's for the balancer.
 */
export function decodeResult(word: number): PacketResult {
  const out: PacketResult = { verdict: VERDICT_NAMES[word & 0xff] as Verdict };
  const reason = (word >>> RESULT_REASON_SHIFT) & 0xff;
  if (reason !== 0) out.reason = REASON_NAMES[reason];
  const rule = word >>> RESULT_RULE_SHIFT;
  if (rule !== 0) out.rule = rule - 1;
  return out;
}

/** The core's counters (u64 per verdict, then per reason) by name; reason `none` left out. */
export function readTallies(counters: BigUint64Array): Tallies {
  const verdicts = {} as Record<Verdict, bigint>;
  for (let v = 0; v < VERDICT_COUNT; v++) verdicts[VERDICT_NAMES[v] as Verdict] = counters[v]!;
  const reasons: Record<string, bigint> = {};
  for (let r = 1; r < REASON_COUNT; r++) reasons[REASON_NAMES[r]!] = counters[VERDICT_COUNT + r]!;
  return { verdicts, reasons };
}
