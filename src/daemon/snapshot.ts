// What the daemon knows about itself at one moment: served as /status
// (JSON) and /metrics (Prometheus), printed by `l3dsr status`.

import type { L2dsrVip } from '../config/load.js';
import type { Counters, Rule } from '../core/types.js';
import type { BackendPackets } from '../core/balancer.js';
import type { BackendHealth } from '../lb/health.js';
import type { TunStats } from '../tun/device.js';
import type { HttpRejected } from './http-endpoints.js';
import type { VipRow } from './vip-state.js';

export interface QueueCounters {
  verdicts: Counters['verdicts'];
  reasons: Counters['reasons'];
  /** Per rule index: packets and bytes (the real server's; none on a balancer). */
  rules: { packets: bigint; bytes: bigint }[];
  /** The balancer's connection-table entries pushed out of a full bucket by a new flow. */
  evictions?: bigint;
  /** The balancer's packets per backend, and its share of the Maglev table (the same in every queue). */
  backends?: BackendPackets[];
}

/** A backend of an [lb] section, as status and metrics show it. */
export interface BackendStatus {
  address: string;
  weight: number;
  /** `draining`: drain or weight 0 (no new flows, its flows stay); `down`: its health check failed (its flows move). */
  state: 'up' | 'down' | 'draining';
  /** Its slots in the section's Maglev table, of `tableSize`. */
  slots: number;
  /** Packets balanced to it, summed over the queues. */
  packets: bigint;
  /** Its health checks (a section with `check = none` has none). */
  health?: Pick<BackendHealth, 'checks' | 'transitions' | 'last'>;
}

export interface VipStatus {
  name: string;
  vip: string;
  family: 4 | 6;
  dscp: number;
  /** `tcp/80` … or null: every packet to the VIP. */
  ports: string[] | null;
  tableSize: number;
  check: string;
  backends: BackendStatus[];
}

export interface QueueSnapshot {
  queue: number;
  mode: string | null;
  detail: string | null;
  /** Offloads the kernel granted on the TUN; null without IFF_VNET_HDR. */
  offloads: string[] | null;
  counters: QueueCounters;
  tun: TunStats;
}

export interface DaemonSnapshot {
  /** Which daemon: the real server's (`l3dsr run`) or the balancer (`l3dsr lb`). */
  command: 'run' | 'lb';
  pid: number;
  tun: string;
  startedAt: number;
  /** --config paths as given (files or directories). */
  configPaths: string[];
  /** The real server's rules (none on a balancer). */
  rules: Rule[];
  l2dsr: L2dsrVip[];
  /** The balancer's [lb] sections with their backends' state, share and packets (l3dsr lb only). */
  balancer?: { vips: VipStatus[]; connections: number };
  /** One row per VIP, from the system at snapshot time (only in /status). */
  vips?: VipRow[];
  warnings: string[];
  queues: QueueSnapshot[];
  reloads: { ok: number; failed: number; lastError?: string };
  /** Kernel tx_dropped of the TUN (packets it could not queue for us). */
  kernelTxDropped?: number;
  steering: { mode: 'tc' | 'none'; interfaces: string[]; status?: unknown };
  loopbackVips: string[];
  /** What the HTTP endpoints refused or cut, per endpoint and reason (added by them to the pages they serve). */
  httpRejected?: HttpRejected;
}

/** JSON with bigints as decimal strings. */
export function snapshotJson(s: DaemonSnapshot): string {
  return JSON.stringify(s, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
}
