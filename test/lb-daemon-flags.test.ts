// `l3dsr lb --queues 2` and `l3dsr lb --no-steer` in the ECMP lab, both
// balancers running it, both servers running `l3dsr run` with the services
// on an IPv4 and an IPv6 VIP. --queues 2: connections complete, both queues
// of each balancer carry packets of both families, every flow reaches the
// backend the reference model gives it whichever queue carries it (each
// queue has its own core and connection table, and must have the same
// Maglev table), and keeps it when a reload adds a backend. --no-steer: no
// qdisc or filter of the daemon's, nothing balanced until the operator's
// own tc rule steers the VIPs into its TUN, then it balances them; a
// stop leaves the operator's qdisc and filters as they were. Needs root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DESTINATION_CLASSES, inspectSteering, parseFilterListing } from '../src/steering/index.js';
import { tc } from '../src/system/index.js';
import { BALANCERS, ECMP_INTERFACES, EcmpLab, LongFlows, NAMED_PORT, SERVERS, probe, sameAddress, startEchoService, startNamedService } from '../tools/lab/index.js';
import type { BalancerRole, EchoService, FlowAnswer, LabVip, ProbeTarget } from '../tools/lab/index.js';
import { LabDaemon, requireLabRoot, sumQueues } from './support/daemon.js';
import { ABSENT, lbConfig, logLines, modelBackend, reloadBalancers } from './support/lb-lab.js';
import { serverDaemonArgs } from './support/health-lab.js';
import { privileged } from './support/privilege.js';

/** Connections per VIP: 4 balancer queues and 2 VIPs, so a queue has none of a VIP with a chance of 8 × (3/4)^48, 8e-6. */
const CONNECTIONS = 48;
/** Long-lived connections per VIP: with a third backend added, the chance that no new one goes to it is 2 × (2/3)^32, 5e-6. */
const FLOWS = 32;
const BOUND = { timeout: 120_000 };
const STEER = ECMP_INTERFACES.lbToRtr;
/** The priorities of the operator's own filters (the daemon's are 49156 and up). */
const OPERATOR_PRIO: Record<4 | 6, number> = { 4: 100, 6: 101 };

const httpTo = (vips: readonly LabVip[], n: number): ProbeTarget[] =>
  vips.flatMap((v) => Array.from({ length: n }, () => ({ protocol: 'http' as const, address: v.address })));

