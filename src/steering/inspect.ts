// Reads the steering state of interfaces back from the kernel: which qdisc
// gives the ingress hook, and which filters in our priority range exist.
// Used by Steering itself and by `l3dsr status`.
import type { Family } from '../core/types.js';
import { tc, tcJson, type Where } from '../system/index.js';
import { DSCP_CLASSES, classifyFilters, parseFilterListing, type FilterKind, type FilterListing, type SteeredClass } from './filters.js';

export interface InterfaceSteering<C extends { family: Family } = SteeredClass> extends FilterListing<C> {
  name: string;
  /** A clsact (or plain ingress) qdisc is there: filters can hang on ingress. */
  hasClsact: boolean;
}

export interface SteeringStatus<C extends { family: Family } = SteeredClass> {
  interfaces: InterfaceSteering<C>[];
}

/** clsact, or the older `ingress` qdisc: either gives the ingress hook. */
export async function hasIngressQdisc(dev: string, where: Where): Promise<boolean> {
  const qdiscs = await tcJson<Array<{ kind?: string }>>(['qdisc', 'show', 'dev', dev], where);
  return qdiscs.some((q) => q.kind === 'clsact' || q.kind === 'ingress');
}

/** Ingress filters of `dev`, sorted into ours (of `kind`) and the rest (none without an ingress qdisc). */
export async function listFilters<C extends { family: Family } = SteeredClass>(
  dev: string, where: Where, priorityBase: number, kind?: FilterKind<C>,
): Promise<FilterListing<C>> {
  const entries = (await hasIngressQdisc(dev, where))
    ? parseFilterListing(await tc(['-j', 'filter', 'show', 'dev', dev, 'ingress'], where))
    : [];
  return classifyFilters(entries, priorityBase, kind);
}

/** Whether anything hangs on the egress side of a clsact (then the clsact is in use). */
export async function hasEgressFilters(dev: string, where: Where): Promise<boolean> {
  const qdiscs = await tcJson<Array<{ kind?: string }>>(['qdisc', 'show', 'dev', dev], where);
  if (!qdiscs.some((q) => q.kind === 'clsact')) return false;
  return (await tcJson<unknown[]>(['filter', 'show', 'dev', dev, 'egress'], where)).length > 0;
}

/** What is steered now on each interface. */
export async function inspectSteering<C extends { family: Family } = SteeredClass>(options: {
  interfaces: readonly string[]; netns?: string; priorityBase?: number; kind?: FilterKind<C>;
}): Promise<SteeringStatus<C>> {
  const where: Where = options.netns === undefined ? {} : { netns: options.netns };
  const kind = options.kind ?? (DSCP_CLASSES as unknown as FilterKind<C>);
  const base = options.priorityBase ?? kind.defaultPriorityBase;
  const interfaces: InterfaceSteering<C>[] = [];
  for (const name of options.interfaces) {
    interfaces.push({ name, hasClsact: await hasIngressQdisc(name, where), ...(await listFilters(name, where, base, kind)) });
  }
  return { interfaces };
}
