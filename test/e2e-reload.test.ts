// SIGHUP with the real daemon in the lab: which [daemon] settings a reload
// applies (the metrics address, the log level and format) and which it only
// names as needing a restart (queues here), leaving everything else as it
// was. Needs root (skipped without it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAB_INTERFACES, LAB_PLAN, Lab, type LabVip } from '../tools/lab/index.js';
import { DEFAULT_PRIORITY_BASE, ownerOf } from '../src/steering/index.js';
import { tc } from '../src/system/index.js';
import {
  LabDaemon, STEER, assertNothingInstalled, assertOneFilterSet, getInNamespace, metric, requireLabRoot, steeringFilters, waitFor,
} from './support/daemon.js';
import { privileged } from './support/privilege.js';

/** On srv's own loopback. */
const OLD_METRICS = '127.0.0.1:9109';
const NEW_METRICS = '127.0.0.1:9110';
const RELOAD_TIMEOUT_MS = 10_000;

function configText(vips: readonly LabVip[], daemon: readonly string[]): string {
  return [
    ...vips.map((v) => `${v.address} = ${v.dscp}`), '',
    '[daemon]', `steer = ${LAB_INTERFACES.srvToLb}`, 'loopback-vips = yes', ...daemon, '',
  ].join('\n');
}

const lines = (log: string, re: RegExp) => log.split('\n').filter((l) => re.test(l));

