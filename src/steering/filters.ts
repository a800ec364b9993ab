// The tc filters that steer marked packets into the TUN, as commands and as
// read back from `tc -j filter show`. One u32 classifier instance per
// (band, family), each at its own priority, one match per DSCP:
//
//   tc filter add dev IF ingress protocol ip   prio P u32 match ip  dsfield  (d<<2) 0xfc action mirred egress redirect dev TUN
//   tc filter add dev IF ingress protocol ipv6 prio P u32 match ip6 priority (d<<2) 0xfc action mirred egress redirect dev TUN
//
// Our filters are recognised by priority alone: four consecutive priorities
// from `priorityBase`, two bands of (IPv4, IPv6). u32 handles are assigned
// by the kernel per qdisc, so we never choose them (an explicit `800::` could
// collide with someone else's hash table); deleting a whole priority removes
// exactly our classifier instance and its handles.
import type { Family } from '../core/types.js';

/** What one steering filter matches. */
export interface SteeredClass {
  family: Family;
  dscp: number;
}

export type Band = 0 | 1;

/** Default first priority of our range; rarely used by hand-written filters. */
export const DEFAULT_PRIORITY_BASE = 49152;
/** How many priorities we own from the base: 2 bands × 2 families. */
export const PRIORITIES_USED = 4;
/** DSCP sits in the top six bits of the IPv4 TOS byte / IPv6 traffic class. */
export const DSCP_SHIFT = 2;
export const DSCP_MASK = 0xfc;
/** Where u32 finds the traffic class in the first IPv6 word (`ip6 priority`). */
const IPV6_TCLASS_SHIFT = 20;
/** Where u32 finds the TOS byte in the first IPv4 word (`ip dsfield`). */
const IPV4_TOS_SHIFT = 16;

const TC_PROTOCOL: Record<Family, 'ip' | 'ipv6'> = { 4: 'ip', 6: 'ipv6' };

export const priorityOf = (base: number, band: Band, family: Family): number => base + band * 2 + (family === 4 ? 0 : 1);

/** Band and family of a priority in our range, or undefined when it is not ours. */
export function ownerOf(base: number, priority: number): { band: Band; family: Family } | undefined {
  const offset = priority - base;
  if (!Number.isInteger(offset) || offset < 0 || offset >= PRIORITIES_USED) return undefined;
  return { band: (offset >> 1) as Band, family: offset % 2 === 0 ? 4 : 6 };
}

const hexByte = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** `tc` arguments adding one steering filter. */
export function filterAddArgs(dev: string, priority: number, cls: SteeredClass, tun: string): string[] {
  const field = cls.family === 4 ? ['ip', 'dsfield'] : ['ip6', 'priority'];
  return [
    'filter', 'add', 'dev', dev, 'ingress', 'protocol', TC_PROTOCOL[cls.family], 'prio', String(priority),
    'u32', 'match', ...field, hexByte(cls.dscp << DSCP_SHIFT), hexByte(DSCP_MASK),
    'action', 'mirred', 'egress', 'redirect', 'dev', tun,
  ];
}

/** `tc` arguments deleting every filter at one priority (our whole classifier instance). */
export const filterDeleteArgs = (dev: string, priority: number): string[] =>
  ['filter', 'del', 'dev', dev, 'ingress', 'prio', String(priority)];

/** One entry of `tc -j filter show dev IF ingress` (only the fields we read). */
export interface TcFilterJson {
  protocol?: string;
  pref?: number;
  kind?: string;
  options?: {
    fh?: string;
    match?: { value?: string; mask?: string; off?: number } | Array<{ value?: string; mask?: string; off?: number }>;
    actions?: Array<{ kind?: string; mirred_action?: string; direction?: string; to_dev?: string }>;
  };
}

/** A steering filter found on an interface. */
export interface InstalledFilter extends SteeredClass {
  priority: number;
  band: Band;
  /** u32 handle, e.g. `800::800`. */
  handle: string;
  /** Redirect target; `*` when that device no longer exists (a TUN of a dead process). */
  target: string;
}

export interface FilterListing {
  /** Our steering filters (priority in range and shaped like ours). */
  ours: InstalledFilter[];
  /** Priorities in our range holding something we did not write: never touched. */
  foreignInRange: number[];
  /** Number of filter entries outside our range. */
  othersCount: number;
}

/** Sorts `tc -j filter show … ingress` output into ours, foreign-in-our-range, and the rest. */
export function classifyFilters(entries: readonly TcFilterJson[], base: number): FilterListing {
  const ours: InstalledFilter[] = [];
  const foreign = new Set<number>();
  let othersCount = 0;
  for (const entry of entries) {
    const priority = entry.pref;
    const owner = priority === undefined ? undefined : ownerOf(base, priority);
    if (owner === undefined || priority === undefined) {
      othersCount++;
      continue;
    }
    if (entry.kind !== 'u32' || entry.protocol !== TC_PROTOCOL[owner.family]) {
      foreign.add(priority);
      continue;
    }
    // u32 lists its instance and its hash table as entries without a match.
    const options = entry.options;
    if (options?.match === undefined) continue;
    const found = ourFilter(options, owner.family);
    if (found === undefined) foreign.add(priority);
    else ours.push({ ...found, family: owner.family, priority, band: owner.band });
  }
  return { ours, foreignInRange: [...foreign].sort((a, b) => a - b), othersCount };
}

function ourFilter(options: NonNullable<TcFilterJson['options']>, family: Family): { dscp: number; handle: string; target: string } | undefined {
  const matches = Array.isArray(options.match) ? options.match : [options.match];
  const action = options.actions;
  if (matches.length !== 1 || action?.length !== 1) return undefined;
  const [m] = matches;
  const [a] = action;
  if (m?.value === undefined || m.mask === undefined || m.off !== 0) return undefined;
  if (a?.kind !== 'mirred' || a.mirred_action !== 'redirect' || a.direction !== 'egress' || a.to_dev === undefined) return undefined;
  const shift = family === 4 ? IPV4_TOS_SHIFT : IPV6_TCLASS_SHIFT;
  const value = Number.parseInt(m.value, 16);
  const mask = Number.parseInt(m.mask, 16);
  if (mask !== DSCP_MASK << shift || (value & ~mask) !== 0) return undefined;
  return { dscp: (value >>> shift) >> DSCP_SHIFT, handle: options.fh ?? '', target: a.to_dev };
}
