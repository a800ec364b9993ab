// One row per VIP for `l3dsr status`, the way dsrctl's status reads: type,
// state, VIP, DSCP, on lo, steering. Built from what the system holds at
// the moment of the snapshot (the addresses on lo, our tc filters read
// back from the kernel), never from the configuration alone.

import type { L2dsrVip } from '../config/load.js';
import type { Family, Rule } from '../core/types.js';
import { normalised, type SteeringStatus } from '../steering/index.js';

export interface VipRow {
  type: 'l3dsr' | 'l2dsr';
  /**
   * started: everything it needs is in place (on lo, and for L3DSR our
   * steering); partial: some of it; stopped: none; unknown: tc could not be read.
   */
  state: 'started' | 'partial' | 'stopped' | 'unknown';
  vip: string;
  family: Family;
  /** null for L2DSR. */
  dscp: number | null;
  /** The VIP is on lo now, whoever put it there. */
  onLo: boolean;
  /**
   * up: our filter for this family and DSCP redirects into our TUN on every
   * steered interface; down: not on at least one; unknown: tc failed; null
   * where it is not ours to know (L2DSR, --no-steer).
   */
  steering: 'up' | 'down' | 'unknown' | null;
  source: string;
}

export interface VipFacts {
  rules: readonly Rule[];
  l2dsr: readonly L2dsrVip[];
  /** Addresses on lo, normalised(). */
  lo: ReadonlySet<string>;
  /** Our steering as read now; undefined with --no-steer; a message if tc failed. */
  steering: SteeringStatus | string | undefined;
  tun: string;
}

export function vipRows(facts: VipFacts): VipRow[] {
  const onLo = (address: string) => facts.lo.has(normalised(address));
  const steered = (family: Family, dscp: number): VipRow['steering'] => {
    if (facts.steering === undefined) return null;
    if (typeof facts.steering === 'string') return 'unknown';
    const everywhere = facts.steering.interfaces.every((i) => i.ours.some((f) => f.family === family && f.dscp === dscp && f.target === facts.tun));
    return everywhere ? 'up' : 'down';
  };
  const rows: VipRow[] = facts.rules.map((r) => {
    const lo = onLo(r.destination);
    const steering = steered(r.family, r.dscp);
    return { type: 'l3dsr', state: state(lo, steering), vip: r.destination, family: r.family, dscp: r.dscp, onLo: lo, steering, source: r.origin };
  });
  for (const v of facts.l2dsr) {
    const lo = onLo(v.address);
    rows.push({ type: 'l2dsr', state: lo ? 'started' : 'stopped', vip: v.address, family: v.family, dscp: null, onLo: lo, steering: null, source: v.origin });
  }
  return rows;
}

function state(lo: boolean, steering: VipRow['steering']): VipRow['state'] {
  if (steering === 'unknown') return 'unknown';
  const parts = steering === null ? [lo] : [lo, steering === 'up'];
  if (parts.every(Boolean)) return 'started';
  return parts.some(Boolean) ? 'partial' : 'stopped';
}
