// Replays every saved fuzz finding (test/fuzz/crashes/*.bin, with its .json)
// and the whole committed corpus (test/fuzz/corpus/*.bin) through the cores
// and checks every invariant: a finding stays fixed once it is fixed. With no
// finding saved, the corpus replay still checks the seeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResult } from '../src/core/rewriter.js';
import { defaultCorpusDir, defaultCrashDir, loadCorpus, loadCrashes } from '../tools/fuzz/files.js';
import { Harness, type FuzzInput } from '../tools/fuzz/harness.js';
import { runAlone } from '../tools/fuzz/replay.js';
import { FUZZ_RULES } from '../tools/fuzz/ruleset.js';

const h = await Harness.create({ rules: FUZZ_RULES, batchSize: 1, slotSize: 2048 });

/** Every violation of one input, on either build, as text. */
function violations(input: FuzzInput): string[] {
  return runAlone(h, input).map((v) => `${v.kind}: ${v.detail}`);
}

const crashes = loadCrashes(defaultCrashDir);
for (const c of crashes) {
  test(`fuzz finding ${c.name} (${c.record.kind}) stays fixed`, () => {
    assert.deepEqual(violations(c.input), [], `first found as: ${c.record.violations.map((v) => `${v.kind}: ${v.detail}`).join('; ')}`);
  });
}

test('the fuzz corpus replays with every invariant holding', () => {
  const corpus = loadCorpus(defaultCorpusDir);
  assert.ok(corpus.length >= 40, `expected the committed seed corpus in ${defaultCorpusDir}, found ${corpus.length} files`);
  const verdicts = new Set<string>();
  for (const f of corpus) {
    assert.deepEqual(violations({ bytes: f.bytes }), [], f.name);
    verdicts.add(decodeResult(h.run([{ bytes: f.bytes }]).release.observed[0].word).verdict);
  }
  assert.ok(verdicts.has('rewritten') && verdicts.has('passed'), `corpus verdicts: ${[...verdicts].join(', ')}`);
});
