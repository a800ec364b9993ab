// `l3dsr lb` in the ECMP lab: both balancers run it (rtr spreads the
// client's connections over them by ECMP), both servers run `l3dsr run`
// with the echo service on the VIPs. TCP connections to the VIPs complete
// from the VIP, both servers get some, the answers come back through the
// router and never through a balancer; both families. A stopped balancer
// leaves nothing: no TUN, no qdisc or filter, rp_filter as it was, no
// runtime file. SIGHUP: a bad file changes nothing; a backend added takes
// new flows while every established one keeps its server. Needs root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendStatus } from '../src/daemon/snapshot.js';
import { DESTINATION_CLASSES, inspectSteering } from '../src/steering/index.js';
import { ipJson } from '../src/system/index.js';
import { BALANCERS, ECHO_PORT, ECMP_INTERFACES, EcmpLab, LongFlows, SERVERS, installObservers, observed, probe, sameAddress, startEchoService, startNamedService } from '../tools/lab/index.js';
import type { EchoService, LabVip, ProbeTarget } from '../tools/lab/index.js';
import { L3DSR_BIN, LabDaemon, metric, requireLabRoot, rulePackets, sumQueues, waitFor, type StatusJson } from './support/daemon.js';
import { serverDaemonArgs } from './support/health-lab.js';
import { ABSENT, assertBalancerLeftNothing, lbConfig, logLines, readBalancerSysctls, reloadBalancers } from './support/lb-lab.js';
import { privileged } from './support/privilege.js';

/** Connections per VIP: enough that each server gets some (2 × 2^-24 that one does not). */
const CONNECTIONS = 24;
/** Long-lived connections per VIP: with a third backend added, the chance that none of them would move without the connection table is (2/3)^16, 0.15 %. */
const FLOWS = 16;
const BOUND = { timeout: 120_000 };

/** A backend a reload adds drained: it takes no flow. */
const DRAINED: Record<4 | 6, string> = { 4: '198.51.100.14', 6: '2001:db8:198::14' };

/** Health checks on the echo service: every 500 ms, down after 3 failed, up after 2 answered. */
const CHECKS = [`check = tcp ${ECHO_PORT}`, 'interval = 500ms', 'rise = 2', 'fall = 3'];

