// One fuzzing campaign: seed corpus first, then batches of mutated inputs
// through both cores, every outcome checked, inputs that reach a new edge
// kept. Deterministic for a given seed: the n-th input is the same on any
// machine; only where a time-limited campaign stops depends on speed.

import type { RuleInput } from '../../src/core/rules.js';
import type { Rule } from '../../src/core/types.js';
import { Rng } from '../packets/rng.js';
import { L3dsrError } from '../../src/errors.js';
import { CoverageTracker, loadCoverageMap, type CoverageSummary, type Edge } from './coverage.js';
import { defaultCorpusDir, hashOf, inputOf, loadCorpus, saveCrash, writeCorpusFile } from './files.js';
import { Harness, type CoreRun, type DescriptorLie, type FuzzInput } from './harness.js';
import { checkCounters, snapshotCounters } from './counter-check.js';
import { checkOutcome, compareBuilds, newCheckStats, type CheckStats, type Violation } from './invariants.js';
import { mutateInput, type MutationContext } from './mutators.js';
import { probeExports } from './probe.js';
import { runAlone } from './replay.js';
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
  const campaign = new Campaign(opts, await openHarness(opts));
  const seedCoverage = campaign.runSeeds();
  campaign.runMutations();
  return campaign.report(seedCoverage);
}

/** Both cores, with a coverage map that matches the coverage build. */
async function openHarness(opts: CampaignOptions): Promise<{ harness: Harness; tracker: CoverageTracker }> {
  const harness = await Harness.create({ rules: opts.rules ?? FUZZ_RULES, batchSize: opts.batchSize ?? 256, slotSize: opts.slotSize ?? 2048 });
  const map = loadCoverageMap();
  if (map.length !== harness.edges().length) {
    throw new L3dsrError('ERR_L3DSR_COVERAGE_BUILD', `coverage map has ${map.length} edges but the coverage core counts ${harness.edges().length}: rebuild with scripts/coverage.mjs`);
  }
  return { harness, tracker: new CoverageTracker(map) };
}

/** The seeds a campaign starts from: the corpus directory's, else the built-in ones. */
function startingInputs(corpusDir: string): FuzzInput[] {
  const seeds = loadCorpus(corpusDir).map(inputOf);
  return seeds.length > 0 ? seeds : seedInputs().map((s) => s.input);
}

/** One campaign's state, and its steps in the order runCampaign takes them. */
class Campaign {
  readonly #opts: CampaignOptions;
  readonly #harness: Harness;
  readonly #tracker: CoverageTracker;
  readonly #rules: readonly Rule[];
  readonly #stats = newCheckStats();
  readonly #rng: Rng;
  readonly #corpusDir: string;
  readonly #batchSize: number;
  readonly #seeds: FuzzInput[];
  readonly #corpus: FuzzInput[];
  readonly #ctx: MutationContext;
  readonly #findings: Finding[] = [];
  readonly #seen = new Set<string>();
  readonly #started: number;
  /** Mutated inputs run so far. */
  #inputs = 0;

  constructor(opts: CampaignOptions, { harness, tracker }: { harness: Harness; tracker: CoverageTracker }) {
    this.#opts = opts;
    this.#harness = harness;
    this.#tracker = tracker;
    this.#rules = harness.rules;
    this.#rng = new Rng(opts.seed);
    this.#corpusDir = opts.corpusDir ?? defaultCorpusDir;
    this.#batchSize = opts.batchSize ?? 256;
    this.#seeds = startingInputs(this.#corpusDir);
    this.#corpus = [...this.#seeds];
    this.#ctx = { rng: this.#rng, corpus: this.#corpus, maxLength: harness.slotSize, rules: this.#rules, vnetBytes: harness.vnetHeaderBytes };
    this.#started = performance.now();
  }

  #elapsed(): number {
    return (performance.now() - this.#started) / 1000;
  }

  status(): CampaignStatus {
    const s = this.#elapsed();
    return {
      elapsedSeconds: s, inputs: this.#inputs, inputsPerSecond: s > 0 ? this.#inputs / s : 0, corpus: this.#corpus.length,
      coverage: this.#tracker.summary(), findings: this.#findings.length,
    };
  }

