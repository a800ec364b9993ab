// The fuzzer itself: the coverage build reports real edges, a short
// campaign reaches more of them than the seed corpus and finds nothing, the
// same seed gives the same campaign, --reps repeats it and sums it up, the
// invariant checks fire on broken outputs, and the committed seed corpus is
// what seeds.ts builds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeResult } from '../src/core/rewriter.js';
import { validateRules } from '../src/core/rules.js';
import { transportChecksum } from '../tools/packets/layout.js';
import { Rng } from '../tools/packets/rng.js';
import { readVnet } from '../tools/packets/vnet.js';
import { checksumReport, oracleRewrite } from '../tools/oracle/oracle.js';
import { findTransport, parseFixedHeader } from '../tools/oracle/packet.js';
import { runCampaign } from '../tools/fuzz/campaign.js';
import { runLbCampaign } from '../tools/fuzz/lb-campaign.js';
import { loadCoverageMap } from '../tools/fuzz/coverage.js';
import { corpusFileName, defaultCorpusDir, inputOf, loadCorpus } from '../tools/fuzz/files.js';
import { Harness, type FuzzInput, type Observed } from '../tools/fuzz/harness.js';
import { checkOutcome, type ViolationKind } from '../tools/fuzz/invariants.js';
import { MUTATORS, checksumToZero, mutate, mutateInput, type MutationContext } from '../tools/fuzz/mutators.js';
import { FUZZ_RULES } from '../tools/fuzz/ruleset.js';
import { seedInputs } from '../tools/fuzz/seeds.js';
import { expectWithVnet, seedError, seedPlace } from '../tools/fuzz/vnet.js';

const allSeeds = seedInputs();
/** The plain-mode seeds. */
const seeds = allSeeds.filter((s) => !s.input.vnet).map((s) => ({ name: s.name, bytes: s.input.bytes }));
const seedInput = (name: string) => {
  const s = allSeeds.find((p) => p.name === name);
  assert.ok(s, `no seed named ${name}`);
  return s.input;
};
const seed = (name: string) => seedInput(name).bytes;

async function harness(batchSize = 16): Promise<Harness> {
  return Harness.create({ rules: FUZZ_RULES, batchSize, slotSize: 2048 });
}

/** Runs one input through both builds and returns the release build's observation. */
function runOne(h: Harness, input: FuzzInput): Observed {
  const { release, coverage } = h.run([input]);
  assert.equal(release.trap, undefined);
  assert.equal(coverage.trap, undefined);
  return release.observed[0];
}

function kinds(input: FuzzInput, obs: Observed, h: Harness): ViolationKind[] {
  return checkOutcome(input, obs, h.rules).map((v) => v.kind);
}

test('the coverage map matches the coverage core, and different paths hit different edges', async () => {
  const h = await harness();
  const map = loadCoverageMap();
  assert.equal(map.length, h.edges().length);
  assert.ok(map.some((e) => e.kind === 'true') && map.some((e) => e.kind === 'false') && map.some((e) => e.kind === 'case'));

  const udp = seed('v4-udp');
  const full = h.edgesOf({ bytes: udp });
  // The same packet cut to 7 bytes of UDP (length fields fitted): dropped as udp-truncated.
  const cut = udp.slice(0, 20 + 7);
  cut[3] = cut.length;
  assert.equal(decodeResult(runOne(h, { bytes: cut }).word).reason, 'udp-truncated');
  const truncated = h.edgesOf({ bytes: cut });
  const onlyIn = (a: Uint32Array, b: Uint32Array) => map.filter((_, i) => a[i] !== 0 && b[i] === 0);
  assert.ok(onlyIn(full, truncated).length > 0, 'a rewritten UDP packet hits an edge the truncated one does not');
  assert.ok(onlyIn(truncated, full).length > 0, 'the truncated one hits an edge the rewritten one does not');
  assert.ok(full.every((n, i) => n === 0 || map[i] !== undefined));
});

