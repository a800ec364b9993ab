// The demo's built-in configurations: the real servers' (`l3dsr run`) and,
// with --lb, the balancers' (`l3dsr lb`).
import type { LabVip } from '../lab/index.js';

/** VIP = DSCP lines grouped by DSCP, VIPs on lo, steering on `steer` (where the marked requests arrive). */
export function realServerConfig(vips: readonly LabVip[], steer: string): string {
  const byDscp = [...new Set(vips.map((v) => v.dscp))];
  return [
    '# l3dsr demo: VIP = DSCP (the DSCP the LB marks requests for that VIP with)',
    ...byDscp.flatMap((d) => vips.filter((v) => v.dscp === d).map((v) => `${v.address} = ${d}`)),
    '',
    '[daemon]',
    `steer = ${steer}`,
    'loopback-vips = yes',
    '',
  ].join('\n');
}

export interface DemoBackend {
  address: string;
  weight: number;
}

export interface DemoHealthCheck {
  port: number;
  interval: string;
  rise: number;
  fall: number;
}

/** One [lb webF] section per VIP (F: its family) over `backends`, checked by `check`; steering on `steer`. */
export function balancerConfig(vips: readonly LabVip[], backends: (v: LabVip) => DemoBackend[], check: DemoHealthCheck, steer: string): string {
  return [
    '# l3dsr demo: one [lb] section per VIP, the real servers as backends',
    '[daemon]',
    `steer = ${steer}`,
    '',
    ...vips.flatMap((v) => [
      `[lb ${sectionName(v)}]`,
      `vip = ${v.address}`,
      `dscp = ${v.dscp}`,
      `backends = ${backends(v).map((b) => `${b.address} weight=${b.weight}`).join(', ')}`,
      `check = tcp ${check.port}`,
      `interval = ${check.interval}`,
      `rise = ${check.rise}`,
      `fall = ${check.fall}`,
      '',
    ]),
  ].join('\n');
}

/** The [lb] section of a VIP in balancerConfig. */
export const sectionName = (v: LabVip): string => `web${v.family}`;
