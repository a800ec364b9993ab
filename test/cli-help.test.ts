// The dispatcher's -h/--help: honoured only where the command's own parser
// sees a flag, never when "-h" is the value of an option or a file name
// after "--". Usage errors here exit before anything is touched, so no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { L3DSR_BIN } from '../src/demo/lab-daemon.js';

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
