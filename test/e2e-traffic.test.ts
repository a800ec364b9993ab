// End to end: the real daemon (`l3dsr run`, io_uring, one queue) on the real
// server of the three-namespace lab, with real traffic from the client
// through the nftables LB. Four VIPs: IPv4 and IPv6 on DSCP 1 and on DSCP 17.
// Needs root (skipped without it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { installReturnPathCounters, readReturnPathCounters } from '../tools/demo/observe.js';
import { Lab, LAB_INTERFACES, LAB_PLAN, probe, sameAddress, startEchoService } from '../tools/lab/index.js';
import { IPV4, IPV6, UDP } from '../tools/packets/layout.js';
import type { EchoService, LabVip, ProbeResult } from '../tools/lab/index.js';
import { ipJson } from '../src/system/index.js';
import {
  LabDaemon, assertNothingInstalled, assertOneFilterSet, daemonArgs, getInNamespace, loopbackAddresses, metric, onLoopback, requireLabRoot,
  ruleBytes, rulePackets, runL3dsr, totals, waitFor,
} from './support/daemon.js';
import { MIB, startBulkService, transfer, type BulkService } from './support/daemon-traffic.js';
import { privileged } from './support/privilege.js';

const UDP_REQUESTS = 10;
/** The probe's UDP payload is the five bytes `probe`. */
const PROBE_PAYLOAD = 5;
const IP_HEADER = { 4: IPV4.SIZE, 6: IPV6.SIZE } as const;
const TRANSFER_BYTES = 10 * MIB;
/** --metrics inside srv (its own loopback). */
const METRICS = '127.0.0.1:9109';

const familyOf = (address: string): 4 | 6 => (address.includes(':') ? 6 : 4);

function assertAnsweredByVip(r: ProbeResult): void {
  const what = `${r.target.protocol} to ${r.target.address}`;
  assert.ok(r.ok, `${what}: ${r.error}`);
  assert.ok(sameAddress(r.reply!.local, r.target.address), `${what}: delivered to ${r.reply!.local}`);
  assert.ok(sameAddress(r.from!, r.target.address), `${what}: answered from ${r.from}`);
  assert.ok(sameAddress(r.reply!.remote, LAB_PLAN[familyOf(r.target.address)].client), `${what}: the server saw ${r.reply!.remote}`);
}

