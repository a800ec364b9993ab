// Taking over after a crash: a run acts on the state file an earlier run
// left only when the process that wrote it is dead (pid and start time),
// when it was written in this network namespace, and when every field is
// one the daemon itself writes. A crafted or corrupt file does nothing, is
// named in a warning and kept aside; the file of a live process is left
// alone and the daemon does not start. The crafted files start from a real
// one. Needs root; fails without it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, type LabVip } from '../tools/lab/index.js';
import { ip, ipJson, readSysctl } from '../src/system/index.js';
import { processStartTime } from '../src/system/process.js';
import { LabDaemon, assertNothingInstalled, daemonArgs, loopbackAddresses, onLoopback, requireLabRoot } from './support/daemon.js';
import { privileged } from './support/privilege.js';

/** Bounds a hang (a daemon that should have refused to start runs on). */
const BOUND = { timeout: 60_000 };

const VIP: LabVip = { family: 4, address: '203.0.113.10', dscp: 1 };
/** Addresses put on srv's lo by hand, standing for VIPs a crashed run left. */
const LEFT = { reused: '203.0.113.98', batch: '203.0.113.99', gone: '203.0.113.97' };
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

type State = Record<string, unknown> & { pid: number; startTime: number; netns: { inode: number; cookie: string }; loopback: unknown[]; steering: { createdClsact: unknown; sysctls: Record<string, unknown> } };

/** The `error` field of the daemon's "state file refused" warning, or undefined. */
function refusal(log: string): string | undefined {
  const line = log.split('\n').find((l) => /level=warn msg="state file refused: nothing in it is taken over"/.test(l));
  const value = line && /\berror=("(?:[^"\\]|\\.)*"|\S+)/.exec(line)?.[1];
  return value === undefined ? undefined : value.startsWith('"') ? JSON.parse(value) as string : value;
}

