// What `l3dsr check` prints for a load-balancer configuration ([lb]
// sections, for l3dsr lb): each VIP with its backends, as a table or JSON.

import { portText } from '../config/lb.js';
import type { LbConfiguration } from '../config/load.js';
import type { Family } from '../core/types.js';
import type { HealthCheck, HashMode, LbVip, PortRange } from '../lb/types.js';
import { table } from './table.js';

/** One VIP as `check --json` prints it (the `vips` array). */
export interface CheckedLbVip {
  name: string;
  vip: string;
  family: Family;
  dscp: number;
  /** null: every packet to the VIP. */
  ports: PortRange[] | null;
  hash: HashMode;
  tableSize: number;
  check: HealthCheck;
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  backends: { address: string; weight: number; drain: boolean; source: string }[];
  source: string;
}

export function checkedLbVips(c: LbConfiguration): CheckedLbVip[] {
  return c.vips.map((v) => ({
    name: v.name, vip: v.vip, family: v.family, dscp: v.dscp, ports: v.ports, hash: v.hash, tableSize: v.tableSize,
    check: v.check, intervalMs: v.intervalMs, timeoutMs: v.timeoutMs, rise: v.rise, fall: v.fall,
    backends: v.backends.map((b) => ({ address: b.address, weight: b.weight, drain: b.drain, source: b.origin })),
    source: v.origin,
  }));
}

const durationText = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
const checkText = (v: LbVip): string => (v.check.type === 'none' ? 'none' : `tcp ${v.check.port} every ${durationText(v.intervalMs)}`);

/** One row per backend; the VIP's columns on its first row only. */
export function formatLbCheck(c: LbConfiguration): string {
  const rows = [['lb', 'VIP', 'DSCP', 'ports', 'check', 'backend', 'weight', 'source']];
  for (const v of c.vips) {
    v.backends.forEach((b, i) => {
      const weight = `${b.weight}${b.drain ? ' drain' : ''}`;
      rows.push(i === 0
        ? [v.name, v.vip, String(v.dscp), v.ports ? v.ports.map(portText).join(',') : 'all', checkText(v), b.address, weight, v.origin]
        : ['', '', '', '', '', b.address, weight, '']);
    });
  }
  const backends = c.vips.reduce((n, v) => n + v.backends.length, 0);
  const draining = c.vips.reduce((n, v) => n + v.backends.filter((b) => b.drain || b.weight === 0).length, 0);
  const files = c.files.length === 1 ? '1 file' : `${c.files.length} files`;
  const vips = c.vips.length === 1 ? '1 VIP' : `${c.vips.length} VIPs`;
  return `${[...table(rows), '', `valid for l3dsr lb: ${vips}, ${backends} backends (${draining} taking no new flows), from ${files}`].join('\n')}\n`;
}
