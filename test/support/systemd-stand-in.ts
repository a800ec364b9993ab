// systemd's part for deploy/l3dsr.service, played in a namespace of a lab
// where systemd cannot run: the unit's ExecStart, word for word, as the
// user and with the capabilities the unit names, with systemd's PATH and
// RUNTIME_DIRECTORY, in a mount namespace where /etc/l3dsr.conf and the
// program ExecStart names (the paths the unit and the README use) exist
// without touching the host's: overlays on /etc and /usr/local/bin, and a
// fresh tmpfs /run (FreshRun) for RuntimeDirectory=. Reload is the unit's
// ExecReload with $MAINPID, stop its KillSignal.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { NamespaceLab } from '../../tools/lab/index.js';
import { LabDaemon, type DaemonExit } from '../../tools/demo/lab-daemon.js';
import { FreshRun } from './fresh-run.js';
import { withTunOpenToAll } from './install-copy.js';

/** The PATH systemd gives a service. */
export const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The uid and gid DynamicUser= stands for here: any unprivileged user will do, nobody's is on every host. */
export const DYNAMIC_UID = 65534;

/** Values of `key` in a unit file, in order (a key may be given several times). */
export function unitValues(text: string, key: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1).trim());
}

/** The one value of `key`; fails when the unit has none or several. */
function unitValue(text: string, key: string): string {
  const v = unitValues(text, key);
  assert.equal(v.length, 1, `the unit sets ${key}= ${v.length} times, expected once`);
  return v[0]!;
}

export interface ServiceUnit {
  execStart: string[];
  execReload: string[];
  killSignal: NodeJS.Signals;
  runtimeDirectory: string;
  runtimeDirectoryMode: number;
  /** RuntimeDirectoryPreserve=: no, yes or restart. */
  runtimeDirectoryPreserve: string;
  /** `setpriv` arguments for the unit's user, capabilities and NoNewPrivileges=. */
  credentials: string[];
}

/** The parts of the unit systemd acts on here; fails on what the stand-in cannot play. */
export function readServiceUnit(path: string): ServiceUnit {
  const text = readFileSync(path, 'utf8');
  assert.equal(unitValue(text, 'DynamicUser'), 'yes', 'the stand-in plays DynamicUser=yes');
  const caps = (key: string) => unitValue(text, key).split(/\s+/).map((c) => c.replace(/^CAP_/, '').toLowerCase());
  const noNewPrivs = unitValue(text, 'NoNewPrivileges') === 'yes';
  const plus = (list: string[]) => ['-all', ...list.map((c) => `+${c}`)].join(',');
  return {
    execStart: unitValue(text, 'ExecStart').split(/\s+/),
    execReload: unitValue(text, 'ExecReload').split(/\s+/),
    killSignal: unitValue(text, 'KillSignal') as NodeJS.Signals,
    runtimeDirectory: `/run/${unitValue(text, 'RuntimeDirectory')}`,
    runtimeDirectoryMode: Number.parseInt(unitValue(text, 'RuntimeDirectoryMode'), 8),
    runtimeDirectoryPreserve: unitValues(text, 'RuntimeDirectoryPreserve')[0] ?? 'no',
    credentials: [
      'setpriv', `--reuid=${DYNAMIC_UID}`, `--regid=${DYNAMIC_UID}`, '--clear-groups', ...(noNewPrivs ? ['--no-new-privs'] : []),
      `--inh-caps=${plus(caps('AmbientCapabilities'))}`, `--ambient-caps=${plus(caps('AmbientCapabilities'))}`,
      `--bounding-set=${plus(caps('CapabilityBoundingSet'))}`,
    ],
  };
}

export interface StandInFiles {
  /** Files of /etc in the service's view (e.g. `l3dsr.conf`), mode 0644. */
  etc: Record<string, string>;
  /** Programs of /usr/local/bin in its view: name → what the symbolic link points to. */
  bin: Record<string, string>;
}

