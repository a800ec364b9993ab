// The tc filters that steer packets into the TUN, as commands and as read
// back from `tc -j filter show`. One u32 classifier instance per (band,
// family), each at its own priority, one filter per class. A class is what
// one filter matches; its kind says how it is written and read back:
//
//   DSCP (the real server, `l3dsr run`): packets marked for a VIP
//   tc filter add dev IF ingress protocol ip   prio P u32 match ip  dsfield  (d<<2) 0xfc action mirred egress redirect dev TUN
//   tc filter add dev IF ingress protocol ipv6 prio P u32 match ip6 priority (d<<2) 0xfc action mirred egress redirect dev TUN
//
//   destination (the balancer, `l3dsr lb`): packets to a VIP
//   tc filter add dev IF ingress protocol ip   prio P u32 match ip  dst VIP/32  action mirred egress redirect dev TUN
//   tc filter add dev IF ingress protocol ipv6 prio P u32 match ip6 dst VIP/128 action mirred egress redirect dev TUN
//
// A kind may also have guards: filters that come first in a family's
// instance and let some packets go on untouched (the balancer's keep
// neighbour discovery out of the TUN, docs/lb.md#steering).
//
// Our filters are recognised by priority alone: four consecutive priorities
// from `priorityBase`, two bands of (IPv4, IPv6). u32 handles are assigned
// by the kernel per qdisc, so we never choose them (an explicit `800::` could
// collide with someone else's hash table); deleting a whole priority removes
// exactly our classifier instance and its handles. Within one instance u32
// tries filters in the order of their handles, which the kernel hands out
// in the order filters are added to a fresh instance: guards are added first.
import { parseAddress } from '../core/address.js';
import type { Family } from '../core/types.js';

/** What one steering filter of the real server matches: a DSCP of a family. */
export interface DscpClass {
  family: Family;
  dscp: number;
}

/** What one steering filter of the balancer matches: a destination address (a VIP). */
export interface DestinationClass {
  family: Family;
  /** Canonical text. */
  destination: string;
}

/** The real server's class, the default kind's. */
export type SteeredClass = DscpClass;

/** One 32-bit u32 key: the packet's word at `off` (from the network header) under `mask` equals `value`. */
export interface U32Key {
  off: number;
  value: number;
  mask: number;
}

/** How the filters of one kind of class are written and read back. */
export interface FilterKind<C extends { family: Family }> {
  readonly name: string;
  /** The first of the four priorities this kind owns unless told otherwise. */
  readonly defaultPriorityBase: number;
  /** A canonical copy of `cls`, or why it cannot be steered. */
  check(cls: C): C | string;
  /** Identity text (`4/17`, `6/2001:db8::10`): tells classes apart and sorts them. */
  text(cls: C): string;
  /** The u32 selector (`match …` arguments) of one class. */
  selector(cls: C): string[];
  /** The class whose filter has these keys, or undefined when they are none of this kind's. */
  read(family: Family, keys: readonly U32Key[]): C | undefined;
  /** Guards of a family: selectors and the keys tc reads back for them, added first, passing packets on. */
  guards(family: Family): readonly Guard[];
}

export interface Guard {
  selector: string[];
  keys: readonly U32Key[];
}

export type Band = 0 | 1;

/** Default first priority of the real server's range; rarely used by hand-written filters. */
export const DEFAULT_PRIORITY_BASE = 49152;
/** The balancer's: after the server's, so that one host can run both. */
export const DEFAULT_LB_PRIORITY_BASE = 49156;
/** How many priorities we own from the base: 2 bands × 2 families. */
export const PRIORITIES_USED = 4;
/** DSCP sits in the top six bits of the IPv4 TOS byte / IPv6 traffic class. */
export const DSCP_SHIFT = 2;
export const DSCP_MASK = 0xfc;
/** Where u32 finds the traffic class in the first IPv6 word (`ip6 priority`). */
const IPV6_TCLASS_SHIFT = 20;
/** Where u32 finds the TOS byte in the first IPv4 word (`ip dsfield`). */
const IPV4_TOS_SHIFT = 16;
/** Offsets of the destination address in the IPv4 and IPv6 headers. */
const IPV4_DST_OFFSET = 16;
const IPV6_DST_OFFSET = 24;
/**
 * A guard has no action, only a class id: u32 then ends the classification
 * with "go on" (TC_ACT_OK). `action pass` would say the same through
 * act_gact, which not every kernel has built in (this project's test VM
 * lacks it); clsact has no classes, so the id means nothing else.
 */
