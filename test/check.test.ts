// `l3dsr check`: validates without touching the system and prints what
// `l3dsr run` would load — the same set run loads, from the same loader.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHECK_USAGE, checkCommand, type CheckedVip } from '../src/cli/check.js';
import type { CheckedLbVip } from '../src/cli/check-lb.js';
import { parseRunOptions } from '../src/cli/run-options.js';

const BIN = fileURLToPath(new URL('../../bin/l3dsr.js', import.meta.url));

/** Runs check in-process; returns exit code, stdout, stderr. */
async function check(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await checkCommand(args, { stdout: { write: (t: string) => { stdout += t; } }, stderr: { write: (t: string) => { stderr += t; } } });
  return { code, stdout, stderr };
}

/** Column start offsets of a table line: where each cell after a run of 2+ spaces begins. */
const columnStarts = (line: string) => [0, ...[...line.matchAll(/ {2,}(?=\S)/g)].map((m) => m.index! + m[0].length)];

describe('l3dsr check', () => {
  let dir: string;
  let dsr: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-check-'));
    dsr = join(dir, 'dsr.d');
    mkdirSync(dsr);
    writeFileSync(join(dsr, '10-web.conf'), '# VIP=DSCP\n203.0.113.10=1\n2001:DB8:203::10 = 0x1\n');
    writeFileSync(join(dsr, '20-vip.conf'), 'localhost=041   # a host name, resolved at load\n203.0.113.99\n');
    writeFileSync(join(dir, 'long.conf'), '[rule a-rather-long-rule-name]\ndscp = 9\ndestination = 2001:db8:ffff:ffff:ffff:ffff:ffff:fffe\nmatch = 2001:db8:aaaa:bbbb::/64\nset-dscp = 0\n');
  });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('--json: what would be loaded, VIPs after resolution, each with its source; exit 0', async () => {
    const r = await check(['--config', dsr, '--rule', '5=198.51.100.5', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; command: string; files: string[]; rules: CheckedVip[]; warnings: string[] };
    assert.equal(out.ok, true);
    assert.equal(out.command, 'run');
    assert.deepEqual(out.files, [join(dsr, '10-web.conf'), join(dsr, '20-vip.conf')]);
    assert.deepEqual(out.rules, [
      { type: 'l3dsr', vip: '198.51.100.5', family: 4, dscp: 5, match: null, setDscp: null, source: '--rule 5=198.51.100.5' },
      { type: 'l3dsr', vip: '203.0.113.10', family: 4, dscp: 1, match: null, setDscp: null, source: `${join(dsr, '10-web.conf')}:2` },
      { type: 'l3dsr', vip: '2001:db8:203::10', family: 6, dscp: 1, match: null, setDscp: null, source: `${join(dsr, '10-web.conf')}:3` },
      { type: 'l3dsr', vip: '127.0.0.1', family: 4, dscp: 33, match: null, setDscp: null, source: `${join(dsr, '20-vip.conf')}:1` },
      { type: 'l2dsr', vip: '203.0.113.99', family: 4, dscp: null, match: null, setDscp: null, source: `${join(dsr, '20-vip.conf')}:2` },
    ]);
  });

  it('--json on a bad configuration: every error with its source; exit 2', async () => {
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, '203.0.113.10 = 64\nvip.invalid = 2\n[rule r]\ndscp = 3\ndestination = 203.0.113.30\nmatch = 2001:db8::/32\n');
    const r = await check(['--config', bad, '--rule', '1=203.0.113.300', '--json']);
    assert.equal(r.code, 2);
    const out = JSON.parse(r.stdout) as { ok: boolean; errors: { source: string; message: string }[] };
    assert.equal(out.ok, false);
    assert.deepEqual(out.errors.map((e) => e.source), ['--rule 1=203.0.113.300', `${bad}:1`, `${bad}:2`, `${bad}:6`]);
    assert.match(out.errors[0].message, /^destination: "203\.0\.113\.300": expected a dotted-quad/);
    assert.match(out.errors[1].message, /^dscp: expected an integer 0-63, got "64"/);
    assert.match(out.errors[2].message, /^destination: "vip\.invalid" does not resolve to an IPv4 address/);
    assert.match(out.errors[3].message, /^\[rule r\] match: "2001:db8::\/32" is IPv6/);
  });

  it('without --json: a table whose columns hold whatever the width of a rule; errors on stderr, exit 2', async () => {
    const r = await check(['--config', dsr, '--config', join(dir, 'long.conf')]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const rows = lines.slice(0, lines.indexOf(''));
    assert.equal(rows.length, 6, r.stdout);
    assert.match(rows[0], /^type +VIP +DSCP +match +set-dscp +source$/);
    const header = columnStarts(rows[0]);
    for (const row of rows.slice(1)) assert.deepEqual(columnStarts(row).slice(0, header.length - 1), header.slice(0, -1), `misaligned:\n${r.stdout}`);
    assert.match(rows[5], /^l2dsr +203\.0\.113\.99 +-- +-- +-- +\S+20-vip\.conf:2$/);
    assert.match(rows[4], /^l3dsr +2001:db8:ffff:ffff:ffff:ffff:ffff:fffe +9 +2001:db8:aaaa:bbbb::\/64 +0 +\S+long\.conf:1 \[rule a-rather-long-rule-name\]$/);
    assert.match(r.stdout, /valid: 4 L3DSR rules, 1 L2DSR VIPs, from 3 files/);

    const bad = await check(['--rule', '64=203.0.113.10']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, '');
    assert.equal(bad.stderr, 'l3dsr check: --rule 64=203.0.113.10: dscp: expected an integer 0-63, got "64"\n');
  });

  it('nothing to check, or an unknown flag: usage, exit 2', async () => {
    for (const args of [[], ['--bogus']]) {
      const r = await check(args);
      assert.equal(r.code, 2);
      assert.ok(r.stderr.includes(CHECK_USAGE), r.stderr);
    }
  });

  it('l3dsr run loads exactly what check prints', async () => {
    const args = ['--config', dsr, '--config', join(dir, 'long.conf'), '--rule', '5=198.51.100.5'];
    const printed = JSON.parse((await check([...args, '--json'])).stdout) as { rules: CheckedVip[] };
    const run = await parseRunOptions([...args, '--no-steer']);
    const loaded = [
      ...run.rules.map((r) => ({ type: 'l3dsr', vip: r.destination, family: r.family, dscp: r.dscp, source: r.origin })),
      ...run.l2dsr.map((v) => ({ type: 'l2dsr', vip: v.address, family: v.family, dscp: null, source: v.origin })),
    ];
    assert.deepEqual(printed.rules.map(({ type, vip, family, dscp, source }) => ({ type, vip, family, dscp, source })), loaded);
    assert.equal(loaded.length, 6);
  });

  const LB = `[daemon]
tun = lb0
steer = lb-c
connections = 4096

[lb web]
vip = 203.0.113.10
dscp = 1
ports = tcp/8080, udp/53
backends = 198.51.100.2, 198.51.100.3 weight=2, 198.51.100.4 drain
check = tcp 8080
interval = 500ms

[lb web6]
vip = 2001:db8:203::10
dscp = 0x2
backends = 2001:db8:198::2
check = none
`;

  it('a load-balancer configuration: --json lists each VIP with its backends, for l3dsr lb', async () => {
    const file = join(dir, 'lb.conf');
    writeFileSync(file, LB);
    const r = await check(['--config', file, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; command: string; files: string[]; daemon: object; vips: CheckedLbVip[]; warnings: string[] };
    assert.deepEqual([out.ok, out.command, out.files, out.daemon], [true, 'lb', [file], { tun: 'lb0', steer: ['lb-c'], connections: 4096 }]);
    assert.deepEqual(out.vips, [
      {
        name: 'web', vip: '203.0.113.10', family: 4, dscp: 1,
        ports: [{ protocol: 'tcp', from: 8080, to: 8080 }, { protocol: 'udp', from: 53, to: 53 }],
        hash: '5-tuple', tableSize: 65537, check: { type: 'tcp', port: 8080 }, intervalMs: 500, timeoutMs: 500, rise: 2, fall: 2,
        backends: [
          { address: '198.51.100.2', weight: 1, drain: false, source: `${file}:10` },
          { address: '198.51.100.3', weight: 2, drain: false, source: `${file}:10` },
          { address: '198.51.100.4', weight: 1, drain: true, source: `${file}:10` },
        ],
        source: `${file}:6 [lb web]`,
      },
      {
        name: 'web6', vip: '2001:db8:203::10', family: 6, dscp: 2, ports: null, hash: '5-tuple', tableSize: 65537,
        check: { type: 'none' }, intervalMs: 1000, timeoutMs: 1000, rise: 2, fall: 2,
        backends: [{ address: '2001:db8:198::2', weight: 1, drain: false, source: `${file}:17` }],
        source: `${file}:14 [lb web6]`,
      },
    ]);
    assert.deepEqual(out.warnings, []);
  });

  it('a load-balancer configuration as a table: one row per backend; a mixed one refused, each line saying why', async () => {
    const file = join(dir, 'lb.conf');
    writeFileSync(file, LB);
    const r = await check(['--config', file]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.split('\n');
    assert.match(rows[0], /^lb +VIP +DSCP +ports +check +backend +weight +source$/);
    assert.match(rows[1], /^web +203\.0\.113\.10 +1 +tcp\/8080,udp\/53 +tcp 8080 every 500ms +198\.51\.100\.2 +1 +\S+lb\.conf:6 \[lb web\]$/);
    assert.match(rows[3], /^ +198\.51\.100\.4 +1 drain$/);
    assert.match(rows[4], /^web6 +2001:db8:203::10 +2 +all +none +2001:db8:198::2 +1 +\S+lb\.conf:14 \[lb web6\]$/);
    assert.match(r.stdout, /valid for l3dsr lb: 2 VIPs, 4 backends \(1 taking no new flows\), from 1 file/);

    const mixed = join(dir, 'mixed.conf');
    writeFileSync(mixed, `203.0.113.5 = 1\n${LB}`);
    const bad = await check(['--config', mixed, '--rule', '2=203.0.113.6']);
    assert.equal(bad.code, 2);
    assert.deepEqual(bad.stderr.split('\n').filter(Boolean).map((l) => l.replace(/: .*/, '')), ['l3dsr check', 'l3dsr check']);
    assert.match(bad.stderr, /--rule 2=203\.0\.113\.6: --rule is a real-server rule, for l3dsr run/);
    assert.match(bad.stderr, /mixed\.conf:1: the VIP line 203\.0\.113\.5 = 1 is a real-server rule, for l3dsr run/);
  });

  it('is a command of the l3dsr binary: dispatched, listed in the usage, with its own --help', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
    const ok = run('check', '--config', dsr);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^type +VIP +DSCP +source$/m);
    const bad = run('check', '--rule', '64=203.0.113.10', '--json');
    assert.equal(bad.status, 2);
    assert.equal(JSON.parse(bad.stdout).ok, false);
    assert.match(run('help').stdout, /l3dsr check \[--config PATH \.\.\.\]/);
    assert.equal(run('check', '--help').stdout, `${CHECK_USAGE}\n`);
  });
});
