// npm run fuzz -- --seconds N [--reps N] [--seed S] [--corpus DIR] [--save-corpus]
//   [--inputs N] [--crashes DIR] [--batch N] [--json FILE] [--write-seeds DIR]
// npm run fuzz -- --target lb [--inputs N] [--seed S] [--batch N]
// Runs a coverage-guided campaign against the WASM core and exits 1 when an
// input broke an invariant (saved under --crashes, test/fuzz/crashes/ by default).
// --reps N runs N campaigns one after the other, seeds S, S+1…, and ends
// with their inputs/s as median (min–max) and each one's coverage (counts:
// no median), the figures the README's Performance table quotes.
// --target lb fuzzes the balancer against its reference model (lb-campaign.ts);
// its violations are printed with the input in hex, not saved.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isL3dsrError, L3dsrError } from '../../src/errors.js';
import { runCampaign, type CampaignReport, type CampaignStatus } from './campaign.js';
import { formatEdge, isBranch, percent } from './coverage.js';
import { defaultCorpusDir, defaultCrashDir, writeCorpusFile } from './files.js';
import { runLbCampaign } from './lb-campaign.js';
import { seedInputs } from './seeds.js';
import { positiveInt, positiveNumber } from '../../bench/support/args.js';
import { runRecord } from '../../bench/support/report.js';
import { spread } from '../../bench/support/stats.js';

const USAGE = `usage: npm run fuzz -- --seconds N [--reps N] [--seed S] [--corpus DIR] [--save-corpus]
       [--inputs N] [--crashes DIR] [--batch N] [--json FILE] [--quiet]
       npm run fuzz -- --target lb [--inputs N] [--seed S] [--batch N]
       npm run fuzz -- --write-seeds DIR`;

function statusLine(s: CampaignStatus): string {
  const c = s.coverage;
  return `[${s.elapsedSeconds.toFixed(1).padStart(6)}s] ${s.inputs} inputs (${Math.round(s.inputsPerSecond)}/s)  corpus ${s.corpus}  `
    + `edges ${c.edges}/${c.totalEdges} (${percent(c.edges, c.totalEdges)})  branches ${c.branches}/${c.totalBranches} (${percent(c.branches, c.totalBranches)})  violations ${s.findings}`;
}

