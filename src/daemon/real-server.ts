// What the real server's rewrite needs from the system, apart from the TUN:
// tc steering of each rule's DSCP into the TUN (with rp_filter), and the
// VIPs on lo so the kernel delivers the rewritten packets locally. The
// daemon's lifecycle (daemon.ts) decides when; this module knows how, and
// what to record in the state file so a run after a crash can undo it. It
// holds the rules in effect: the daemon's role for `l3dsr run` (role.ts).

import { loadConfiguration, type L2dsrVip } from '../config/load.js';
import type { Rule } from '../core/types.js';
import type { Logger } from '../log.js';
import { LoopbackVips, Steering } from '../steering/index.js';
import { formatCommand } from '../system/index.js';
import type { PathConfig } from './data-path.js';
import type { DaemonOptions } from './options.js';
import type { DaemonRole, Reloaded, RoleSnapshot } from './role.js';
import type { DaemonState } from './state-file.js';
import { vipRows } from './vip-state.js';

const classesOf = (rules: readonly Rule[]) => rules.map((r) => ({ family: r.family, dscp: r.dscp }));
/** With loopback-vips, every VIP goes on lo, L3DSR and L2DSR alike (dsrctl puts them all there). */
const vipsOf = (rules: readonly Rule[], l2dsr: readonly L2dsrVip[]) => [
  ...rules.map((r) => ({ family: r.family, address: r.destination })), ...l2dsr.map(({ family, address }) => ({ family, address })),
];

export class RealServerSystem implements DaemonRole {
  readonly configured = 'rules';
  readonly #options: DaemonOptions;
  readonly #log: Logger;
  readonly #steering: Steering | undefined;
  /** Always there, so that VIPs an earlier run added are removed even if this run adds none. */
  readonly #loopback: LoopbackVips;
  #rules: Rule[];
  #l2dsr: L2dsrVip[];

  /**
   * `record` writes the state file: steering and the VIPs call it before
   * each change they make, so a kill -9 at any moment loses none.
   */
  constructor(options: DaemonOptions, log: Logger, record: () => Promise<void>) {
    this.#options = options;
    this.#log = log;
    this.#rules = options.rules;
    this.#l2dsr = options.l2dsr;
    this.#loopback = new LoopbackVips({ recordAdded: record });
    this.#steering = options.noSteer ? undefined : new Steering({
      interfaces: options.steer, tun: options.tun, recordOwnership: record,
      afterStep: (argv) => log.debug('changed the system', { command: formatCommand(argv) }),
    });
  }

  /** What the state file records of this part: what remove…() would undo. */
  get ownership(): Pick<DaemonState, 'steering' | 'loopback'> {
    return { steering: this.#steering?.ownership, loopback: [...this.#loopback.added] };
  }

  /** Whether install will change the system (else it only prints). */
  get steers(): boolean {
    return this.#steering !== undefined;
  }

  path(): PathConfig {
    return { kind: 'rewrite', rules: this.#rules };
  }

  /** Nothing to check: the rewritten packets are delivered locally. */
  async beforeSteering(): Promise<void> {}

  /** Nothing runs beside the rewrite. */
  start(): void {}
  stop(): void {}

  summary(): Record<string, unknown> {
    return { rules: this.#rules.length };
  }

  /** Takes over what a run that died (kill -9) left: qdiscs, sysctls and VIPs it had added are ours to undo now. */
  async adopt(state: DaemonState): Promise<void> {
    if (this.#steering && state.steering) this.#steering.adopt(state.steering);
    await this.#loopback.adopt(state.loopback);
  }

  /** Steers the rules' DSCPs into the TUN; with --no-steer prints the commands that would. */
  async installSteering(): Promise<void> {
    const rules = this.#rules;
    if (this.#steering) {
      const cmds = await this.#steering.install(classesOf(rules));
      this.#log.info('steering installed', { interfaces: this.#options.steer.join(','), commands: cmds.length });
      return;
    }
    const { steer, tun } = this.#options;
    const plan = new Steering({ interfaces: steer.length ? steer : ['IFACE'], tun, dryRun: true });
    const cmds = await plan.install(classesOf(rules));
    this.#log.warn('--no-steer: steer marked packets into the TUN yourself, for example with:');
    for (const c of cmds) process.stdout.write(`${formatCommand(c)}\n`);
  }

  /** Puts the VIPs on lo (with loopback-vips). */
  async addVips(): Promise<void> {
    if (!this.#options.loopbackVips) return;
    const vips = vipsOf(this.#rules, this.#l2dsr);
    const cmds = await this.#loopback.add(vips);
    this.#log.info('VIPs on lo', { added: cmds.length, vips: vips.map((v) => v.address).join(',') });
  }

  async reload(): Promise<Reloaded> {
    const config = await loadConfiguration({ configs: this.#options.configPaths, rules: this.#options.ruleSpecs });
    return { daemon: config.daemon, warnings: config.warnings, apply: (configureQueues) => this.#apply(config.rules, config.l2dsr, configureQueues) };
  }

  /**
   * The rules of a reload: steering first adds filters for new DSCPs, the
   * core then knows them; filters for DSCPs that went away are removed last,
   * so no marked packet meets a gap. Then the VIPs on lo (adding first,
   * removing after).
   */
  async #apply(next: Rule[], nextL2dsr: L2dsrVip[], configureQueues: (config: PathConfig) => Promise<void>): Promise<void> {
    await this.#steering?.update(classesOf([...this.#rules, ...next]));
    await configureQueues({ kind: 'rewrite', rules: next });
    await this.#steering?.update(classesOf(next));
    if (this.#options.loopbackVips) {
      await this.#loopback.add(vipsOf(next, nextL2dsr));
      await this.#loopback.retain(vipsOf(next, nextL2dsr));
    }
    this.#rules = next;
    this.#l2dsr = nextL2dsr;
  }

  async removeSteering(): Promise<void> {
    await this.#steering?.remove();
  }

  async removeVips(): Promise<void> {
    await this.#loopback.remove();
  }

  /** This part of a snapshot. Prometheus scrapes /metrics often: it does not need the steering, which is read with tc. */
  async snapshot(full: boolean): Promise<RoleSnapshot> {
    const steering = this.#steering;
    const rules = this.#rules;
    const l2dsr = this.#l2dsr;
    const status = steering && full ? await steering.status().catch((e: Error) => e.message) : undefined;
    return {
      rules,
      l2dsr,
      steering: { mode: steering ? 'tc' : 'none', interfaces: [...this.#options.steer], status },
      loopbackVips: this.#loopback.added.map((a) => a.address),
      vips: full ? vipRows({ rules, l2dsr, lo: await this.#loopback.present(), steering: status, tun: this.#options.tun }) : undefined,
    };
  }
}