  /** Runs what loading the rules executed, the probes of the exports and the seeds; returns the coverage before any mutation. */
  runSeeds(): CoverageSummary {
    const harness = this.#harness;
    this.#tracker.merge(harness.edges());
    const plain = this.#seeds.filter((s) => !s.vnet).map((s) => s.bytes);
    for (const p of probeExports(harness, plain, this.#rules, this.#stats)) this.#record(p.input ?? { bytes: new Uint8Array(0) }, p.violations, -1, p.check);
    this.#tracker.merge(harness.edges());
    for (let i = 0; i < this.#seeds.length; i += this.#batchSize) {
      const chunk = this.#seeds.slice(i, i + this.#batchSize);
      if (this.#runBatch(chunk, chunk.map(() => -1))) this.#tracker.merge(harness.edges());
    }
    return this.#tracker.summary();
  }

  /** Batches of mutated inputs until the time, the input count or the findings run out. */
  runMutations(): void {
    const opts = this.#opts;
    const deadline = opts.seconds ?? Infinity;
    const limit = opts.inputs ?? Infinity;
    const maxFindings = opts.maxFindings ?? 20;
    const progressMs = opts.progressMs ?? 1000;
    let lastProgress = performance.now();
    while (this.#inputs < limit && this.#elapsed() < deadline && this.#findings.length < maxFindings) {
      const batch = this.#mutatedBatch(Math.min(this.#batchSize, limit - this.#inputs));
      if (this.#runBatch(batch, batch.map((_, i) => this.#inputs + i))) this.#keepNewCoverage(batch);
      this.#inputs += batch.length;
      if (opts.onProgress && performance.now() - lastProgress >= progressMs) {
        lastProgress = performance.now();
        opts.onProgress(this.status());
      }
    }
  }

  report(seedCoverage: CoverageSummary): CampaignReport {
    return {
      ...this.status(), seed: this.#opts.seed, seedInputs: this.#seeds.length, seedCoverage,
      unreached: this.#tracker.unreached(), byFile: this.#tracker.byFile(), findingsList: this.#findings, stats: this.#stats,
    };
  }

  /** `n` inputs mutated from the corpus, now and then one with a lying batch descriptor. */
  #mutatedBatch(n: number): FuzzInput[] {
    const rng = this.#rng;
    const corpus = this.#corpus;
    return Array.from({ length: n }, () => {
      // Half the time a recent addition: new coverage tends to sit next to new coverage.
      const parent = rng.oneIn(2) ? corpus[corpus.length - 1 - rng.below(Math.min(16, corpus.length))] : rng.pick(corpus);
      const input = mutateInput(parent, this.#ctx);
      return !input.vnet && rng.oneIn(DESCRIPTOR_LIE_ODDS) ? { ...input, descriptor: rng.pick(DESCRIPTOR_LIES) } : input;
    });
  }

  /** Something in the batch was new: finds out which inputs, one by one, and keeps them. */
  #keepNewCoverage(batch: readonly FuzzInput[]): void {
    for (const input of batch) {
      if (this.#tracker.merge(this.#harness.edgesOf(input)) > 0 && !input.descriptor) {
        this.#corpus.push(input);
        if (this.#opts.saveCorpus) writeCorpusFile(this.#corpusDir, `gen-${hashOf(input)}`, input);
      }
    }
  }

  #record(input: FuzzInput, violations: Violation[], inputNumber: number, check?: string): void {
    const key = `${check ?? ''}/${hashOf(input)}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    const f: Finding = { input, violations, inputNumber, check };
    // A probe's failure is not a packet to replay: it is re-checked by every campaign.
    if (this.#opts.crashDir && check === undefined) f.file = saveCrash(this.#opts.crashDir, input, violations, { seed: this.#opts.seed, input: inputNumber });
    this.#findings.push(f);
  }

  /** Checks every outcome of one run of `inputs`; numbers are the inputs' campaign numbers. */
  #checkRun(inputs: readonly FuzzInput[], numbers: readonly number[], release: CoreRun, coverage: CoreRun): void {
    inputs.forEach((input, i) => {
      const v = checkOutcome(input, release.observed[i], this.#rules, this.#stats);
      const c = checkOutcome(input, coverage.observed[i], this.#rules);
      const b = compareBuilds(release.observed[i], coverage.observed[i]);
      if (v.length === 0 && c.length === 0 && !b) return;
      // Alone, the input also gets its counters checked; should it pass alone, what the batch showed stands.
      const alone = runAlone(this.#harness, input);
      const inBatch = [...v, ...c.map((x) => ({ ...x, detail: `coverage build: ${x.detail}` })), ...(b ? [b] : [])];
      this.#record(input, alone.length > 0 ? alone : inBatch.map((x) => ({ ...x, detail: `only in a batch: ${x.detail}` })), numbers[i]);
    });
  }

  /**
   * Runs inputs one at a time, to find which one trapped, wrote into a
   * guard slot or moved the counters wrongly: a batch only tells that one did.
   */
  #isolate(inputs: readonly FuzzInput[], numbers: readonly number[]): void {
    inputs.forEach((input, i) => {
      const bad = runAlone(this.#harness, input);
      if (bad.length > 0) this.#record(input, bad, numbers[i]);
    });
  }

  /** Runs one batch through both cores and checks it; true when it hit an edge not hit before. */
  #runBatch(inputs: readonly FuzzInput[], numbers: readonly number[]): boolean {
    const harness = this.#harness;
    const before = snapshotCounters(harness);
    const { release, coverage } = harness.run(inputs);
    if (release.trap || coverage.trap || !release.guardsIntact || !coverage.guardsIntact) {
      this.#isolate(inputs, numbers);
      return false;
    }
    this.#checkRun(inputs, numbers, release, coverage);
    if (checkCounters(before, snapshotCounters(harness), inputs, release.observed, this.#rules)) this.#isolate(inputs, numbers);
    return this.#tracker.hasNew(harness.edges());
  }
}
