// The command line's own help and version, as a user reaches them: every
// command `l3dsr help` lists has a help text, the same through
// `l3dsr help COMMAND` and `l3dsr COMMAND --help`, and --version is the
// package's. No privilege, no daemon.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { L3DSR_BIN } from '../src/demo/lab-daemon.js';

function l3dsr(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [L3DSR_BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The commands `l3dsr help` lists, one `  l3dsr COMMAND ...` line each. */
function listedCommands(): string[] {
  const top = l3dsr('help');
  assert.equal(top.code, 0, top.stderr);
  return [...top.stdout.matchAll(/^ {2}l3dsr ([a-z][a-z-]*)/gm)].map((m) => m[1]);
}

describe('help', () => {
  it('lists run, rewrite, status, version and help', () => {
    assert.deepEqual(['run', 'rewrite', 'status', 'version', 'help'].filter((c) => !listedCommands().includes(c)), []);
  });

  for (const command of listedCommands()) {
    it(`l3dsr help ${command} and l3dsr ${command} --help print the same usage of ${command}, exit 0`, () => {
      const viaHelp = l3dsr('help', command);
      assert.equal(viaHelp.code, 0, viaHelp.stderr);
      assert.match(viaHelp.stdout, new RegExp(`^usage: l3dsr ${command}\\b`));
      assert.equal(viaHelp.stderr, '');
      const viaFlag = l3dsr(command, '--help');
      assert.equal(viaFlag.code, 0, viaFlag.stderr);
      assert.equal(viaFlag.stdout, viaHelp.stdout);
    });
  }

  it('l3dsr help with an unknown command names it, exit 2', () => {
    const r = l3dsr('help', 'start');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^l3dsr help: unknown command "start"/);
    assert.equal(r.stdout, '');
  });
});

describe('version', () => {
  it('l3dsr --version and l3dsr version print the version of package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const args of [['--version'], ['version']]) {
      const r = l3dsr(...args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `l3dsr ${pkg.version}\n`);
    }
  });
});
