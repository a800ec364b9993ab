// `l3dsr run` as an unprivileged user holding only CAP_NET_ADMIN (ambient),
// the way deploy/l3dsr.service runs it: uid 65534, no groups, no new
// privileges, /run/l3dsr made for it as RuntimeDirectory= makes it. It
// opens the TUN (two queues, io_uring), installs tc steering, sets
// rp_filter, puts the VIPs on lo; traffic through the lab reaches every
// VIP; a run after a kill -9 takes over; a clean stop leaves nothing. The
// daemon runs from a copy of the package that every user can read (a
// checkout may be private), on a fresh tmpfs /run. /dev/net/tun gets mode
// 0666 (what distributions ship) for the test and its mode back after.
// Needs root; fails without it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_LAB_VIPS, Lab, probe, sameAddress, startEchoService, type LabVip } from '../tools/lab/index.js';
import { readSysctl, writeSysctl } from '../src/system/index.js';
import { FreshRun } from './support/fresh-run.js';
import { DAEMON_PARTS, installCopy, withTunOpenToAll } from './support/install-copy.js';
import {
  L3DSR_BIN, LabDaemon, assertNothingInstalled, assertOneFilterSet, daemonArgs, loopbackAddresses, onLoopback, requireLabRoot, rulePackets,
  runL3dsr, steeringFilters,
} from './support/daemon.js';
import { privileged } from './support/privilege.js';

const NOBODY = 65534;
const vips: readonly LabVip[] = DEFAULT_LAB_VIPS;
/** Bounds a hang. */
const BOUND = { timeout: 120_000 };
/** uid/gid 65534, no groups, no new privileges, and no capability at all. */
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all'];
/** The same with CAP_NET_ADMIN, and nothing else, in every set (ambient: the daemon's ip and tc children get it too). */
const AS_NOBODY_WITH_NET_ADMIN = [
  'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--no-new-privs',
  '--inh-caps=-all,+net_admin', '--ambient-caps=-all,+net_admin', '--bounding-set=-all,+net_admin',
];
/** rp_filter before the daemon starts: loose, so that setting 0 is a write the daemon must be allowed to do. */
const RP_LOOSE = '2';

function statusLine(pid: number, key: string): string {
  return new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!.trim();
}

