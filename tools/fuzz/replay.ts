// One input alone through both cores with every check: how a batch's
// culprit is found, and how saved findings are replayed as regressions.

import { checkCounters, snapshotCounters } from './counter-check.js';
import type { FuzzInput, Harness } from './harness.js';
import { checkOutcome, compareBuilds, type CheckStats, type Violation } from './invariants.js';

export function runAlone(h: Harness, input: FuzzInput, stats?: CheckStats): Violation[] {
  const before = snapshotCounters(h);
  const { release, coverage } = h.run([input]);
  const out: Violation[] = [];
  for (const [name, run] of [['release', release], ['coverage', coverage]] as const) {
    if (run.trap) out.push({ kind: 'trap', detail: `${name} core trapped: ${run.trap.message}` });
    else if (!run.guardsIntact) out.push({ kind: 'write-outside-packet', detail: `${name} core wrote into a neighbouring slot` });
  }
  if (release.trap || coverage.trap) return out;
  const r = checkOutcome(input, release.observed[0], h.rules, stats);
  out.push(...r);
  // The coverage build's own failures, unless the release build already showed the same kind.
  for (const v of checkOutcome(input, coverage.observed[0], h.rules)) {
    if (!r.some((x) => x.kind === v.kind)) out.push({ ...v, detail: `coverage build: ${v.detail}` });
  }
  const b = compareBuilds(release.observed[0], coverage.observed[0]);
  if (b) out.push(b);
  const c = checkCounters(before, snapshotCounters(h), [input], release.observed, h.rules);
  if (c) out.push(c);
  return out;
}
