// The core's own counters against what its results say: one per verdict,
// one per reason, and per rule the packets rewritten and their L3 bytes;
// and the release and coverage builds count alike.

import { REASON_COUNT, VERDICT_COUNT, VERDICT_REWRITTEN } from '../../src/core/abi.generated.js';
import type { Core } from '../../src/core/loader.js';
import type { Rule } from '../../src/core/types.js';
import { parseFixedHeader } from '../oracle/packet.js';
import type { FuzzInput, Harness, Observed } from './harness.js';
import type { Violation } from './invariants.js';

export interface CounterSnapshot {
  release: BigUint64Array;
  coverage: BigUint64Array;
  /** Per rule: [release, coverage] packets and bytes. */
  rulePackets: [bigint, bigint][];
  ruleBytes: [bigint, bigint][];
}

/** Both modes' cores added up: a batch's inputs are split between them. */
export function snapshotCounters(h: Harness): CounterSnapshot {
  const pairs = h.pairs;
  const n = h.plain.cores.release.exports.ruleCount();
  const sum = (pick: (p: (typeof pairs)[number]) => BigUint64Array) => {
    const total = pick(pairs[0]).slice();
    for (const p of pairs.slice(1)) pick(p).forEach((v, k) => { total[k] += v; });
    return total;
  };
  const perRule = (f: (core: Core, i: number) => bigint): [bigint, bigint][] => Array.from({ length: n }, (_, i) => [
    pairs.reduce((t, p) => t + f(p.cores.release, i), 0n),
    pairs.reduce((t, p) => t + f(p.cores.coverage, i), 0n),
  ]);
  return {
    release: sum((p) => p.cores.release.counters),
    coverage: sum((p) => p.cores.coverage.counters),
    rulePackets: perRule((core, i) => core.exports.rulePackets(i)),
    ruleBytes: perRule((core, i) => core.exports.ruleBytes(i)),
  };
}

/** The first way the counters moved other than `observed` (the release build's results) says. */
export function checkCounters(before: CounterSnapshot, after: CounterSnapshot, inputs: readonly FuzzInput[], observed: readonly Observed[], rules: readonly Rule[]): Violation | undefined {
  const want = new Array<bigint>(VERDICT_COUNT + REASON_COUNT).fill(0n);
  const packets = rules.map(() => 0n);
  const bytes = rules.map(() => 0n);
  observed.forEach((o, i) => {
    const verdict = o.word & 0xff;
    const reason = (o.word >>> 8) & 0xff;
    want[verdict]++;
    if (reason !== 0) want[VERDICT_COUNT + reason]++;
    const rule = (o.word >>> 16) - 1;
    if (verdict === VERDICT_REWRITTEN && rule >= 0 && rule < rules.length) {
      const h = parseFixedHeader(inputs[i].bytes);
      packets[rule]++;
      if (!('malformed' in h)) bytes[rule] += BigInt(h.end);
    }
  });
  for (let k = 0; k < want.length; k++) {
    const got = after.release[k] - before.release[k];
    if (got !== want[k]) return { kind: 'counter-mismatch', detail: `counter ${k} moved by ${got}, the results say ${want[k]}` };
    if (after.coverage[k] - before.coverage[k] !== got) return { kind: 'build-mismatch', detail: `counter ${k}: release and coverage builds counted differently` };
  }
  for (let r = 0; r < rules.length; r++) {
    const gotPackets = after.rulePackets[r][0] - before.rulePackets[r][0];
    const gotBytes = after.ruleBytes[r][0] - before.ruleBytes[r][0];
    if (gotPackets !== packets[r] || gotBytes !== bytes[r]) {
      return { kind: 'counter-mismatch', detail: `rule ${r} (${rules[r].origin}) counted ${gotPackets} packets/${gotBytes} bytes, the results say ${packets[r]}/${bytes[r]}` };
    }
    if (after.rulePackets[r][1] - before.rulePackets[r][1] !== gotPackets || after.ruleBytes[r][1] - before.ruleBytes[r][1] !== gotBytes) {
      return { kind: 'build-mismatch', detail: `rule ${r}: release and coverage builds counted differently` };
    }
  }
  return undefined;
}
