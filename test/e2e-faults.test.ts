// Faults with the real daemon in the lab: kill -9 in the middle of a
// transfer and restart, the TUN deleted underneath, SIGHUP with a broken and
// then with a good configuration, a flood beyond capacity, and signals at
// any moment of the daemon's life. Needs root (skipped without it).
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LAB_VIPS, LAB_INTERFACES, Lab, probe, sameAddress, startEchoService } from '../tools/lab/index.js';
import type { EchoService, LabVip, ProbeResult } from '../tools/lab/index.js';
import { writeSysctl } from '../src/system/index.js';
import {
  LabDaemon, assertNothingInstalled, assertOneFilterSet, daemonArgs, loopbackAddresses, metric, onLoopback, requireLabRoot,
  ruleBytes, rulePackets, steeredPackets, steeringFilters, totals, tunDevices, waitFor,
} from './support/daemon.js';
import { MIB, flood, startBulkService, startSink, startTransfer, type BulkService } from './support/daemon-traffic.js';
import { privileged } from './support/privilege.js';

/** A third service the daemon does not know at first: the LB already balances it. */
const EXTRA_VIPS: LabVip[] = [
  { family: 4, address: '203.0.113.30', dscp: 33 },
  { family: 6, address: '2001:db8:203::30', dscp: 33 },
];
const FLOOD_PORT = 9000;
const FLOOD_SECONDS = 3;

const udpAndHttp = (vips: readonly LabVip[]) =>
  vips.flatMap((v) => [{ protocol: 'http' as const, address: v.address }, { protocol: 'udp' as const, address: v.address }]);

function assertAnswered(results: ProbeResult[], context: string): void {
  for (const r of results) {
    assert.ok(r.ok, `${context}: ${r.target.protocol} to ${r.target.address}: ${r.error}`);
    assert.ok(sameAddress(r.from!, r.target.address) && sameAddress(r.reply!.local, r.target.address), `${context}: ${JSON.stringify(r)}`);
  }
}

function configText(vips: readonly LabVip[]): string {
  return [...vips.map((v) => `${v.address} = ${v.dscp}`), '', '[daemon]', `steer = ${LAB_INTERFACES.srvToLb}`, 'loopback-vips = yes', ''].join('\n');
}

