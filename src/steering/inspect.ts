// Reads the steering state of interfaces back from the kernel: which qdisc
// gives the ingress hook, and which filters in our priority range exist.
// Used by Steering itself and by `l3dsr status`.
import { tcJson, type Where } from '../system/index.js';
import { DEFAULT_PRIORITY_BASE, classifyFilters, type FilterListing, type TcFilterJson } from './filters.js';

export interface InterfaceSteering extends FilterListing {
  name: string;
  /** A clsact (or plain ingress) qdisc is there: filters can hang on ingress. */
  hasClsact: boolean;
}

export interface SteeringStatus {
  interfaces: InterfaceSteering[];
}

/** clsact, or the older `ingress` qdisc: either gives the ingress hook. */
export async function hasIngressQdisc(dev: string, where: Where): Promise<boolean> {
  const qdiscs = await tcJson<Array<{ kind?: string }>>(['qdisc', 'show', 'dev', dev], where);
  return qdiscs.some((q) => q.kind === 'clsact' || q.kind === 'ingress');
}

/** Ingress filters of `dev`, sorted into ours and the rest (none without an ingress qdisc). */
export async function listFilters(dev: string, where: Where, priorityBase: number): Promise<FilterListing> {
  const entries = (await hasIngressQdisc(dev, where))
    ? await tcJson<TcFilterJson[]>(['filter', 'show', 'dev', dev, 'ingress'], where)
    : [];
  return classifyFilters(entries, priorityBase);
}

/** Whether anything hangs on the egress side of a clsact (then the clsact is in use). */
export async function hasEgressFilters(dev: string, where: Where): Promise<boolean> {
  const qdiscs = await tcJson<Array<{ kind?: string }>>(['qdisc', 'show', 'dev', dev], where);
  if (!qdiscs.some((q) => q.kind === 'clsact')) return false;
  return (await tcJson<unknown[]>(['filter', 'show', 'dev', dev, 'egress'], where)).length > 0;
}

/** What is steered now on each interface. */
export async function inspectSteering(options: { interfaces: readonly string[]; netns?: string; priorityBase?: number }): Promise<SteeringStatus> {
  const where: Where = options.netns === undefined ? {} : { netns: options.netns };
  const base = options.priorityBase ?? DEFAULT_PRIORITY_BASE;
  const interfaces: InterfaceSteering[] = [];
  for (const name of options.interfaces) {
    interfaces.push({ name, hasClsact: await hasIngressQdisc(name, where), ...(await listFilters(name, where, base)) });
  }
  return { interfaces };
}
