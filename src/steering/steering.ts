// Installs, replaces and removes what sends packets into the TUN (docs/lab.md,
// "Steering: tc ingress redirect"; the balancer's in docs/lb.md#steering): a
// clsact qdisc per steered interface (only if it has none), our u32 filters
// of one kind (by DSCP on the real server, by destination on the balancer,
// filters.ts), and rp_filter=0 on the TUN and `all`. Replacing the filter
// set never leaves a moment without one complete set: the new set is added
// in the free band before the old band goes.
import { L3dsrError } from '../errors.js';
import { commandLine, formatCommand, ip, readSysctl, tc, writeSysctl, type Where } from '../system/index.js';
import { hasEgressFilters, hasIngressQdisc, inspectSteering, listFilters, type SteeringStatus } from './inspect.js';
import {
  DSCP_CLASSES, filterAddArgs, filterDeleteArgs, guardAddArgs, priorityOf, prioritiesOfOthers, type Band, type FilterKind, type FilterListing,
  type SteeredClass,
} from './filters.js';
import type { Family } from '../core/types.js';

export interface SteeringOptions<C extends { family: Family } = SteeredClass> {
  /** What a filter matches: DSCP_CLASSES (the default) or DESTINATION_CLASSES. */
  kind?: FilterKind<C>;
  /** Interfaces whose ingress is steered (where marked packets arrive). */
  interfaces: readonly string[];
  /** The TUN the daemon reads. */
  tun: string;
  /** Network namespace to work in; default the caller's. */
  netns?: string;
  /** First of the four tc priorities we own; default the kind's (DEFAULT_PRIORITY_BASE for DSCPs). */
  priorityBase?: number;
  /** Plan only: install/update/remove return the commands and change nothing. */
  dryRun?: boolean;
  /** Called after each command that changed something (the daemon logs it at debug; tests sample the kernel state). */
  afterStep?: (argv: readonly string[]) => void | Promise<void>;
  /**
   * Records `ownership` (the daemon writes its state file). Called before
   * each command that adds to what remove() must undo (a clsact qdisc, an
   * rp_filter write), with the addition already in `ownership`, and again
   * if the command fails: a process killed right after the command has
   * recorded it, so the run that takes over undoes it.
   */
  recordOwnership?: () => Promise<void>;
}

/** One change to the system, as the command a person would run for it. */
export type Step = (
  | { tool: 'tc'; args: string[] }
  | { sysctl: string; value: string }
) & {
  /**
   * Bookkeeping before the step runs (never in a dry run): claims what
   * remove() must undo; returns how to give the claim back if the step
   * fails, or undefined if there was nothing new to claim.
   */
  claim?: () => (() => void) | undefined;
};

/**
 * What a Steering instance changed beyond its own filters and must undo:
 * the daemon keeps it in a state file so that a run that follows a crash
 * (kill -9) can take it over and still undo it.
 */
export interface SteeringOwnership {
  /** Interfaces where we added the clsact qdisc. */
  createdClsact: string[];
  /** sysctl key -> the value it had before we set it. */
  sysctls: Record<string, string>;
}

/** Sysctl keys in slash form: interface names may contain dots. */
const rpFilterKey = (dev: string): string => `net/ipv4/conf/${dev}/rp_filter`;
/** The only sysctls steering changes (and so the only ones a state file may name): rp_filter of `all` and of the TUN. */
export const rpFilterKeys = (tun: string): string[] => [rpFilterKey('all'), rpFilterKey(tun)];
/** Off, strict, loose: every value rp_filter can have, and so every value we may restore. */
export const RP_FILTER_VALUES: readonly string[] = ['0', '1', '2'];
const RP_FILTER_OFF = '0';

interface BandChange {
  steps: Step[];
  band: Band;
  /** Deletes the target band again if filling it failed. */
  rollback: Step[];
}

interface SavedSysctl {
  previous: string;
}

export class Steering<C extends { family: Family } = SteeredClass> {
  readonly kind: FilterKind<C>;
  readonly interfaces: readonly string[];
  readonly tun: string;
  readonly priorityBase: number;
  readonly dryRun: boolean;
  readonly #where: Where;
  readonly #afterStep: SteeringOptions['afterStep'];
  readonly #recordOwnership: SteeringOptions['recordOwnership'];
  /** Interfaces where we added the clsact qdisc (only those may lose it again). */
  readonly #createdClsact = new Set<string>();
  readonly #savedSysctls = new Map<string, SavedSysctl>();
  #activeBand: Band | undefined;
  #classes: C[] = [];

