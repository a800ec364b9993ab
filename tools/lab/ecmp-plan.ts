// The address and interface plan of the balancer lab (docs/lab.md, "The
// ECMP lab"), documentation prefixes only:
//
//                       ┌─ r-lb1 ── lb-r  lb1  lb-b ─┐
//   cli  c-r ── r-c  rtr                             ├─ bridge `back` (in sw) ─┬─ s-b  srv1
//                       └─ r-lb2 ── lb-r  lb2  lb-b ─┘                        ├─ s-b  srv2
//                          r-b ───────────────────────────────────────────────┘
//
// rtr routes the VIPs over lb1 and lb2 (ECMP, L4 hash); the balancers send
// to a RIP on the shared segment; the servers answer the client through
// rtr, their default gateway on that segment, never through a balancer.
import type { Family } from '../../src/core/types.js';

export type EcmpRole = 'cli' | 'rtr' | 'lb1' | 'lb2' | 'sw' | 'srv1' | 'srv2';
export type BalancerRole = 'lb1' | 'lb2';
export type ServerRole = 'srv1' | 'srv2';

export const ECMP_ROLES: readonly EcmpRole[] = ['cli', 'rtr', 'lb1', 'lb2', 'sw', 'srv1', 'srv2'];
export const BALANCERS: readonly BalancerRole[] = ['lb1', 'lb2'];
export const SERVERS: readonly ServerRole[] = ['srv1', 'srv2'];

/** Interface names, the same in every lab (each is created inside its namespace). */
export const ECMP_INTERFACES = {
  cliToRtr: 'c-r',
  rtrToCli: 'r-c',
  /** rtr's link to each balancer: the ECMP next hops. */
  rtrToLb: { lb1: 'r-lb1', lb2: 'r-lb2' },
  /** A balancer's side of its link to rtr: where client packets for the VIPs arrive (the balancer steers this one). */
  lbToRtr: 'lb-r',
  /** A balancer's port on the server segment. */
  lbToBack: 'lb-b',
  /** A server's port on the server segment: where marked packets arrive (`l3dsr run --steer s-b`). */
  srvToBack: 's-b',
  /** rtr's port on the server segment: the servers' default gateway. */
  rtrToBack: 'r-b',
  /** The bridge in sw, and its ports (one per namespace on the segment). */
  bridge: 'back',
  bridgePort: { lb1: 'p-lb1', lb2: 'p-lb2', srv1: 'p-srv1', srv2: 'p-srv2', rtr: 'p-rtr' },
} as const;

export interface EcmpFamilyPlan {
  client: string;
  /** rtr on the client link: cli's default gateway. */
  rtrClient: string;
  clientLength: number;
  /** rtr's and each balancer's address on their link. */
  rtrToLb: Record<BalancerRole, string>;
  lbFront: Record<BalancerRole, string>;
  frontLength: number;
  /** Addresses on the server segment: each balancer's (the source of its health checks), each RIP, rtr's. */
  lbBack: Record<BalancerRole, string>;
  rip: Record<ServerRole, string>;
  rtrBack: string;
  backLength: number;
  /** What rtr routes over the balancers. */
  vipPrefix: string;
}

export const ECMP_PLAN: Readonly<Record<Family, EcmpFamilyPlan>> = {
  4: {
    client: '192.0.2.1',
    rtrClient: '192.0.2.2',
    clientLength: 26,
    rtrToLb: { lb1: '192.0.2.65', lb2: '192.0.2.69' },
    lbFront: { lb1: '192.0.2.66', lb2: '192.0.2.70' },
    frontLength: 30,
    lbBack: { lb1: '198.51.100.1', lb2: '198.51.100.2' },
    rip: { srv1: '198.51.100.11', srv2: '198.51.100.12' },
    rtrBack: '198.51.100.254',
    backLength: 24,
    vipPrefix: '203.0.113.0/24',
  },
  6: {
    client: '2001:db8:192::1',
    rtrClient: '2001:db8:192::2',
    clientLength: 64,
    rtrToLb: { lb1: '2001:db8:192:1::1', lb2: '2001:db8:192:2::1' },
    lbFront: { lb1: '2001:db8:192:1::2', lb2: '2001:db8:192:2::2' },
    frontLength: 64,
    lbBack: { lb1: '2001:db8:198::1', lb2: '2001:db8:198::2' },
    rip: { srv1: '2001:db8:198::11', srv2: '2001:db8:198::12' },
    rtrBack: '2001:db8:198::fe',
    backLength: 64,
    vipPrefix: '2001:db8:203::/64',
  },
};