describe('SIGHUP: the settings a reload applies, and those that need a restart', privileged('runs the daemon in the three-namespace lab'), () => {
  let lab: Lab;
  let dir: string;
  let config: string;
  let d: LabDaemon;
  let vips: readonly LabVip[];

  /** Writes the configuration, sends SIGHUP and waits until the daemon says how the reload went; returns its new lines. */
  async function reload(daemon: readonly string[], withVips: readonly LabVip[] = vips): Promise<string> {
    writeFileSync(config, configText(withVips, daemon));
    const done = /reloaded|reload refused|reload failed/;
    const before = d.log.length;
    const seen = lines(d.log, done).length;
    d.signal('SIGHUP');
    await waitFor('the reload to finish', RELOAD_TIMEOUT_MS, async () => (lines(d.log, done).length > seen ? true : undefined));
    return d.log.slice(before);
  }

  before(async () => {
    requireLabRoot();
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-reload-'));
    lab = await Lab.create();
    vips = lab.vips;
    config = join(dir, 'l3dsr.conf');
    writeFileSync(config, configText(vips, [`metrics = ${OLD_METRICS}`, 'log-level = info']));
    d = await LabDaemon.start(lab, ['--config', config]);
  });

  after(async () => {
    if (d?.running) await d.stop();
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('metrics moved to another port: the new port answers, the old one stops answering', async () => {
    assert.equal((await getInNamespace(lab, `http://${OLD_METRICS}/metrics`)).status, 200);
    assert.equal((await getInNamespace(lab, `http://${NEW_METRICS}/metrics`)).error, 'ECONNREFUSED');
    const log = await reload([`metrics = ${NEW_METRICS}`, 'log-level = info']);
    const moved = await getInNamespace(lab, `http://${NEW_METRICS}/metrics`);
    assert.equal(moved.status, 200, `${JSON.stringify(moved)}\n${log}`);
    assert.equal(metric(moved.body!, 'l3dsr_rules'), vips.length);
    assert.equal((await getInNamespace(lab, `http://${OLD_METRICS}/metrics`)).error, 'ECONNREFUSED');
    assert.match(log, /msg=reloaded .*applied=metrics\b/, log);
  });

  it('log-level = debug: debug lines appear from the reload on', async () => {
    await d.metrics();
    assert.deepEqual(lines(d.log, /level=debug/), [], 'debug lines before log-level = debug');
    await reload([`metrics = ${NEW_METRICS}`, 'log-level = debug']);
    // Every answered request is a debug line.
    await d.metrics();
    const served = await d.waitForLine(/level=debug msg=served endpoint=control method=GET path=\/metrics status=200/, RELOAD_TIMEOUT_MS);
    assert.ok(served);
  });

  it('a restart-only setting (queues = 2): the reload names it, and nothing else changes', async () => {
    const before = await d.status();
    assert.equal(before.queues.length, 1);
    const log = await reload([`metrics = ${NEW_METRICS}`, 'log-level = debug', 'queues = 2']);
    assert.match(log, /level=warn msg="setting changed: it needs a restart, the running value stays until then" setting=queues running=1 configured=2/, log);
    assert.doesNotMatch(log, /level=warn .*setting=(?!queues)/, `only queues needs a restart:\n${log}`);
    assert.match(log, /msg=reloaded rules=\d+\n/, 'the reload applied no setting');
    const now = await d.status();
    assert.equal(now.queues.length, 1, 'a second queue appeared without a restart');
    assert.deepEqual(now.rules, before.rules);
    assert.equal(now.reloads.ok, before.reloads.ok + 1);
    assert.equal(now.reloads.failed, before.reloads.failed);
    await assertOneFilterSet(lab, vips);
    assert.equal((await getInNamespace(lab, `http://${NEW_METRICS}/metrics`)).status, 200);
  });

  it('a metrics address that cannot be opened (its port is taken): the whole reload is refused, the old listener and rules stay', async () => {
    const taken = '127.0.0.1:9111';
    const holder = lab.spawn('srv', process.execPath, ['-e', `require('node:net').createServer().listen(9111, '127.0.0.1', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(holder.stdout!, 'data');
      const before = await d.status();
      // The new file also drops a VIP: that must not be applied either.
      const log = await reload([`metrics = ${taken}`, 'log-level = debug', 'queues = 2'], vips.slice(1));
      assert.match(log, /level=error msg="reload refused; the old configuration keeps running" error="metrics 127\.0\.0\.1:9111: cannot listen \(EADDRINUSE\)"/, log);
      const now = await d.status();
      assert.deepEqual(now.rules, before.rules);
      assert.equal(now.reloads.failed, before.reloads.failed + 1);
      assert.equal(now.reloads.ok, before.reloads.ok);
      await assertOneFilterSet(lab, vips);
      assert.equal((await getInNamespace(lab, `http://${NEW_METRICS}/metrics`)).status, 200);
    } finally {
      holder.kill();
    }
  });

  it("metrics moved to all interfaces on the same port: it answers on srv's own address too", async () => {
    const port = NEW_METRICS.split(':')[1];
    const rip = `http://${LAB_PLAN[4].rip}:${port}/metrics`;
    assert.equal((await getInNamespace(lab, rip)).error, 'ECONNREFUSED');
    const log = await reload([`metrics = 0.0.0.0:${port}`, 'log-level = debug', 'queues = 2']);
    assert.match(log, /msg=reloaded .*applied=metrics\b/, log);
    assert.equal((await getInNamespace(lab, rip)).status, 200);
    assert.equal((await getInNamespace(lab, `http://${NEW_METRICS}/metrics`)).status, 200);
  });

  it('a reload whose rules cannot be applied goes back to the old metrics listener too (here one closed to move on its port)', async () => {
    // Someone else's filter in the daemon's tc priorities (one of the other family than the
    // daemon would put there, in the band it does not use): the steering refuses to touch them.
    const used = new Set((await steeringFilters(lab)).map((f) => f.priority));
    const free = [0, 1, 2, 3].map((i) => DEFAULT_PRIORITY_BASE + i).find((p) => !used.has(p))!;
    const v6 = ownerOf(DEFAULT_PRIORITY_BASE, free)!.family === 4;
    const foreign = ['dev', STEER, 'ingress', 'protocol', v6 ? 'ipv6' : 'ip', 'prio', String(free)];
    const match = v6 ? ['ip6', 'priority'] : ['ip', 'dsfield'];
    await tc(['filter', 'add', ...foreign, 'u32', 'match', ...match, '0x04', '0xfc', 'action', 'mirred', 'egress', 'redirect', 'dev', 'dsr0'], lab.where('srv'));
    try {
      const before = await d.status();
      const rip = `http://${LAB_PLAN[4].rip}:9110/metrics`;
      const log = await reload(['metrics = 127.0.0.1:9110', 'log-level = debug', 'queues = 2']);
      assert.match(log, /level=error msg="reload failed while applying" error="[^"]*hold filters that are not l3dsr's/, log);
      assert.equal((await getInNamespace(lab, rip)).status, 200, 'the old listener (all interfaces) is not back');
      const now = await d.status();
      assert.deepEqual(now.rules, before.rules);
      assert.equal(now.reloads.failed, before.reloads.failed + 1);
    } finally {
      await tc(['filter', 'del', ...foreign], lab.where('srv'));
    }
    await assertOneFilterSet(lab, vips);
  });

  it('log-format = json in [daemon]: the lines after the reload are JSON', async () => {
    const log = await reload([`metrics = 0.0.0.0:9110`, 'log-level = debug', 'queues = 2', 'log-format = json']);
    const reloaded = log.split('\n').find((l) => l.includes('reloaded'));
    assert.ok(reloaded, log);
    const line = JSON.parse(reloaded) as { level: string; msg: string; applied: string };
    assert.deepEqual([line.level, line.msg, line.applied], ['info', 'reloaded', 'log-format']);
  });

  it('stops cleanly afterwards', async () => {
    assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
    await assertNothingInstalled(lab, vips, 'after the reloaded daemon stopped');
  });
});
