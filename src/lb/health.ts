// Health of the balancer's backends (docs/lb.md#health-checks): for each
// backend of each [lb] section with `check = tcp PORT`, a check through
// the DSR path every `interval` (tcp-prober.ts), each within `timeout`;
// `fall` bad checks in a row take an up backend down, `rise` good ones
// bring a down backend up. A backend starts up (a balancer serves at once).
// Every change is logged and counted per backend and direction; status()
// is what the daemon reads for `l3dsr status` and its metrics, and
// onChange tells it to rebuild the section's table.
import type { Logger } from '../log.js';
import type { LbVip } from './types.js';
import { TcpProber, type ProbeResult } from './tcp-prober.js';

export type BackendState = 'up' | 'down';
export type CheckResult = ProbeResult['result'];

export interface BackendHealth {
  section: string;
  backend: string;
  state: BackendState;
  /** Checks in a row that disagreed with the state (towards `rise` or `fall`). */
  streak: number;
  /** Checks by result. */
  checks: Record<CheckResult, number>;
  /** State changes by direction: `up` counts the times it came up, `down` went down. */
  transitions: Record<BackendState, number>;
  /** The last check's result and, for an answer, its round trip. */
  last?: { result: CheckResult; latencyMs?: number; message?: string };
}

export interface HealthChange {
  section: string;
  backend: string;
  state: BackendState;
  /** The last check's result, why it changed. */
  result: CheckResult;
}

export interface HealthCheckerOptions {
  prober: TcpProber;
  logger?: Logger;
  onChange?: (change: HealthChange) => void;
}

/** The checks of one backend of one section. */
export class BackendChecker {
  readonly #health: BackendHealth;
  readonly #vip: LbVip;
  readonly #port: number;
  readonly #options: HealthCheckerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(vip: LbVip, backend: string, options: HealthCheckerOptions) {
    if (vip.check.type !== 'tcp') throw new TypeError(`[lb ${vip.name}] has no check to run`);
    this.#vip = vip;
    this.#port = vip.check.port;
    this.#options = options;
    this.#health = {
      section: vip.name, backend, state: 'up', streak: 0,
      checks: { up: 0, refused: 0, timeout: 0, error: 0 }, transitions: { up: 0, down: 0 },
    };
  }

  get state(): BackendState {
    return this.#health.state;
  }

  get section(): string {
    return this.#health.section;
  }

  get backend(): string {
    return this.#health.backend;
  }

  get intervalMs(): number {
    return this.#vip.intervalMs;
  }

  /** A copy of what is known now. */
  status(): BackendHealth {
    const h = this.#health;
    return { ...h, checks: { ...h.checks }, transitions: { ...h.transitions }, ...(h.last ? { last: { ...h.last } } : {}) };
  }

  /** Starts checking; the first check runs after `firstDelayMs` (HealthChecks spreads them over the interval). */
  start(firstDelayMs = 0): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(firstDelayMs);
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Runs one check now and applies its result (start() does this every interval). */
  async checkOnce(): Promise<ProbeResult> {
    const v = this.#vip;
    const r = await this.#options.prober.probe(
      { family: v.family, backend: this.#health.backend, vip: v.vip, port: this.#port, dscp: v.dscp }, v.timeoutMs);
    this.#apply(r);
    return r;
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      const started = Date.now();
      void this.checkOnce().then(() => {
        if (this.#running) this.#schedule(Math.max(0, this.#vip.intervalMs - (Date.now() - started)));
      });
    }, delayMs);
  }

  #apply(r: ProbeResult): void {
    const h = this.#health;
    h.checks[r.result]++;
    h.last = { result: r.result, ...('latencyMs' in r ? { latencyMs: r.latencyMs } : {}), ...('message' in r ? { message: r.message } : {}) };
    const good = r.result === 'up';
    if (good === (h.state === 'up')) {
      h.streak = 0;
      return;
    }
    h.streak++;
    if (h.streak < (good ? this.#vip.rise : this.#vip.fall)) return;
    h.state = good ? 'up' : 'down';
    h.streak = 0;
    h.transitions[h.state]++;
    const fields = { section: h.section, backend: h.backend, vip: this.#vip.vip, port: this.#port, result: r.result, checks: good ? this.#vip.rise : this.#vip.fall };
    if (good) this.#options.logger?.info('backend up', fields);
    else this.#options.logger?.warn('backend down', { ...fields, ...('message' in r ? { error: r.message } : {}) });
    this.#options.onChange?.({ section: h.section, backend: h.backend, state: h.state, result: r.result });
  }
}

/** What a backend's checks are made of: a checker is kept across a reload only if none of it changed. */
const checkKey = (vip: LbVip, backend: string): string => {
  const port = vip.check.type === 'tcp' ? vip.check.port : 0;
  return [vip.name, backend, vip.vip, vip.dscp, port, vip.intervalMs, vip.timeoutMs, vip.rise, vip.fall].join(' ');
};

/** One checker per backend of every section with a check; sections with `check = none` have none (always up). */
export class HealthChecks {
  #checkers: BackendChecker[] = [];
  readonly #keys = new Map<BackendChecker, string>();
  readonly #options: HealthCheckerOptions;
  #running = false;

  constructor(vips: readonly LbVip[], options: HealthCheckerOptions) {
    this.#options = options;
    this.#checkers = this.#make(vips);
  }

  /** Starts every checker, the first checks spread over the interval so they do not all leave at once. */
  start(): void {
    this.#running = true;
    const n = this.#checkers.length;
    this.#checkers.forEach((c, k) => c.start(Math.floor((c.intervalMs * k) / n)));
  }

  stop(): void {
    this.#running = false;
    for (const c of this.#checkers) c.stop();
  }

  /**
   * A reload: a backend whose section checks it as before keeps its
   * checker (state, streak and counts); the others start anew (up), and
   * checkers of backends gone are stopped.
   */
  update(vips: readonly LbVip[]): void {
    const old = new Map([...this.#keys].map(([c, k]) => [k, c]));
    const next = this.#make(vips, old);
    for (const c of this.#checkers) if (!next.includes(c)) { c.stop(); this.#keys.delete(c); }
    const fresh = next.filter((c) => !this.#checkers.includes(c));
    this.#checkers = next;
    if (this.#running) fresh.forEach((c, k) => c.start(Math.floor((c.intervalMs * k) / fresh.length)));
  }

  #make(vips: readonly LbVip[], reuse = new Map<string, BackendChecker>()): BackendChecker[] {
    const out: BackendChecker[] = [];
    for (const vip of vips) {
      if (vip.check.type === 'none') continue;
      for (const b of vip.backends) {
        const key = checkKey(vip, b.address);
        const c = reuse.get(key) ?? new BackendChecker(vip, b.address, this.#options);
        this.#keys.set(c, key);
        out.push(c);
      }
    }
    return out;
  }

  /** Whether a backend of a section takes new flows as far as health goes (a section without checks: always). */
  isUp(section: string, backend: string): boolean {
    return this.#checkers.find((c) => c.section === section && c.backend === backend)?.state !== 'down';
  }

  status(): BackendHealth[] {
    return this.#checkers.map((c) => c.status());
  }
}
