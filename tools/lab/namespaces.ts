// What every lab shares: a set of named network namespaces, one per role,
// named per process so that labs never meet; programs run and spawned in
// them; teardown that stops those programs and deletes the namespaces (their
// links go with them), also from signal and exit handlers.
import { execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import {
  addNamespace, deleteNamespace, execInNamespace, ip, namespaceExists, spawnInNamespace, writeSysctl, type Where,
} from '../../src/system/index.js';

/** How long a spawned program gets to exit on SIGTERM before SIGKILL. */
const CHILD_EXIT_GRACE_MS = 1000;

let instanceCount = 0;
const liveLabs = new Set<NamespaceLab<string>>();

/** `l3dsr-<pid>-<n>`: unique among the labs of every process on the machine. */
export const nextLabName = (): string => `l3dsr-${process.pid}-${++instanceCount}`;

/** The namespace of a lab's role: `NAME-role`. */
export const namespaceOf = (lab: string, role: string): string => `${lab}-${role}`;

/** Deletes these namespaces where they exist, synchronously: for signal and exit handlers. */
export function deleteNamespacesSync(names: Iterable<string>): void {
  for (const ns of names) {
    if (namespaceExists(ns)) {
      try {
        execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
      } catch {
        // Best effort: the process is going away.
      }
    }
  }
}

export class NamespaceLab<R extends string> {
  /** Namespace name per role: `NAME-role`. */
  readonly namespaces: Readonly<Record<R, string>>;
  readonly #roles: readonly R[];
  readonly #children = new Set<ChildProcess>();

  protected constructor(readonly name: string, roles: readonly R[]) {
    this.#roles = roles;
    this.namespaces = Object.fromEntries(roles.map((r) => [r, namespaceOf(name, r)])) as Record<R, string>;
  }

  where(role: R): Where {
    return { netns: this.namespaces[role] };
  }

  /** Runs a program to completion in a role's namespace; resolves with stdout. */
  exec(role: R, file: string, args: readonly string[], input?: string): Promise<string> {
    return execInNamespace(this.namespaces[role], file, args, input);
  }

  /** Starts a long-running program in a role's namespace; it is killed by destroy(). */
  spawn(role: R, file: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawnInNamespace(this.namespaces[role], file, args, options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    child.once('error', () => this.#children.delete(child));
    return child;
  }

  /** Stops spawned programs and deletes the namespaces. Idempotent. */
  async destroy(): Promise<void> {
    await Promise.all([...this.#children].map(stopChild));
    const failures: unknown[] = [];
    for (const role of this.#roles) {
      await deleteNamespace(this.namespaces[role]).catch((err: unknown) => failures.push(err));
    }
    if (failures.length === 0) liveLabs.delete(this);
    else throw failures[0];
  }

  /** destroy() for places that cannot wait: signal and exit handlers. */
  destroySync(): void {
    for (const child of this.#children) child.kill('SIGKILL');
    deleteNamespacesSync(this.#roles.map((role) => this.namespaces[role]));
    liveLabs.delete(this);
  }

  /**
   * Creates every namespace (registering the lab for destroyLabsOnExit):
   * no DAD delay for link-locals and the reverse-path filter off before any
   * interface exists (interfaces copy `default`), lo up.
   */
  protected async createNamespaces(): Promise<void> {
    liveLabs.add(this);
    for (const role of this.#roles) {
      await addNamespace(this.namespaces[role]);
      const where = this.where(role);
      await writeSysctl('net.ipv6.conf.default.accept_dad', '0', where);
      await writeSysctl('net.ipv4.conf.default.rp_filter', '0', where);
      await writeSysctl('net.ipv4.conf.all.rp_filter', '0', where);
      await ip(['link', 'set', 'dev', 'lo', 'up'], where);
    }
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_EXIT_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

let exitHandlersInstalled = false;

/**
 * Makes SIGINT/SIGTERM (and a normal exit) remove every lab that is still
 * alive. Opt-in, because a SIGINT handler replaces Node's default exit.
 */
export function destroyLabsOnExit(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.once('exit', () => {
    for (const lab of [...liveLabs]) lab.destroySync();
  });
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      for (const lab of [...liveLabs]) lab.destroySync();
      process.exit(status);
    });
  }
}