describe('taking over after a crash', privileged('builds a lab and runs the daemon'), () => {
  let lab: Lab;
  let dir: string;
  let socket: string;
  let stateFile: string;
  /** A state file as the daemon wrote it; its pid is dead. */
  let real: State;

  const addToLo = (address: string) => ip(['addr', 'add', `${address}/32`, 'dev', 'lo'], lab.where('srv'));
  const removeFromLo = async (address: string) => {
    if (onLoopback(await loopbackAddresses(lab), address)) await ip(['addr', 'del', `${address}/32`, 'dev', 'lo'], lab.where('srv'));
  };
  const craft = (change: (s: State) => void): string => {
    const s = structuredClone(real);
    change(s);
    return JSON.stringify(s);
  };
  const plant = (text: string) => {
    rmSync(`${stateFile}.refused`, { force: true });
    writeFileSync(stateFile, text, { mode: 0o600 });
  };

  /**
   * Starts a daemon on the planted file (from `cwd`) and stops it; checks
   * `unharmed` (that nothing of the file was done, start and exit), then that
   * a warning named the file and said `says`, and that the file was kept.
   */
  async function runRefusing(text: string, says: RegExp, unharmed: () => Promise<void> = async () => {}, cwd?: string): Promise<void> {
    plant(text);
    const d = await LabDaemon.start(lab, daemonArgs({ vips: [VIP] }), { controlSocket: socket, cwd });
    assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
    await unharmed();
    await assertNothingInstalled(lab, [VIP], 'after the daemon stopped');
    const error = refusal(d.log);
    assert.ok(error !== undefined, `no warning about the state file:\n${d.log}`);
    assert.match(error, new RegExp(`^${escape(stateFile)}: ${says.source}`));
    assert.doesNotMatch(d.log, /taking over/);
    assert.equal(readFileSync(`${stateFile}.refused`, 'utf8'), text, 'the refused file was not kept as it was');
  }

  before(async () => {
    requireLabRoot();
    lab = await Lab.create({ vips: [VIP] });
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-takeover-'));
    socket = join(dir, 'ctl.sock');
    stateFile = join(dir, 'ctl.state.json');
    const d = await LabDaemon.start(lab, daemonArgs({ vips: [VIP] }), { controlSocket: socket });
    real = JSON.parse(readFileSync(stateFile, 'utf8')) as State;
    assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
    assert.equal(existsSync(stateFile), false, 'a clean stop leaves no state file');
    assert.ok(real.steering && Array.isArray(real.loopback) && real.pid === d.pid, JSON.stringify(real));
  });

  after(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the start time it records is the one ps shows for the process', BOUND, async () => {
    const pid = lab.spawn('srv', 'sleep', ['30']).pid!;
    const ticks = (await processStartTime(pid))!;
    const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
    const boot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))![1]);
    const lstart = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' } }).trim();
    assert.equal(boot + Math.floor(ticks / hz), Date.parse(`${lstart} UTC`) / 1000, `ps -o lstart: ${lstart}`);
  });

  it('sysctls it never sets (ip_forward, proxy_arp): nothing is written', BOUND, async () => {
    const keys = ['net/ipv4/ip_forward', 'net/ipv4/conf/all/proxy_arp'];
    for (const k of keys) assert.equal(await readSysctl(k, lab.where('srv')), '0', k);
    await runRefusing(craft((s) => { s.steering.sysctls = { 'net/ipv4/ip_forward': '1', 'net/ipv4/conf/all/proxy_arp': '1' }; }),
      /steering\.sysctls: "net\/ipv4\/ip_forward" is not a sysctl l3dsr sets/, async () => {
        for (const k of keys) assert.equal(await readSysctl(k, lab.where('srv')), '0', `${k} was written`);
      });
  });

  it('an rp_filter value it could never have read: refused', BOUND, async () => {
    await runRefusing(craft((s) => { s.steering.sysctls = { 'net/ipv4/conf/all/rp_filter': '1; echo' }; }), /steering\.sysctls\.net\/ipv4\/conf\/all\/rp_filter: expected one of 0, 1, 2/);
  });

  it('::1 as a VIP it added: ::1 stays on lo', BOUND, async () => {
    await runRefusing(craft((s) => { s.loopback = [{ family: 6, address: '::1' }]; }), /loopback\[0\]: ::1 belongs to lo itself/, async () => {
      assert.ok(onLoopback(await loopbackAddresses(lab), '::1'), '::1 was removed from lo');
    });
  });

  it('"-batch" smuggled into ip\'s arguments as a family: ip never runs a batch file', BOUND, async () => {
    // `ip -batch addr del …` would run the commands in ./addr.
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    writeFileSync(join(cwd, 'addr'), 'link add l3dsr-injected type veth peer name l3dsr-injected1\n');
    await addToLo(LEFT.batch);
    try {
      await runRefusing(craft((s) => { s.loopback = [{ family: 'batch', address: LEFT.batch }]; }), /loopback\[0\]: expected \{ family: 4 or 6, address \}/, async () => {
        const links = await ipJson<{ ifname: string }[]>(['link', 'show'], lab.where('srv'));
        assert.ok(!links.some((l) => l.ifname.startsWith('l3dsr-injected')), `ip ran the batch file: ${links.map((l) => l.ifname).join(', ')}`);
        assert.ok(onLoopback(await loopbackAddresses(lab), LEFT.batch), `${LEFT.batch} was removed from lo`);
      }, cwd);
    } finally {
      await removeFromLo(LEFT.batch);
    }
  });

  it('"-batch" as an interface name: refused', BOUND, async () => {
    await runRefusing(craft((s) => { s.steering.createdClsact = ['-batch']; }), /steering\.createdClsact: "-batch" is not an interface name/);
  });

  it('a corrupt file: a warning that names it, not a TypeError', BOUND, async () => {
    await runRefusing(craft((s) => { s.steering.createdClsact = 5; }), /steering: expected \{ createdClsact: \[\.\.\.\], sysctls: \{\.\.\.\} \}/);
    await runRefusing('{"pid": 12, "loopback": [', /\(file\): not JSON/);
  });

  it('the file of a process that still runs: left alone, and the daemon does not start', BOUND, async () => {
    const sleeper = lab.spawn('srv', 'sleep', ['60']);
    try {
      const startTime = (await processStartTime(sleeper.pid!))!;
      const live = craft((s) => { s.pid = sleeper.pid!; s.startTime = startTime; });
      plant(live);
      const d = LabDaemon.spawn(lab, daemonArgs({ vips: [VIP] }), { controlSocket: socket });
      const exit = await d.exited;
      assert.equal(exit.code, 1, d.log);
      assert.match(d.log, new RegExp(`state file ${escape(stateFile)}: the l3dsr that wrote it \\(pid ${sleeper.pid}\\) is still running`));
      assert.equal(readFileSync(stateFile, 'utf8'), live, 'the live process\'s state file was changed');
      assert.equal(existsSync(`${stateFile}.refused`), false);
      await assertNothingInstalled(lab, [VIP], 'after the refusal');
    } finally {
      sleeper.kill('SIGKILL');
      rmSync(stateFile, { force: true });
    }
  });

  it('a pid reused by another process (another start time) counts as dead: its VIPs are taken over and removed on exit', BOUND, async () => {
    const sleeper = lab.spawn('srv', 'sleep', ['60']);
    await addToLo(LEFT.reused);
    try {
      const startTime = (await processStartTime(sleeper.pid!))!;
      plant(craft((s) => { s.pid = sleeper.pid!; s.startTime = startTime - 1; s.loopback = [{ family: 4, address: LEFT.reused }]; }));
      const d = await LabDaemon.start(lab, daemonArgs({ vips: [VIP] }), { controlSocket: socket });
      assert.match(d.log, new RegExp(`taking over what an earlier run left" pid=${sleeper.pid} file=${escape(stateFile)} vips=${escape(LEFT.reused)}`));
      assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
      assert.ok(!onLoopback(await loopbackAddresses(lab), LEFT.reused), `${LEFT.reused} of the dead run is still on lo`);
      await assertNothingInstalled(lab, [VIP], 'after the daemon stopped');
    } finally {
      sleeper.kill('SIGKILL');
      await removeFromLo(LEFT.reused);
    }
  });

  it('a file written in a network namespace that is gone (another cookie): nothing in it is taken over', BOUND, async () => {
    await addToLo(LEFT.gone);
    try {
      const other = String(BigInt(real.netns.cookie) + 1000n);
      await runRefusing(craft((s) => { s.netns = { inode: real.netns.inode, cookie: other }; s.loopback = [{ family: 4, address: LEFT.gone }]; }),
        new RegExp(`written in network namespace ${real.netns.inode} \\(cookie ${other}\\), which is gone`), async () => {
          assert.ok(onLoopback(await loopbackAddresses(lab), LEFT.gone), `${LEFT.gone} was removed from lo`);
        });
    } finally {
      await removeFromLo(LEFT.gone);
    }
  });
});
