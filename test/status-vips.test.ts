// `l3dsr status` shows one row per VIP as dsrctl's status does (type, state,
// VIP, DSCP, on lo, steering), read from the system when asked: a VIP taken
// off lo or a filter deleted behind the daemon's back shows. L2DSR lines of
// a dsr.d directory go on lo and never into the core's rule table. A reload
// loads what `l3dsr check` prints and refuses what it refuses, in the same
// words. Runs a daemon in the lab: needs root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatStatus } from '../src/cli/status.js';
import { Lab, type LabVip } from '../tools/lab/index.js';
import type { DaemonSnapshot } from '../src/daemon/snapshot.js';
import type { VipRow } from '../src/daemon/vip-state.js';
import {
  LabDaemon, STEER, assertNothingInstalled, assertOneFilterSet, loopbackAddresses, metric, onLoopback, runL3dsr, steeringFilters,
} from './support/daemon.js';
import { privileged } from './support/privilege.js';

const V4: LabVip = { family: 4, address: '203.0.113.10', dscp: 1 };
const V6: LabVip = { family: 6, address: '2001:db8:203::10', dscp: 1 };
const CLI: LabVip = { family: 4, address: '203.0.113.20', dscp: 17 };
const L2 = '203.0.113.99';
const L2_LATER = '2001:db8:203::99';
const ALL: LabVip[] = [V4, V6, CLI, { family: 4, address: L2, dscp: 0 }, { family: 6, address: L2_LATER, dscp: 0 }];

const row = (rows: readonly VipRow[] | undefined, vip: string) => {
  const r = rows?.find((x) => x.vip === vip);
  assert.ok(r, `no row for ${vip} in ${JSON.stringify(rows)}`);
  return r;
};
const brief = (r: VipRow) => `${r.type} ${r.state} ${r.vip} ${r.dscp ?? '--'} lo=${r.onLo ? 'yes' : 'no'} steering=${r.steering ?? '--'}`;