describe('l3dsr run in the lab: faults', privileged('runs the daemon in the three-namespace lab'), () => {
  let lab: Lab;
  let echo: EchoService;
  let bulk: BulkService;
  let dir: string;
  const vips = DEFAULT_LAB_VIPS;
  const daemons: LabDaemon[] = [];
  /** Daemons that live across several tests (the reload suite's). */
  const shared = new Set<LabDaemon>();
  const start = async (args: string[], controlSocket?: string) => {
    const d = await LabDaemon.start(lab, args, { controlSocket });
    daemons.push(d);
    return d;
  };

  before(async () => {
    requireLabRoot();
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-faults-'));
    lab = await Lab.create({ vips: [...vips, ...EXTRA_VIPS] });
    // The services listen on the VIPs while daemons come and go (and add and remove the VIPs on lo).
    for (const family of ['ipv4', 'ipv6']) await writeSysctl(`net.${family}.ip_nonlocal_bind`, '1', lab.where('srv'));
    echo = await startEchoService(lab, lab.vips.map((v) => v.address));
    bulk = await startBulkService(lab, vips.map((v) => v.address));
  });

  // A failed test must not leave its daemon running into the next one (dsr0 would exist).
  afterEach(async () => {
    for (const d of daemons) if (d.running && !shared.has(d)) await d.stop();
  });

  after(async () => {
    for (const d of daemons) if (d.running) await d.stop();
    await bulk?.stop();
    await echo?.stop();
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('kill -9 in the middle of a 10 MB upload, restart: the upload completes intact, one set of filters', async () => {
    const vip = vips[0]!.address;
    // One control socket for both runs, as the default one in /run/l3dsr would be: its state file sits beside it.
    const socket = join(dir, 'kill9.sock');
    const first = await start(daemonArgs({ vips }), socket);
    // 160 writes of 64 KiB, 20 ms apart: the upload lasts a few seconds.
    const upload = startTransfer(lab, { address: vip, op: 'upload', bytes: 10 * MIB, paceMs: 20 });
    // A tenth of it through the rewriter (counted in bytes: with offloads a packet may be a 64 KiB super-packet).
    await waitFor('the upload to flow through the daemon', 10_000, async () =>
      (ruleBytes(await first.status(), vip) >= BigInt(MIB) ? true : undefined));
    first.signal('SIGKILL');
    assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' });
    assert.equal(upload.child.exitCode, null, 'the upload finished before the kill: it did not test anything');
    // Nothing cleaned up: the filters of the dead daemon are still there (their TUN is gone).
    assert.ok((await steeringFilters(lab)).length > 0, 'kill -9 cannot have removed the filters');
    assert.deepEqual(await tunDevices(lab), [], 'the TUN of a dead process must be gone');

    const second = await start(daemonArgs({ vips }), socket);
    await assertOneFilterSet(lab, vips);
    const r = await upload.result;
    assert.equal(r.error, undefined, `upload: ${r.error}`);
    assert.equal(r.received!.bytes, 10 * MIB);
    assert.equal(r.received!.sha256, r.sent!.sha256, 'upload corrupted across the restart');
    assert.ok(rulePackets(await second.status(), vip) > 0n, 'the rest of the upload did not pass the restarted daemon');
    assert.deepEqual(await second.stop(), { code: 0, signal: null }, second.log);
    // The killed daemon's clsact qdisc and VIPs on lo were taken over from its
    // state file by the restarted one, which undid them on its clean exit.
    await assertNothingInstalled(lab, vips, 'after the restarted daemon stopped');
  });

  it('the TUN deleted underneath: the daemon logs it, removes its filters and exits non-zero', async () => {
    const d = await start(daemonArgs({ vips }));
    await lab.exec('srv', 'ip', ['link', 'del', 'dsr0']);
    const exit = await d.exited;
    assert.equal(exit.code, 1, `exit ${JSON.stringify(exit)}; log:\n${d.log}`);
    assert.match(d.log, /level=error msg="data path failed; shutting down" code=\S+ error="TUN dsr0 queue 0: [^"]+"/);
    await assertNothingInstalled(lab, vips, 'after the TUN was deleted');
  });

  describe('SIGHUP reloads --config', () => {
    let d: LabDaemon;
    let config: string;

    before(async () => {
      config = join(dir, 'l3dsr.conf');
      writeFileSync(config, configText(vips));
      d = await start(['--config', config]);
      shared.add(d);
    });

    it('a broken file: the error names the file, line and field; the daemon keeps running with the old rules', async () => {
      assertAnswered(await probe(lab, udpAndHttp(vips)), 'before');
      const before = await d.status();
      writeFileSync(config, `${vips[0]!.address} = 1\n${vips[2]!.address} = seventeen\n`);
      d.signal('SIGHUP');
      const line = await d.waitForLine(/reload refused/, 10_000);
      assert.match(line, new RegExp(`${config.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2: dscp: `), line);
      assert.ok(d.running);
      const m = await d.metrics();
      assert.equal(metric(m, 'l3dsr_reloads_total', { result: 'error' }), 1);
      assert.equal(metric(m, 'l3dsr_reloads_total', { result: 'ok' }), 0);
      assertAnswered(await probe(lab, udpAndHttp(vips)), 'after the refused reload');
      const now = await d.status();
      assert.equal(now.rules.length, vips.length);
      for (const v of vips) assert.ok(rulePackets(now, v.address) > rulePackets(before, v.address), `old rule for ${v.address} stopped rewriting`);
      await assertOneFilterSet(lab, vips);
    });

    it('a good file that adds a VIP on a new DSCP: it works without a restart', async () => {
      const refused = await probe(lab, EXTRA_VIPS.map((v) => ({ protocol: 'udp' as const, address: v.address })), { timeoutMs: 1000 });
      for (const r of refused) assert.equal(r.ok, false, `${r.target.address} answered before the daemon knew it`);
      writeFileSync(config, configText([...vips, ...EXTRA_VIPS]));
      d.signal('SIGHUP');
      await d.waitForLine(/msg=reloaded/, 10_000);
      assertAnswered(await probe(lab, udpAndHttp([...vips, ...EXTRA_VIPS])), 'after the reload');
      const s = await d.status();
      for (const v of EXTRA_VIPS) assert.ok(rulePackets(s, v.address) > 0n, `no packet rewritten for ${v.address}`);
      await assertOneFilterSet(lab, [...vips, ...EXTRA_VIPS]);
      const lo = await loopbackAddresses(lab);
      for (const v of EXTRA_VIPS) assert.ok(onLoopback(lo, v.address), `${v.address} not added to lo`);
      const m = await d.metrics();
      assert.equal(metric(m, 'l3dsr_reloads_total', { result: 'ok' }), 1);
      assert.equal(metric(m, 'l3dsr_reloads_total', { result: 'error' }), 1);
    });

    it('stops cleanly afterwards, taking the added VIP off lo too', async () => {
      assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
      await assertNothingInstalled(lab, EXTRA_VIPS, 'after the reloaded daemon stopped');
    });
  });

  /** Waits until the daemon has read everything the kernel queued for it; returns its totals then. */
  async function drained(d: LabDaemon) {
    let last = -1n;
    return waitFor('the daemon to drain its queue', 10_000, async () => {
      const now = totals(await d.status());
      const settled = now.read === last;
      last = now.read;
      if (!settled) await new Promise((r) => setTimeout(r, 100));
      return settled ? now : undefined;
    });
  }

  /** Every packet the filters steered was read by the daemon or dropped by the kernel at the TUN, and counted. */
  async function assertAccounted(d: LabDaemon, t: ReturnType<typeof totals>, context: string): Promise<void> {
    const steered = BigInt(await steeredPackets(lab));
    assert.ok(steered > 0n, `${context}: nothing steered`);
    assert.equal(t.read + t.kernelTxDropped, steered, `${context}: steered ${steered}, read ${t.read}, kernel tx_dropped ${t.kernelTxDropped}`);
    assert.equal(t.written + t.writeErrors + t.dropped, t.read, `${context}: packets read but neither written nor counted`);
    const m = await d.metrics();
    assert.equal(BigInt(metric(m, 'l3dsr_tun_kernel_tx_dropped_total', { tun: 'dsr0' })), t.kernelTxDropped);
    assert.equal(BigInt(metric(m, 'l3dsr_packets_total', { verdict: 'rewritten' })), t.rewritten);
  }

  for (const engine of ['readwrite', 'io_uring'] as const) {
    it(`a UDP 64-byte flood (${engine}): the daemon survives and accounts for every steered packet`, async (t) => {
      const vip = vips[0]!.address;
      const d = await start(daemonArgs({ vips, engine }));
      const sink = await startSink(lab, vip, FLOOD_PORT);
      try {
        const sent = await flood(lab, { address: vip, port: FLOOD_PORT, seconds: FLOOD_SECONDS, flows: 16 });
        assert.ok(d.running, `the daemon died during the flood:\n${d.log}`);
        const totalsAfter = await drained(d);
        await assertAccounted(d, totalsAfter, `${engine} flood`);
        assert.ok(await sink.count() <= Number(totalsAfter.written), 'the sink got more than the daemon wrote');
        t.diagnostic(`${engine}: sent ${Math.round(sent.sent / sent.seconds)} pps, read ${Math.round(Number(totalsAfter.read) / sent.seconds)} pps, kernel tx_dropped ${totalsAfter.kernelTxDropped}`);
        assertAnswered(await probe(lab, udpAndHttp(vips)), 'after the flood');
      } finally {
        await sink.stop();
      }
      assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
    });
  }

  // Whether a flood exceeds the daemon depends on the machine; a reader that
  // does not read at all is beyond capacity for certain.
  it('a flood while the daemon is stalled (SIGSTOP for 1 s): the kernel drops at the TUN, /metrics shows it, the daemon resumes', async () => {
    const vip = vips[0]!.address;
    const d = await start(daemonArgs({ vips }));
    const flooding = flood(lab, { address: vip, port: FLOOD_PORT, seconds: FLOOD_SECONDS, flows: 16 });
    await new Promise((r) => setTimeout(r, 500));
    d.signal('SIGSTOP');
    await new Promise((r) => setTimeout(r, 1000));
    d.signal('SIGCONT');
    const sent = await flooding;
    assert.ok(d.running, `the daemon died:\n${d.log}`);
    const t = await drained(d);
    assert.ok(t.kernelTxDropped > 0n, `no drop while the daemon was stopped (sender: ${sent.sent} packets in ${sent.seconds.toFixed(1)} s)`);
    await assertAccounted(d, t, 'stalled flood');
    assertAnswered(await probe(lab, udpAndHttp(vips)), 'after the stall');
    assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
  });

  it('SIGTERM at any moment of startup, then a second one: the daemon exits without a trace in the system', async () => {
    for (const delayMs of [0, 150, 300, 450, 600, 900, 1200]) {
      const d = LabDaemon.spawn(lab, daemonArgs({ vips }));
      daemons.push(d);
      await new Promise((r) => setTimeout(r, delayMs));
      d.signal('SIGTERM');
      await new Promise((r) => setTimeout(r, 30));
      if (d.running) d.signal('SIGTERM');
      const exit = await d.exited;
      // Before Node has installed the handlers the default action applies; nothing is installed by then.
      assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', `SIGTERM ${delayMs} ms after the start: ${JSON.stringify(exit)}\n${d.log}`);
      await assertNothingInstalled(lab, vips, `SIGTERM ${delayMs} ms after the start (exit ${JSON.stringify(exit)})\n${d.log}`);
    }
  });
});
