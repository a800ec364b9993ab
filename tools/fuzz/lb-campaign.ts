// The fuzzer's second target: the balancer (assembly/lb.ts). Generated
// balancer traffic (lb-traffic.ts) seeds a corpus, mutated as the real
// server's inputs are (mutators.ts); each input goes through the reference
// model (tools/oracle/lb.ts), the release core's balancer on the batch path
// and the coverage build's one input at a time, all three holding their own
// connection table in lockstep. Any difference in outcome, bytes or
// connection table is a violation; an input that reaches a new edge of the
// coverage build joins the corpus. Backends go down and up on the way, so
// flows move. Deterministic for a seed, as campaign.ts.

import { createBalancer, type Balancer, type BalanceResult } from '../../src/core/balancer.js';
import { L3dsrError } from '../../src/errors.js';
import type { LbVip } from '../../src/lb/types.js';
import { lbConfigurationFrom } from '../../src/config/load.js';
import { Rng } from '../packets/rng.js';
import { LbModel, type LbOutcome } from '../oracle/lb.js';
import { CoverageTracker, loadCoverageMap, type CoverageSummary, type Edge } from './coverage.js';
import { LbTraffic } from './lb-traffic.js';
import { mutate, type MutationContext } from './mutators.js';

/** The campaign's sections: by port and for every packet, both families, two pools of one VIP on one protocol, a drained pool. */
export const LB_FUZZ_CONFIG = `
[lb web]
vip = 203.0.113.10
dscp = 1
ports = tcp/80, udp/53, udplite/5002, sctp/5000, dccp/5001
backends = 198.51.100.2, 198.51.100.3 weight=2, 198.51.100.4
check = none
table-size = 251

[lb tls]
vip = 203.0.113.10
dscp = 5
ports = tcp/443
backends = 198.51.100.7
check = none
table-size = 13

[lb web6]
vip = 2001:db8:203::10
dscp = 2
ports = tcp/80, udp/53, sctp/5000
hash = 3-tuple
backends = 2001:db8:198::2, 2001:db8:198::3
check = none
table-size = 13

[lb any]
vip = 203.0.113.20
dscp = 3
backends = 198.51.100.2, 198.51.100.5
check = none
table-size = 13

[lb any6]
vip = 2001:db8:203::20
dscp = 4
backends = 2001:db8:198::2 drain, 2001:db8:198::5
check = none
table-size = 13
`;

export interface LbCampaignOptions {
  seed: number;
  /** Mutated inputs to run (after the seeds). */
  inputs: number;
  /** Generated seed inputs. Default 400. */
  seeds?: number;
  batchSize?: number;
  /** A small table, so buckets fill and evict. Default 1024. */
  connections?: number;
  /** Stop after this many violating inputs. Default 20. */
  maxFindings?: number;
  /** The model's bucket seed, when not the cores' (to see that a table difference is caught). */
  modelTableSeed?: number;
}

export interface LbFinding {
  input: Uint8Array;
  inputNumber: number;
  detail: string;
}

export interface LbCampaignReport {
  seed: number;
  inputs: number;
  seedInputs: number;
  corpus: number;
  seedCoverage: CoverageSummary;
  coverage: CoverageSummary;
  /** Branch outcomes of the balancer's own files (lb*.ts, murmur3.ts) never reached. */
  unreachedLb: Edge[];
  verdicts: Record<string, number>;
  findings: LbFinding[];
}

const LB_FILES = /^assembly\/(lb[^/]*|murmur3)\.ts$/;
const TABLE_SEED = 0x1b5eed;

