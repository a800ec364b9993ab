// The balancer's health checks through the DSR path, in the ECMP lab: lb1
// checks both servers, each running the real `l3dsr run` with the echo
// service bound to the VIPs. A healthy server stays up; a server whose
// l3dsr is gone, whose VIP is missing on lo, or whose service stopped goes
// down; fixed, it comes back up. Both families. Needs root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EcmpLab, startEchoService, type EchoService, type LabVip } from '../tools/lab/index.js';
import { ip, writeSysctl } from '../src/system/index.js';
import { LabDaemon, requireLabRoot } from './support/daemon.js';
import { HealthDriver, RISE, sections, serverDaemonArgs } from './support/health-lab.js';
import { privileged } from './support/privilege.js';

const BOUND = { timeout: 180_000 };

describe('health checks through the DSR path', privileged('builds the ECMP lab and runs l3dsr on its servers'), () => {
  let lab: EcmpLab;
  let vips: LabVip[];
  let driver: HealthDriver;
  const daemons: LabDaemon[] = [];
  const echo = new Map<string, EchoService>();

  before(async () => {
    requireLabRoot();
    lab = await EcmpLab.create({ standIn: true });
    vips = lab.vips.filter((v) => v.dscp === lab.vips[0]!.dscp);
    for (const srv of lab.servers) {
      // The service listens on the VIPs whether or not they are on lo.
      for (const family of ['ipv4', 'ipv6']) await writeSysctl(`net.${family}.ip_nonlocal_bind`, '1', lab.where(srv));
      daemons.push(await LabDaemon.start(lab, serverDaemonArgs(vips), { role: srv }));
      echo.set(srv, await startEchoService(lab, vips.map((v) => v.address), { role: srv }));
    }
  });

  after(async () => {
    await driver?.stop();
    for (const e of echo.values()) await e.stop();
    for (const d of daemons) await d.stop();
    await lab?.destroy();
  });

  const rip = (v: LabVip, srv: 'srv1' | 'srv2') => lab.plan[v.family].rip[srv];
  /** Waits until both families of srv2 changed to `state` after the first `after` changes. */
  const srv2Becomes = async (state: 'up' | 'down', after: number) =>
    Promise.all(vips.map((v) => driver.changeTo(rip(v, 'srv2'), state, after)));

  it('healthy servers stay up: every check is answered by a SYN-ACK from the VIP', BOUND, async () => {
    driver = new HealthDriver(lab, sections(lab, vips), { role: 'lb1' });
    for (const v of vips) {
      for (const srv of lab.servers) {
        let h = await driver.health(`web${v.family}`, rip(v, srv));
        for (let k = 0; k < 100 && h.checks.up < RISE + 1; k++) {
          await new Promise((r) => setTimeout(r, 100));
          h = await driver.health(`web${v.family}`, rip(v, srv));
        }
        assert.equal(h.state, 'up');
        assert.ok(h.checks.up >= RISE + 1, JSON.stringify(h));
        assert.equal(h.transitions.down, 0, JSON.stringify(h));
      }
    }
    // Every answered check ended its half-open connection with an RST.
    const { status, prober } = await driver.status();
    assert.equal(prober.rsts, status.reduce((n, h) => n + h.checks.up, 0), JSON.stringify(prober));
  });

  it('VIP missing on lo: down; back on lo: up', BOUND, async () => {
    let seen = driver.changes.length;
    for (const v of vips) await ip([`-${v.family}`, 'addr', 'del', `${v.address}/${v.family === 4 ? 32 : 128}`, 'dev', 'lo'], lab.where('srv2'));
    for (const c of await srv2Becomes('down', seen)) assert.equal(c.result, 'timeout');
    seen = driver.changes.length;
    await lab.addVipsToLoopback('srv2');
    for (const c of await srv2Becomes('up', seen)) assert.equal(c.result, 'up');
  });

  it('service stopped: down (refused by the VIP); service back: up', BOUND, async () => {
    let seen = driver.changes.length;
    await echo.get('srv2')!.stop();
    for (const c of await srv2Becomes('down', seen)) assert.equal(c.result, 'refused');
    seen = driver.changes.length;
    echo.set('srv2', await startEchoService(lab, vips.map((v) => v.address), { role: 'srv2' }));
    for (const c of await srv2Becomes('up', seen)) assert.equal(c.result, 'up');
  });

  it('server without l3dsr (the service still on the VIP): down', BOUND, async () => {
    const seen = driver.changes.length;
    await daemons[1]!.stop();
    await lab.addVipsToLoopback('srv2'); // the daemon took them off lo: only l3dsr is missing now
    for (const c of await srv2Becomes('down', seen)) assert.equal(c.result, 'timeout');
    // srv1 was never taken down through all of it.
    for (const v of vips) assert.equal((await driver.health(`web${v.family}`, rip(v, 'srv1'))).transitions.down, 0, `${JSON.stringify(driver.changes)}\n${driver.log}`);
    assert.ok((await driver.status()).prober.ignored > 0, 'the RSTs from the RIP should have been seen and ignored');
  });
});
