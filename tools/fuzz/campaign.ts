// One fuzzing campaign: seed corpus first, then batches of mutated inputs
// through both cores, every outcome checked, inputs that reach a new edge
// kept. Deterministic for a given seed: the n-th input is the same on any
// machine; only where a time-limited campaign stops depends on speed.

import type { RuleInput } from '../../src/core/rules.js';
import type { Rule } from '../../src/core/types.js';
import { L3dsrError } from '../../src/errors.js';
import { CoverageTracker, loadCoverageMap, type CoverageSummary, type Edge } from './coverage.js';
import { defaultCorpusDir, hashOf, inputOf, loadCorpus, saveCrash, writeCorpusFile } from './files.js';
import { Harness, type CoreRun, type DescriptorLie, type FuzzInput } from './harness.js';
import { checkCounters, snapshotCounters } from './counter-check.js';
import { checkOutcome, compareBuilds, newCheckStats, type CheckStats, type Violation } from './invariants.js';
import { mutateInput, type MutationContext } from './mutators.js';
import { probeExports } from './probe.js';
import { runAlone } from './replay.js';
import { Rng } from './rng.js';
import { FUZZ_RULES } from './ruleset.js';
import { seedInputs } from './seeds.js';

export interface CampaignOptions {
  seed: number;
  /** Stop after this many seconds... */
  seconds?: number;
  /** ...or after this many mutated inputs (whichever comes first; at least one must be given). */
  inputs?: number;
  /** Seed corpus directory (*.bin); the built-in seeds when it holds none. */
  corpusDir?: string;
  /** Write inputs that reached a new edge into corpusDir as gen-<hash>.bin. */
  saveCorpus?: boolean;
  /** Where to save violating inputs; null: do not save. */
  crashDir?: string | null;
  batchSize?: number;
  slotSize?: number;
  rules?: readonly (RuleInput | Rule | string)[];
  /** Stop after this many distinct violating inputs. */
  maxFindings?: number;
  onProgress?: (status: CampaignStatus) => void;
  progressMs?: number;
}

export interface CampaignStatus {
  elapsedSeconds: number;
  /** Mutated inputs run (seed inputs not included). */
  inputs: number;
  inputsPerSecond: number;
  corpus: number;
  coverage: CoverageSummary;
  findings: number;
}

/** An input that broke an invariant. */
export interface Finding {
  input: FuzzInput;
  violations: Violation[];
  /** 0-based number of the mutated input, or -1 for a seed or a probe. */
  inputNumber: number;
  /** Set for a failed one-off check of the core's exports (probe.ts). */
  check?: string;
  file?: string;
}

export interface CampaignReport extends CampaignStatus {
  seed: number;
  seedInputs: number;
  /** Coverage after loading the rules, the export probes and the seed corpus: before any mutation. */
  seedCoverage: CoverageSummary;
  unreached: Edge[];
  /** Branch outcomes hit per source file. */
  byFile: { file: string; branches: number; totalBranches: number }[];
  findingsList: Finding[];
  stats: CheckStats;
}

const DESCRIPTOR_LIES: readonly DescriptorLie[] = ['length-over-slot', 'slot-out-of-range'];
// One input in this many goes in with a lying batch descriptor.
const DESCRIPTOR_LIE_ODDS = 512;

