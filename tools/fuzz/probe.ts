// One-off checks, at the start of a campaign, of the core's exports that the
// batch loop does not drive: the one-packet path (rewriteOne), a batch call
// for more entries than there are slots, per-rule counters asked for a rule
// that does not exist, the layout exports, a rule reload, the raw rule
// exports' limits and the counter reset. Run on both builds (plain mode), so
// the coverage build also records these edges.

import { MAX_RULES, VERDICT_COUNT, REASON_COUNT, REASON_TOO_SHORT, VERDICT_MALFORMED, RESULT_REASON_SHIFT } from '../../src/core/abi.generated.js';
import type { Rewriter } from '../../src/core/rewriter.js';
import type { Rule } from '../../src/core/types.js';
import type { FuzzInput, Harness, Observed } from './harness.js';
import { checkOutcome, compareBuilds, type CheckStats, type Violation } from './invariants.js';

export interface ProbeFinding {
  check: string;
  input?: FuzzInput;
  violations: Violation[];
}

/** One packet through rewriteOne (slot 0), as Rewriter.rewrite does. */
function rewriteOne(rw: Rewriter, bytes: Uint8Array): Observed {
  const { core } = rw;
  core.slotBytes.fill(0x5a, 0, core.slotSize);
  core.slotBytes.set(bytes, 0);
  const word = core.exports.rewriteOne(bytes.length);
  const tail = core.slotBytes.subarray(bytes.length, core.slotSize);
  const changed = tail.findIndex((b) => b !== 0x5a);
  return { word, length: core.lengths[0], output: core.slotBytes.slice(0, bytes.length), tailChange: changed < 0 ? -1 : bytes.length + changed };
}

/** rewriteBatch(n) with n > slotCount must do slotCount entries, no more. */
function oversizedBatch(rw: Rewriter, name: string): Violation[] {
  const { core } = rw;
  const n = core.slotCount;
  core.slotIndexes.fill(0);
  core.lengths.fill(0);
  core.results.fill(0xffffffff);
  core.slotBytes.fill(0x5a);
  const before = core.counters.slice();
  rw.runBatch(n + 3);
  const out: Violation[] = [];
  const want = VERDICT_MALFORMED | (REASON_TOO_SHORT << RESULT_REASON_SHIFT);
  const wrong = core.results.findIndex((w) => w !== want);
  if (wrong >= 0) out.push({ kind: 'verdict-mismatch', detail: `${name}: batch of ${n + 3} on ${n} slots: entry ${wrong} result 0x${core.results[wrong].toString(16)}, expected malformed/too-short` });
  const moved = core.counters[VERDICT_MALFORMED] - before[VERDICT_MALFORMED];
  if (moved !== BigInt(n)) out.push({ kind: 'counter-mismatch', detail: `${name}: batch of ${n + 3} on ${n} slots counted ${moved} malformed, expected ${n}` });
  if (core.slotBytes.some((b) => b !== 0x5a)) out.push({ kind: 'write-outside-packet', detail: `${name}: batch of ${n + 3} on ${n} slots wrote into the slots` });
  return out;
}

function ruleCounterBounds(rw: Rewriter, name: string): Violation[] {
  const ex = rw.core.exports;
  const count = ex.ruleCount();
  const out: Violation[] = [];
  for (const i of [-1, count, count + 100]) {
    if (ex.rulePackets(i) !== 0n || ex.ruleBytes(i) !== 0n) out.push({ kind: 'counter-mismatch', detail: `${name}: counters of rule ${i} (of ${count}) are not 0` });
  }
  return out;
}

/** The slot layout the core reports is the one asked for. */
function layoutExports(rw: Rewriter, name: string): Violation[] {
  const ex = rw.core.exports as unknown as { slotSize(): number; slotCount(): number };
  if (ex.slotSize() !== rw.slotSize || ex.slotCount() !== rw.slotCount) {
    return [{ kind: 'bad-result-word', detail: `${name}: core reports ${ex.slotCount()} slots of ${ex.slotSize()} bytes, loaded with ${rw.slotCount} of ${rw.slotSize}` }];
  }
  return [];
}

