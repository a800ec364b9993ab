// Two daemons on the same TUN name in two network namespaces that share
// /run (as `ip netns exec` namespaces do): each has its own control socket
// and state file, `l3dsr status` in a namespace finds that namespace's
// daemon, and stopping one leaves the other serving, its state and VIPs
// untouched. Both use the default control socket in /run/l3dsr, on a fresh
// tmpfs /run (test/support/fresh-run.ts). Needs root; fails without it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { DEFAULT_LAB_VIPS, Lab, probe, sameAddress, startEchoService, type EchoService, type LabVip } from '../tools/lab/index.js';
import { FreshRun } from './support/fresh-run.js';
import {
  LabDaemon, assertNothingInstalled, assertOneFilterSet, daemonArgs, loopbackAddresses, onLoopback, requireLabRoot, rulePackets, runL3dsr,
} from './support/daemon.js';
import { privileged } from './support/privilege.js';

/** Bounds a hang (a daemon that should have refused to start runs on). */
const BOUND = { timeout: 60_000 };

const vips: readonly LabVip[] = DEFAULT_LAB_VIPS;

async function assertServes(lab: Lab, context: string): Promise<void> {
  const results = await probe(lab, vips.flatMap((v) => [{ protocol: 'http' as const, address: v.address }, { protocol: 'udp' as const, address: v.address }]));
  for (const r of results) {
    assert.ok(r.ok, `${context}: ${r.target.protocol} to ${r.target.address}: ${r.error}`);
    assert.ok(sameAddress(r.from!, r.target.address), `${context}: ${r.target.address} answered from ${r.from}`);
  }
}

describe('daemons on the same TUN name in two network namespaces', privileged('builds two labs'), () => {
  const labs: Lab[] = [];
  const echos: EchoService[] = [];
  const daemons: LabDaemon[] = [];
  let run: FreshRun;

  before(async () => {
    requireLabRoot();
    run = await FreshRun.create();
    for (let i = 0; i < 2; i++) labs.push(await Lab.create({ vips }));
    for (const lab of labs) {
      // No --control-socket: both take the default in the shared /run/l3dsr.
      daemons.push(await LabDaemon.start(lab, daemonArgs({ vips }), { controlSocket: null, prefix: run.prefix, ownMountNamespace: true }));
      echos.push(await startEchoService(lab, vips.map((v) => v.address)));
    }
  });

  after(async () => {
    for (const d of daemons) if (d.running) await d.stop();
    for (const e of echos) await e.stop();
    for (const lab of labs) await lab.destroy();
    await run?.destroy();
  });

  it('both serve traffic, each with its own socket and state file in /run/l3dsr', BOUND, async () => {
    const [a, b] = daemons as [LabDaemon, LabDaemon];
    assert.notEqual(a.controlSocket, b.controlSocket);
    for (const [i, lab] of labs.entries()) {
      const inode = statSync(`/run/netns/${lab.namespaces.srv}`).ino;
      assert.equal(daemons[i]!.controlSocket, `/run/l3dsr/dsr0.netns-${inode}.sock`);
    }
    assert.equal(readdirSync(run.path('/run/l3dsr')).length, 4, `in /run/l3dsr: ${readdirSync(run.path('/run/l3dsr')).join(', ')}`);
    for (const [i, lab] of labs.entries()) {
      await assertServes(lab, `lab ${i}`);
      // No daemon took over the other's state: neither logged a takeover.
      assert.doesNotMatch(daemons[i]!.log, /taking over/, daemons[i]!.log);
    }
  });

  it('`l3dsr status` in each namespace reports the daemon of that namespace', BOUND, async () => {
    for (const [i, lab] of labs.entries()) {
      const r = await runL3dsr(lab, ['status', '--json'], { prefix: run.prefix });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { pid: number }).pid, daemons[i]!.pid, `status in lab ${i}`);
    }
  });

  it('stopping one leaves the other serving, its state file and VIPs untouched', BOUND, async () => {
    const [a, b] = daemons as [LabDaemon, LabDaemon];
    const [labA, labB] = labs as [Lab, Lab];
    const stateB = run.path(b.controlSocket.replace(/\.sock$/, '.state.json'));
    const stateBefore = readFileSync(stateB, 'utf8');
    const countedBefore = rulePackets(await b.status(), vips[0]!.address);

    assert.deepEqual(await a.stop(), { code: 0, signal: null }, a.log);
    await assertNothingInstalled(labA, vips, 'lab A after its daemon stopped');
    const gone = await runL3dsr(labA, ['status'], { prefix: run.prefix });
    assert.equal(gone.code, 1, gone.stdout);
    assert.match(gone.stderr, /no l3dsr daemon is listening on \/run\/l3dsr\/dsr0\.netns-\d+\.sock/);

    assert.ok(b.running, b.log);
    assert.equal(readFileSync(stateB, 'utf8'), stateBefore, 'the other daemon\'s state file changed');
    assert.deepEqual(readdirSync(run.path('/run/l3dsr')).sort(), [b.controlSocket, stateB].map((p) => p.replace(/^.*\//, '')).sort());
    const lo = await loopbackAddresses(labB);
    for (const v of vips) assert.ok(onLoopback(lo, v.address), `${v.address} left lo of lab B`);
    await assertOneFilterSet(labB, vips);
    await assertServes(labB, 'lab B after A stopped');
    assert.ok(rulePackets(await b.status(), vips[0]!.address) > countedBefore, 'lab B\'s daemon did not count the new traffic');
    const r = await runL3dsr(labB, ['status', '--json'], { prefix: run.prefix });
    assert.equal((JSON.parse(r.stdout) as { pid: number }).pid, b.pid);

    assert.deepEqual(await b.stop(), { code: 0, signal: null }, b.log);
    await assertNothingInstalled(labB, vips, 'lab B after its daemon stopped');
    assert.deepEqual(readdirSync(run.path('/run/l3dsr')), []);
  });
});
