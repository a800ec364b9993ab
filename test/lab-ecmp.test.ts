// The balancer lab (tools/lab/ecmp.ts) with nftables stand-ins for the
// balancers and the real `l3dsr run` on both servers: the router spreads
// the client's connections over both balancers, each server gets some,
// every answer comes from the VIP and goes back through the router, none
// through a balancer. Needs root (skipped without it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BALANCERS, EcmpLab, SERVERS, installObservers, observed, probe, sameAddress, startEchoService } from '../tools/lab/index.js';
import type { EchoService, ProbeTarget } from '../tools/lab/index.js';
import { LabDaemon, requireLabRoot, rulePackets } from './support/daemon.js';
import { serverDaemonArgs } from './support/health-lab.js';
import { privileged } from './support/privilege.js';

/** Connections per VIP and protocol: enough that each balancer and each server gets some (2 × 2^-24 that one does not). */
const CONNECTIONS = 24;
const BOUND = { timeout: 120_000 };

describe('the ECMP lab: stand-in balancers, l3dsr run on both servers', privileged('builds the seven-namespace balancer lab'), () => {
  let lab: EcmpLab;
  const daemons = new Map<string, LabDaemon>();
  const services: EchoService[] = [];

  before(async () => {
    requireLabRoot();
    lab = await EcmpLab.create({ standIn: true });
    await installObservers(lab);
    for (const srv of SERVERS) {
      daemons.set(srv, await LabDaemon.start(lab, serverDaemonArgs(lab.vips), { role: srv }));
      services.push(await startEchoService(lab, lab.vips.map((v) => v.address), { role: srv }));
    }
  });

  after(async () => {
    for (const s of services) await s.stop();
    for (const d of daemons.values()) await d.stop();
    await lab?.destroy();
  });

  it('every connection completes from the VIP; both balancers and both servers carry some; answers come back through the router only', BOUND, async () => {
    const targets: ProbeTarget[] = lab.vips.flatMap((v) => (['http', 'udp'] as const).flatMap((protocol) =>
      Array.from({ length: CONNECTIONS }, () => ({ protocol, address: v.address }))));
    const results = await probe(lab, targets, { timeoutMs: 10_000 });
    for (const r of results) {
      assert.ok(r.ok, `${r.target.protocol} to ${r.target.address}: ${r.error}`);
      assert.ok(sameAddress(r.from!, r.target.address) && sameAddress(r.reply!.local, r.target.address), JSON.stringify(r));
    }
    for (const vip of lab.vips) {
      for (const lb of BALANCERS) assert.ok(await lab.standInPackets(lb, vip) > 0, `${lb} balanced nothing for ${vip.address}`);
      for (const srv of SERVERS) {
        assert.ok(rulePackets(await daemons.get(srv)!.status(), vip.address) > 0n, `${srv}'s l3dsr rewrote nothing for ${vip.address}`);
      }
    }
    for (const family of [4, 6]) {
      assert.ok(await observed(lab, 'rtr', `replies${family}`) >= CONNECTIONS, `IPv${family}: the answers did not come back through rtr`);
      for (const lb of BALANCERS) assert.equal(await observed(lab, lb, `replies${family}`), 0, `${lb} saw an answer from a VIP`);
    }
  });
});