const withoutBytes = ({ output: _, ...rest }: LbOutcome): BalanceResult => rest;
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export async function runLbCampaign(opts: LbCampaignOptions): Promise<LbCampaignReport> {
  const vips: LbVip[] = lbConfigurationFrom([{ file: 'lb-fuzz.conf', text: LB_FUZZ_CONFIG }]).vips;
  const connections = opts.connections ?? 1024;
  const batchSize = opts.batchSize ?? 128;
  const make = (build: 'release' | 'coverage'): Promise<Balancer> => createBalancer({ vips, connections, tableSeed: TABLE_SEED, slotSize: 2048, slotCount: batchSize, build });
  const release = await make('release');
  const coverage = await make('coverage');
  const model = new LbModel(vips, { connections, tableSeed: opts.modelTableSeed ?? TABLE_SEED });
  const counters = coverage.coverage!;
  const map = loadCoverageMap();
  if (map.length !== counters.length) {
    throw new L3dsrError('ERR_L3DSR_COVERAGE_BUILD', `coverage map has ${map.length} edges but the coverage core counts ${counters.length}: rebuild with scripts/coverage.mjs`);
  }
  const tracker = new CoverageTracker(map);
  // What installing the tables reached.
  tracker.merge(counters);
  const rng = new Rng(opts.seed);
  const traffic = new LbTraffic(rng, vips, 40);
  const corpus: Uint8Array[] = Array.from({ length: opts.seeds ?? 400 }, () => traffic.next());
  const ctx: MutationContext = { rng, corpus: [], maxLength: 2048, rules: [] };
  const verdicts: Record<string, number> = {};
  const findings: LbFinding[] = [];
  const maxFindings = opts.maxFindings ?? 20;
  const health: [string, string][] = vips.flatMap((v) => v.backends.map((b): [string, string] => [v.name, b.address]));
  const down = new Set<number>();

  /** Runs inputs through all three in order; returns those that reached a new edge. */
  const runBatch = (inputs: readonly Uint8Array[], firstNumber: number): Uint8Array[] => {
    const want = inputs.map((p) => model.process(p));
    const fast = inputs.map((p) => p.slice());
    const got = release.balancePackets(fast);
    const fresh: Uint8Array[] = [];
    inputs.forEach((input, i) => {
      counters.fill(0);
      const slow = input.slice();
      const covered = coverage.balance(slow);
      if (tracker.merge(counters) > 0) fresh.push(input);
      const w = withoutBytes(want[i]);
      const key = `${w.verdict}${w.reason ? ` ${w.reason}` : ''}`;
      verdicts[key] = (verdicts[key] ?? 0) + 1;
      const problems = [
        same(got[i], w) ? '' : `release core ${JSON.stringify(got[i])}, model ${JSON.stringify(w)}`,
        same(covered, w) ? '' : `coverage core ${JSON.stringify(covered)}, model ${JSON.stringify(w)}`,
        hex(fast[i]) === hex(want[i].output) ? '' : `release bytes ${hex(fast[i])}, model ${hex(want[i].output)}`,
        hex(slow) === hex(want[i].output) ? '' : `coverage bytes ${hex(slow)}, model ${hex(want[i].output)}`,
      ].filter(Boolean);
      if (problems.length > 0 && findings.length < maxFindings) findings.push({ input, inputNumber: firstNumber + i, detail: problems.join('; ') });
    });
    const table = (b: Balancer) => b.connections().map((e) => ({ bucket: e.bucket, way: e.way, id: `${e.vip}|${e.key}`, backend: e.backend }));
    const modelTable = model.connections.entries();
    if ((!same(table(release), modelTable) || !same(table(coverage), modelTable)) && findings.length < maxFindings) {
      findings.push({ input: inputs[inputs.length - 1], inputNumber: firstNumber + inputs.length - 1, detail: 'the connection tables differ after this batch' });
    }
    return fresh;
  };

  const seeds = corpus.slice();
  for (let i = 0; i < seeds.length; i += batchSize) runBatch(seeds.slice(i, i + batchSize), -1);
  const seedCoverage = tracker.summary();
  const seedInputs = corpus.length;
  let done = 0;
  for (let batchNumber = 0; done < opts.inputs && findings.length < maxFindings; batchNumber++) {
    if (batchNumber % 16 === 15) {
      // A backend goes down, or comes back: its flows move.
      const h = rng.below(health.length);
      const up = down.has(h);
      if (up) down.delete(h);
      else down.add(h);
      counters.fill(0);
      for (const b of [release, coverage]) b.setHealth(health[h][0], health[h][1], up);
      model.setHealth(health[h][0], health[h][1], up);
      tracker.merge(counters);
    }
    const n = Math.min(batchSize, opts.inputs - done);
    const batch = Array.from({ length: n }, () => {
      const parent = rng.oneIn(2) ? corpus[corpus.length - 1 - rng.below(Math.min(16, corpus.length))] : rng.pick(corpus);
      return rng.oneIn(4) ? traffic.next() : mutate(parent, ctx);
    });
    corpus.push(...runBatch(batch, done));
    done += n;
  }
  return {
    seed: opts.seed, inputs: done, seedInputs, corpus: corpus.length, seedCoverage, coverage: tracker.summary(),
    unreachedLb: tracker.unreached().filter((e) => LB_FILES.test(e.file) && e.kind !== 'entry'), verdicts, findings,
  };
}
