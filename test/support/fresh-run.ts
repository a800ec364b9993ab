// A mount namespace whose /run is a new, empty tmpfs: the /run of a fresh
// host as far as the daemon can tell (no /run/l3dsr), without touching this
// host's /run. A program runs in a lab namespace with it through
// `ip netns exec NS nsenter --mount=/proc/PID/ns/mnt -- PROGRAM`: ip finds
// the lab's namespace in the host's /run/netns before nsenter switches the
// mount namespace. Two programs started that way share this /run, as two
// network namespaces of one host share its /run. This process sees the
// files through /proc/PID/root.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export class FreshRun {
  private constructor(readonly holder: ChildProcess) {}

  /** `setup`: more shell commands to run in the new mount namespace once /run is mounted (e.g. more mounts). */
  static async create(setup?: string): Promise<FreshRun> {
    // unshare and sh exec in place: the holder's pid is the namespace's keeper.
    const script = ['mount -t tmpfs -o mode=0755 l3dsr-fresh-run /run', ...(setup === undefined ? [] : [setup]), 'echo ready', 'exec sleep infinity'].join(' && ');
    const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    holder.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    const ready = new Promise<void>((resolve, reject) => {
      holder.stdout!.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`unshare --mount … ${script}: exit ${code}: ${stderr}`)));
      holder.once('error', reject);
    });
    await ready;
    return new FreshRun(holder);
  }

  get pid(): number {
    return this.holder.pid!;
  }

  /** Goes after `ip netns exec NS`, before the program. */
  get prefix(): string[] {
    return ['nsenter', `--mount=/proc/${this.pid}/ns/mnt`, '--'];
  }

  /** A path of this /run (e.g. `/run/l3dsr`) as this process reaches it. */
  path(p: string): string {
    return `/proc/${this.pid}/root${p}`;
  }

  /** The tmpfs goes when its last process has left: stop the daemons first. */
  async destroy(): Promise<void> {
    if (this.holder.exitCode !== null || this.holder.signalCode !== null) return;
    this.holder.kill('SIGKILL');
    await once(this.holder, 'exit');
  }
}
