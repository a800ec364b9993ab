// kill -9 at each step of the daemon's start-up (as systemd's stop timeout,
// the OOM killer or an operator may do), then a restart under the same
// runtime directory, as systemd's Restart=always does, and a clean stop:
// the system must be as it was before the first start. The killed run must
// have recorded each change in its state file before making it; a change
// made first and recorded later is lost when the process dies in between,
// and the next run, finding the clsact qdisc or rp_filter=0 already there,
// takes it for someone else's and leaves it. Killed while writing its state
// file, it leaves the temporary file, which the next run removes. Needs root.
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../tools/lab/index.js';
import { writeSysctl } from '../src/system/index.js';
import { LabDaemon, daemonArgs, requireLabRoot } from './support/daemon.js';
import { privileged } from './support/privilege.js';
import { diffSnapshots, settledSnapshot, snapshotLab, type SystemSnapshot } from './support/system-snapshot.js';

const BOUND = { timeout: 60_000 };
/** The lines the daemon logs on its way to `running`, in order: each is a moment to kill it. */
const STEPS = ['queue ready', 'TUN offloads granted', 'steering installed', 'VIPs on lo', 'running'];

describe('kill -9 during the start-up, then a restart', privileged('builds a lab and runs the daemon'), () => {
  let dir: string;
  /** One lab per case: a case that leaves something behind must not spoil the next. */
  let lab: Lab | undefined;
  /** The system before any daemon ran in it. */
  let initial: SystemSnapshot;

  before(() => {
    requireLabRoot();
    dir = mkdtempSync(join(tmpdir(), 'l3dsr-startup-kill-'));
  });

  beforeEach(async () => {
    lab = await Lab.create();
    // Loose, not the lab's 0: the daemon sets 0, and must put back what was there.
    await writeSysctl('net/ipv4/conf/all/rp_filter', '2', lab.where('srv'));
    initial = await settledSnapshot(lab);
  });

  afterEach(async () => {
    await lab?.destroy();
    lab = undefined;
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const [n, step] of STEPS.entries()) {
    it(`killed when it logs "${step}": the next run undoes everything on its clean exit`, BOUND, async () => {
      // Not made here: the daemon creates its runtime directory.
      const runtime = join(dir, `run-${n}`);
      const env = { ...process.env, RUNTIME_DIRECTORY: runtime };
      const args = daemonArgs({ vips: lab!.vips });
      const logged = new RegExp(`\\bmsg="?${step}\\b`);
      const first = LabDaemon.spawn(lab!, args, { controlSocket: null, env, onLine: (line) => { if (logged.test(line)) first.signal('SIGKILL'); } });
      assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' }, first.log);
      assert.match(first.log, logged, 'it never got to the step');
      const second = await LabDaemon.start(lab!, args, { controlSocket: null, env });
      assert.deepEqual(await second.stop(), { code: 0, signal: null }, second.log);
      const left = diffSnapshots(initial, await snapshotLab(lab!));
      assert.deepEqual(left, [], `left behind after a kill at "${step}":\n${left.join('\n')}\nthe killed run:\n${first.log}\nthe next one:\n${second.log}`);
      assert.deepEqual(readdirSync(runtime), [], 'files left in the runtime directory');
    });
  }

  it('killed while writing its state file: the next run removes the temporary file it left', BOUND, async () => {
    const runtime = join(dir, 'run-writing');
    const env = { ...process.env, RUNTIME_DIRECTORY: runtime };
    const args = daemonArgs({ vips: lab!.vips });
    const first = await LabDaemon.start(lab!, args, { controlSocket: null, env });
    first.signal('SIGKILL');
    await first.exited;
    // What writeState leaves when killed between creating its temporary file and renaming it.
    const [state] = readdirSync(runtime).filter((f) => f.endsWith('.state.json'));
    assert.ok(state, `no state file in ${runtime}: ${readdirSync(runtime).join(', ')}`);
    writeFileSync(join(runtime, `${state}.${first.pid}.0123456789ab.tmp`), '{"pid":', { mode: 0o600 });
    const second = await LabDaemon.start(lab!, args, { controlSocket: null, env });
    assert.deepEqual(await second.stop(), { code: 0, signal: null }, second.log);
    assert.deepEqual(readdirSync(runtime), [], 'files left in the runtime directory');
    assert.deepEqual(diffSnapshots(initial, await snapshotLab(lab!)), []);
  });
});
