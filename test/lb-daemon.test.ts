// `l3dsr lb` in the ECMP lab: both balancers run it (rtr spreads the
// client's connections over them by ECMP), both servers run `l3dsr run`
// with the echo service on the VIPs. TCP connections to the VIPs complete
// from the VIP, both servers get some, the answers come back through the
// router and never through a balancer; both families. A stopped balancer
// leaves nothing: no TUN, no qdisc or filter, rp_filter as it was, no
// runtime file. Needs root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectSteering } from '../src/steering/index.js';
import { ipJson, readSysctl, writeSysctl } from '../src/system/index.js';
import { BALANCERS, ECMP_INTERFACES, EcmpLab, SERVERS, probe, sameAddress, startEchoService } from '../tools/lab/index.js';
import type { EchoService, LabVip, ProbeTarget } from '../tools/lab/index.js';
import { LabDaemon, requireLabRoot, rulePackets, sumQueues } from './support/daemon.js';
import { installObservers, observed } from './support/ecmp-observe.js';
import { serverDaemonArgs } from './support/health-lab.js';
import { privileged } from './support/privilege.js';

/** Connections per VIP: enough that each server gets some (2 × 2^-24 that one does not). */
const CONNECTIONS = 24;
const BOUND = { timeout: 120_000 };
const SYSCTLS = ['net/ipv4/conf/all/rp_filter', 'net/ipv4/conf/default/rp_filter', `net/ipv4/conf/${ECMP_INTERFACES.lbToRtr}/rp_filter`];

/** One [lb] section per VIP, both servers as backends, no health checks. */
function lbConfig(lab: EcmpLab, vips: readonly LabVip[]): string {
  return [
    '[daemon]', `steer = ${ECMP_INTERFACES.lbToRtr}`, 'connections = 1024', '',
    ...vips.flatMap((v) => [
      `[lb web${v.family}]`, `vip = ${v.address}`, `dscp = ${v.dscp}`,
      `backends = ${lab.servers.map((s) => lab.plan[v.family].rip[s]).join(', ')}`, 'check = none', '',
    ]),
  ].join('\n');
}

describe('l3dsr lb on both balancers of the ECMP lab, l3dsr run on both servers', privileged('builds the seven-namespace balancer lab'), () => {
  let lab: EcmpLab;
  let vips: LabVip[];
  let dir: string;
  const servers = new Map<string, LabDaemon>();
  const balancers = new Map<string, LabDaemon>();
  const services: EchoService[] = [];
  const before_ = new Map<string, string[]>();

  before(async () => {
    requireLabRoot();
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-lb-'));
    lab = await EcmpLab.create();
    vips = lab.vips.filter((v) => v.dscp === lab.vips[0]!.dscp);
    await installObservers(lab);
    for (const srv of SERVERS) {
      servers.set(srv, await LabDaemon.start(lab, serverDaemonArgs(vips), { role: srv }));
      services.push(await startEchoService(lab, vips.map((v) => v.address), { role: srv }));
    }
    const config = join(dir, 'lb.conf');
    writeFileSync(config, lbConfig(lab, vips));
    for (const lb of BALANCERS) {
      before_.set(lb, await Promise.all(SYSCTLS.map((k) => readSysctl(k, lab.where(lb)))));
      balancers.set(lb, await LabDaemon.start(lab, ['--config', config], { role: lb, command: 'lb', controlSocket: join(dir, lb, 'lb.sock') }));
    }
  });

  after(async () => {
    for (const s of services) await s.stop();
    for (const d of [...balancers.values(), ...servers.values()]) await d.stop();
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('TCP connections to the VIPs reach both servers from the VIP, and the answers go straight back, IPv4 and IPv6', BOUND, async () => {
    const targets: ProbeTarget[] = vips.flatMap((v) => Array.from({ length: CONNECTIONS }, () => ({ protocol: 'http' as const, address: v.address })));
    const results = await probe(lab, targets, { timeoutMs: 10_000 });
    for (const r of results) {
      assert.ok(r.ok, `http to ${r.target.address}: ${r.error}`);
      assert.ok(sameAddress(r.from!, r.target.address) && sameAddress(r.reply!.local, r.target.address), JSON.stringify(r));
    }
    for (const v of vips) {
      for (const srv of SERVERS) {
        assert.ok(rulePackets(await servers.get(srv)!.status(), v.address) > 0n, `${srv}'s l3dsr rewrote nothing for ${v.address}`);
      }
    }
    let balanced = 0n;
    for (const lb of BALANCERS) {
      const s = await balancers.get(lb)!.status();
      assert.equal(s.command, 'lb');
      balanced += sumQueues(s, (q) => q.counters.verdicts.rewritten);
    }
    // Each connection is at least its SYN, its request and its ACKs, all balanced.
    assert.ok(balanced >= BigInt(targets.length * 3), `the balancers balanced ${balanced} packets for ${targets.length} connections`);
    for (const family of [4, 6]) {
      assert.ok(await observed(lab, 'rtr', `replies${family}`) >= CONNECTIONS, `IPv${family}: the answers did not come back through rtr`);
      for (const lb of BALANCERS) assert.equal(await observed(lab, lb, `replies${family}`), 0, `${lb} saw an answer from a VIP`);
    }
  });

  it('refuses to start while IPv6 forwarding is off, naming the sysctl, and leaves nothing', BOUND, async () => {
    const where = lab.where('lb2');
    await writeSysctl('net.ipv6.conf.all.forwarding', '0', where);
    try {
      const config = join(dir, 'lb.conf');
      const d = LabDaemon.spawn(lab, ['--config', config, '--tun', 'lb9'], { role: 'lb2', command: 'lb', controlSocket: join(dir, 'lb2-off', 'lb.sock') });
      const exit = await d.exited;
      assert.equal(exit.code, 1, d.log);
      assert.match(d.log, /IPv6 forwarding is off \(net\/ipv6\/conf\/all\/forwarding = 0\): set net\.ipv6\.conf\.all\.forwarding = 1/);
      assert.deepEqual(await ipJson<{ ifname: string }[]>(['link', 'show', 'dev', 'lb9'], where).catch(() => []), [], 'the TUN is left');
      assert.deepEqual(readdirSync(join(dir, 'lb2-off')), [], 'runtime files are left');
    } finally {
      await writeSysctl('net.ipv6.conf.all.forwarding', '1', where);
    }
  });

  it('a stopped balancer leaves nothing behind: no TUN, qdisc or filter, rp_filter as it was, no runtime file', BOUND, async () => {
    for (const lb of BALANCERS) {
      const exit = await balancers.get(lb)!.stop();
      assert.equal(exit.code, 0, `${lb}: exit ${JSON.stringify(exit)}`);
      const where = lab.where(lb);
      assert.deepEqual(await ipJson<unknown[]>(['link', 'show', 'type', 'tun'], where), [], `${lb}: a TUN is left`);
      const steering = await inspectSteering({ interfaces: [ECMP_INTERFACES.lbToRtr], netns: lab.namespaces[lb] });
      assert.equal(steering.interfaces[0]!.hasClsact, false, `${lb}: a clsact qdisc is left`);
      assert.deepEqual(steering.interfaces[0]!.ours, [], `${lb}: filters are left`);
      assert.deepEqual(await Promise.all(SYSCTLS.map((k) => readSysctl(k, where))), before_.get(lb), `${lb}: rp_filter not restored`);
      assert.deepEqual(readdirSync(join(dir, lb)), [], `${lb}: runtime files are left`);
    }
  });
});