test('a short campaign reaches edges beyond the seed corpus and finds no violation', async () => {
  const crashDir = mkdtempSync(join(tmpdir(), 'l3dsr-fuzz-'));
  try {
    const r = await runCampaign({ seed: 1, inputs: 60_000, crashDir });
    const detail = r.findingsList.map((f) => `${f.check ?? f.file}: ${f.violations.map((v) => `${v.kind}: ${v.detail}`).join('; ')}`).join('\n');
    assert.deepEqual(r.findingsList.length, 0, `violations found:\n${detail}`);
    assert.equal(r.inputs, 60_000);
    assert.ok(r.coverage.edges > r.seedCoverage.edges, `edges ${r.coverage.edges} not beyond the seeds' ${r.seedCoverage.edges}`);
    assert.ok(r.coverage.branches > r.seedCoverage.branches);
    assert.ok(r.corpus > r.seedInputs, 'inputs that reached new edges were kept');
    // The checks had something to check: every verdict, and valid transport checksums rewritten.
    for (const v of ['passed', 'rewritten', 'malformed', 'dropped']) assert.ok((r.stats.verdicts[v] ?? 0) > 0, `no ${v} input`);
    assert.ok(r.stats.transportValidBefore > 0);
    assert.ok(r.stats.checksumFFFF > 0);
  } finally {
    rmSync(crashDir, { recursive: true, force: true });
  }
});

test('the same seed runs the same campaign', async () => {
  const run = () => runCampaign({ seed: 7, inputs: 8_000, crashDir: null });
  const [a, b] = [await run(), await run()];
  assert.equal(a.corpus, b.corpus);
  assert.deepEqual(a.coverage, b.coverage);
  assert.deepEqual(a.stats, b.stats);
  const c = await runCampaign({ seed: 8, inputs: 8_000, crashDir: null });
  assert.notDeepEqual(c.stats, a.stats, 'another seed gives other inputs');
});

