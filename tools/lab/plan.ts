// The address and interface plan of the three-namespace L3DSR lab
// (docs/lab.md), documentation prefixes only:
//
//   cli  c-lb ─── lb-c  lb  lb-s ─── s-lb  srv     client → LB → real server
//   cli  veth-c ─────────────────── veth-s  srv    real server → client, direct
//
// Interfaces are created inside their namespaces, so their names only have
// to be unique per namespace and can stay the same in every lab instance.
import type { Family } from '../../src/core/types.js';

export type LabRole = 'cli' | 'lb' | 'srv';

export const LAB_INTERFACES = {
  /** cli's side of the client → LB link. */
  cliToLb: 'c-lb',
  lbToCli: 'lb-c',
  lbToSrv: 'lb-s',
  /** srv's side of the LB → server link: where marked packets arrive (steer this one). */
  srvToLb: 's-lb',
  /** cli's side of the direct link replies come back on. */
  cliToSrv: 'veth-c',
  srvToCli: 'veth-s',
} as const;

export interface FamilyPlan {
  /** The client's address (cli, on veth-c); requests leave via the LB with this source. */
  client: string;
  /** srv's address on the direct link (veth-s). */
  serverDirect: string;
  /** Prefix length of the direct cli—srv link. */
  directLength: number;
  /** cli's address on the cli—LB link (c-lb). */
  cliLinkAddress: string;
  /** lb's address on the cli—LB link (lb-c): cli's next hop for VIPs and RIPs. */
  lbLinkAddress: string;
  cliLbLength: number;
  /** lb's address on the LB—server link (lb-s). */
  lbToSrvAddress: string;
  /** The real server's address (srv, on s-lb). */
  rip: string;
  ripLength: number;
  /** Prefixes cli routes via the LB. */
  viaLb: readonly string[];
  /** The client-side prefix lb routes back to cli (for ICMP errors and reverse-path checks). */
  clientPrefix: string;
}

export const LAB_PLAN: Readonly<Record<Family, FamilyPlan>> = {
  4: {
    client: '192.0.2.1',
    serverDirect: '192.0.2.2',
    directLength: 25,
    cliLinkAddress: '192.0.2.129',
    lbLinkAddress: '192.0.2.130',
    cliLbLength: 25,
    lbToSrvAddress: '198.51.100.1',
    rip: '198.51.100.2',
    ripLength: 24,
    viaLb: ['203.0.113.0/24', '198.51.100.0/24'],
    clientPrefix: '192.0.2.0/25',
  },
  6: {
    client: '2001:db8:192::1',
    serverDirect: '2001:db8:192::2',
    directLength: 64,
    cliLinkAddress: '2001:db8:192:1::1',
    lbLinkAddress: '2001:db8:192:1::2',
    cliLbLength: 64,
    lbToSrvAddress: '2001:db8:198::1',
    rip: '2001:db8:198::2',
    ripLength: 64,
    viaLb: ['2001:db8:203::/64', '2001:db8:198::/64'],
    clientPrefix: '2001:db8:192::/64',
  },
};

/** A service address the LB balances: packets to `address` get DSCP `dscp` and go to the RIP. */
export interface LabVip {
  family: Family;
  address: string;
  dscp: number;
}

/** Two services on two DSCPs, each with an IPv4 and an IPv6 VIP. */
export const DEFAULT_LAB_VIPS: readonly LabVip[] = [
  { family: 4, address: '203.0.113.10', dscp: 1 },
  { family: 6, address: '2001:db8:203::10', dscp: 1 },
  { family: 4, address: '203.0.113.20', dscp: 17 },
  { family: 6, address: '2001:db8:203::20', dscp: 17 },
];
