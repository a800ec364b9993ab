// The command line's own help and version, as a user reaches them: every
// command `l3dsr help` lists has a help text, the same through
// `l3dsr help COMMAND` and `l3dsr COMMAND --help`, and --version is the
// package's. -h/--help is honoured only where the command's own parser sees
// a flag, never when "-h" is the value of an option or a file name after
// "--". Usage errors exit before anything is touched: no privilege, no daemon.
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { L3DSR_BIN } from '../tools/demo/lab-daemon.js';

const RULE = ['--rule', '1=203.0.113.10'];

function l3dsr(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-help-'));
  try {
    const r = spawnSync(process.execPath, [L3DSR_BIN, ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('-h or --help as a flag prints the command\'s usage, exit 0', () => {
  for (const args of [['run', ...RULE, '-h'], ['run', '--help', '--steer', 'eth0'], ['rewrite', '-qh'], ['rewrite', ...RULE, '--help', 'in.pcap']]) {
    const r = l3dsr(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: l3dsr ${args[0]}`), args.join(' '));
  }
});

test('-h as the value of an option is a usage error naming what the option needs, exit 2', () => {
  const cases: [string[], RegExp][] = [
    [['run', ...RULE, '--steer', '-h'], /--steer needs an interface name, not the option -h/],
    [['run', ...RULE, '--steer', 'eth0', '--tun', '-h'], /--tun needs an interface name, not the option -h/],
    [['run', '--config', '--help', '--steer', 'eth0'], /--config needs a file name, not the option --help/],
    [['rewrite', ...RULE, '--verdicts', '-h', 'in.pcap', 'out.pcap'], /--verdicts/],
  ];
  for (const [args, says] of cases) {
    const r = l3dsr(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '', `${args.join(' ')}: no usage text on stdout`);
    assert.match(r.stderr, says, args.join(' '));
  }
});

test('-h after "--" is a file name, not a request for help', () => {
  const r = l3dsr(['rewrite', ...RULE, '--', '-h', 'out.pcap']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /cannot read input -h: no such file/);
});

/** The commands `l3dsr help` lists, one `  l3dsr COMMAND ...` line each. */
function listedCommands(): string[] {
  const top = l3dsr(['help']);
  assert.equal(top.code, 0, top.stderr);
  return [...top.stdout.matchAll(/^ {2}l3dsr ([a-z][a-z-]*)/gm)].map((m) => m[1]);
}

describe('help', () => {
  it('lists run, rewrite, status, check, version and help', () => {
    assert.deepEqual(['run', 'rewrite', 'status', 'check', 'version', 'help'].filter((c) => !listedCommands().includes(c)), []);
  });

  for (const command of listedCommands()) {
    it(`l3dsr help ${command} and l3dsr ${command} --help print the same usage of ${command}, exit 0`, () => {
      const viaHelp = l3dsr(['help', command]);
      assert.equal(viaHelp.code, 0, viaHelp.stderr);
      assert.match(viaHelp.stdout, new RegExp(`^usage: l3dsr ${command}\\b`));
      assert.equal(viaHelp.stderr, '');
      const viaFlag = l3dsr([command, '--help']);
      assert.equal(viaFlag.code, 0, viaFlag.stderr);
      assert.equal(viaFlag.stdout, viaHelp.stdout);
    });
  }

  it('l3dsr help with an unknown command names it, exit 2', () => {
    const r = l3dsr(['help', 'start']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^l3dsr help: unknown command "start"/);
    assert.equal(r.stdout, '');
  });
});

test('every command refuses a flag given twice that may not repeat, and the flags its synopsis offers as alternatives given together, exit 2', () => {
  const cases: [string[], string][] = [
    [['run', ...RULE, '--steer', 'eth0', '--tun', 'a', '--tun', 'b'], '--tun given twice: give it once'],
    [['check', ...RULE, '--json', '--json'], '--json given twice: give it once'],
    [['rewrite', ...RULE, '--verdicts', 'a.jsonl', '--verdicts', 'b.jsonl', 'in.pcap', 'out.pcap'], '--verdicts given twice: give it once'],
    [['rewrite', ...RULE, '-c', 'a.conf', '-c', 'b.conf', 'in.pcap', 'out.pcap'], '--config given twice: give it once'],
    [['rewrite', ...RULE, '-q', '--quiet', 'in.pcap', 'out.pcap'], '--quiet given twice: give it once'],
    [['status', '--tun', 'a', '--tun', 'b'], '--tun given twice: give it once'],
    // No daemon needed: these are refused before the socket is asked.
    [['status', '--json', '--metrics'], '--json and --metrics are alternatives: give one'],
    [['status', '--tun', 'dsr0', '--control-socket', '/nonexistent/control.sock'], '--tun and --control-socket are alternatives: give one'],
    [['run', ...RULE, '--steer', 'eth0', '--offload', '--no-offload'], '--offload and --no-offload contradict each other: give one'],
  ];
  for (const [args, says] of cases) {
    const r = l3dsr(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    assert.ok(r.stderr.startsWith(`l3dsr ${args[0]}: ${says}\n`), `${args.join(' ')}: ${r.stderr}`);
  }
});

describe('version', () => {
  it('l3dsr --version and l3dsr version print the version of package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const args of [['--version'], ['version']]) {
      const r = l3dsr(args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `l3dsr ${pkg.version}\n`);
    }
  });
});