/** `npm run fuzz -- ARGS`, as npm runs it (dist/tools/fuzz/main.js from the checkout). */
function fuzzCli(args: string[]) {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  return spawnSync(process.execPath, [join(root, 'dist/tools/fuzz/main.js'), ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
}

test('--reps N: N campaigns with seeds S, S+1…, each reported, then inputs/s as median (min–max) and each one\'s coverage', async () => {
  const crashDir = mkdtempSync(join(tmpdir(), 'l3dsr-fuzz-'));
  try {
    const r = fuzzCli(['--inputs', '3000', '--reps', '2', '--seed', '41', '--quiet', '--crashes', crashDir]);
    assert.equal(r.status, 0, r.stderr);
    // What the same seeds and input count give in this process: a campaign is deterministic for both.
    const [a, b] = [await runCampaign({ seed: 41, inputs: 3000, crashDir: null }), await runCampaign({ seed: 42, inputs: 3000, crashDir: null })];
    assert.match(r.stdout, /^fuzz: seed 41: 3000 inputs in /m);
    assert.match(r.stdout, /^fuzz: seed 42: 3000 inputs in /m);
    const rate = /^fuzz: 2 campaigns, seeds 41, 42: (\d+) \((\d+)–(\d+)\) inputs\/s, median \(min–max\)$/m.exec(r.stdout);
    assert.ok(rate, r.stdout);
    const [median, min, max] = rate.slice(1).map(Number);
    assert.ok(min! <= median! && median! <= max! && min! > 0, rate[0]);
    assert.match(r.stdout, new RegExp(`^fuzz: per campaign: edges ${a.coverage.edges}, ${b.coverage.edges} of ${a.coverage.totalEdges}; `
      + `branch outcomes ${a.coverage.branches}, ${b.coverage.branches} of ${a.coverage.totalBranches}; violating inputs 0, 0$`, 'm'));
    assert.match(r.stdout, /^command: node dist\/tools\/fuzz\/main\.js --inputs 3000 --reps 2 /m);
    assert.match(r.stdout, /load average [\d.]+ at start, [\d.]+ at end, [\d.]+–[\d.]+ over the run/);
  } finally {
    rmSync(crashDir, { recursive: true, force: true });
  }
});

test('--reps: a positive integer, for the rewrite target only, not with --json', () => {
  for (const [args, says] of [
    [['--inputs', '10', '--reps', '0'], /--reps: expected a positive integer, got "0"/],
    [['--target', 'lb', '--reps', '2'], /--reps: the balancer's campaign runs a fixed number of inputs/],
    [['--inputs', '10', '--reps', '2', '--json', '/dev/null'], /--json writes one campaign's report/],
  ] as const) {
    const r = fuzzCli([...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, says);
  }
});

test('the invariant checks catch broken outputs', async () => {
  const h = await harness();
  const input = { bytes: seed('v6-hop-by-hop-tcp') };
  const good = runOne(h, input);
  assert.equal(decodeResult(good.word).verdict, 'rewritten');
  assert.deepEqual(kinds(input, good, h), []);

  const tampered = (change: (o: Observed) => void): Observed => {
    const o = { ...good, output: good.output.slice() };
    change(o);
    return o;
  };
  const last = input.bytes.length - 1;
  assert.ok(kinds(input, tampered((o) => { o.output[last] ^= 1; }), h).includes('unexpected-byte-changed'));
  // The TCP checksum sits after the 8-byte hop-by-hop header: 40 + 8 + 16.
  assert.ok(kinds(input, tampered((o) => { o.output[40 + 8 + 17] ^= 1; }), h).includes('checksum-broken'));
  assert.ok(kinds(input, tampered((o) => { o.output[39] ^= 1; }), h).includes('wrong-destination'));
  assert.ok(kinds(input, tampered((o) => { o.output[1] ^= 0x10; }), h).includes('ecn-changed'));
  assert.ok(kinds(input, tampered((o) => { o.tailChange = input.bytes.length + 3; }), h).includes('write-outside-packet'));
  assert.ok(kinds(input, tampered((o) => { o.word = 0; }), h).includes('verdict-mismatch'));
  assert.ok(kinds(input, tampered((o) => { o.output[40 + 8 + 16] = 0; o.output[40 + 8 + 17] = 0; }), h).includes('checksum-zero-written'));

  const passing = { bytes: seed('v4-unmarked-passes') };
  const passed = runOne(h, passing);
  assert.equal(decodeResult(passed.word).verdict, 'passed');
  const changed = { ...passed, output: passed.output.slice() };
  changed.output[16] ^= 1;
  assert.ok(kinds(passing, changed, h).includes('untouchable-changed'));

  const cut = { bytes: seed('v4-tcp').slice(0, 20 + 17) };
  cut.bytes[3] = cut.bytes.length;
  const dropped = runOne(h, cut);
  assert.equal(decodeResult(dropped.word).reason, 'tcp-truncated');
  assert.deepEqual(kinds(cut, dropped, h), []);
  assert.ok(kinds(cut, { ...dropped, length: cut.bytes.length }, h).includes('length-changed'));

  // A lying batch descriptor must be refused without touching the slot.
  const lie: FuzzInput = { bytes: seed('v4-tcp'), descriptor: 'length-over-slot' };
  const refused = runOne(h, lie);
  assert.equal(decodeResult(refused.word).reason, 'slot-overflow');
  assert.deepEqual(kinds(lie, refused, h), []);
});

test('checksum-to-zero makes the incremental update come out 0, written as 0xFFFF', async () => {
  const h = await harness();
  const rng = new Rng(3);
  const ctx: MutationContext = { rng, corpus: [], maxLength: 2048, rules: h.rules };
  let aimed = 0;
  for (const { name, bytes } of seeds) {
    for (let k = 0; k < 8; k++) {
      const p = checksumToZero(bytes.slice(), ctx);
      const out = runOne(h, { bytes: p });
      assert.deepEqual(checkOutcome({ bytes: p }, out, h.rules), [], name);
      if (decodeResult(out.word).verdict !== 'rewritten') continue;
      // Which checksum was aimed at: the one whose stored value changed.
      const parsed = parseFixedHeader(p);
      assert.ok(!('malformed' in parsed));
      const fields: number[] = parsed.family === 4 ? [10] : [];
      const t = findTransport(p, parsed);
      const c = 'malformed' in t ? undefined : transportChecksum(parsed.family, t.protocol);
      if (c && !('malformed' in t) && t.fragment !== 'non-first' && !t.opaque && !t.routingPending && t.length >= c.minBytes) fields.push(t.offset + c.field);
      for (const f of fields) {
        if (p[f] === bytes[f] && p[f + 1] === bytes[f + 1]) continue;
        assert.deepEqual([out.output[f], out.output[f + 1]], [0xff, 0xff], `${name}: checksum at ${f}`);
        aimed++;
      }
    }
  }
  assert.ok(aimed > 20, `only ${aimed} aimed checksums`);
});

test('every mutator copes with any input and stays within the slot', () => {
  const rng = new Rng(11);
  const corpus = seeds.map((s) => s.bytes);
  const ctx: MutationContext = { rng, corpus: allSeeds.map((s) => s.input), maxLength: 256, rules: [], vnetBytes: 10 };
  const inputs = [new Uint8Array(0), Uint8Array.of(0x45), Uint8Array.of(0x60, 0, 0, 0), ...corpus];
  for (const m of MUTATORS) {
    for (let i = 0; i < 400; i++) {
      const base = i % 3 === 0 ? Uint8Array.from({ length: rng.below(120) }, () => rng.byte()) : rng.pick(inputs);
      const out = m.run(base.slice(), ctx);
      assert.ok(out instanceof Uint8Array, m.name);
      assert.ok(out.length <= Math.max(256, base.length), `${m.name} grew a packet to ${out.length}`);
    }
  }
  for (let i = 0; i < 2000; i++) assert.ok(mutate(rng.pick(corpus), ctx).length <= 256);
  let withHeader = 0;
  for (let i = 0; i < 2000; i++) {
    const m = mutateInput(rng.pick(ctx.corpus), ctx);
    assert.ok(m.bytes.length + (m.vnet?.length ?? 0) <= 256);
    if (m.vnet) {
      withHeader++;
      assert.ok(m.vnet.length === 10 || m.bytes.length === 0, 'a cut header comes with no packet');
    }
  }
  assert.ok(withHeader > 0 && withHeader < 2000);
});

test('the committed seed corpus holds every seed of seeds.ts, valid and with the verdict its name says', () => {
  const files = loadCorpus(defaultCorpusDir).filter((f) => !f.name.startsWith('gen-'));
  assert.deepEqual(files.map((f) => f.name).sort(), allSeeds.map((s) => corpusFileName(s.name, s.input)).sort(),
    'test/fuzz/corpus is out of date: npm run fuzz -- --write-seeds test/fuzz/corpus');
  const { rules } = validateRules(FUZZ_RULES);
  let withTransport = 0;
  for (const file of files) {
    const { name } = file;
    const input = inputOf(file);
    const wantVerdict = name.includes('passes') ? 'passed' : name.includes('dropped') ? 'dropped' : 'rewritten';
    if (input.vnet) {
      assert.equal(expectWithVnet(input.vnet, input.bytes, rules).verdict, wantVerdict, name);
      // A NEEDS_CSUM seed is the pseudo-header sum, not a checksum.
      const place = seedPlace(input.bytes);
      if (readVnet(input.vnet).flags & 1 && place) assert.equal(seedError(input.bytes, place), 0, `${name}: seed`);
      continue;
    }
    const report = checksumReport(input.bytes);
    const valid = [report.ipv4Header, report.transport?.valid].filter((v) => v !== undefined);
    assert.equal(valid.every(Boolean), !name.includes('bad'), `${name}: checksums ${JSON.stringify(report)}`);
    if (report.transport) withTransport++;
    assert.equal(oracleRewrite(input.bytes, rules).verdict, wantVerdict, name);
  }
  assert.ok(withTransport >= 30, `only ${withTransport} seeds carry a transport checksum`);
});

test('vnet mode: a NEEDS_CSUM seed follows the new address, a header pointing elsewhere drops, the header never changes', async () => {
  const h = await harness();
  assert.ok(h.vnetHeaderBytes > 0, 'the core has no virtio-net header mode (setVnetHeaderBytes export): nothing to test');
  const run = (input: FuzzInput) => {
    const o = runOne(h, input);
    assert.deepEqual(checkOutcome(input, o, h.rules), []);
    return { result: decodeResult(o.word), packet: o.output.subarray(input.vnet?.length ?? 0) };
  };
  const tcp = seedInput('vnet-v4-tcp-needs-csum');
  const rewritten = run(tcp);
  assert.equal(rewritten.result.verdict, 'rewritten');
  const place = seedPlace(rewritten.packet);
  assert.ok(place);
  assert.equal(seedError(rewritten.packet, place), 0, 'the seed is the pseudo-header sum of the new destination');
  assert.notDeepEqual(rewritten.packet.subarray(place.field, place.field + 2), tcp.bytes.subarray(place.field, place.field + 2));

  const v6dscp1 = h.rules.findIndex((r) => r.family === 6 && r.dscp === 1 && !r.match);
  assert.deepEqual(run(seedInput('vnet-v6-tcp-inconsistent-dropped')).result, { verdict: 'dropped', reason: 'vnet-inconsistent', rule: v6dscp1 });
  assert.deepEqual(run({ vnet: tcp.vnet!.slice(0, 4), bytes: new Uint8Array(0) }).result, { verdict: 'malformed', reason: 'vnet-header' });
  // Without NEEDS_CSUM the same packet gets its (full) checksum fixed as in plain mode.
  const plain = seedInput('vnet-v4-udp-no-flags');
  assert.deepEqual(run(plain).packet, oracleRewrite(plain.bytes, h.rules).output);
  // A wrong seed stays exactly as wrong: tampering with the output is caught.
  const o = runOne(h, tcp);
  o.output[10 + place.field + 1] ^= 1;
  assert.ok(checkOutcome(tcp, o, h.rules).some((v) => v.kind === 'checksum-broken'));
});

test('the balancer target: a short campaign against the reference model finds nothing and reaches edges beyond its seeds', async () => {
  const r = await runLbCampaign({ seed: 3, inputs: 20_000 });
  assert.deepEqual(r.findings.map((f) => `${f.inputNumber}: ${f.detail}`), []);
  assert.equal(r.inputs, 20_000);
  assert.ok(r.coverage.edges > r.seedCoverage.edges, `edges ${r.coverage.edges} not beyond the seeds' ${r.seedCoverage.edges}`);
  for (const k of ['rewritten', 'passed', 'malformed ipv4-header', 'dropped no-backend', 'dropped icmp-embedded']) {
    assert.ok((r.verdicts[k] ?? 0) > 0, `no input was ${k}: ${JSON.stringify(r.verdicts)}`);
  }
});

test('the balancer target reports a core that differs from the model', async () => {
  // A model whose connection table buckets differ from the cores': the tables cannot agree.
  const r = await runLbCampaign({ seed: 3, inputs: 256, seeds: 128, modelTableSeed: 1, maxFindings: 1 });
  assert.equal(r.findings.length, 1);
  assert.match(r.findings[0].detail, /connection tables differ/);
});
