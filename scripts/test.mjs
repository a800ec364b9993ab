#!/usr/bin/env node
// `npm test`: builds what is missing (scripts/ensure.mjs), runs the suites
// one file at a time, and ends with what was skipped and why. As a normal
// user the suites that need root skip, each with its reason; the last lines
// count them and say how to run them. With L3DSR_REQUIRE_PRIVILEGED=1 (CI)
// nothing may skip: a skipped test or suite fails the run, so CI can never
// go green by skipping.
//
//   node scripts/test.mjs [dist/test/NAME.test.js ...]    (default: every suite)
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { finished } from 'node:stream/promises';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const ensure = spawnSync(process.execPath, [join(root, 'scripts', 'ensure.mjs')], { cwd: root, stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);

// Only after ensure: dist/ may not exist before it.
const { isPrivilegedSkip, privilegeRequired } = await import(pathToFileURL(join(root, 'dist', 'test', 'support', 'privilege.js')).href);

const testDir = join(root, 'dist', 'test');
const files = process.argv.length > 2
  ? process.argv.slice(2)
  : readdirSync(testDir).filter((f) => f.endsWith('.test.js')).sort().map((f) => join(testDir, f));

/** Tests and suites that did not run: name, reason, file. */
const skipped = [];
let failed = 0;
const stream = run({ files, concurrency: 1 });
stream.on('test:pass', (t) => {
  if (t.skip !== undefined || t.todo !== undefined) skipped.push(t);
});
stream.on('test:fail', (t) => {
  if (t.todo === undefined) failed++;
});
const report = stream.compose(new spec());
report.pipe(process.stdout);
await finished(report);

const say = (line) => process.stdout.write(`${line}\n`);
/** "3 privileged suites and 1 privileged test" (a skipped suite's tests are never listed, so they cannot be counted). */
const count = (list, kind = '') => {
  const suites = list.filter((t) => t.details?.type === 'suite').length;
  const tests = list.length - suites;
  const n = (k, word) => k && `${k} ${kind}${word}${k > 1 ? 's' : ''}`;
  return [n(suites, 'suite'), n(tests, 'test')].filter(Boolean).join(' and ');
};
const reasonOf = (t) => (typeof t.skip === 'string' ? t.skip : typeof t.todo === 'string' ? `todo: ${t.todo}` : t.todo !== undefined ? 'todo' : 'skipped');

const privileged = skipped.filter((t) => isPrivilegedSkip(reasonOf(t)));
const others = skipped.filter((t) => !isPrivilegedSkip(reasonOf(t)));
if (privileged.length > 0) say(`ℹ ${count(privileged, 'privileged ')} skipped (not root): run \`sudo npm test\` to run them`);
if (others.length > 0) {
  const reasons = [...new Set(others.map(reasonOf))];
  say(`ℹ ${count(others)} skipped: ${reasons.join('; ')}`);
}
if (privilegeRequired && skipped.length > 0) {
  say(`✖ L3DSR_REQUIRE_PRIVILEGED=1: nothing may skip, yet ${count(skipped)} did:`);
  for (const t of skipped) say(`  ${t.name} (${t.file ?? '?'}): ${reasonOf(t)}`);
  process.exitCode = 1;
}
if (failed > 0) process.exitCode = 1;
