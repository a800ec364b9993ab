// One-off checks, at the start of a campaign, of the core's exports that the
// batch loop does not drive: the one-packet path (rewriteSlot), a batch call
// for more entries than there are slots, per-rule counters asked for a rule
// that does not exist, the layout exports, a rule reload, the raw rule
// exports' limits and the counter reset. Run on both builds (plain mode), so
// the coverage build also records these edges.

import { MAX_RULES, VERDICT_COUNT, REASON_COUNT, REASON_TOO_SHORT, REASON_SLOT_OVERFLOW, VERDICT_MALFORMED, RESULT_REASON_SHIFT } from '../../src/core/abi.generated.js';
import type { Core } from '../../src/core/loader.js';
import type { Rewriter } from '../../src/core/rewriter.js';
import type { Rule } from '../../src/core/types.js';
import type { FuzzInput, Harness, Observed } from './harness.js';
import { checkOutcome, compareBuilds, type CheckStats, type Violation } from './invariants.js';

export interface ProbeFinding {
  check: string;
  input?: FuzzInput;
  violations: Violation[];
}

/** One packet through rewriteSlot (slot 0), as Rewriter.rewrite does. */
function rewriteSlot0(core: Core, bytes: Uint8Array): Observed {
  const slot = core.batch.slot(0);
  slot.fill(0x5a);
  slot.set(bytes);
  const word = core.exports.rewriteSlot(0, bytes.length);
  const changed = slot.subarray(bytes.length).findIndex((b) => b !== 0x5a);
  return { word, length: core.batch.entryLength(0), output: slot.slice(0, bytes.length), tailChange: changed < 0 ? -1 : bytes.length + changed };
}

/** rewriteSlots(n) with n > slotCount must do slotCount entries, no more. */
function oversizedBatch(_rw: Rewriter, core: Core, name: string): Violation[] {
  const { batch, exports } = core;
  const n = batch.slotCount;
  // Every result slot-overflow first, so that one the oversized call does not write shows.
  for (let i = 0; i < n; i++) batch.setEntry(i, n, 0);
  exports.rewriteSlots(n);
  const stale = VERDICT_MALFORMED | (REASON_SLOT_OVERFLOW << RESULT_REASON_SHIFT);
  const out: Violation[] = [];
  for (let i = 0; i < n; i++) {
    if (batch.result(i) !== stale) out.push({ kind: 'verdict-mismatch', detail: `${name}: entry ${i} with slot ${n} of ${n}: result 0x${batch.result(i).toString(16)}, expected malformed/slot-overflow` });
    batch.setEntry(i, 0, 0);
  }
  for (let i = 0; i < n; i++) batch.slot(i).fill(0x5a);
  const before = core.counters.slice();
  exports.rewriteSlots(n + 3);
  const want = VERDICT_MALFORMED | (REASON_TOO_SHORT << RESULT_REASON_SHIFT);
  const wrong = Array.from({ length: n }, (_, i) => batch.result(i)).findIndex((w) => w !== want);
  if (wrong >= 0) out.push({ kind: 'verdict-mismatch', detail: `${name}: batch of ${n + 3} on ${n} slots: entry ${wrong} result 0x${batch.result(wrong).toString(16)}, expected malformed/too-short` });
  const moved = core.counters[VERDICT_MALFORMED] - before[VERDICT_MALFORMED];
  if (moved !== BigInt(n)) out.push({ kind: 'counter-mismatch', detail: `${name}: batch of ${n + 3} on ${n} slots counted ${moved} malformed, expected ${n}` });
  for (let i = 0; i < n; i++) {
    if (batch.slot(i).some((b) => b !== 0x5a)) {
      out.push({ kind: 'write-outside-packet', detail: `${name}: batch of ${n + 3} on ${n} slots wrote into the slots` });
      break;
    }
  }
  return out;
}

function ruleCounterBounds(_rw: Rewriter, core: Core, name: string): Violation[] {
  const ex = core.exports;
  const count = ex.ruleCount();
  const out: Violation[] = [];
  for (const i of [-1, count, count + 100]) {
    if (ex.rulePackets(i) !== 0n || ex.ruleBytes(i) !== 0n) out.push({ kind: 'counter-mismatch', detail: `${name}: counters of rule ${i} (of ${count}) are not 0` });
  }
  return out;
}

/** The slot layout the core reports is the one asked for. */
function layoutExports(rw: Rewriter, core: Core, name: string): Violation[] {
  const ex = core.exports;
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
function reloadKeepsCounters(rw: Rewriter, core: Core, name: string): Violation[] {
  const ex = core.exports;
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
function rawRuleLimits(_rw: Rewriter, core: Core, name: string): Violation[] {
  const ex = core.exports;
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

function resetClears(rw: Rewriter, core: Core, name: string): Violation[] {
  rw.resetCounters();
  const c = core.counters;
  for (let k = 0; k < VERDICT_COUNT + REASON_COUNT; k++) {
    if (c[k] !== 0n) return [{ kind: 'counter-mismatch', detail: `${name}: counter ${k} is ${c[k]} after resetCounters()` }];
  }
  return [];
}

export function probeExports(h: Harness, seeds: readonly Uint8Array[], rules: readonly Rule[], stats: CheckStats): ProbeFinding[] {
  const findings: ProbeFinding[] = [];
  const { cores } = h.plain;
  for (const bytes of seeds) {
    const input = { bytes };
    const r = rewriteSlot0(cores.release, bytes);
    const c = rewriteSlot0(cores.coverage, bytes);
    const v = [...checkOutcome(input, r, rules, stats), ...checkOutcome(input, c, rules).map((x) => ({ ...x, detail: `coverage build: ${x.detail}` }))];
    const b = compareBuilds(r, c);
    if (b) v.push(b);
    if (v.length > 0) findings.push({ check: 'rewriteSlot', input, violations: v });
  }
  for (const [name, rw, core] of [['release', h.release, cores.release], ['coverage', h.coverage, cores.coverage]] as const) {
    for (const [check, run] of [
      ['oversized batch', oversizedBatch], ['rule counter bounds', ruleCounterBounds], ['layout exports', layoutExports],
      ['rule reload', reloadKeepsCounters], ['raw rule limits', rawRuleLimits], ['counter reset', resetClears],
    ] as const) {
      const v = run(rw, core, name);
      if (v.length > 0) findings.push({ check, violations: v });
    }
  }
  return findings;
}
