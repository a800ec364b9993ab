// The runtime directory on a host where nothing made it: `l3dsr run`
// creates it (mode 0700, its own), refuses one that others could write to
// or that is not a real directory, and never removes anything at its
// control socket's path but a socket nobody listens on. The default
// /run/l3dsr is tested in a mount namespace with a fresh tmpfs on /run, so
// the host's /run is never touched. Needs root; fails without it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, type LabVip } from '../tools/lab/index.js';
import { FreshRun } from './support/fresh-run.js';
import { LabDaemon, STEER, assertNothingInstalled, requireLabRoot, runL3dsr } from './support/daemon.js';
import { privileged } from './support/privilege.js';
import { PYTHON } from './support/python.js';

/** Bounds a hang (a daemon that should have refused to start runs on). */
const BOUND = { timeout: 60_000 };

const VIP: LabVip = { family: 4, address: '203.0.113.10', dscp: 1 };
/** The README's command, word for word (less `sudo l3dsr`). */
const README_COMMAND = ['--tun', 'dsr0', '--steer', STEER, '--rule', `${VIP.dscp}=${VIP.address}`];
const NOBODY = 65534;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const modeOf = (path: string) => lstatSync(path).mode & 0o7777;

describe('the runtime directory', privileged('builds a lab and runs the daemon'), () => {
  let lab: Lab;
  let dir: string;
  /** The inode of srv's network namespace: the daemon's files are named by it. */
  let netns: number;

  before(async () => {
    requireLabRoot();
    lab = await Lab.create({ vips: [VIP] });
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-rundir-'));
    netns = statSync(`/run/netns/${lab.namespaces.srv}`).ino;
  });

  after(async () => {
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('on a fresh /run, the documented command creates /run/l3dsr (0700, root\'s), serves status there, and leaves it empty on exit', BOUND, async () => {
    const run = await FreshRun.create();
    try {
      assert.equal(existsSync(run.path('/run/l3dsr')), false, 'the fresh /run already has /run/l3dsr');
      const d = await LabDaemon.start(lab, README_COMMAND, { controlSocket: null, prefix: run.prefix, ownMountNamespace: true });
      try {
        const runtime = run.path('/run/l3dsr');
        const st = lstatSync(runtime);
        assert.ok(st.isDirectory(), '/run/l3dsr is not a directory');
        assert.equal(st.uid, 0);
        assert.equal(modeOf(runtime), 0o700, `/run/l3dsr has mode ${modeOf(runtime).toString(8)}`);
        assert.equal(d.controlSocket, `/run/l3dsr/dsr0.netns-${netns}.sock`);
        assert.ok(lstatSync(run.path(d.controlSocket)).isSocket());
        assert.equal(modeOf(run.path(d.controlSocket)), 0o600);
        const state = run.path(`/run/l3dsr/dsr0.netns-${netns}.state.json`);
        assert.ok(lstatSync(state).isFile());
        assert.equal(modeOf(state), 0o600);
        // `l3dsr status` with no flag finds it, from the same namespace and /run.
        const s = await runL3dsr(lab, ['status', '--json'], { prefix: run.prefix });
        assert.equal(s.code, 0, s.stderr);
        assert.equal((JSON.parse(s.stdout) as { pid: number }).pid, d.pid);
      } finally {
        assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
      }
      assert.deepEqual(readdirSync(run.path('/run/l3dsr')), [], 'files left in /run/l3dsr');
      await assertNothingInstalled(lab, [VIP], 'after the daemon stopped');
    } finally {
      await run.destroy();
    }
  });

  it('RUNTIME_DIRECTORY that does not exist yet is created (0700) and holds the socket and state file', BOUND, async () => {
    const runtime = join(dir, 'not-yet');
    const d = await LabDaemon.start(lab, README_COMMAND, { controlSocket: null, env: { ...process.env, RUNTIME_DIRECTORY: runtime } });
    try {
      assert.equal(modeOf(runtime), 0o700);
      assert.equal(d.controlSocket, join(runtime, `dsr0.netns-${netns}.sock`));
      assert.deepEqual(readdirSync(runtime).sort(), [`dsr0.netns-${netns}.sock`, `dsr0.netns-${netns}.state.json`]);
      const s = await runL3dsr(lab, ['status', '--json'], { env: { ...process.env, RUNTIME_DIRECTORY: runtime } });
      assert.equal(s.code, 0, s.stderr);
      assert.equal((JSON.parse(s.stdout) as { pid: number }).pid, d.pid);
    } finally {
      assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
    }
    assert.deepEqual(readdirSync(runtime), []);
  });

  const refusals: { name: string; make: (path: string) => void; says: RegExp }[] = [
    {
      name: 'a symbolic link to a directory',
      make: (p) => { mkdirSync(`${p}-target`, { mode: 0o700 }); symlinkSync(`${p}-target`, p); },
      says: /is a symbolic link, not a directory/,
    },
    { name: 'a directory of another user', make: (p) => { mkdirSync(p, { mode: 0o700 }); chownSync(p, NOBODY, NOBODY); }, says: new RegExp(`is owned by uid ${NOBODY}, not by this process's uid 0`) },
    { name: 'a directory others may write to', make: (p) => { mkdirSync(p); chmodSync(p, 0o777); }, says: /is writable by its group or by others \(mode 0777\)/ },
    { name: 'a directory its group may write to', make: (p) => { mkdirSync(p); chmodSync(p, 0o770); }, says: /is writable by its group or by others \(mode 0770\)/ },
    { name: 'a regular file', make: (p) => writeFileSync(p, 'x'), says: /is a regular file, not a directory/ },
  ];
  for (const c of refusals) {
    it(`refuses a runtime directory that is ${c.name}, naming it, before touching anything`, BOUND, async () => {
      const runtime = join(dir, c.name.replace(/\W+/g, '-'));
      c.make(runtime);
      const r = await runL3dsr(lab, ['run', ...README_COMMAND, '--loopback-vips'], { env: { ...process.env, RUNTIME_DIRECTORY: runtime } });
      assert.equal(r.code, 1, `${r.stderr}${r.stdout}`);
      assert.match(r.stderr, new RegExp(`runtime directory ${escape(runtime)} ${c.says.source}`));
      await assertNothingInstalled(lab, [VIP], c.name);
      const inside = lstatSync(runtime).isSymbolicLink() ? `${runtime}-target` : runtime;
      if (statSync(inside).isDirectory()) assert.deepEqual(readdirSync(inside), [], `files created in ${inside}`);
    });
  }

  it('a regular file at the control socket path is left alone, and the start refused', BOUND, async () => {
    const sub = mkdtempSync(join(dir, 'file-'));
    const path = join(sub, 'precious');
    writeFileSync(path, 'not a socket\n');
    const r = await runL3dsr(lab, ['run', ...README_COMMAND, '--control-socket', path]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`control socket ${escape(path)}: a regular file is in the way; it is left alone`));
    assert.equal(readFileSync(path, 'utf8'), 'not a socket\n');
    await assertNothingInstalled(lab, [VIP], 'after the refusal');
  });

  it('a socket someone listens on is refused; a socket nobody listens on is replaced', BOUND, async () => {
    const sub = mkdtempSync(join(dir, 'sock-'));
    const live = join(sub, 'live.sock');
    const server: Server = createServer((c) => c.end());
    await new Promise<void>((resolve) => server.listen(live, resolve));
    try {
      const r = await runL3dsr(lab, ['run', ...README_COMMAND, '--control-socket', live]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`control socket ${escape(live)}: a process is listening on it`));
      assert.ok(lstatSync(live).isSocket(), 'the live socket was removed');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    // bind() without listen(): a socket file nobody answers on, as a killed daemon leaves.
    const stale = join(sub, 'stale.sock');
    const py = spawnSync(PYTHON, ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stale]);
    assert.equal(py.status, 0, py.stderr.toString());
    const d = await LabDaemon.start(lab, README_COMMAND, { controlSocket: stale });
    try {
      assert.equal((await d.status()).pid, d.pid);
    } finally {
      assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
    }
  });
});