const GUARD_CLASSID = 'ffff:1';

const TC_PROTOCOL: Record<Family, 'ip' | 'ipv6'> = { 4: 'ip', 6: 'ipv6' };

export const priorityOf = (base: number, band: Band, family: Family): number => base + band * 2 + (family === 4 ? 0 : 1);

/** Band and family of a priority in our range, or undefined when it is not ours. */
export function ownerOf(base: number, priority: number): { band: Band; family: Family } | undefined {
  const offset = priority - base;
  if (!Number.isInteger(offset) || offset < 0 || offset >= PRIORITIES_USED) return undefined;
  return { band: (offset >> 1) as Band, family: offset % 2 === 0 ? 4 : 6 };
}

const hexByte = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;
const sameKeys = (a: readonly U32Key[], b: readonly U32Key[]): boolean =>
  a.length === b.length && a.every((k, i) => k.off === b[i]!.off && k.value === b[i]!.value && k.mask === b[i]!.mask);

/** The real server's kind: one filter per DSCP and family. */
export const DSCP_CLASSES: FilterKind<DscpClass> = {
  name: 'dscp',
  defaultPriorityBase: DEFAULT_PRIORITY_BASE,
  check(c) {
    if (c.family !== 4 && c.family !== 6) return `family ${String(c.family)}: expected 4 or 6`;
    if (!Number.isInteger(c.dscp) || c.dscp < 0 || c.dscp > 63) return `IPv${c.family} DSCP ${c.dscp}: expected an integer 0-63`;
    return { family: c.family, dscp: c.dscp };
  },
  text: (c) => `${c.family}/${String(c.dscp).padStart(2, '0')}`,
  selector(c) {
    const field = c.family === 4 ? ['ip', 'dsfield'] : ['ip6', 'priority'];
    return ['match', ...field, hexByte(c.dscp << DSCP_SHIFT), hexByte(DSCP_MASK)];
  },
  read(family, keys) {
    const shift = family === 4 ? IPV4_TOS_SHIFT : IPV6_TCLASS_SHIFT;
    const [k] = keys;
    if (keys.length !== 1 || k!.off !== 0 || k!.mask !== DSCP_MASK << shift || (k!.value & ~k!.mask) !== 0) return undefined;
    return { family, dscp: (k!.value >>> shift) >> DSCP_SHIFT };
  },
  guards: () => [],
};

/**
 * Neighbour discovery (ICMPv6 133-137, hop limit 255, RFC 4861) concerns the
 * interface it arrives on: a neighbour solicitation to a VIP that is an
 * address of that interface must be answered there, not handed to the TUN.
 */
const NEIGHBOUR_DISCOVERY: readonly Guard[] = [[0x85, 0xff], [0x86, 0xfe], [0x88, 0xfe]].map(([type, mask]) => ({
  selector: ['match', 'ip6', 'protocol', '58', '0xff', 'match', 'u8', '0xff', '0xff', 'at', '7', 'match', 'u8', hexByte(type!), hexByte(mask!), 'at', '40'],
  // tc merges the next header and hop limit bytes into one key at offset 4.
  keys: [{ off: 4, value: 0x3aff, mask: 0xffff }, { off: 40, value: (type! << 24) >>> 0, mask: (mask! << 24) >>> 0 }],
}));

