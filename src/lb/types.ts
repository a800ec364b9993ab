// The vocabulary of the load balancer (`l3dsr lb`): a VIP as the
// configuration gives it, validated (src/config/lb.ts makes these), for the
// Maglev builder, the reference model (tools/oracle/lb.ts) and the daemon.

import type { Family } from '../core/types.js';

/** The protocols whose first four transport bytes are the source and destination ports. */
export const PORT_PROTOCOLS = { tcp: 6, udp: 17, udplite: 136, sctp: 132, dccp: 33 } as const;
export type PortProtocol = keyof typeof PORT_PROTOCOLS;

/** Destination ports `from`..`to` (inclusive) of one protocol; `tcp` alone is 0-65535. */
export interface PortRange {
  protocol: PortProtocol;
  from: number;
  to: number;
}

export interface LbBackend {
  /** The real server's address (RIP), canonical text; of the VIP's family. */
  address: string;
  /** 0..MAX_WEIGHT (src/lb/maglev.ts); 0 takes no new flows. */
  weight: number;
  /** No new flows; flows in the connection table stay. */
  drain: boolean;
  /** `FILE:LINE` of the backends line that lists it. */
  origin: string;
}

export type HealthCheck = { type: 'none' } | { type: 'tcp'; port: number };

/** Which flow key picks the backend of a packet that has ports (docs/lb.md#flow-hash). */
export type HashMode = '5-tuple' | '3-tuple';

/** One [lb NAME] section. */
export interface LbVip {
  name: string;
  family: Family;
  /** Canonical text. */
  vip: string;
  /** The DSCP the packets leave with (ECN kept): the real server's rule for this VIP. */
  dscp: number;
  /** null: every packet to the VIP is balanced; otherwise only these. */
  ports: PortRange[] | null;
  hash: HashMode;
  /** Maglev table size: a prime (src/lb/maglev.ts). */
  tableSize: number;
  /** In the order written; the Maglev table indexes them in canonical order. */
  backends: LbBackend[];
  check: HealthCheck;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive good checks that bring a backend up, bad ones that take it down. */
  rise: number;
  fall: number;
  /** `FILE:LINE [lb NAME]`. */
  origin: string;
}
