// The health driver (health-driver.ts) as a child process in a namespace of
// the ECMP lab: waits for its changes and reads its status.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { BackendHealth, HealthChange } from '../../src/lb/health.js';
import type { ProberCounters } from '../../src/lb/tcp-prober.js';
import type { LbVip } from '../../src/lb/types.js';
import { ECHO_PORT, ECMP_INTERFACES, type EcmpLab, type EcmpRole, type LabVip } from '../../tools/lab/index.js';

export const HEALTH_DRIVER = fileURLToPath(new URL('./health-driver.js', import.meta.url));

export const RISE = 2;
export const FALL = 3;
/** Between checks, and how long one may take: loose enough that a loaded machine does not fail a healthy server. */
export const INTERVAL_MS = 500;

/** `l3dsr run` on a server of the ECMP lab: a rule per VIP, steering on its segment port. */
export const serverDaemonArgs = (vips: readonly LabVip[], loopbackVips = true): string[] =>
  [...vips.flatMap((v) => ['--rule', `${v.dscp}=${v.address}`]), '--steer', ECMP_INTERFACES.srvToBack, ...(loopbackVips ? ['--loopback-vips'] : [])];

/** One [lb] section per VIP, both servers as backends, checked on the echo service's port. */
export function sections(lab: EcmpLab, vips: readonly LabVip[]): LbVip[] {
  return vips.map((v) => ({
    name: `web${v.family}`, family: v.family, vip: v.address, dscp: v.dscp, ports: null, hash: '5-tuple', tableSize: 13,
    backends: lab.servers.map((s) => ({ address: lab.plan[v.family].rip[s], weight: 1, drain: false, origin: 'test' })),
    check: { type: 'tcp', port: ECHO_PORT }, intervalMs: INTERVAL_MS, timeoutMs: INTERVAL_MS, rise: RISE, fall: FALL, origin: 'test',
  }));
}

export interface HealthDriverOptions {
  role: EcmpRole;
  /** Programs that run node inside the namespace (setpriv…). */
  prefix?: readonly string[];
  /** The driver to run (a copy elsewhere); default this tree's. */
  driver?: string;
}

export class HealthDriver {
  readonly changes: HealthChange[] = [];
  #lines: Array<Record<string, unknown>> = [];
  #stderr = '';
  #waiters: Array<() => void> = [];
  readonly #child;

  constructor(lab: EcmpLab, vips: readonly LbVip[], options: HealthDriverOptions) {
    const [file, ...args] = [...(options.prefix ?? []), process.execPath, options.driver ?? HEALTH_DRIVER, JSON.stringify({ vips })];
    this.#child = lab.spawn(options.role, file!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let partial = '';
    this.#child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const o = JSON.parse(line) as Record<string, unknown>;
        if (o.change) this.changes.push(o.change as HealthChange);
        this.#lines.push(o);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    this.#child.stderr!.on('data', (c: Buffer) => { this.#stderr += c.toString(); });
    this.#child.on('exit', () => { for (const w of this.#waiters.splice(0)) w(); });
  }

  get pid(): number {
    return this.#child.pid!;
  }

  get log(): string {
    return this.#stderr;
  }

  /** Waits (at most `boundMs`, which only bounds a hang) until `done` holds over what the driver said. */
  async until(what: string, done: () => boolean, boundMs = 20_000): Promise<void> {
    const deadline = Date.now() + boundMs;
    while (!done()) {
      if (this.#child.exitCode !== null) assert.fail(`${what}: the health driver exited: ${this.#stderr}`);
      if (Date.now() > deadline) assert.fail(`${what}: not within ${boundMs} ms; changes ${JSON.stringify(this.changes)}; log:\n${this.#stderr}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  /** Waits until the driver has started its checks (and so runs as the program it is). */
  ready(): Promise<void> {
    return this.until('the driver started', () => this.#lines.some((l) => l.ready === true));
  }

  /** Waits for a change of `backend` to `state` after the first `after` changes; returns it. */
  async changeTo(backend: string, state: 'up' | 'down', after: number): Promise<HealthChange> {
    const find = () => this.changes.slice(after).find((c) => c.backend === backend && c.state === state);
    await this.until(`${backend} ${state}`, () => find() !== undefined);
    return find()!;
  }

  async status(): Promise<{ status: BackendHealth[]; prober: ProberCounters }> {
    const before = this.#lines.length;
    this.#child.stdin!.write('status\n');
    await this.until('status', () => this.#lines.slice(before).some((l) => l.status !== undefined));
    return this.#lines.slice(before).find((l) => l.status !== undefined) as unknown as { status: BackendHealth[]; prober: ProberCounters };
  }

  async health(section: string, backend: string): Promise<BackendHealth> {
    const h = (await this.status()).status.find((s) => s.section === section && s.backend === backend);
    assert.ok(h, `no health for ${section} ${backend}`);
    return h;
  }

  async stop(): Promise<void> {
    this.#child.stdin!.end();
    if (this.#child.exitCode === null) {
      this.#child.kill('SIGTERM');
      await new Promise((r) => this.#child.once('exit', r));
    }
  }
}
