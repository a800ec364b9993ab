// The configurations the soak reloads: good ones that all keep the VIPs under
// traffic (and add or drop others, or say the same in another form), and bad
// ones that are good but for one line, which the refusal must name.
import { DEFAULT_LAB_VIPS, LAB_INTERFACES, type LabVip } from '../../tools/lab/index.js';

/** The VIPs under traffic: two DSCPs, each with an IPv4 and an IPv6 VIP. */
export const TRAFFIC_VIPS: readonly LabVip[] = DEFAULT_LAB_VIPS;
/** A service some good configurations add and others drop (the LB marks it; no traffic goes to it). */
export const EXTRA_VIPS: readonly LabVip[] = [
  { family: 4, address: '203.0.113.30', dscp: 33 },
  { family: 6, address: '2001:db8:203::30', dscp: 33 },
];
const L2DSR_VIP = '203.0.113.99';
export const METRICS_PORT = 9109;
/** On srv's loopback: the flood comes from inside srv, as a local scraper's would. */
export const METRICS_HOST = '127.0.0.1';

const DAEMON_SECTION = ['[daemon]', `steer = ${LAB_INTERFACES.srvToLb}`, 'loopback-vips = yes', `metrics = ${METRICS_HOST}:${METRICS_PORT}`];
const vipLines = (vips: readonly LabVip[]) => vips.map((v) => `${v.address} = ${v.dscp}`);

export interface ConfigVariant {
  name: string;
  text: string;
}

export interface BadConfigVariant extends ConfigVariant {
  /** The line the error must name (1-based). */
  line: number;
}

const lines = (...parts: string[][]) => `${parts.flat().join('\n')}\n`;

export const GOOD_CONFIGS: readonly ConfigVariant[] = [
  { name: 'the VIPs under traffic', text: lines(['# l3dsr soak'], vipLines(TRAFFIC_VIPS), DAEMON_SECTION) },
  { name: 'plus a service on DSCP 33', text: lines(['# l3dsr soak'], vipLines([...TRAFFIC_VIPS, ...EXTRA_VIPS]), DAEMON_SECTION) },
  { name: 'plus an L2DSR VIP', text: lines(['# l3dsr soak'], vipLines(TRAFFIC_VIPS), [L2DSR_VIP], DAEMON_SECTION) },
  {
    name: 'as [rule] sections',
    text: lines(DAEMON_SECTION, ...TRAFFIC_VIPS.map((v, i) => [`[rule soak${i}]`, `dscp = ${v.dscp}`, `destination = ${v.address}`])),
  },
];

/** A good configuration with `bad` inserted after its line `after` (1-based); the error is at line after + 1. */
function spoil(name: string, bad: string, after = 1): BadConfigVariant {
  const good = GOOD_CONFIGS[0]!.text.split('\n');
  good.splice(after, 0, bad);
  return { name, text: good.join('\n'), line: after + 1 };
}

export const BAD_CONFIGS: readonly BadConfigVariant[] = [
  spoil('a DSCP that is not a number', '203.0.113.40 = seventeen'),
  spoil('a DSCP out of range', '203.0.113.40 = 64'),
  spoil('an address that is not one', '203.0.113.300 = 17'),
  spoil('a second IPv4 VIP on DSCP 1', '203.0.113.41 = 1', 3),
  spoil('an unknown section', '[vipz]'),
];
