// The balancer's health checks as an unprivileged user holding only the
// capabilities the balancer daemon will hold (CAP_NET_ADMIN for its TUN and
// tc, CAP_NET_RAW for the checks' raw sockets), ambient as systemd gives
// them: uid 65534, no groups, no new privileges. The checks reach a
// healthy server; without CAP_NET_RAW each check fails naming it. Runs
// from a copy every user can read. Needs root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EcmpLab, startEchoService, type EchoService, type LabVip } from '../tools/lab/index.js';
import { LabDaemon, requireLabRoot } from './support/daemon.js';
import { HealthDriver, sections, serverDaemonArgs } from './support/health-lab.js';
import { installCopy } from './support/install-copy.js';
import { privileged } from './support/privilege.js';

const NOBODY = 65534;
const BOUND = { timeout: 120_000 };
const CAP_NET_ADMIN = 12;
const CAP_NET_RAW = 13;
const asNobodyWith = (caps: string[]) => [
  'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--no-new-privs',
  `--inh-caps=-all,${caps.map((c) => `+${c}`).join(',')}`, `--ambient-caps=-all,${caps.map((c) => `+${c}`).join(',')}`,
  `--bounding-set=-all,${caps.map((c) => `+${c}`).join(',')}`,
];
const PARTS = ['package.json', 'dist/src', 'dist/test/support/health-driver.js', 'build/Release/l3dsr_raw.node', 'node_modules/ipaddr.js'];

describe('health checks as uid 65534 with CAP_NET_ADMIN and CAP_NET_RAW only', privileged('builds the ECMP lab and drops privileges with setpriv'), () => {
  let lab: EcmpLab;
  let vips: LabVip[];
  let install: string;
  let daemon: LabDaemon;
  let echo: EchoService;

  before(async () => {
    requireLabRoot();
    lab = await EcmpLab.create({ standIn: true });
    vips = lab.vips.filter((v) => v.dscp === lab.vips[0]!.dscp);
    daemon = await LabDaemon.start(lab, serverDaemonArgs(vips), { role: 'srv1' });
    echo = await startEchoService(lab, vips.map((v) => v.address), { role: 'srv1' });
    install = installCopy(PARTS);
  });

  after(async () => {
    await echo?.stop();
    await daemon?.stop();
    await lab?.destroy();
    if (install) rmSync(install, { recursive: true, force: true });
  });

  const srv1Sections = () => sections(lab, vips).map((s) => ({ ...s, backends: s.backends.slice(0, 1) }));

  it('with both capabilities: every check of a healthy server is answered', BOUND, async () => {
    const driver = new HealthDriver(lab, srv1Sections(), {
      role: 'lb1', prefix: asNobodyWith(['net_admin', 'net_raw']), driver: join(install, 'dist/test/support/health-driver.js'),
    });
    try {
      await driver.ready();
      const status = readFileSync(`/proc/${driver.pid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'));
      for (const set of ['CapEff', 'CapAmb', 'CapBnd']) {
        const hex = new RegExp(`^${set}:\\s*([0-9a-f]+)$`, 'm').exec(status)![1]!;
        assert.equal(BigInt(`0x${hex}`), (1n << BigInt(CAP_NET_ADMIN)) | (1n << BigInt(CAP_NET_RAW)), set);
      }
      let health = (await driver.status()).status;
      for (let k = 0; k < 100 && !health.every((h) => h.checks.up >= 3); k++) {
        await new Promise((r) => setTimeout(r, 100));
        health = (await driver.status()).status;
      }
      for (const h of health) {
        assert.equal(h.state, 'up', JSON.stringify(h));
        assert.ok(h.checks.up >= 3 && h.checks.error === 0, `${JSON.stringify(h)}\n${driver.log}`);
      }
    } finally {
      await driver.stop();
    }
  });

  it('without CAP_NET_RAW: every check is an error that names it, and the backends go down', BOUND, async () => {
    const driver = new HealthDriver(lab, srv1Sections(), {
      role: 'lb1', prefix: asNobodyWith(['net_admin']), driver: join(install, 'dist/test/support/health-driver.js'),
    });
    try {
      for (const s of srv1Sections()) await driver.changeTo(s.backends[0]!.address, 'down', 0);
      for (const h of (await driver.status()).status) {
        assert.equal(h.last?.result, 'error');
        assert.match(h.last?.message ?? '', /raw socket, which needs CAP_NET_RAW: socket\(AF_INET6?, SOCK_RAW, 6\): Operation not permitted/);
      }
      assert.match(driver.log, /msg="backend down".*error=/);
    } finally {
      await driver.stop();
    }
  });
});
