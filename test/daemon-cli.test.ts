// Bad input to `l3dsr run` (flags and config files) and `l3dsr status`:
// every error names what is wrong, the command exits non-zero, and it does
// so before touching the system — no TUN, no qdisc or filter, no VIP on lo,
// no control socket. Run inside the lab's srv namespace, so "the system" is
// a namespace that holds nothing else. Needs root (skipped without it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, LAB_INTERFACES, type LabVip } from '../tools/lab/index.js';
import { assertNothingInstalled, requireLabRoot, runL3dsr, STEER } from './support/daemon.js';
import { privileged } from './support/privilege.js';

const VIP: LabVip = { family: 4, address: '203.0.113.10', dscp: 1 };
const OTHER: LabVip = { family: 4, address: '203.0.113.11', dscp: 1 };
const GOOD = ['--rule', `${VIP.dscp}=${VIP.address}`, '--steer', STEER, '--loopback-vips'];
const EXIT_USAGE = 2;
const EXIT_START = 1;

interface Case {
  name: string;
  args: (dir: string) => string[];
  /** Config file content, written to DIR/l3dsr.conf before the run. */
  config?: string;
  code: number;
  /** What the error message must say (the field, the value, the file:line). */
  says: (dir: string) => RegExp;
  prefix?: readonly string[];
}