function printReport(r: CampaignReport, out: (line: string) => void): void {
  const c = r.coverage;
  out(`fuzz: seed ${r.seed}: ${r.inputs} inputs in ${r.elapsedSeconds.toFixed(1)}s (${Math.round(r.inputsPerSecond)}/s), `
    + `corpus ${r.seedInputs} -> ${r.corpus}`);
  out(`fuzz: edges ${r.seedCoverage.edges} (seeds) -> ${c.edges}/${c.totalEdges} (${percent(c.edges, c.totalEdges)}); `
    + `branch outcomes ${r.seedCoverage.branches} (seeds) -> ${c.branches}/${c.totalBranches} (${percent(c.branches, c.totalBranches)})`);
  out(`fuzz: branch outcomes by file: ${r.byFile.map((f) => `${f.file.replace(/^assembly\//, '')} ${f.branches}/${f.totalBranches}`).join(', ')}`);
  const v = r.stats.verdicts;
  out(`fuzz: verdicts ${Object.entries(v).map(([k, n]) => `${k} ${n}`).join(', ')}; transport checksums verified on rewrite ${r.stats.transportChecked} `
    + `(${r.stats.transportValidBefore} valid before), updated checksums 0xFFFF ${r.stats.checksumFFFF}, NEEDS_CSUM seeds verified ${r.stats.seedsChecked}`);
  const unreached = r.unreached.filter(isBranch);
  if (unreached.length > 0) {
    out(`fuzz: branch outcomes never reached (${unreached.length}):`);
    for (const e of unreached) out(`  ${formatEdge(e)}`);
  }
  const entries = r.unreached.filter((e) => !isBranch(e));
  if (entries.length > 0) out(`fuzz: functions never entered: ${entries.map((e) => `${e.function} (${e.file}:${e.line})`).join(', ')}`);
  if (r.findingsList.length > 0) {
    out(`fuzz: ${r.findingsList.length} violating input(s):`);
    for (const f of r.findingsList) {
      out(`  ${f.check ? `check "${f.check}"` : f.file ?? '(not saved)'}${f.input.descriptor ? ` [descriptor ${f.input.descriptor}]` : ''}`);
      for (const v of f.violations) out(`    ${v.kind}: ${v.detail}`);
    }
  } else {
    out('fuzz: no violations');
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' },
      reps: { type: 'string' },
      inputs: { type: 'string' },
      seed: { type: 'string' },
      corpus: { type: 'string' },
      'save-corpus': { type: 'boolean', default: false },
      crashes: { type: 'string' },
      batch: { type: 'string' },
      json: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      'write-seeds': { type: 'string' },
      target: { type: 'string', default: 'rewrite' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values['write-seeds'] !== undefined) {
    const seeds = seedInputs();
    for (const s of seeds) writeCorpusFile(values['write-seeds'], s.name, s.input);
    process.stderr.write(`fuzz: wrote ${seeds.length} seed inputs to ${values['write-seeds']}\n`);
    return 0;
  }
  const seed = values.seed === undefined ? (Date.now() ^ (process.pid << 16)) >>> 0 : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new L3dsrError('ERR_L3DSR_USAGE', `--seed: expected an integer 0..4294967295, got "${values.seed}"`);
  let seconds = values.seconds === undefined ? undefined : positiveNumber('seconds', values.seconds);
  const reps = positiveInt('reps', values.reps) ?? 1;
  const inputs = positiveInt('inputs', values.inputs);
  if (seconds === undefined && inputs === undefined) seconds = 10;
  const err = (line: string) => process.stderr.write(`${line}\n`);
  if (values.target === 'lb') {
    if (values.reps !== undefined) throw new L3dsrError('ERR_L3DSR_USAGE', '--reps: the balancer\'s campaign runs a fixed number of inputs; repetitions are for --target rewrite');
    err(`fuzz: balancer, seed ${seed} (rerun the same inputs with --target lb --seed ${seed})`);
    const r = await runLbCampaign({ seed, inputs: inputs ?? 50_000, batchSize: positiveInt('batch', values.batch) });
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(`fuzz: balancer: ${r.inputs} inputs after ${r.seedInputs} generated seeds, corpus ${r.corpus}; edges ${r.seedCoverage.edges} (seeds) -> ${r.coverage.edges}/${r.coverage.totalEdges}`);
    out(`fuzz: outcomes ${Object.entries(r.verdicts).sort().map(([k, n]) => `${k} ${n}`).join(', ')}`);
    if (r.unreachedLb.length > 0) out(`fuzz: balancer branch outcomes never reached (${r.unreachedLb.length}):\n${r.unreachedLb.map((e) => `  ${formatEdge(e)}`).join('\n')}`);
    for (const f of r.findings) out(`fuzz: violation at input ${f.inputNumber} ${Buffer.from(f.input).toString('hex')}: ${f.detail}`);
    if (r.findings.length === 0) out('fuzz: no violations');
    return r.findings.length > 0 ? 1 : 0;
  }
  if (values.target !== 'rewrite') throw new L3dsrError('ERR_L3DSR_USAGE', `--target: expected rewrite or lb, got "${values.target}"`);

  if (reps > 1 && values.json) throw new L3dsrError('ERR_L3DSR_USAGE', '--json writes one campaign\'s report: give it without --reps');
  const record = runRecord();
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const reports: CampaignReport[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const repSeed = (seed + rep) >>> 0;
    err(`fuzz: seed ${repSeed} (rerun the same inputs with --seed ${repSeed})`);
    record.sample();
    const report = await runCampaign({
      seed: repSeed, seconds, inputs,
      corpusDir: values.corpus ?? defaultCorpusDir,
      saveCorpus: values['save-corpus'],
      crashDir: values.crashes ?? defaultCrashDir,
      batchSize: positiveInt('batch', values.batch),
      onProgress: values.quiet ? undefined : (s) => err(statusLine(s)),
    });
    printReport(report, out);
    reports.push(report);
  }
  if (reps > 1) for (const line of [...record.lines(), ...repsSummary(reports)]) out(line);
  if (values.json) {
    const report = reports[0]!;
    writeFileSync(values.json, JSON.stringify({
      ...report,
      findingsList: report.findingsList.map((f) => ({ ...f, input: { ...f.input, bytes: Buffer.from(f.input.bytes).toString('hex') } })),
    }, null, 2) + '\n');
  }
  return reports.some((r) => r.findingsList.length > 0) ? 1 : 0;
}

/** The campaigns side by side: inputs/s is a rate, so median (min–max); coverage and violations are counts, one per campaign. */
function repsSummary(reports: readonly CampaignReport[]): string[] {
  const each = (f: (r: CampaignReport) => number): string => reports.map(f).join(', ');
  const c = reports[0]!.coverage;
  return [
    `fuzz: ${reports.length} campaigns, seeds ${reports.map((r) => r.seed).join(', ')}: `
      + `${spread(reports.map((r) => r.inputsPerSecond), (x) => String(Math.round(x)))} inputs/s, median (min–max)`,
    `fuzz: per campaign: edges ${each((r) => r.coverage.edges)} of ${c.totalEdges}; branch outcomes ${each((r) => r.coverage.branches)} of ${c.totalBranches}; `
      + `violating inputs ${each((r) => r.findingsList.length)}`,
  ];
}

main().then((code) => { process.exitCode = code; }, (e: Error & { code?: string }) => {
  const usage = isL3dsrError(e, 'ERR_L3DSR_USAGE') || e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION';
  process.stderr.write(`fuzz: ${e.message}\n${usage ? `${USAGE}\n` : ''}`);
  process.exitCode = 2;
});
