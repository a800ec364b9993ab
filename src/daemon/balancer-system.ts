// What the balancer (`l3dsr lb`) needs from the system, apart from the TUN:
// tc steering of every packet to a VIP into the TUN, by destination, on the
// client-facing interfaces (with rp_filter, as on the real server), and the
// kernel's forwarding, which it requires and never turns on
// (docs/lb.md#steering). It holds the [lb] sections in effect: the daemon's
// role for `l3dsr lb` (role.ts), as RealServerSystem is for `l3dsr run`.

import { portText } from '../config/lb.js';
import { loadLbConfiguration } from '../config/load.js';
import type { Family } from '../core/types.js';
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
  readonly command = 'lb';
  readonly configured = '[lb] sections';
  readonly #options: LbOptions;
  readonly #log: Logger;
  readonly #steering: Steering<DestinationClass> | undefined;
  #vips: LbVip[];
  /** `section backend` of the backends whose health check failed. */
  readonly #down = new Set<string>();

  /** `record` writes the state file: steering calls it before each change it makes, so a kill -9 at any moment loses none. */
  constructor(options: LbOptions, log: Logger, record: () => Promise<void>) {
    this.#options = options;
    this.#log = log;
    this.#vips = options.vips;
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
    return { kind: 'balance', vips: this.#vips, connections: this.#options.connections };
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
    const connections = config.daemon.connections;
    if (connections !== undefined && connections !== this.#options.connections) {
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
    await configureQueues({ kind: 'balance', vips: next, connections: this.#options.connections });
    await this.#steering?.update(classesOf(next));
    this.#vips = next;
  }

  /** Each section with its backends' state, table share (the queues agree on it: one configuration) and packets summed over the queues. */
  #vipStatus(queues: readonly QueueSnapshot[]): VipStatus[] {
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
        const state = this.#down.has(`${v.name} ${b.address}`) ? 'down' : b.drain || b.weight === 0 ? 'draining' : 'up';
        return { address: b.address, weight: b.weight, state, slots: c?.slots ?? 0, packets: c?.packets ?? 0n };
      }),
    }));
  }

  async snapshot(full: boolean, queues: readonly QueueSnapshot[]): Promise<RoleSnapshot> {
    const steering = this.#steering;
    const status = steering && full ? await steering.status().catch((e: Error) => e.message) : undefined;
    return {
      command: 'lb',
      rules: [],
      l2dsr: [],
      balancer: { vips: this.#vipStatus(queues), connections: this.#options.connections },
      steering: { mode: steering ? 'tc' : 'none', interfaces: [...this.#options.steer], status },
      loopbackVips: [],
    };
  }
}