const conf = (dir: string) => join(dir, 'l3dsr.conf');
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const CASES: Case[] = [
  { name: 'unknown flag', args: () => [...GOOD, '--bogus'], code: EXIT_USAGE, says: () => /--bogus/ },
  { name: 'flag without its value', args: () => [...GOOD, '--queues'], code: EXIT_USAGE, says: () => /--queues/ },
  { name: 'positional argument', args: () => [...GOOD, 'extra'], code: EXIT_USAGE, says: () => /extra/ },
  { name: '--rule with a bad address', args: () => ['--rule', '1=203.0.113.256', '--steer', STEER], code: EXIT_USAGE, says: () => /--rule 1=203\.0\.113\.256.*destination/ },
  { name: '--rule with an octal-looking address', args: () => ['--rule', '1=203.0.113.010', '--steer', STEER], code: EXIT_USAGE, says: () => /--rule 1=203\.0\.113\.010.*destination/ },
  { name: '--rule with DSCP 64', args: () => ['--rule', '64=203.0.113.10', '--steer', STEER], code: EXIT_USAGE, says: () => /--rule 64=203\.0\.113\.10.*dscp: expected an integer 0-63/ },
  { name: '--rule without =', args: () => ['--rule', '203.0.113.10', '--steer', STEER], code: EXIT_USAGE, says: () => /--rule 203\.0\.113\.10.*DSCP=ADDRESS/ },
  { name: 'two --rule on one DSCP and family', args: () => [...GOOD, '--rule', `${OTHER.dscp}=${OTHER.address}`], code: EXIT_USAGE, says: () => /dscp: DSCP 1 is already used for IPv4/ },
  { name: 'no rule at all', args: () => ['--steer', STEER], code: EXIT_USAGE, says: () => /no rules/ },
  { name: 'missing --steer', args: () => ['--rule', `${VIP.dscp}=${VIP.address}`], code: EXIT_USAGE, says: () => /--steer/ },
  { name: '--steer followed by -h (a value, not a request for help)', args: () => ['--rule', `${VIP.dscp}=${VIP.address}`, '--steer', '-h'], code: EXIT_USAGE, says: () => /--steer needs an interface name, not the option -h/ },
  { name: '--queues 0', args: () => [...GOOD, '--queues', '0'], code: EXIT_USAGE, says: () => /--queues: expected an integer 1-64, got "0"/ },
  { name: '--queues two', args: () => [...GOOD, '--queues', 'two'], code: EXIT_USAGE, says: () => /--queues: expected an integer 1-64, got "two"/ },
  { name: '--engine unknown', args: () => [...GOOD, '--engine', 'dpdk'], code: EXIT_USAGE, says: () => /--engine: expected one of auto, io_uring, readwrite, got "dpdk"/ },
  { name: '--batch 0', args: () => [...GOOD, '--batch', '0'], code: EXIT_USAGE, says: () => /--batch: expected an integer/ },
  { name: '--tun name too long', args: () => [...GOOD, '--tun', 'a-very-long-tun-name'], code: EXIT_USAGE, says: () => /--tun: "a-very-long-tun-name"/ },
  { name: '--metrics without a port', args: () => [...GOOD, '--metrics', '127.0.0.1'], code: EXIT_USAGE, says: () => /--metrics: expected HOST:PORT/ },
  { name: '--metrics with an address that is not one', args: () => [...GOOD, '--metrics', '999.1.1.1:9109'], code: EXIT_USAGE, says: () => /--metrics: "999\.1\.1\.1": expected a dotted-quad/ },
  { name: '--metrics :PORT (all interfaces, not asked for explicitly)', args: () => [...GOOD, '--metrics', ':9109'], code: EXIT_USAGE, says: () => /--metrics: no address before ":9109": write 127\.0\.0\.1:9109/ },
  { name: '--tun given twice', args: () => [...GOOD, '--tun', 'dsr1', '--tun', 'dsr2'], code: EXIT_USAGE, says: () => /--tun given twice: give it once/ },
  { name: '--config /dev/zero', args: () => [...GOOD, '--config', '/dev/zero'], code: EXIT_USAGE, says: () => /\/dev\/zero: not a regular file \(a character device\)/ },
  { name: '--log-level unknown', args: () => [...GOOD, '--log-level', 'loud'], code: EXIT_USAGE, says: () => /--log-level/ },
  { name: '--config that does not exist', args: (d) => [...GOOD, '--config', join(d, 'missing.conf')], code: EXIT_USAGE, says: (d) => new RegExp(`${escape(join(d, 'missing.conf'))}: cannot read the file \\(ENOENT\\)`) },
  {
    name: 'config: DSCP that is not a number',
    config: '203.0.113.10 = 1\n203.0.113.20 = seventeen\n',
    args: (d) => ['--config', conf(d), '--steer', STEER], code: EXIT_USAGE, says: (d) => new RegExp(`${escape(conf(d))}:2: dscp: expected an integer 0-63, got "seventeen"`),
  },
  {
    name: 'config: bad address',
    config: '# comment\n203.0.113.300 = 1\n',
    args: (d) => ['--config', conf(d), '--steer', STEER], code: EXIT_USAGE, says: (d) => new RegExp(`${escape(conf(d))}:2: destination: "203\\.0\\.113\\.300"`),
  },
  {
    name: 'config: unknown setting in [daemon]',
    config: '203.0.113.10 = 1\n[daemon]\nqueuez = 2\n',
    args: (d) => ['--config', conf(d), '--steer', STEER], code: EXIT_USAGE, says: (d) => new RegExp(`${escape(conf(d))}:3: unknown setting "queuez" in \\[daemon\\]`),
  },
  {
    name: 'config: queues = 0',
    config: '203.0.113.10 = 1\n[daemon]\nqueues = 0\n',
    args: (d) => ['--config', conf(d), '--steer', STEER], code: EXIT_USAGE, says: (d) => new RegExp(`${escape(conf(d))}:3: queues: expected an integer 1-64, got "0"`),
  },
  {
    name: 'config: unknown section',
    config: '[servers]\n203.0.113.10 = 1\n',
    args: (d) => ['--config', conf(d), '--steer', STEER], code: EXIT_USAGE, says: (d) => new RegExp(`${escape(conf(d))}:1: unknown section \\[servers\\]`),
  },
  {
    name: 'config: a line that is neither VIP = DSCP nor a VIP',
    config: '203.0.113.10 = 1\nsteer s-lb\n',
    args: (d) => ['--config', conf(d), '--steer', STEER], code: EXIT_USAGE, says: (d) => new RegExp(`${escape(conf(d))}:2: expected "VIP = DSCP", or a VIP alone for L2DSR`),
  },
  {
    name: 'config: a host name that does not resolve',
    config: '203.0.113.10 = 1\nvip.invalid = 2\n',
    args: (d) => ['--config', conf(d), '--steer', STEER], code: EXIT_USAGE, says: (d) => new RegExp(`${escape(conf(d))}:2: destination: "vip\\.invalid" does not resolve to an IPv4 address`),
  },
  {
    name: 'config and --rule on the same DSCP',
    config: `${OTHER.address} = ${OTHER.dscp}\n`,
    args: (d) => [...GOOD, '--config', conf(d)], code: EXIT_USAGE, says: () => /DSCP 1 is already used for IPv4/,
  },
  { name: '--steer an interface that does not exist', args: () => ['--rule', `${VIP.dscp}=${VIP.address}`, '--steer', 'nosuch0', '--loopback-vips'], code: EXIT_START, says: () => /steer interface nosuch0: no such interface/ },
  {
    name: 'config: steer an interface that does not exist',
    config: `${VIP.address} = ${VIP.dscp}\n[daemon]\nsteer = nosuch1\nloopback-vips = yes\n`,
    args: (d) => ['--config', conf(d)], code: EXIT_START, says: () => /steer interface nosuch1: no such interface/,
  },
  { name: '--tun naming an interface that exists', args: () => [...GOOD, '--tun', LAB_INTERFACES.srvToCli], code: EXIT_START, says: () => /--tun veth-s: an interface of that name already exists/ },
  // A new user namespace: the daemon sees an unmapped uid (65534) and has no capability in
  // the lab's network namespace, yet still reads the checkout however private its folder is.
  { name: 'not root', args: () => GOOD, prefix: ['unshare', '--user'], code: EXIT_START, says: () => /needs CAP_NET_ADMIN .*uid 65534 does not have it/ },
];