describe('l3dsr run as an unprivileged user with CAP_NET_ADMIN only', privileged('builds a lab and changes the mode of /dev/net/tun'), () => {
  let lab: Lab;
  let install: string;
  let bin: string;

  before(async () => {
    requireLabRoot();
    lab = await Lab.create({ vips });
    // The echo service listens on the VIPs before the daemon puts them on lo.
    for (const family of ['ipv4', 'ipv6']) await writeSysctl(`net.${family}.ip_nonlocal_bind`, '1', lab.where('srv'));
    install = installCopy(DAEMON_PARTS);
    bin = join(install, 'bin', 'l3dsr.js');
  });

  after(async () => {
    await lab?.destroy();
    if (install) rmSync(install, { recursive: true, force: true });
  });

  it('without CAP_NET_ADMIN: refused before anything is touched, naming the capability', BOUND, async () => {
    const r = await runL3dsr(lab, ['run', ...daemonArgs({ vips })], { prefix: AS_NOBODY, bin });
    assert.equal(r.code, 1, `${r.stderr}${r.stdout}`);
    assert.match(r.stderr, /l3dsr run needs CAP_NET_ADMIN .*; uid 65534 does not have it: run it as root, or with the capability \(systemd: AmbientCapabilities=CAP_NET_ADMIN/);
    await assertNothingInstalled(lab, vips, 'after the refusal');
  });

  it('with CAP_NET_ADMIN but no runtime directory of its own: the error says it cannot create /run/l3dsr and what to do', BOUND, async () => {
    const run = await FreshRun.create();
    try {
      const r = await withTunOpenToAll(() => runL3dsr(lab, ['run', ...daemonArgs({ vips })], { prefix: [...run.prefix, ...AS_NOBODY_WITH_NET_ADMIN], bin }));
      assert.equal(r.code, 1, `${r.stderr}${r.stdout}`);
      assert.match(r.stderr, /cannot create the runtime directory \/run\/l3dsr as uid 65534: EACCES/);
      assert.match(r.stderr, /RuntimeDirectory=l3dsr .*RUNTIME_DIRECTORY/);
      assert.equal(existsSync(run.path('/run/l3dsr')), false);
      await assertNothingInstalled(lab, vips, 'after the refusal');
    } finally {
      await run.destroy();
    }
  });

  it('with CAP_NET_ADMIN and the runtime directory systemd makes: TUN, tc, rp_filter, VIPs on lo; traffic reaches every VIP; a crash is taken over', BOUND, async () => {
    const run = await FreshRun.create();
    const echo = await startEchoService(lab, vips.map((v) => v.address));
    const srv = lab.where('srv');
    try {
      // What RuntimeDirectory=l3dsr does for a service running as uid 65534.
      mkdirSync(run.path('/run/l3dsr'), { mode: 0o700 });
      chownSync(run.path('/run/l3dsr'), NOBODY, NOBODY);
      for (const dev of ['all', 'default']) await writeSysctl(`net/ipv4/conf/${dev}/rp_filter`, RP_LOOSE, srv);
      const options = {
        controlSocket: null, prefix: [...run.prefix, ...AS_NOBODY_WITH_NET_ADMIN], bin, ownMountNamespace: true,
        env: { ...process.env, RUNTIME_DIRECTORY: '/run/l3dsr' },
      } as const;
      const args = daemonArgs({ vips, engine: 'io_uring', queues: 2 });

      await withTunOpenToAll(async () => {
        const d = await LabDaemon.start(lab, args, options);
        assert.deepEqual(statusLine(d.pid, 'Uid').split(/\s+/), [String(NOBODY), String(NOBODY), String(NOBODY), String(NOBODY)]);
        for (const set of ['CapEff', 'CapPrm', 'CapAmb', 'CapBnd']) assert.equal(BigInt(`0x${statusLine(d.pid, set)}`), 1n << 12n, `${set}: only CAP_NET_ADMIN`);

        const s = await d.status();
        assert.deepEqual(s.queues.map((q) => q.mode), ['io_uring', 'io_uring']);
        await assertOneFilterSet(lab, vips);
        const lo = await loopbackAddresses(lab);
        for (const v of vips) assert.ok(onLoopback(lo, v.address), `${v.address} not on lo`);
        for (const dev of ['all', 'dsr0']) assert.equal(await readSysctl(`net/ipv4/conf/${dev}/rp_filter`, srv), '0', `${dev} rp_filter`);
        for (const name of readdirSync(run.path('/run/l3dsr'))) {
          const st = lstatSync(run.path(`/run/l3dsr/${name}`));
          assert.equal(st.uid, NOBODY, `${name} is not owned by the daemon's user`);
          assert.equal(st.mode & 0o777, 0o600, `${name}: mode ${(st.mode & 0o777).toString(8)}`);
        }

        const results = await probe(lab, vips.flatMap((v) => [{ protocol: 'http' as const, address: v.address }, { protocol: 'udp' as const, address: v.address }]));
        for (const r of results) {
          assert.ok(r.ok, `${r.target.protocol} to ${r.target.address}: ${r.error}`);
          assert.ok(sameAddress(r.from!, r.target.address) && sameAddress(r.reply!.local, r.target.address), JSON.stringify(r));
        }
        const after = await d.status();
        for (const v of vips) assert.ok(rulePackets(after, v.address) > 0n, `nothing rewritten for ${v.address}`);

        // A crash: the next run, as the same user, finds the state file and takes over.
        d.signal('SIGKILL');
        await d.exited;
        assert.ok((await steeringFilters(lab)).length > 0, 'kill -9 cannot have removed the filters');
        const next = await LabDaemon.start(lab, args, options);
        assert.match(next.log, new RegExp(`taking over what an earlier run left" pid=${d.pid} `), next.log);
        await assertOneFilterSet(lab, vips);
        assert.deepEqual(await next.stop(), { code: 0, signal: null }, next.log);
      });

      await assertNothingInstalled(lab, vips, 'after the daemon stopped');
      // The killed run's saved value, restored by the one that took over.
      assert.equal(await readSysctl('net/ipv4/conf/all/rp_filter', srv), RP_LOOSE);
      assert.deepEqual(readdirSync(run.path('/run/l3dsr')), []);
    } finally {
      await echo.stop();
      for (const dev of ['all', 'default']) await writeSysctl(`net/ipv4/conf/${dev}/rp_filter`, '0', srv);
      await run.destroy();
    }
  });
});