  constructor(options: SteeringOptions<C>) {
    if (options.interfaces.length === 0) throw new L3dsrError('ERR_L3DSR_STEERING_CONFIG', 'steering needs at least one interface');
    this.kind = options.kind ?? (DSCP_CLASSES as unknown as FilterKind<C>);
    const base = options.priorityBase ?? this.kind.defaultPriorityBase;
    if (!Number.isInteger(base) || base < 1 || base + 3 > 0xffff) {
      throw new L3dsrError('ERR_L3DSR_STEERING_CONFIG', `priority base ${base}: must be an integer with base+3 within 1-65535`);
    }
    this.interfaces = [...options.interfaces];
    this.tun = options.tun;
    this.priorityBase = base;
    this.dryRun = options.dryRun ?? false;
    this.#where = options.netns === undefined ? {} : { netns: options.netns };
    this.#afterStep = options.afterStep;
    this.#recordOwnership = options.recordOwnership;
  }

  /** What remove() will undo besides our filters. */
  get ownership(): SteeringOwnership {
    return {
      createdClsact: [...this.#createdClsact],
      sysctls: Object.fromEntries([...this.#savedSysctls].map(([k, v]) => [k, v.previous])),
    };
  }

  /**
   * Takes over what an earlier run that died had changed, so that remove()
   * undoes it too. Call before install(); only our own interfaces and
   * sysctls count.
   */
  adopt(earlier: SteeringOwnership): void {
    for (const dev of earlier.createdClsact) if (this.interfaces.includes(dev)) this.#createdClsact.add(dev);
    const ours = rpFilterKeys(this.tun);
    for (const [key, previous] of Object.entries(earlier.sysctls)) {
      if (ours.includes(key) && !this.#savedSysctls.has(key)) this.#savedSysctls.set(key, { previous });
    }
  }

  /** The classes currently steered by this instance (after install/update). */
  get classes(): readonly C[] {
    return this.#classes;
  }

  /**
   * Makes our filters on every interface exactly `classes`, taking over (and
   * then deleting) filters left in our range by an earlier run. Idempotent.
   * Resolves with the commands run (or, in dry-run mode, that would run).
   */
  async install(classes: readonly C[]): Promise<string[][]> {
    const wanted = this.#normalise(classes);
    if (!this.dryRun) await this.#requireTun();
    const plan: Step[] = [];
    for (const dev of this.interfaces) {
      if (!(await this.#hasIngressQdisc(dev))) {
        plan.push({
          tool: 'tc',
          args: ['qdisc', 'add', 'dev', dev, 'clsact'],
          claim: () => {
            if (this.#createdClsact.has(dev)) return undefined;
            this.#createdClsact.add(dev);
            return () => this.#createdClsact.delete(dev);
          },
        });
      }
    }
    for (const key of rpFilterKeys(this.tun)) {
      // Only a dry run gets here without the TUN: then plan the write.
      const current = await readSysctl(key, this.#where).catch(() => undefined);
      if (current === RP_FILTER_OFF) continue;
      plan.push({
        sysctl: key,
        value: RP_FILTER_OFF,
        claim: () => {
          if (current === undefined || this.#savedSysctls.has(key)) return undefined;
          this.#savedSysctls.set(key, { previous: current });
          return () => this.#savedSysctls.delete(key);
        },
      });
    }
    const change = this.#switchPlan(wanted, await this.#listAll());
    plan.push(...change.steps);
    return this.#execute(plan, change, wanted);
  }

  /** Replaces the steered classes without a gap (new filters first, old ones after). */
  async update(classes: readonly C[]): Promise<string[][]> {
    if (this.#activeBand === undefined && !this.dryRun) {
      throw new L3dsrError('ERR_L3DSR_STEERING_STATE', 'update() before install()');
    }
    const wanted = this.#normalise(classes);
    const change = this.#switchPlan(wanted, await this.#listAll());
    return this.#execute(change.steps, change, wanted);
  }

  /**
   * Removes our filters (both bands, including stale ones), the clsact
   * qdiscs we added if nothing else uses them, and restores the sysctls we
   * changed unless someone changed them since.
   */
  async remove(): Promise<string[][]> {
    const plan: Step[] = [];
    const listings = await this.#listAll();
    for (const [dev, listing] of listings) {
      const others = prioritiesOfOthers(listing, this.tun);
      for (const priority of new Set(listing.ours.map((f) => f.priority))) {
        if (!others.includes(priority)) plan.push({ tool: 'tc', args: filterDeleteArgs(dev, priority) });
      }
      const foreignLeft = listing.othersCount + listing.foreignInRange.length + others.length > 0 || (await this.#hasEgressFilters(dev));
      if (this.#createdClsact.has(dev) && !foreignLeft) plan.push({ tool: 'tc', args: ['qdisc', 'del', 'dev', dev, 'clsact'] });
    }
    for (const [key, saved] of this.#savedSysctls) {
      const current = await readSysctl(key, this.#where).catch(() => undefined);
      // The TUN may be gone already; a value someone changed after us is theirs.
      if (current === RP_FILTER_OFF) plan.push({ sysctl: key, value: saved.previous });
    }
    const commands = await this.#execute(plan);
    if (!this.dryRun) {
      this.#activeBand = undefined;
      this.#classes = [];
      this.#createdClsact.clear();
      this.#savedSysctls.clear();
    }
    return commands;
  }

  /** What is steered right now on our interfaces, read from the kernel. */
  status(): Promise<SteeringStatus<C>> {
    return inspectSteering({ interfaces: this.interfaces, ...this.#where, priorityBase: this.priorityBase, kind: this.kind });
  }

  /** Human-readable form of commands returned by install/update/remove. */
  static format(commands: readonly string[][]): string {
    return commands.map(formatCommand).join('\n');
  }

  /** Steps that move our filters to `wanted` through the free band, and how to undo a partial run. */
  #switchPlan(wanted: C[], listings: Map<string, FilterListing<C>>): BandChange {
    const steps: Step[] = [];
    for (const [dev, listing] of listings) {
      if (listing.foreignInRange.length > 0) {
        throw new L3dsrError(
          'ERR_L3DSR_STEERING_PRIORITY_TAKEN',
          `${dev}: tc priorities ${listing.foreignInRange.join(', ')} hold filters that are not l3dsr's; ` +
            `choose another priority base (now ${this.priorityBase}, we use ${this.priorityBase}-${this.priorityBase + 3})`,
        );
      }
      const others = prioritiesOfOthers(listing, this.tun);
      if (others.length > 0) {
        const into = [...new Set(listing.ours.filter((f) => others.includes(f.priority)).map((f) => f.target))].join(', ');
        throw new L3dsrError(
          'ERR_L3DSR_STEERING_PRIORITY_TAKEN',
          `${dev}: tc priorities ${others.join(', ')} steer into ${into}, which exists: another l3dsr steers this interface; ` +
            'stop it, or steer another interface',
        );
      }
    }
    const occupied = (band: Band) => [...listings.values()].some((l) => l.ours.some((f) => f.band === band));
    // The band to fill must be empty everywhere. Both are occupied only when
    // a process died in the middle of an update; band 1 is then emptied
    // first and band 0 carries the traffic meanwhile.
    const target: Band = occupied(0) ? 1 : 0;
    for (const [dev, listing] of listings) {
      for (const priority of new Set(listing.ours.filter((f) => f.band === target).map((f) => f.priority))) {
        steps.push({ tool: 'tc', args: filterDeleteArgs(dev, priority) });
      }
    }
    const families = [...new Set(wanted.map((c) => c.family))];
    for (const dev of this.interfaces) {
      // Guards first: u32 tries an instance's filters in the order they were added.
      for (const family of families) {
        for (const guard of this.kind.guards(family)) {
          steps.push({ tool: 'tc', args: guardAddArgs(dev, priorityOf(this.priorityBase, target, family), family, guard) });
        }
      }
      for (const cls of wanted) {
        steps.push({ tool: 'tc', args: filterAddArgs(dev, priorityOf(this.priorityBase, target, cls.family), cls, this.tun, this.kind) });
      }
    }
    for (const [dev, listing] of listings) {
      for (const priority of new Set(listing.ours.filter((f) => f.band !== target).map((f) => f.priority))) {
        steps.push({ tool: 'tc', args: filterDeleteArgs(dev, priority) });
      }
    }
    const rollback: Step[] = this.interfaces.flatMap((dev) =>
      families.map((family) => ({ tool: 'tc' as const, args: filterDeleteArgs(dev, priorityOf(this.priorityBase, target, family)) })));
    return { steps, band: target, rollback };
  }

  /**
   * Runs the plan (or only returns its commands in a dry run). When a band
   * change fails half-way, the half-filled band is deleted again so that the
   * old complete set stays the only one.
   */
  async #execute(plan: Step[], change?: BandChange, wanted?: C[]): Promise<string[][]> {
    const commands = plan.map((step) => this.#argv(step));
    if (this.dryRun) return commands;
    try {
      for (const [k, step] of plan.entries()) {
        await this.#run(step);
        await this.#afterStep?.(commands[k]!);
      }
    } catch (err) {
      for (const step of change?.rollback ?? []) await this.#run(step).catch(() => {});
      throw err;
    }
    if (change !== undefined && wanted !== undefined) {
      this.#activeBand = change.band;
      this.#classes = wanted;
    }
    return commands;
  }

  async #run(step: Step): Promise<void> {
    // Recorded before it is done: recorded after, a kill in between would lose it.
    const release = step.claim?.();
    if (release) await this.#record(release);
    try {
      if ('tool' in step) await tc(step.args, this.#where);
      else await writeSysctl(step.sysctl, step.value, this.#where);
    } catch (err) {
      if (release) {
        release();
        // The step's own error is the one to report.
        await this.#recordOwnership?.().catch(() => {});
      }
      throw err;
    }
  }

  /** Records a claim; one that cannot be recorded is given back, and its step not run. */
  async #record(release: () => void): Promise<void> {
    try {
      await this.#recordOwnership?.();
    } catch (err) {
      release();
      throw err;
    }
  }

  async #requireTun(): Promise<void> {
    try {
      await ip(['link', 'show', 'dev', this.tun], this.#where);
    } catch (err) {
      const where = this.#where.netns ? ` in namespace ${this.#where.netns}` : '';
      throw new L3dsrError('ERR_L3DSR_STEERING_NO_TUN', `TUN ${this.tun} does not exist${where}: ${(err as Error).message}`, { cause: err });
    }
  }

  #argv(step: Step): string[] {
    if ('tool' in step) return commandLine(step.tool, step.args, this.#where);
    return commandLine('sysctl', ['-w', `${step.sysctl}=${step.value}`], this.#where);
  }

  async #listAll(): Promise<Map<string, FilterListing<C>>> {
    const result = new Map<string, FilterListing<C>>();
    const none: FilterListing<C> = { ours: [], foreignInRange: [], othersCount: 0 };
    for (const dev of this.interfaces) result.set(dev, await this.#inspect(listFilters(dev, this.#where, this.priorityBase, this.kind), none));
    return result;
  }

  /** Sorted, without duplicates, validated. */
  #normalise(classes: readonly C[]): C[] {
    const byKey = new Map<string, C>();
    for (const c of classes) {
      const checked = this.kind.check(c);
      if (typeof checked === 'string') throw new L3dsrError('ERR_L3DSR_STEERING_CONFIG', checked);
      byKey.set(this.kind.text(checked), checked);
    }
    return [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, c]) => c);
  }

  #hasIngressQdisc(dev: string): Promise<boolean> {
    return this.#inspect(hasIngressQdisc(dev, this.#where), false);
  }

  #hasEgressFilters(dev: string): Promise<boolean> {
    return this.#inspect(hasEgressFilters(dev, this.#where), false);
  }

  /**
   * A dry run may name interfaces that do not exist (yet, or here: `--no-steer`
   * prints commands for another machine); it then plans for a bare interface.
   */
  #inspect<T>(reading: Promise<T>, bare: T): Promise<T> {
    return this.dryRun ? reading.catch(() => bare) : reading;
  }
}
