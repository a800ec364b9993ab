// What the balancer (`l3dsr lb`) needs from the system, apart from the TUN:
// tc steering of every packet to a VIP into the TUN, by destination, on the
// client-facing interfaces (with rp_filter, as on the real server), and the
// kernel's forwarding, which it requires and never turns on
// (docs/lb.md#steering). It holds the [lb] sections in effect and runs
// their health checks (src/lb/health.ts), whose changes it hands to every
// queue's core: the daemon's role for `l3dsr lb` (role.ts), as
// RealServerSystem is for `l3dsr run`.

import { portText } from '../config/lb.js';
import { loadLbConfiguration } from '../config/load.js';
import type { Family } from '../core/types.js';
import { DEFAULT_CONNECTIONS } from '../lb/connections.js';
import { HealthChecks } from '../lb/health.js';
import { TcpProber } from '../lb/tcp-prober.js';
import type { LbVip } from '../lb/types.js';
import type { Logger } from '../log.js';
import { DESTINATION_CLASSES, requireForwarding, Steering, type DestinationClass } from '../steering/index.js';
import { formatCommand } from '../system/index.js';
import type { PathConfig } from './data-path.js';
import { lbDaemonSettings, type LbOptions } from './options.js';
import type { DaemonRole, Reloaded, RoleSnapshot } from './role.js';
import type { BackendStatus, QueueSnapshot, VipStatus } from './snapshot.js';
import type { DaemonState } from './state-file.js';

/** One filter per VIP: sections that share a VIP (by ports) share it (Steering keeps one of each). */
const classesOf = (vips: readonly LbVip[]): DestinationClass[] => vips.map((v) => ({ family: v.family, destination: v.vip }));
const familiesOf = (vips: readonly LbVip[]): Family[] => [...new Set(vips.map((v) => v.family))];

export class BalancerSystem implements DaemonRole {
  readonly configured = '[lb] sections';
  readonly #options: LbOptions;
  readonly #log: Logger;
  readonly #steering: Steering<DestinationClass> | undefined;
  #vips: LbVip[];
  readonly #prober = new TcpProber();
  readonly #health: HealthChecks;
  /** The queues' cores, once the daemon runs; every change to them goes through #serially, in order. */
  #configureQueues: ((config: PathConfig) => Promise<void>) | undefined;
  #queueChanges = Promise.resolve();