/** The balancer's kind: one filter per VIP. */
export const DESTINATION_CLASSES: FilterKind<DestinationClass> = {
  name: 'destination',
  defaultPriorityBase: DEFAULT_LB_PRIORITY_BASE,
  check(c) {
    const a = parseAddress(c.destination);
    if (typeof a === 'string') return `destination ${JSON.stringify(c.destination)}: ${a}`;
    if (a.family !== c.family) return `destination ${a.text} is not an IPv${c.family} address`;
    return { family: a.family, destination: a.text };
  },
  text: (c) => `${c.family}/${c.destination}`,
  selector: (c) => ['match', c.family === 4 ? 'ip' : 'ip6', 'dst', `${c.destination}/${c.family === 4 ? 32 : 128}`],
  read(family, keys) {
    const words = family === 4 ? 1 : 4;
    const start = family === 4 ? IPV4_DST_OFFSET : IPV6_DST_OFFSET;
    if (keys.length !== words || keys.some((k, i) => k.off !== start + 4 * i || k.mask !== 0xffffffff)) return undefined;
    const bytes = Buffer.alloc(words * 4);
    keys.forEach((k, i) => bytes.writeUInt32BE(k.value >>> 0, 4 * i));
    const a = parseAddress(family === 4 ? [...bytes].join('.') : (bytes.toString('hex').match(/.{4}/g) ?? []).join(':'));
    return typeof a === 'string' ? undefined : { family, destination: a.text };
  },
  guards: (family) => (family === 6 ? NEIGHBOUR_DISCOVERY : []),
};

/** `tc` arguments adding one steering filter. */
export function filterAddArgs<C extends { family: Family }>(dev: string, priority: number, cls: C, tun: string, kind?: FilterKind<C>): string[] {
  const selector = (kind ?? (DSCP_CLASSES as unknown as FilterKind<C>)).selector(cls);
  return [
    'filter', 'add', 'dev', dev, 'ingress', 'protocol', TC_PROTOCOL[cls.family], 'prio', String(priority),
    'u32', ...selector, 'action', 'mirred', 'egress', 'redirect', 'dev', tun,
  ];
}

/** `tc` arguments adding one guard (no redirect: the packet goes on). */
export const guardAddArgs = (dev: string, priority: number, family: Family, guard: Guard): string[] =>
  ['filter', 'add', 'dev', dev, 'ingress', 'protocol', TC_PROTOCOL[family], 'prio', String(priority), 'u32', ...guard.selector, 'classid', GUARD_CLASSID];

/** `tc` arguments deleting every filter at one priority (our whole classifier instance). */
export const filterDeleteArgs = (dev: string, priority: number): string[] =>
  ['filter', 'del', 'dev', dev, 'ingress', 'prio', String(priority)];

interface TcKeyJson {
  value?: string;
  mask?: string;
  off?: number;
}

/** One entry of `tc -j filter show dev IF ingress` (only the fields we read). */
export interface TcFilterJson {
  protocol?: string;
  pref?: number;
  kind?: string;
  options?: {
    fh?: string;
    flowid?: string;
    match?: TcKeyJson | TcKeyJson[];
    actions?: Array<{ kind?: string; mirred_action?: string; direction?: string; to_dev?: string }>;
  };
}

/**
 * Parses `tc -j filter show` output. tc writes one `"match"` member per u32
 * key into the same object (an IPv6 address is four), and JSON.parse would
 * keep only the last: every key is kept here, in order, as an array.
 */
export function parseFilterListing(text: string): TcFilterJson[] {
  if (text.trim() === '') return [];
  let n = 0;
  // `"match":` is only ever a member name: no value tc prints (hex words,
  // interface names, which cannot hold ":") contains it.
  const numbered = text.replace(/"match":/g, () => `"match ${n++}":`);
  const entries = JSON.parse(numbered) as Array<TcFilterJson & { options?: Record<string, unknown> }>;
  for (const entry of entries) {
    const options = entry.options;
    if (options === undefined) continue;
    const names = Object.keys(options).filter((k) => k.startsWith('match '));
    if (names.length === 0) continue;
    const keys = names.sort((a, b) => Number(a.slice(6)) - Number(b.slice(6))).map((k) => options[k] as TcKeyJson);
    for (const k of names) delete options[k];
    options.match = keys;
  }
  return entries;
}