/**
 * Loading the same rules again (twice, so each of the two rule tables is
 * built from the other) keeps every rule's counters. The campaign then runs
 * on the rebuilt table.
 */
function reloadKeepsCounters(rw: Rewriter, name: string): Violation[] {
  const ex = rw.core.exports;
  const read = () => rw.rules.map((_, i) => `${ex.rulePackets(i)}/${ex.ruleBytes(i)}`).join(' ');
  const before = read();
  rw.setRules(rw.rules);
  rw.setRules(rw.rules);
  const after = read();
  return before === after ? [] : [{ kind: 'counter-mismatch', detail: `${name}: rule counters ${before} became ${after} across a reload of the same rules` }];
}

/**
 * The raw rule exports refuse what validateRules keeps from them: a DSCP
 * above 63 and a rule past MAX_RULES; a negative prefix length means none.
 * Built in the idle table and never committed, so the live rules stay.
 */
function rawRuleLimits(rw: Rewriter, name: string): Violation[] {
  const ex = rw.core.exports;
  const out: Violation[] = [];
  const liveBefore = ex.ruleCount();
  ex.rulesBegin();
  if (ex.rulesAdd(4, 64, 0, -1, 0n, 0n) !== -1) out.push({ kind: 'bad-result-word', detail: `${name}: rulesAdd accepted DSCP 64` });
  if (ex.rulesAdd(4, 1, -5, -1, 0n, 0n) !== 0) out.push({ kind: 'bad-result-word', detail: `${name}: rulesAdd refused a negative prefix length (means none)` });
  for (let i = 1; i < MAX_RULES; i++) ex.rulesAdd(6, i & 63, 128, -1, 0n, 0n);
  if (ex.rulesAdd(4, 2, 0, -1, 0n, 0n) !== -1) out.push({ kind: 'bad-result-word', detail: `${name}: rulesAdd accepted rule ${MAX_RULES + 1}` });
  if (ex.ruleCount() !== liveBefore) out.push({ kind: 'counter-mismatch', detail: `${name}: building a rule set changed the live one before commit` });
  return out;
}

function resetClears(rw: Rewriter, name: string): Violation[] {
  rw.resetCounters();
  const c = rw.core.counters;
  for (let k = 0; k < VERDICT_COUNT + REASON_COUNT; k++) {
    if (c[k] !== 0n) return [{ kind: 'counter-mismatch', detail: `${name}: counter ${k} is ${c[k]} after resetCounters()` }];
  }
  return [];
}

export function probeExports(h: Harness, seeds: readonly Uint8Array[], rules: readonly Rule[], stats: CheckStats): ProbeFinding[] {
  const findings: ProbeFinding[] = [];
  for (const bytes of seeds) {
    const input = { bytes };
    const r = rewriteOne(h.release, bytes);
    const c = rewriteOne(h.coverage, bytes);
    const v = [...checkOutcome(input, r, rules, stats), ...checkOutcome(input, c, rules).map((x) => ({ ...x, detail: `coverage build: ${x.detail}` }))];
    const b = compareBuilds(r, c);
    if (b) v.push(b);
    if (v.length > 0) findings.push({ check: 'rewriteOne', input, violations: v });
  }
  for (const [name, rw] of [['release', h.release], ['coverage', h.coverage]] as const) {
    for (const [check, run] of [
      ['oversized batch', oversizedBatch], ['rule counter bounds', ruleCounterBounds], ['layout exports', layoutExports],
      ['rule reload', reloadKeepsCounters], ['raw rule limits', rawRuleLimits], ['counter reset', resetClears],
    ] as const) {
      const v = run(rw, name);
      if (v.length > 0) findings.push({ check, violations: v });
    }
  }
  return findings;
}