describe('l3dsr status: VIP rows from the system, L2DSR lines, reload = check', { ...privileged('runs the daemon in a three-namespace lab'), timeout: 120_000 }, () => {
  let lab: Lab;
  let dir: string;
  let dsr: string;
  let daemon: LabDaemon;
  const args = () => ['--config', dsr, '--rule', `${CLI.dscp}=${CLI.address}`, '--steer', STEER, '--loopback-vips'];

  before(async () => {
    lab = await Lab.create();
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-status-'));
    dsr = join(dir, 'dsr.d');
    mkdirSync(dsr);
    writeFileSync(join(dsr, '20-vip.conf'), `# VIP=DSCP\n${V4.address}=${V4.dscp}\n${V6.address.toUpperCase()} = 0x${V6.dscp.toString(16)}\n${L2}\n`);
    daemon = await LabDaemon.start(lab, args());
  });

  after(async () => {
    await daemon?.stop();
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('every VIP started; the L2DSR VIP is on lo and has no rule and no filter', async () => {
    const s = await daemon.status();
    assert.deepEqual(s.vips?.map(brief), [
      `l3dsr started ${CLI.address} 17 lo=yes steering=up`,
      `l3dsr started ${V4.address} 1 lo=yes steering=up`,
      `l3dsr started ${V6.address} 1 lo=yes steering=up`,
      `l2dsr started ${L2} -- lo=yes steering=--`,
    ]);
    assert.deepEqual(s.rules.map((r) => r.destination), [CLI.address, V4.address, V6.address]);
    assert.equal(metric(await daemon.metrics(), 'l3dsr_rules'), 3);
    await assertOneFilterSet(lab, [V4, V6, CLI]);
  });

  it('the rows say what the system holds now, not what the config says', async () => {
    await lab.exec('srv', 'ip', ['addr', 'del', `${L2}/32`, 'dev', 'lo']);
    await lab.exec('srv', 'ip', ['-6', 'addr', 'del', `${V6.address}/128`, 'dev', 'lo']);
    const v4 = (await steeringFilters(lab)).find((f) => f.family === 4)!;
    // One u32 instance per family holds both IPv4 DSCPs: delete only the handle of DSCP 1.
    const v4dscp1 = (await steeringFilters(lab)).find((f) => f.family === 4 && f.dscp === V4.dscp)!;
    await lab.exec('srv', 'tc', ['filter', 'del', 'dev', STEER, 'ingress', 'protocol', 'ip', 'prio', String(v4.priority), 'handle', v4dscp1.handle, 'u32']);
    const s = await daemon.status();
    assert.deepEqual(s.vips?.map(brief), [
      `l3dsr started ${CLI.address} 17 lo=yes steering=up`,
      `l3dsr partial ${V4.address} 1 lo=yes steering=down`,
      `l3dsr partial ${V6.address} 1 lo=no steering=up`,
      `l2dsr stopped ${L2} -- lo=no steering=--`,
    ]);
    assert.equal(row(s.vips, V4.address).source, `${join(dsr, '20-vip.conf')}:2`);

    // The same, as a table: columns as wide as their widest cell.
    const r = await runL3dsr(lab, ['status', '--control-socket', daemon.controlSocket]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const header = lines.findIndex((l) => /^type +state +VIP +DSCP +on lo +steering +source$/.test(l));
    assert.ok(header >= 0, r.stdout);
    const at = (l: string, word: string) => l.indexOf(word);
    for (const l of lines.slice(header + 1, header + 5)) {
      assert.equal(l.indexOf(l.split(/ {2,}/)[2]!), at(lines[header]!, 'VIP'), `VIP column moved:\n${r.stdout}`);
      assert.equal(l.indexOf(l.split(/ {2,}/)[6]!), at(lines[header]!, 'source'), `source column moved:\n${r.stdout}`);
    }
    assert.match(r.stdout, new RegExp(`^l2dsr +stopped +${L2.replace(/\./g, '\\.')} +-- +no +-- +\\S+20-vip\\.conf:4$`, 'm'));
  });

  it('a reload puts things back, adds a new L2DSR VIP to lo and drops the old one', async () => {
    writeFileSync(join(dsr, '20-vip.conf'), `${V4.address}=${V4.dscp}\n${V6.address}=${V6.dscp}\n${L2_LATER}\n`);
    daemon.signal('SIGHUP');
    await daemon.waitForLine(/msg=reloaded/, 15_000);
    const s = await daemon.status();
    assert.deepEqual(s.vips?.map(brief), [
      `l3dsr started ${CLI.address} 17 lo=yes steering=up`,
      `l3dsr started ${V4.address} 1 lo=yes steering=up`,
      `l3dsr started ${V6.address} 1 lo=yes steering=up`,
      `l2dsr started ${L2_LATER} -- lo=yes steering=--`,
    ]);
    const lo = await loopbackAddresses(lab);
    assert.ok(onLoopback(lo, L2_LATER), `${L2_LATER} not on lo: ${lo.join(', ')}`);
    assert.ok(!onLoopback(lo, L2), `${L2} still on lo`);
  });

  it('a reload that conflicts is refused with the words l3dsr check uses for the same configuration', async () => {
    const clash = join(dsr, '30-clash.conf');
    writeFileSync(clash, `# a second VIP on the --rule's DSCP\n203.0.113.21 = ${CLI.dscp}\n`);
    try {
      daemon.signal('SIGHUP');
      const line = await daemon.waitForLine(/reload refused/, 15_000);
      const checked = await runL3dsr(lab, ['check', '--config', dsr, '--rule', `${CLI.dscp}=${CLI.address}`]);
      assert.equal(checked.code, 2, checked.stdout);
      const message = checked.stderr.trim().replace(/^l3dsr check: /, '');
      assert.equal(message, `${clash}:2: dscp: DSCP 17 is already used for IPv4 by rule --rule ${CLI.dscp}=${CLI.address} (VIP ${CLI.address})`);
      assert.ok(line.includes(`error=${JSON.stringify(message)}`), `reload said:\n${line}\ncheck said:\n${message}`);
      assert.equal((await daemon.status()).reloads.lastError, message);
    } finally {
      unlinkSync(clash);
    }
  });

  it('stops cleanly, taking every VIP it added off lo', async () => {
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.log);
    await assertNothingInstalled(lab, ALL, 'after the daemon stopped');
  });
});

describe('l3dsr status text: columns hold, whatever the length of a rule', () => {
  const long = { family: 6 as const, dscp: 63, destination: '2001:db8:ffff:ffff:ffff:ffff:ffff:fffe', match: { address: '2001:db8:aaaa:bbbb::', length: 64 }, setDscp: 0, origin: '/etc/dsr.d/a-long-file-name.conf:12 [rule long]' };
  const short = { family: 4 as const, dscp: 1, destination: '203.0.113.10', origin: '--rule 1=203.0.113.10' };
  const counters = (packets: string, bytes: string) => ({ packets, bytes });
  // The JSON a daemon serves: bigints arrive as decimal strings.
  const snapshot = {
    pid: 1, tun: 'dsr0', startedAt: Date.now(), configPaths: ['/etc/dsr.d'], rules: [short, long], l2dsr: [], warnings: [],
    queues: [{
      queue: 0, mode: 'io_uring', detail: null, offloads: null,
      counters: { verdicts: { rewritten: '3', passed: '0', malformed: '0', dropped: '0' }, reasons: {}, rules: [counters('1', '60'), counters('1234567', '98765432100')] },
      tun: { packetsRead: 3, packetsWritten: 3, writeErrors: 0, writeDrops: 0 },
    }],
    reloads: { ok: 0, failed: 0 }, steering: { mode: 'none', interfaces: [] }, loopbackVips: [],
    vips: [
      { type: 'l3dsr', state: 'started', vip: short.destination, family: 4, dscp: 1, onLo: true, steering: null, source: short.origin },
      { type: 'l3dsr', state: 'partial', vip: long.destination, family: 6, dscp: 63, onLo: false, steering: null, source: long.origin },
    ],
  } as unknown as DaemonSnapshot;

  it('the rule counters stay under their headers (numbers right-aligned)', () => {
    const lines = formatStatus(snapshot).split('\n');
    const header = lines.findIndex((l) => /^rule +packets +bytes$/.test(l));
    assert.ok(header >= 0, lines.join('\n'));
    const end = (l: string, i: number) => { const m = [...l.matchAll(/\S+/g)]; return m[m.length - i]!.index! + m[m.length - i]![0].length; };
    for (const l of lines.slice(header + 1, header + 3)) {
      assert.equal(end(l, 1), lines[header]!.length, `bytes column moved:\n${lines.join('\n')}`);
      assert.equal(end(l, 2), end(lines[header]!, 2), `packets column moved:\n${lines.join('\n')}`);
    }
  });

  it('the VIP rows stay under their headers', () => {
    const lines = formatStatus(snapshot).split('\n');
    const header = lines.findIndex((l) => /^type +state +VIP +DSCP +on lo +steering +source$/.test(l));
    assert.ok(header >= 0, lines.join('\n'));
    for (const l of lines.slice(header + 1, header + 3)) {
      assert.equal(l.indexOf(l.split(/ {2,}/)[6]!), lines[header]!.indexOf('source'), `source column moved:\n${lines.join('\n')}`);
    }
  });
});