describe('l3dsr run: bad input is refused before anything is touched', privileged('runs l3dsr in a namespace of the lab'), () => {
  let lab: Lab;
  let dir: string;

  before(async () => {
    requireLabRoot();
    lab = await Lab.create();
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-cli-'));
    await assertNothingInstalled(lab, [VIP, OTHER], 'before the first case');
  });

  after(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const c of CASES) {
    it(c.name, async () => {
      if (c.config !== undefined) writeFileSync(conf(dir), c.config);
      const socket = join(dir, 'control.sock');
      const r = await runL3dsr(lab, ['run', ...c.args(dir), '--control-socket', socket], { prefix: c.prefix });
      const output = `exit ${r.code}\nstderr: ${r.stderr}\nstdout: ${r.stdout}`;
      assert.equal(r.code, c.code, output);
      assert.match(r.stderr, c.says(dir), output);
      assert.equal(r.stdout, '', 'nothing on stdout');
      // One line of error (plus the usage text for a flag error), no stack trace.
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'a stack trace instead of an error message');
      assert.equal(existsSync(socket), false, 'a control socket was created');
      await assertNothingInstalled(lab, [VIP, OTHER], c.name);
    });
  }
});

describe('l3dsr status and the command dispatcher: errors', privileged('runs l3dsr in a namespace of the lab'), () => {
  let lab: Lab;
  let dir: string;

  before(async () => {
    requireLabRoot();
    lab = await Lab.create();
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-cli-'));
  });

  after(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('status with no daemon says which socket nobody listens on, exit 1', async () => {
    const socket = join(dir, 'nobody.sock');
    const r = await runL3dsr(lab, ['status', '--control-socket', socket]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`no l3dsr daemon is listening on ${escape(socket)}`));
  });

  it('status with an unknown flag names it, exit 2', async () => {
    const r = await runL3dsr(lab, ['status', '--verbose']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--verbose/);
  });

  it('an unknown command names it, exit 2', async () => {
    const r = await runL3dsr(lab, ['start']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /unknown command "start"/);
  });
});