describe('l3dsr run in the lab, real traffic (io_uring, 1 queue, VIPs on DSCP 1 and 17)', privileged('runs the daemon in the three-namespace lab'), () => {
  let lab: Lab;
  let daemon: LabDaemon;
  let echo: EchoService;
  let bulk: BulkService;
  let vips: readonly LabVip[];
  const rips = [LAB_PLAN[4].rip, LAB_PLAN[6].rip];

  before(async () => {
    requireLabRoot();
    lab = await Lab.create();
    vips = lab.vips;
    assert.ok(vips.some((v) => v.dscp === 1) && vips.some((v) => v.dscp >= 8), 'the lab must have a VIP on DSCP 1 and one on a DSCP >= 8');
    await installReturnPathCounters(lab);
    daemon = await LabDaemon.start(lab, daemonArgs({ vips, engine: 'io_uring', extra: ['--metrics', METRICS] }));
    // The echo service also listens on the RIPs, to show that unmarked traffic to them is left alone.
    echo = await startEchoService(lab, [...vips.map((v) => v.address), ...rips]);
    bulk = await startBulkService(lab, vips.map((v) => v.address));
  });

  after(async () => {
    await bulk?.stop();
    await echo?.stop();
    if (daemon?.running) await daemon.stop();
    await lab?.destroy();
  });

  it('starts with one steering filter per family and DSCP, the VIPs on lo, io_uring on its queue, a long TUN queue', async () => {
    await assertOneFilterSet(lab, vips);
    const lo = await loopbackAddresses(lab);
    for (const v of vips) assert.ok(onLoopback(lo, v.address), `${v.address} not on lo`);
    const s = await daemon.status();
    assert.equal(s.queues.length, 1);
    assert.equal(s.queues[0]!.mode, 'io_uring');
    assert.equal(s.rules.length, vips.length);
    // The kernel's default queue of 500 overflows under one TCP upload's bursts.
    const [tun] = await ipJson<Array<{ txqlen?: number }>>(['link', 'show', 'dev', 'dsr0'], lab.where('srv'));
    assert.ok((tun?.txqlen ?? 0) >= 1000, `dsr0 txqueuelen ${tun?.txqlen}`);
  });

  it('HTTP to every VIP, IPv4 and IPv6, is answered by the VIP, straight from srv', async () => {
    const before = await readReturnPathCounters(lab);
    const results = await probe(lab, vips.map((v) => ({ protocol: 'http' as const, address: v.address })));
    results.forEach(assertAnsweredByVip);
    const now = await readReturnPathCounters(lab);
    for (const family of [4, 6] as const) {
      const n = vips.filter((v) => v.family === family).length;
      // Each HTTP exchange brings at least SYN-ACK, the response and a FIN from the VIP.
      assert.ok(now.direct[family] - before.direct[family] >= 3 * n, `IPv${family}: too few packets from the VIPs on ${LAB_INTERFACES.cliToSrv}`);
      assert.equal(now.viaLb[family], 0, `IPv${family}: packets from a VIP came back through the LB`);
    }
  });

  it('UDP to every VIP: each request is exactly one rewritten packet, counted on its own rule only', async () => {
    for (const vip of vips) {
      const before = await daemon.status();
      const results = await probe(lab, Array.from({ length: UDP_REQUESTS }, () => ({ protocol: 'udp' as const, address: vip.address })));
      results.forEach(assertAnsweredByVip);
      const now = await daemon.status();
      for (const other of vips) {
        const delta = rulePackets(now, other.address) - rulePackets(before, other.address);
        assert.equal(delta, other === vip ? BigInt(UDP_REQUESTS) : 0n, `rule for ${other.address} after UDP to ${vip.address}`);
      }
      const bytes = ruleBytes(now, vip.address) - ruleBytes(before, vip.address);
      assert.equal(bytes, BigInt(UDP_REQUESTS * (IP_HEADER[vip.family] + UDP.SIZE + PROBE_PAYLOAD)), `bytes counted for ${vip.address}`);
    }
  });

  for (const family of [4, 6] as const) {
    it(`IPv${family}: a 10 MB upload and a 10 MB download arrive intact (SHA-256), every uploaded byte through the rewriter`, async () => {
      const vip = vips.find((v) => v.family === family)!.address;
      for (const op of ['upload', 'download'] as const) {
        const before = await daemon.status();
        const r = await transfer(lab, { address: vip, op, bytes: TRANSFER_BYTES });
        assert.equal(r.error, undefined, `${op} to ${vip}: ${r.error}`);
        assert.equal(r.received!.bytes, TRANSFER_BYTES, `${op}: bytes received`);
        assert.equal(r.received!.sha256, r.sent!.sha256, `${op}: SHA-256 of what arrived differs from what was sent`);
        const now = await daemon.status();
        const bytes = ruleBytes(now, vip) - ruleBytes(before, vip);
        if (op === 'upload') assert.ok(bytes >= BigInt(TRANSFER_BYTES), `upload: only ${bytes} bytes rewritten for ${vip}`);
        // A download sends only ACKs through the LB and the rewriter.
        else assert.ok(rulePackets(now, vip) > rulePackets(before, vip), `download: no ACK rewritten for ${vip}`);
      }
    });
  }

  it('unmarked traffic to the RIP is not steered: answered by the RIP, nothing read by the daemon', async () => {
    const before = totals(await daemon.status());
    const results = await probe(lab, rips.flatMap((address) => [{ protocol: 'udp' as const, address }, { protocol: 'http' as const, address }]));
    for (const r of results) {
      assert.ok(r.ok, `${r.target.protocol} to the RIP ${r.target.address}: ${r.error}`);
      assert.ok(sameAddress(r.reply!.local, r.target.address) && sameAddress(r.from!, r.target.address), `RIP answer: ${JSON.stringify(r)}`);
    }
    const now = totals(await daemon.status());
    assert.equal(now.read, before.read, 'the daemon read packets of unmarked traffic');
    assert.equal(now.passed, before.passed);
  });

  it('ARP and neighbour discovery for the RIP are still answered by srv', async () => {
    const before = totals(await daemon.status());
    const [srvLink] = await ipJson<Array<{ address: string }>>(['link', 'show', 'dev', LAB_INTERFACES.srvToLb], lab.where('srv'));
    for (const family of [4, 6] as const) {
      const rip = LAB_PLAN[family].rip;
      await lab.exec('lb', 'ip', [`-${family}`, 'neigh', 'flush', 'dev', LAB_INTERFACES.lbToSrv]);
      // Any packet from lb to the RIP makes lb resolve it first.
      await lab.exec('lb', process.execPath, ['-e',
        `const s = require('node:dgram').createSocket('udp${family}'); s.send('n', 9, ${JSON.stringify(rip)}, () => s.close());`]);
      const entry = await waitFor(`a REACHABLE neighbour entry for ${rip} in lb`, 5000, async () => {
        const [e] = await ipJson<Array<{ lladdr?: string; state?: string[] }>>(['neigh', 'show', 'dev', LAB_INTERFACES.lbToSrv, 'to', rip], lab.where('lb'));
        return e?.state?.includes('REACHABLE') ? e : undefined;
      });
      assert.equal(entry.lladdr, srvLink!.address, `${rip} resolved to the wrong link-layer address`);
    }
    assert.equal(totals(await daemon.status()).read, before.read, 'ARP/ND or the unmarked datagrams reached the TUN');
  });

  it('status and /metrics agree: every packet read was rewritten and written back; no verdict drop, no write error', async () => {
    const s = await daemon.status();
    const m = await daemon.metrics();
    const t = totals(s);
    assert.ok(t.rewritten > 0n);
    assert.equal(t.read, t.rewritten, 'only marked packets of our rules reach the TUN');
    assert.equal(t.written, t.read);
    assert.equal(t.dropped + t.malformed + t.passed + t.writeErrors, 0n);
    assert.equal(BigInt(metric(m, 'l3dsr_packets_total', { verdict: 'rewritten' })), t.rewritten);
    for (const v of vips) {
      assert.ok(rulePackets(s, v.address) > 0n, `rule for ${v.address} never used`);
      assert.equal(BigInt(metric(m, 'l3dsr_rule_packets_total', { vip: v.address })), rulePackets(s, v.address), `metrics for ${v.address}`);
    }
    // Not asserted to be 0: whether the kernel ever found the TUN queue full depends on the machine's load.
    assert.equal(BigInt(metric(m, 'l3dsr_tun_kernel_tx_dropped_total', { tun: 'dsr0' })), t.kernelTxDropped);
  });

  it('l3dsr status: the rules with their counters; --json is /status; --metrics is the exposition', async () => {
    const human = await runL3dsr(lab, ['status', '--control-socket', daemon.controlSocket]);
    assert.equal(human.code, 0, human.stderr);
    const s = await daemon.status();
    for (const v of vips) {
      const line = human.stdout.split('\n').find((l) => l.trim().startsWith(`${v.dscp}=${v.address} `));
      assert.ok(line, `no line for ${v.dscp}=${v.address} in:\n${human.stdout}`);
      assert.equal(line.trim().split(/\s+/)[1], String(rulePackets(s, v.address)), line);
    }
    assert.match(human.stdout, /queues: 0: io_uring/);
    const json = await runL3dsr(lab, ['status', '--json', '--control-socket', daemon.controlSocket]);
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as { pid: number }).pid, daemon.pid);
    const prom = await runL3dsr(lab, ['status', '--metrics', '--control-socket', daemon.controlSocket]);
    assert.equal(prom.code, 0, prom.stderr);
    assert.ok(metric(prom.stdout, 'l3dsr_packets_total', { verdict: 'rewritten' }) > 0);
  });

  it(`serves /metrics on --metrics ${METRICS} (and not /status there)`, async () => {
    const metrics = await getInNamespace(lab, `http://${METRICS}/metrics`);
    assert.equal(metrics.status, 200, JSON.stringify(metrics));
    const viaSocket = await daemon.metrics();
    assert.equal(metric(metrics.body!, 'l3dsr_rules'), vips.length);
    assert.equal(metric(metrics.body!, 'l3dsr_packets_total', { verdict: 'rewritten' }), metric(viaSocket, 'l3dsr_packets_total', { verdict: 'rewritten' }));
    assert.equal((await getInNamespace(lab, `http://${METRICS}/status`)).status, 404);
  });

  it('SIGTERM: exit 0, and the TUN, the filters, the qdisc it added and the VIPs on lo are gone', async () => {
    const exit = await daemon.stop('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, daemon.log);
    await assertNothingInstalled(lab, vips, 'after SIGTERM');
  });
});