describe('l3dsr lb --queues 2 and --no-steer on both balancers of the ECMP lab', privileged('builds the seven-namespace balancer lab'), () => {
  let lab: EcmpLab;
  let vips: LabVip[];
  let dir: string;
  let config: string;
  const servers: LabDaemon[] = [];
  const services: EchoService[] = [];
  const balancers = new Map<BalancerRole, LabDaemon>();

  before(async () => {
    requireLabRoot();
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-lb-flags-'));
    config = join(dir, 'lb.conf');
    lab = await EcmpLab.create();
    vips = lab.vips.filter((v) => v.dscp === lab.vips[0]!.dscp);
    for (const srv of SERVERS) {
      servers.push(await LabDaemon.start(lab, serverDaemonArgs(vips), { role: srv }));
      services.push(await startEchoService(lab, vips.map((v) => v.address), { role: srv }));
      await startNamedService(lab, srv, vips.map((v) => v.address), srv);
    }
  });

  async function startBalancers(flags: string[]): Promise<void> {
    writeFileSync(config, lbConfig(lab, vips));
    for (const lb of BALANCERS) balancers.set(lb, await LabDaemon.start(lab, ['--config', config, ...flags], { role: lb, command: 'lb' }));
  }

  async function stopBalancers(): Promise<void> {
    for (const d of balancers.values()) await d.stop();
    balancers.clear();
  }

  /** HTTP connections to every VIP all complete, answered from the VIP. */
  async function connectionsComplete(n: number): Promise<void> {
    for (const r of await probe(lab, httpTo(vips, n), { timeoutMs: 10_000 })) {
      assert.ok(r.ok, `http to ${r.target.address}: ${r.error}`);
      assert.ok(sameAddress(r.from!, r.target.address) && sameAddress(r.reply!.local, r.target.address), JSON.stringify(r));
    }
  }

  after(async () => {
    await stopBalancers();
    for (const s of services) await s.stop();
    for (const d of servers) await d.stop();
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('--queues 2', () => {
    let flows: LongFlows | undefined;
    before(() => startBalancers(['--queues', '2']));
    after(async () => {
      await flows?.stop();
      await stopBalancers();
    });

    /** Which server the model sends each flow to, by `text`'s tables, against what answered; the flows the model sends to no server are `error:`. */
    function againstModel(text: string, answers: readonly FlowAnswer[]): { expected: string; got: string; flow: FlowAnswer }[] {
      const backendOf = modelBackend(text);
      return answers.filter((f) => f.port !== undefined).map((f) => {
        const v = vips.find((x) => x.address === f.address)!;
        const backend = backendOf(lab.plan[v.family].client, f.port!, v.address, NAMED_PORT);
        const server = SERVERS.find((srv) => backend !== undefined && sameAddress(lab.plan[v.family].rip[srv], backend));
        return { expected: server ?? `no server (${backend})`, got: f.answer, flow: f };
      });
    }

    it('connections complete, and both queues of each balancer balance packets of both VIPs, IPv4 and IPv6', BOUND, async () => {
      await connectionsComplete(CONNECTIONS);
      for (const [lb, d] of balancers) {
        const s = await d.status();
        assert.deepEqual(s.queues.map((q) => q.queue), [0, 1], `${lb}: queues`);
        for (const q of s.queues) {
          for (const v of vips) {
            const packets = (q.counters.backends ?? []).filter((b) => b.vip === `web${v.family}`).reduce((n, b) => n + BigInt(b.packets), 0n);
            assert.ok(packets > 0n, `${lb} queue ${q.queue} balanced nothing to ${v.address}: ${JSON.stringify(s.queues.map((x) => x.counters.verdicts))}`);
          }
        }
      }
    });

    it('every flow reaches the backend the model gives it, whichever queue carries it, and keeps it when a reload adds a backend', BOUND, async () => {
      const text = lbConfig(lab, vips);
      flows = new LongFlows(lab, 'cli', vips.map((v) => v.address), FLOWS);
      const first = await flows.ping();
      const checked = againstModel(text, first);
      assert.equal(checked.length, first.length, `flows that did not connect: ${JSON.stringify(first.filter((f) => f.port === undefined))}`);
      for (const c of checked) assert.equal(c.got, c.expected, `flow ${JSON.stringify(c.flow)}`);
      for (const srv of SERVERS) assert.ok(first.some((f) => f.answer === srv), `no flow reached ${srv}`);

      const added = lbConfig(lab, vips, (v) => [ABSENT[v.family]]);
      const log = await reloadBalancers(balancers.values(), config, added);
      assert.equal(logLines(log, /msg=reloaded vips=2 backends=6\b/).length, BALANCERS.length, log);
      assert.deepEqual(await flows.ping(), first, 'an established flow changed its server, or broke');

      // New flows follow the new tables on every queue: those the model sends to the absent backend get no answer.
      const fresh = new LongFlows(lab, 'cli', vips.map((v) => v.address), FLOWS);
      try {
        const answers = await fresh.ping();
        for (const c of againstModel(added, answers)) assert.equal(c.got, c.expected, `new flow ${JSON.stringify(c.flow)}`);
        const unanswered = answers.filter((f) => f.port === undefined);
        assert.ok(unanswered.length > 0, 'no new flow went to the added backend');
        for (const f of unanswered) assert.match(f.answer, /^error:/, JSON.stringify(f));
      } finally {
        await fresh.stop();
      }
    });
  });

  describe('--no-steer', () => {
    /** The operator's filters on a balancer's steered interface: protocol, priority and kind. */
    const operatorFilters = async (lb: BalancerRole): Promise<string[]> =>
      parseFilterListing(await tc(['-j', 'filter', 'show', 'dev', STEER, 'ingress'], lab.where(lb)))
        .filter((e) => e.kind !== undefined).map((e) => `${e.protocol} ${e.pref} ${e.kind}`).sort();
    const left = new Map<BalancerRole, string[]>();

    before(() => startBalancers(['--no-steer']));
    after(async () => {
      await stopBalancers();
      for (const lb of BALANCERS) await tc(['qdisc', 'del', 'dev', STEER, 'clsact'], lab.where(lb)).catch(() => {});
    });

    it('installs no qdisc or filter, prints the tc commands instead, and balances nothing', BOUND, async () => {
      for (const [lb, d] of balancers) {
        const s = await inspectSteering({ interfaces: [STEER], netns: lab.namespaces[lb], kind: DESTINATION_CLASSES });
        assert.deepEqual(s.interfaces.map((i) => [i.hasClsact, i.ours, i.foreignInRange, i.othersCount]), [[false, [], [], 0]], `${lb}: steering installed`);
        for (const v of vips) {
          const [proto, match, length] = v.family === 4 ? ['ip', 'ip', 32] : ['ipv6', 'ip6', 128];
          assert.ok(d.log.includes(`tc filter add dev ${STEER} ingress protocol ${proto} prio `)
            && d.log.includes(`u32 match ${match} dst ${v.address}/${length} action mirred egress redirect dev lb0`), `${lb} printed no command for ${v.address}:\n${d.log}`);
        }
      }
      // Without steering a VIP's packets go on by the routes (to rtr and back, until the hop limit): none balanced.
      const results = await probe(lab, httpTo(vips, 2), { timeoutMs: 2000 });
      assert.ok(results.every((r) => !r.ok), JSON.stringify(results));
      for (const [lb, d] of balancers) assert.equal(sumQueues(await d.status(), (q) => q.counters.verdicts.rewritten), 0n, `${lb} balanced packets`);
    });

    it('balances what the operator\'s own tc rule steers into its TUN, IPv4 and IPv6', BOUND, async () => {
      for (const lb of BALANCERS) {
        const where = lab.where(lb);
        await tc(['qdisc', 'add', 'dev', STEER, 'clsact'], where);
        for (const v of vips) {
          const [proto, match, length] = v.family === 4 ? ['ip', 'ip', 32] : ['ipv6', 'ip6', 128];
          await tc(['filter', 'add', 'dev', STEER, 'ingress', 'protocol', proto, 'prio', String(OPERATOR_PRIO[v.family]), 'u32',
            'match', match, 'dst', `${v.address}/${length}`, 'action', 'mirred', 'egress', 'redirect', 'dev', 'lb0'], where);
        }
        left.set(lb, await operatorFilters(lb));
      }
      await connectionsComplete(CONNECTIONS / 2);
      const perSection = new Map<string, bigint>();
      for (const d of balancers.values()) {
        for (const v of (await d.status()).balancer!.vips) {
          perSection.set(v.name, (perSection.get(v.name) ?? 0n) + v.backends.reduce((n, b) => n + BigInt(b.packets), 0n));
        }
      }
      for (const v of vips) assert.ok((perSection.get(`web${v.family}`) ?? 0n) > 0n, `nothing balanced to ${v.address}: ${[...perSection].join(' ')}`);
    });

    it('a stop leaves the operator\'s qdisc and filters as they were', BOUND, async () => {
      for (const lb of BALANCERS) {
        assert.deepEqual([...new Set(left.get(lb)?.map((f) => f.split(' ')[1]))], Object.values(OPERATOR_PRIO).map(String), `${lb}: the operator's filters were not installed`);
      }
      for (const [lb, d] of balancers) {
        assert.equal((await d.stop()).code, 0, `${lb}: ${d.log}`);
        const s = await inspectSteering({ interfaces: [STEER], netns: lab.namespaces[lb], kind: DESTINATION_CLASSES });
        assert.equal(s.interfaces[0]!.hasClsact, true, `${lb}: the operator's clsact qdisc is gone`);
        assert.deepEqual(await operatorFilters(lb), left.get(lb), `${lb}: the operator's filters changed`);
      }
    });
  });
});