/** `l3dsr status` (the human form) of the daemon at `socket`. */
function runStatus(socket: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [L3DSR_BIN, 'status', '--control-socket', socket], (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

describe('l3dsr lb on both balancers of the ECMP lab, l3dsr run on both servers', privileged('builds the seven-namespace balancer lab'), () => {
  let lab: EcmpLab;
  let vips: LabVip[];
  let dir: string;
  const servers = new Map<string, LabDaemon>();
  const balancers = new Map<string, LabDaemon>();
  const services: EchoService[] = [];
  const before_ = new Map<string, string[]>();
  let flows: LongFlows | undefined;

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
    for (const srv of SERVERS) await startNamedService(lab, srv, vips.map((v) => v.address), srv);
    for (const lb of BALANCERS) {
      before_.set(lb, await readBalancerSysctls(lab, lb));
      balancers.set(lb, await LabDaemon.start(lab, ['--config', config], { role: lb, command: 'lb', controlSocket: join(dir, lb, 'lb.sock') }));
    }
  });

  /** Writes the configuration and reloads both balancers; returns their new log lines. */
  const reload = (text: string): Promise<string> => reloadBalancers(balancers.values(), join(dir, 'lb.conf'), text);

  const backendsOf = (s: StatusJson) => s.balancer!.vips.map((v) => `${v.name}: ${v.backends.map((b) => b.address).join(' ')}`);


  after(async () => {
    await flows?.stop();
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

  it('status and metrics: each VIP\'s backends with state, weight, table share and packets, which add up to what was balanced', BOUND, async () => {
    const perBackend = new Map<string, bigint>();
    for (const lb of BALANCERS) {
      const d = balancers.get(lb)!;
      const s = await d.status();
      const b = s.balancer!;
      assert.deepEqual(b.vips.map((v) => v.name), vips.map((v) => `web${v.family}`));
      for (const v of b.vips) {
        assert.deepEqual(v.backends.map((x) => [x.address, x.state, x.weight]), SERVERS.map((srv) => [lab.plan[v.family].rip[srv], 'up', 1]));
        assert.equal(v.backends.reduce((n, x) => n + x.slots, 0), v.tableSize);
        for (const x of v.backends) assert.ok(x.slots > v.tableSize / 3, `${x.address}: ${x.slots} of ${v.tableSize} slots`);
      }
      const packets = b.vips.flatMap((v) => v.backends.map((x) => BigInt(x.packets as unknown as string)));
      assert.equal(packets.reduce((n, p) => n + p, 0n), sumQueues(s, (q) => q.counters.verdicts.rewritten), `${lb}: backends' packets against the rewritten verdicts`);
      const text = await d.metrics();
      const human = await runStatus(d.controlSocket);
      for (const v of b.vips) {
        for (const x of v.backends) {
          const l = { vip: v.name, backend: x.address };
          assert.equal(metric(text, 'l3dsr_lb_backend_packets_total', l), Number(x.packets));
          assert.equal(metric(text, 'l3dsr_lb_backend_state', { ...l, state: 'up' }), 1);
          assert.equal(metric(text, 'l3dsr_lb_backend_state', { ...l, state: 'down' }), 0);
          assert.equal(metric(text, 'l3dsr_lb_backend_weight', l), 1);
          assert.equal(metric(text, 'l3dsr_lb_backend_table_share', l), x.slots / v.tableSize);
          const row = human.split('\n').find((line) => line.split(/\s+/).includes(x.address));
          assert.ok(row, `no row for ${x.address}:\n${human}`);
          assert.deepEqual(row.trim().split(/\s+/).slice(3), [x.address, 'up', '1', (100 * x.slots / v.tableSize).toFixed(1), '%', String(x.packets)], row);
          perBackend.set(`${v.name} ${x.address}`, (perBackend.get(`${v.name} ${x.address}`) ?? 0n) + BigInt(x.packets as unknown as string));
        }
      }
      // The balancer steers by destination: its filters are shown by the VIP they match.
      const steered = human.split('\n').find((line) => line.trim().startsWith(`${ECMP_INTERFACES.lbToRtr}:`));
      assert.match(steered ?? '', new RegExp(vips.map((v) => `ipv${v.family} to ${v.address.replace(/\./g, '\\.')} \\(prio \\d+\\)`).join(', ')), human);
      assert.equal(metric(text, 'l3dsr_lb_connection_evictions_total', { queue: '0' }), 0);
      assert.equal(metric(text, 'l3dsr_dropped_total', { reason: 'no-backend' }), 0);
    }
    // Both servers carried some of each VIP's connections, by either balancer.
    for (const [k, n] of perBackend) assert.ok(n > 0n, `${k}: no packet`);
  });

  it('refuses to start where forwarding is off, naming the sysctls to set, and leaves nothing', BOUND, async () => {
    // sw, a namespace that forwards neither family and where no balancer runs (a failed start removes the filters at its priorities).
    const d = LabDaemon.spawn(lab, ['--config', join(dir, 'lb.conf'), '--steer', ECMP_INTERFACES.bridgePort.rtr], {
      role: 'sw', command: 'lb', controlSocket: join(dir, 'sw', 'lb.sock'),
    });
    const exit = await d.exited;
    assert.equal(exit.code, 1, d.log);
    assert.match(d.log, /IPv4 forwarding is off \(net\/ipv4\/conf\/lb0\/forwarding = 0\): set net\.ipv4\.ip_forward = 1; IPv6 forwarding is off \(net\/ipv6\/conf\/all\/forwarding = 0\): set net\.ipv6\.conf\.all\.forwarding = 1/, d.log);
    assert.deepEqual(await ipJson<unknown[]>(['link', 'show', 'type', 'tun'], lab.where('sw')), [], 'the TUN is left');
    assert.deepEqual(readdirSync(join(dir, 'sw')), [], 'runtime files are left');
  });

  it('without CAP_NET_ADMIN: refuses to start, naming both capabilities and its unit', BOUND, async () => {
    const d = LabDaemon.spawn(lab, ['--config', join(dir, 'lb.conf'), '--steer', ECMP_INTERFACES.bridgePort.rtr], {
      role: 'sw', command: 'lb', controlSocket: join(dir, 'sw', 'lb.sock'), prefix: ['unshare', '--user'],
    });
    assert.equal((await d.exited).code, 1, d.log);
    assert.match(d.log, /l3dsr lb needs CAP_NET_ADMIN .*\(and CAP_NET_RAW for its health checks\); uid 65534 does not have it: .*AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW, as in deploy\/l3dsr-lb\.service/, d.log);
  });

  it('SIGHUP with a bad file: refused with its file and line, the old sections and every established flow stay', BOUND, async () => {
    flows = new LongFlows(lab, 'cli', vips.map((v) => v.address), FLOWS);
    const first = await flows.ping();
    for (const f of first) assert.match(f.answer, /^srv[12]$/, JSON.stringify(first));
    for (const v of vips) {
      for (const srv of SERVERS) assert.ok(first.some((f) => f.address === v.address && f.answer === srv), `no flow to ${v.address} reached ${srv}`);
    }
    const was = await Promise.all([...balancers.values()].map((d) => d.status()));
    const log = await reload(lbConfig(lab, vips, (v) => [ABSENT[v.family === 4 ? 6 : 4]]));
    assert.match(log, /msg="reload refused; the old \[lb\] sections keep running" error=".*lb\.conf:\d+: \[lb web4\] backends: 2001:db8:198::13 is IPv6 but the VIP 203\.0\.113\.10 is IPv4/, log);
    const now = await Promise.all([...balancers.values()].map((d) => d.status()));
    for (const [i, s] of now.entries()) {
      assert.deepEqual(backendsOf(s), backendsOf(was[i]!));
      assert.equal(s.reloads.failed, was[i]!.reloads.failed + 1);
    }
    assert.deepEqual(await flows.ping(), first, 'an established flow changed its server, or broke');
  });

  it('SIGHUP adding a backend: it takes new flows, and every established flow keeps its server (the connection table)', BOUND, async () => {
    const first = await flows!.ping();
    const log = await reload(lbConfig(lab, vips, (v) => [ABSENT[v.family], `${DRAINED[v.family]} drain`]));
    assert.equal(logLines(log, /msg=reloaded vips=2 backends=8\b/).length, BALANCERS.length, log);
    for (const d of balancers.values()) {
      const s = await d.status();
      assert.deepEqual(backendsOf(s), vips.map((v) => `web${v.family}: ${[...SERVERS.map((srv) => lab.plan[v.family].rip[srv]), ABSENT[v.family], DRAINED[v.family]].join(' ')}`));
      for (const v of s.balancer!.vips) {
        const [absent, drained] = v.backends.slice(2);
        assert.deepEqual([absent!.state, absent!.slots > 0, drained!.state, drained!.slots], ['up', true, 'draining', 0], JSON.stringify(v.backends));
      }
    }
    assert.deepEqual(await flows!.ping(), first, 'an established flow changed its server, or broke');
    // New flows: some go to the absent backend (and time out), the others still reach the servers.
    const fresh = new LongFlows(lab, 'cli', vips.map((v) => v.address), FLOWS);
    try {
      const answers = await fresh.ping();
      for (const v of vips) {
        const of = answers.filter((f) => f.address === v.address);
        assert.ok(of.some((f) => f.answer.startsWith('error:')), `no new flow to ${v.address} went to the added backend: ${JSON.stringify(of)}`);
        assert.ok(of.some((f) => /^srv[12]$/.test(f.answer)), `no new flow to ${v.address} reached a server: ${JSON.stringify(of)}`);
      }
    } finally {
      await fresh.stop();
    }
  });

  it('health: a server whose l3dsr run stopped is marked down (logged, counted), new connections go to the other; restarted, it comes back up', BOUND, async () => {
    await flows?.stop();
    // Without `connections` the file asks for the default table: a restart's business, and the reload says so.
    const log = await reload(lbConfig(lab, vips, () => [], CHECKS).replace('connections = 1024\n', ''));
    assert.equal(logLines(log, /level=warn msg="setting changed: connections = 65536 needs a restart \(the connection table is the core's layout\); 1024 stays until then"/).length, BALANCERS.length, log);
    const healthOf = async (d: LabDaemon, srv: 'srv1' | 'srv2') => (await d.status()).balancer!.vips.map((v) => v.backends.find((b) => b.address === lab.plan[v.family].rip[srv])!);
    /** Until, on both balancers, srv's backend of each VIP satisfies `ok`. */
    const until = (what: string, srv: 'srv1' | 'srv2', ok: (b: BackendStatus) => boolean) =>
      waitFor(what, 60_000, async () => {
        for (const d of balancers.values()) if (!(await healthOf(d, srv)).every(ok)) return undefined;
        return true;
      });
    for (const srv of SERVERS) await until(`${srv} answering its checks`, srv, (b) => b.state === 'up' && (b.health?.checks.up ?? 0) >= 3);

    await servers.get('srv2')!.stop();
    await until('srv2 down', 'srv2', (b) => b.state === 'down');
    for (const d of balancers.values()) {
      for (const v of vips) {
        const rip = lab.plan[v.family].rip.srv2;
        assert.match(d.log, new RegExp(`level=warn msg="backend down" section=web${v.family} backend=${rip} vip=${v.address} port=${ECHO_PORT} result=timeout checks=3`));
        const text = await d.metrics();
        assert.equal(metric(text, 'l3dsr_lb_health_transitions_total', { vip: `web${v.family}`, backend: rip, direction: 'down' }), 1);
        assert.equal(metric(text, 'l3dsr_lb_backend_state', { vip: `web${v.family}`, backend: rip, state: 'down' }), 1);
        assert.equal(metric(text, 'l3dsr_lb_health_transitions_total', { vip: `web${v.family}`, backend: lab.plan[v.family].rip.srv1, direction: 'down' }), 0);
      }
      for (const b of await healthOf(d, 'srv2')) assert.equal(b.slots, 0, `${b.address} still has table slots`);
    }
    // srv2 no longer turns the destination into the VIP: a connection sent there would get no answer from the VIP.
    const targets: ProbeTarget[] = vips.flatMap((v) => Array.from({ length: CONNECTIONS }, () => ({ protocol: 'http' as const, address: v.address })));
    for (const r of await probe(lab, targets, { timeoutMs: 10_000 })) {
      assert.ok(r.ok && sameAddress(r.reply!.local, r.target.address), `with srv2 down: ${JSON.stringify(r)}`);
    }

    servers.set('srv2', await LabDaemon.start(lab, serverDaemonArgs(vips), { role: 'srv2' }));
    await until('srv2 up again', 'srv2', (b) => b.state === 'up' && (b.health?.transitions.up ?? 0) === 1);
    for (const d of balancers.values()) assert.match(d.log, /level=info msg="backend up" section=web4 backend=198\.51\.100\.12 .*result=up checks=2/);
  });

  it('a stopped balancer leaves nothing behind: no TUN, qdisc or filter, rp_filter as it was, no runtime file', BOUND, async () => {
    await flows?.stop();
    for (const lb of BALANCERS) {
      const exit = await balancers.get(lb)!.stop();
      assert.equal(exit.code, 0, `${lb}: exit ${JSON.stringify(exit)}`);
      await assertBalancerLeftNothing(lab, lb, before_.get(lb), join(dir, lb));
    }
  });
});