/** A steering filter found on an interface. */
export type InstalledFilter<C extends { family: Family } = SteeredClass> = C & {
  priority: number;
  band: Band;
  /** u32 handle, e.g. `800::800`. */
  handle: string;
  /** Redirect target; `*` when that device no longer exists (a TUN of a dead process). */
  target: string;
};

export interface FilterListing<C extends { family: Family } = SteeredClass> {
  /** Our steering filters (priority in range and shaped like ours; guards are not listed). */
  ours: InstalledFilter<C>[];
  /** Priorities in our range holding something we did not write: never touched. */
  foreignInRange: number[];
  /** Number of filter entries outside our range. */
  othersCount: number;
}

/** Sorts `tc -j filter show … ingress` output into ours, foreign-in-our-range, and the rest. */
export function classifyFilters<C extends { family: Family } = SteeredClass>(
  entries: readonly TcFilterJson[], base: number, kind?: FilterKind<C>,
): FilterListing<C> {
  const k = kind ?? (DSCP_CLASSES as unknown as FilterKind<C>);
  const ours: InstalledFilter<C>[] = [];
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
    const found = ourFilter(options, owner.family, k);
    if (found === 'guard') continue;
    if (found === undefined) foreign.add(priority);
    else ours.push({ ...found.cls, priority, band: owner.band, handle: options.fh ?? '', target: found.target });
  }
  return { ours, foreignInRange: [...foreign].sort((a, b) => a - b), othersCount };
}

/**
 * Priorities of `listing` that steer into a device other than `tun` that
 * still exists: another l3dsr's on the same interface, alive (a TUN goes
 * with the process that made it, and the kernel then shows the target as
 * `*`). Never taken over, never deleted.
 */
export function prioritiesOfOthers<C extends { family: Family }>(listing: FilterListing<C>, tun: string): number[] {
  const others = listing.ours.filter((f) => f.target !== tun && f.target !== GONE_TARGET).map((f) => f.priority);
  return [...new Set(others)].sort((a, b) => a - b);
}

/** How `tc -j` names a redirect target that no longer exists. */
const GONE_TARGET = '*';

function ourFilter<C extends { family: Family }>(
  options: NonNullable<TcFilterJson['options']>, family: Family, kind: FilterKind<C>,
): { cls: C; target: string } | 'guard' | undefined {
  const keys = readKeys(options.match);
  if (keys === undefined) return undefined;
  const action = options.actions;
  if (action === undefined) {
    return options.flowid === GUARD_CLASSID && kind.guards(family).some((g) => sameKeys(g.keys, keys)) ? 'guard' : undefined;
  }
  if (action.length !== 1) return undefined;
  const [a] = action;
  if (a?.kind !== 'mirred' || a.mirred_action !== 'redirect' || a.direction !== 'egress' || a.to_dev === undefined) return undefined;
  const cls = kind.read(family, keys);
  return cls === undefined ? undefined : { cls, target: a.to_dev };
}

function readKeys(match: TcKeyJson | TcKeyJson[] | undefined): U32Key[] | undefined {
  const keys: U32Key[] = [];
  for (const m of Array.isArray(match) ? match : [match]) {
    if (m?.value === undefined || m.mask === undefined || m.off === undefined) return undefined;
    const value = Number.parseInt(m.value, 16);
    const mask = Number.parseInt(m.mask, 16);
    if (!Number.isFinite(value) || !Number.isFinite(mask)) return undefined;
    keys.push({ off: m.off, value, mask });
  }
  return keys;
}
