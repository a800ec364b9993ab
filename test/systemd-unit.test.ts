// deploy/l3dsr.service and deploy/l3dsr-lb.service, checked offline
// (systemd need not run): systemd accepts them; each runs its daemon as a
// user of its own with CAP_NET_ADMIN (and, for the balancer's health
// checks, CAP_NET_RAW) and nothing else, keeps its own runtime directory
// across restarts (the state file is how a run after a crash takes over),
// and every sandboxing option `systemd-analyze security` rates is on
// except those the daemon needs off — the ones the unit's comments name,
// with why. Skipped where systemd-analyze is not installed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { L3DSR_BIN } from './support/daemon.js';
import { unitValues } from './support/systemd-stand-in.js';

const DEPLOY = join(dirname(dirname(L3DSR_BIN)), 'deploy');
/** Each unit, the capabilities it grants, and its runtime directory. */
const UNITS = [
  { name: 'l3dsr.service', capabilities: ['CAP_NET_ADMIN'], runtime: 'l3dsr' },
  { name: 'l3dsr-lb.service', capabilities: ['CAP_NET_ADMIN', 'CAP_NET_RAW'], runtime: 'l3dsr-lb' },
];
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

/**
 * What `systemd-analyze security` may hold against the unit: each is
 * something the daemon needs (see the comments in the unit).
 */
const NEEDED = new Set([
  'AmbientCapabilities=', // CAP_NET_ADMIN for ip and tc, its children
  'CapabilityBoundingSet=~CAP_NET_ADMIN', // the TUN, tc, VIPs on lo, rp_filter
  'CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)', // l3dsr lb: the health checks' raw sockets
  'PrivateNetwork=', // all of that in the host's network namespace
  'PrivateUsers=', // CAP_NET_ADMIN must count there
  'PrivateDevices=', // /dev/net/tun (DeviceAllow= lets only it in)
  'DeviceAllow=',
  'ProtectKernelTunables=', // writes rp_filter under /proc/sys/net
  'ProcSubset=', // the same
  'MemoryDenyWriteExecute=', // V8 compiles to machine code
  'RestrictAddressFamilies=~AF_NETLINK', // ip and tc
  'RestrictAddressFamilies=~AF_UNIX', // the control socket
  'RestrictAddressFamilies=~AF_(INET|INET6)', // the metrics endpoint
  'IPAddressDeny=', // Prometheus must reach the metrics endpoint
  'RootDirectory=/RootImage=', // node, ip and tc of the host
]);


for (const unit of UNITS) describe(`deploy/${unit.name}`, { skip: hasAnalyze ? false : 'systemd-analyze is not installed' }, () => {
  const UNIT = join(DEPLOY, unit.name);
  let text: string;
  let dir: string;
  /** The unit with ExecStart's node as this process's: verify checks that the program exists. */
  let copy: string;

  before(() => {
    text = readFileSync(UNIT, 'utf8');
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-unit-'));
    copy = join(dir, unit.name);
    writeFileSync(copy, text.replace(/^(ExecStart=)\S+/m, `$1${process.execPath}`));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('systemd-analyze verify accepts it, without a warning', () => {
    const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'systemd-analyze verify warned');
  });

  it(`runs as a user of its own with ${unit.capabilities.join(' and ')} only, and keeps /run/${unit.runtime} across restarts`, () => {
    assert.ok(unitValues(text, 'DynamicUser').includes('yes') || unitValues(text, 'User').some((u) => u !== 'root' && u !== '0'), 'no DynamicUser= or User=');
    assert.deepEqual(unitValues(text, 'AmbientCapabilities'), [unit.capabilities.join(' ')]);
    assert.deepEqual(unitValues(text, 'CapabilityBoundingSet'), [unit.capabilities.join(' ')]);
    assert.deepEqual(unitValues(text, 'RuntimeDirectory'), [unit.runtime]);
    assert.deepEqual(unitValues(text, 'RuntimeDirectoryPreserve'), ['restart']);
    const families = unitValues(text, 'RestrictAddressFamilies').join(' ').split(/\s+/);
    for (const f of ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK']) assert.ok(families.includes(f), `RestrictAddressFamilies lacks ${f}`);
    const syscalls = unitValues(text, 'SystemCallFilter').filter((v) => !v.startsWith('~')).join(' ').split(/\s+/);
    for (const s of ['io_uring_setup', 'io_uring_enter', 'io_uring_register']) assert.ok(syscalls.includes(s), `SystemCallFilter does not allow ${s}`);
    for (const [key, breaks] of [['ProtectKernelTunables', 'yes'], ['PrivateDevices', 'yes'], ['PrivateUsers', 'yes'], ['PrivateNetwork', 'yes'], ['MemoryDenyWriteExecute', 'yes'], ['ProcSubset', 'pid']]) {
      assert.ok(!unitValues(text, key!).includes(breaks!), `${key}=${breaks} would break the daemon`);
    }
    if (unitValues(text, 'DevicePolicy').some((p) => p !== 'auto')) assert.ok(unitValues(text, 'DeviceAllow').includes('/dev/net/tun rw'), 'the device policy shuts out /dev/net/tun');
  });

  it('systemd-analyze security: every option it rates is on, except what the daemon needs', (t) => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--json=short', UNIT], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const checks = JSON.parse(r.stdout) as { name: string; set: boolean; exposure: number | null }[];
    const held = checks.filter((c) => !c.set && (c.exposure ?? 0) > 0).map((c) => c.name);
    assert.deepEqual(held.filter((n) => !NEEDED.has(n)), [], 'sandboxing options left off without a reason');
    const overall = new RegExp(`Overall exposure level for ${unit.name.replace('.', '\\.')}: ([\\d.]+) (\\w+)`).exec(
      spawnSync('systemd-analyze', ['security', '--offline=true', UNIT], { encoding: 'utf8' }).stdout,
    );
    t.diagnostic(`exposure ${overall?.[1]} ${overall?.[2]}; held against it: ${held.join(', ')}`);
  });
});