export class SystemdStandIn {
  #daemon: LabDaemon | undefined;
  readonly #lab: NamespaceLab<string>;
  readonly #role: string;
  readonly #unit: ServiceUnit;
  readonly #run: FreshRun;
  readonly #dir: string;

  private constructor(lab: NamespaceLab<string>, role: string, unit: ServiceUnit, run: FreshRun, dir: string) {
    this.#lab = lab;
    this.#role = role;
    this.#unit = unit;
    this.#run = run;
    this.#dir = dir;
  }

  static async create(lab: NamespaceLab<string>, role: string, unit: ServiceUnit, files: StandInFiles): Promise<SystemdStandIn> {
    const dir = mkdtempSync(join(tmpdir(), 'l3dsr-systemd-'));
    const layer = (name: string, target: string): string => {
      for (const part of ['upper', 'work']) mkdirSync(join(dir, name, part), { recursive: true, mode: 0o755 });
      return `mount -t overlay l3dsr-${name} -o lowerdir=${target},upperdir=${join(dir, name, 'upper')},workdir=${join(dir, name, 'work')} ${target}`;
    };
    const mounts = [layer('etc', '/etc'), layer('bin', '/usr/local/bin')];
    for (const [name, text] of Object.entries(files.etc)) writeFileSync(join(dir, 'etc', 'upper', name), text, { mode: 0o644 });
    for (const [name, target] of Object.entries(files.bin)) symlinkSync(target, join(dir, 'bin', 'upper', name));
    let run: FreshRun;
    try {
      run = await FreshRun.create(mounts.join(' && '));
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return new SystemdStandIn(lab, role, unit, run, dir);
  }

  /** Goes after `ip netns exec NS` to run a program where the service's files are (as root, e.g. `l3dsr status`). */
  get prefix(): string[] {
    return this.#run.prefix;
  }

  /** A path of the service's view of the file system, as this process reaches it. */
  path(p: string): string {
    return this.#run.path(p);
  }

  get daemon(): LabDaemon {
    assert.ok(this.#daemon, 'the service is not started');
    return this.#daemon;
  }

  /** `systemctl start`: RuntimeDirectory= made for the user, then ExecStart as that user, until it says `running`. */
  async start(): Promise<LabDaemon> {
    const [program, command, ...args] = this.#unit.execStart;
    assert.equal(command, 'run', `ExecStart runs "${command}", not "run"`);
    const runtime = this.path(this.#unit.runtimeDirectory);
    if (!existsSync(runtime)) {
      mkdirSync(runtime, { mode: this.#unit.runtimeDirectoryMode });
      chownSync(runtime, DYNAMIC_UID, DYNAMIC_UID);
    }
    this.#daemon = await withTunOpenToAll(() => LabDaemon.start(this.#lab, args, {
      role: this.#role, program, controlSocket: null, ownMountNamespace: true,
      prefix: [...this.#run.prefix, ...this.#unit.credentials],
      env: { PATH: SYSTEMD_PATH, RUNTIME_DIRECTORY: this.#unit.runtimeDirectory },
    }));
    return this.#daemon;
  }

  /** `systemctl reload`: runs ExecReload with $MAINPID, as root, as systemd does. */
  async reload(): Promise<void> {
    const [file, ...args] = this.#unit.execReload.map((a) => a.replace('$MAINPID', String(this.daemon.pid)));
    await promisify(execFile)(file!, args);
  }

  /** `systemctl stop`, or the first half of a restart: KillSignal=, then the runtime directory goes unless RuntimeDirectoryPreserve= keeps it. */
  async stop(restart = false): Promise<DaemonExit> {
    const exit = await this.daemon.stop(this.#unit.killSignal);
    const preserve = this.#unit.runtimeDirectoryPreserve;
    if (!(preserve === 'yes' || (restart && preserve === 'restart'))) rmSync(this.path(this.#unit.runtimeDirectory), { recursive: true, force: true });
    return exit;
  }

  /** Stops the service if it runs, then removes the mount namespace and its layers. */
  async destroy(): Promise<void> {
    if (this.#daemon?.running) await this.#daemon.stop(this.#unit.killSignal);
    await this.#run.destroy();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