  /** `record` writes the state file: steering calls it before each change it makes, so a kill -9 at any moment loses none. */
  constructor(options: LbOptions, log: Logger, record: () => Promise<void>) {
    this.#options = options;
    this.#log = log;
    this.#vips = options.vips;
    this.#health = new HealthChecks(options.vips, { prober: this.#prober, logger: log, onChange: () => this.#healthChanged() });
    this.#steering = options.noSteer ? undefined : new Steering({
      kind: DESTINATION_CLASSES, interfaces: options.steer, tun: options.tun, recordOwnership: record,
      afterStep: (argv) => log.debug('changed the system', { command: formatCommand(argv) }),
    });
  }

  /** A balancer puts nothing on lo. */
  get ownership(): Pick<DaemonState, 'steering' | 'loopback'> {
    return { steering: this.#steering?.ownership, loopback: [] };
  }

  get steers(): boolean {
    return this.#steering !== undefined;
  }

  path(): PathConfig {
    return this.#pathFor(this.#vips);
  }

  /** The cores' configuration for `vips`, with the backends the health checks hold down. */
  #pathFor(vips: LbVip[]): PathConfig {
    const down = this.#health.status().filter((h) => h.state === 'down').map((h): [string, string] => [h.section, h.backend]);
    return { kind: 'balance', vips, connections: this.#options.connections, down };
  }

  start(configureQueues: (config: PathConfig) => Promise<void>): void {
    this.#configureQueues = configureQueues;
    this.#health.start();
  }

  stop(): void {
    this.#health.stop();
    this.#prober.close();
  }

  /** Runs `change` after every change to the queues asked for before it. */
  #serially(change: () => Promise<void>): Promise<void> {
    const done = this.#queueChanges.then(change);
    this.#queueChanges = done.catch(() => {});
    return done;
  }

  /** A backend went down or came up (health.ts logged it): the cores take the current health. */
  #healthChanged(): void {
    const configure = this.#configureQueues;
    if (!configure) return;
    this.#serially(() => configure(this.path())).catch((err: Error) => this.#log.error('health change not applied to the queues', { error: err.message }));
  }

  summary(): Record<string, unknown> {
    return { vips: this.#vips.length, backends: this.#vips.reduce((n, v) => n + v.backends.length, 0) };
  }

  async adopt(state: DaemonState): Promise<void> {
    if (this.#steering && state.steering) this.#steering.adopt(state.steering);
  }

  /** The packets written back into the TUN are forwarded to the backends: refused before any is steered there if the kernel would not. */
  async beforeSteering(): Promise<void> {
    await requireForwarding(familiesOf(this.#vips), this.#options.tun);
  }

  async installSteering(): Promise<void> {
    const classes = classesOf(this.#vips);
    if (this.#steering) {
      const cmds = await this.#steering.install(classes);
      this.#log.info('steering installed', { interfaces: this.#options.steer.join(','), commands: cmds.length });
      return;
    }
    const { steer, tun } = this.#options;
    const plan = new Steering({ kind: DESTINATION_CLASSES, interfaces: steer.length ? steer : ['IFACE'], tun, dryRun: true });
    const cmds = await plan.install(classes);
    this.#log.warn('--no-steer: steer the packets to the VIPs into the TUN yourself, for example with:');
    for (const c of cmds) process.stdout.write(`${formatCommand(c)}\n`);
  }

  async addVips(): Promise<void> {}

  async removeSteering(): Promise<void> {
    await this.#steering?.remove();
  }

  async removeVips(): Promise<void> {}

  async reload(): Promise<Reloaded> {
    const config = await loadLbConfiguration({ configs: this.#options.configPaths });
    const warnings = [...config.warnings];
    const connections = config.daemon.connections ?? DEFAULT_CONNECTIONS;
    if (connections !== this.#options.connections) {
      warnings.push(`setting changed: connections = ${connections} needs a restart (the connection table is the core's layout); ${this.#options.connections} stays until then`);
    }
    return { daemon: lbDaemonSettings(config.daemon), warnings, apply: (configureQueues) => this.#apply(config.vips, configureQueues) };
  }

  /**
   * A reload: forwarding checked for a new family first; steering adds the
   * new VIPs, the cores then balance them (the connection table kept, so
   * established flows of backends still there stay with them); the VIPs
   * that went away are unsteered last, so no packet meets a gap.
   */
  async #apply(next: LbVip[], configureQueues: (config: PathConfig) => Promise<void>): Promise<void> {
    await requireForwarding(familiesOf(next), this.#options.tun);
    await this.#steering?.update(classesOf([...this.#vips, ...next]));
    await this.#serially(async () => {
      this.#health.update(next);
      await configureQueues(this.#pathFor(next));
      this.#vips = next;
    });
    await this.#steering?.update(classesOf(next));
  }

  /** Each section with its backends' state, table share (the queues agree on it: one configuration) and packets summed over the queues. */
  #vipStatus(queues: readonly QueueSnapshot[]): VipStatus[] {
    const health = new Map(this.#health.status().map((h) => [`${h.section} ${h.backend}`, h]));
    const counted = new Map<string, { packets: bigint; slots: number }>();
    for (const q of queues) {
      for (const b of q.counters.backends ?? []) {
        const key = `${b.vip} ${b.backend}`;
        counted.set(key, { packets: (counted.get(key)?.packets ?? 0n) + b.packets, slots: b.slots });
      }
    }
    return this.#vips.map((v) => ({
      name: v.name, vip: v.vip, family: v.family, dscp: v.dscp, ports: v.ports?.map(portText) ?? null, tableSize: v.tableSize,
      check: v.check.type === 'tcp' ? `tcp ${v.check.port}` : 'none',
      backends: v.backends.map((b): BackendStatus => {
        const c = counted.get(`${v.name} ${b.address}`);
        const h = health.get(`${v.name} ${b.address}`);
        const state = h?.state === 'down' ? 'down' : b.drain || b.weight === 0 ? 'draining' : 'up';
        const checks = h ? { health: { checks: h.checks, transitions: h.transitions, ...(h.last ? { last: h.last } : {}) } } : {};
        return { address: b.address, weight: b.weight, state, slots: c?.slots ?? 0, packets: c?.packets ?? 0n, ...checks };
      }),
    }));
  }

  async snapshot(full: boolean, queues: readonly QueueSnapshot[]): Promise<RoleSnapshot> {
    const steering = this.#steering;
    const status = steering && full ? await steering.status().catch((e: Error) => e.message) : undefined;
    return {
      rules: [],
      l2dsr: [],
      balancer: { vips: this.#vipStatus(queues), connections: this.#options.connections },
      steering: { mode: steering ? 'tc' : 'none', interfaces: [...this.#options.steer], status },
      loopbackVips: [],
    };
  }
}