export async function runCampaign(opts: CampaignOptions): Promise<CampaignReport> {
  if (opts.seconds === undefined && opts.inputs === undefined) throw new RangeError('runCampaign: give seconds or inputs');
  const batchSize = opts.batchSize ?? 256;
  const maxFindings = opts.maxFindings ?? 20;
  const harness = await Harness.create({ rules: opts.rules ?? FUZZ_RULES, batchSize, slotSize: opts.slotSize ?? 2048 });
  const map = loadCoverageMap();
  if (map.length !== harness.edges().length) {
    throw new L3dsrError('ERR_L3DSR_COVERAGE_BUILD', `coverage map has ${map.length} edges but the coverage core counts ${harness.edges().length}: rebuild with scripts/coverage.mjs`);
  }
  const tracker = new CoverageTracker(map);
  const rules = harness.rules;
  const stats = newCheckStats();
  const rng = new Rng(opts.seed);
  const corpusDir = opts.corpusDir ?? defaultCorpusDir;
  let seeds = loadCorpus(corpusDir).map(inputOf);
  if (seeds.length === 0) seeds = seedInputs().map((s) => s.input);
  const corpus: FuzzInput[] = [...seeds];
  const ctx: MutationContext = { rng, corpus, maxLength: harness.slotSize, rules, vnetBytes: harness.vnetHeaderBytes };
  const findings: Finding[] = [];
  const seen = new Set<string>();

  function record(input: FuzzInput, violations: Violation[], inputNumber: number, check?: string): void {
    const key = `${check ?? ''}/${hashOf(input)}`;
    if (seen.has(key)) return;
    seen.add(key);
    const f: Finding = { input, violations, inputNumber, check };
    // A probe's failure is not a packet to replay: it is re-checked by every campaign.
    if (opts.crashDir && check === undefined) f.file = saveCrash(opts.crashDir, input, violations, { seed: opts.seed, input: inputNumber });
    findings.push(f);
  }

  /** Checks every outcome of one run of `inputs`; numbers are the inputs' campaign numbers. */
  function checkRun(inputs: readonly FuzzInput[], numbers: readonly number[], release: CoreRun, coverage: CoreRun): void {
    inputs.forEach((input, i) => {
      const v = checkOutcome(input, release.observed[i], rules, stats);
      const c = checkOutcome(input, coverage.observed[i], rules);
      const b = compareBuilds(release.observed[i], coverage.observed[i]);
      if (v.length === 0 && c.length === 0 && !b) return;
      // Alone, the input also gets its counters checked; should it pass alone, what the batch showed stands.
      const alone = runAlone(harness, input);
      const inBatch = [...v, ...c.map((x) => ({ ...x, detail: `coverage build: ${x.detail}` })), ...(b ? [b] : [])];
      record(input, alone.length > 0 ? alone : inBatch.map((x) => ({ ...x, detail: `only in a batch: ${x.detail}` })), numbers[i]);
    });
  }

  /**
   * Runs inputs one at a time, to find which one trapped, wrote into a
   * guard slot or moved the counters wrongly: a batch only tells that one did.
   */
  function isolate(inputs: readonly FuzzInput[], numbers: readonly number[]): void {
    inputs.forEach((input, i) => {
      const bad = runAlone(harness, input);
      if (bad.length > 0) record(input, bad, numbers[i]);
    });
  }

  /** Runs one batch through both cores and checks it; true when it hit an edge not hit before. */
  function runBatch(inputs: readonly FuzzInput[], numbers: readonly number[]): boolean {
    const before = snapshotCounters(harness);
    const { release, coverage } = harness.run(inputs);
    if (release.trap || coverage.trap || !release.guardsIntact || !coverage.guardsIntact) {
      isolate(inputs, numbers);
      return false;
    }
    checkRun(inputs, numbers, release, coverage);
    if (checkCounters(before, snapshotCounters(harness), inputs, release.observed, rules)) isolate(inputs, numbers);
    return tracker.hasNew(harness.edges());
  }

  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  let inputs = 0;
  const status = (): CampaignStatus => {
    const s = elapsed();
    return { elapsedSeconds: s, inputs, inputsPerSecond: s > 0 ? inputs / s : 0, corpus: corpus.length, coverage: tracker.summary(), findings: findings.length };
  };

  // What loading the rules executed, then the probes of the exports.
  tracker.merge(harness.edges());
  for (const p of probeExports(harness, seeds.filter((s) => !s.vnet).map((s) => s.bytes), rules, stats)) record(p.input ?? { bytes: new Uint8Array(0) }, p.violations, -1, p.check);
  tracker.merge(harness.edges());
  for (let i = 0; i < seeds.length; i += batchSize) {
    const chunk = seeds.slice(i, i + batchSize);
    if (runBatch(chunk, chunk.map(() => -1))) tracker.merge(harness.edges());
  }
  const seedCoverage = tracker.summary();

  const deadline = opts.seconds === undefined ? Infinity : opts.seconds;
  const limit = opts.inputs ?? Infinity;
  const progressMs = opts.progressMs ?? 1000;
  let lastProgress = performance.now();
  while (inputs < limit && elapsed() < deadline && findings.length < maxFindings) {
    const n = Math.min(batchSize, limit - inputs);
    const batch: FuzzInput[] = new Array(n);
    const numbers: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      // Half the time a recent addition: new coverage tends to sit next to new coverage.
      const parent = rng.oneIn(2) ? corpus[corpus.length - 1 - rng.below(Math.min(16, corpus.length))] : rng.pick(corpus);
      const input = mutateInput(parent, ctx);
      batch[i] = !input.vnet && rng.oneIn(DESCRIPTOR_LIE_ODDS) ? { ...input, descriptor: rng.pick(DESCRIPTOR_LIES) } : input;
      numbers[i] = inputs + i;
    }
    if (runBatch(batch, numbers)) {
      // Something in the batch was new: find out which inputs, one by one.
      for (const input of batch) {
        if (tracker.merge(harness.edgesOf(input)) > 0 && !input.descriptor) {
          corpus.push(input);
          if (opts.saveCorpus) writeCorpusFile(corpusDir, `gen-${hashOf(input)}`, input);
        }
      }
    }
    inputs += n;
    if (opts.onProgress && performance.now() - lastProgress >= progressMs) {
      lastProgress = performance.now();
      opts.onProgress(status());
    }
  }

  return {
    ...status(), seed: opts.seed, seedInputs: seeds.length, seedCoverage,
    unreached: tracker.unreached(), byFile: tracker.byFile(), findingsList: findings, stats,
  };
}
