// What one half of L3DSR brings to the daemon's lifecycle (daemon.ts): the
// real server's rewrite (real-server.ts) or the balancer (balancer.ts). The
// daemon decides when (start, reload, teardown, the state file); a role
// knows what its configuration is, what it installs on the system besides
// the TUN, and how a reload changes both without a gap.

import type { DaemonSettings } from '../config/config.js';
import type { PathConfig } from './data-path.js';
import type { DaemonSnapshot, QueueSnapshot } from './snapshot.js';
import type { DaemonState } from './state-file.js';

/** A configuration read again on SIGHUP, validated, not yet applied. */
export interface Reloaded {
  daemon: DaemonSettings;
  warnings: string[];
  /**
   * Makes it live: the role's steering and system around `configureQueues`
   * (which reaches every queue's core), in the order that leaves no gap.
   */
  apply(configureQueues: (config: PathConfig) => Promise<void>): Promise<void>;
}

export type RoleSnapshot = Pick<DaemonSnapshot, 'rules' | 'l2dsr' | 'steering' | 'loopbackVips' | 'vips' | 'balancer'>;

export interface DaemonRole {
  /** What its configuration gives, plural (`rules`): a refused reload says the old ones keep running. */
  readonly configured: string;
  /** What the state file records of this role: what remove…() would undo. */
  readonly ownership: Pick<DaemonState, 'steering' | 'loopback'>;
  /** Whether installSteering changes the system (else it only prints). */
  readonly steers: boolean;
  /** What each queue's core starts with. */
  path(): PathConfig;
  /** Takes over what a run that died left. */
  adopt(state: DaemonState): Promise<void>;
  /** Refuses to go on before anything is steered into the TUN, which exists by now. */
  beforeSteering(): Promise<void>;
  installSteering(): Promise<void>;
  addVips(): Promise<void>;
  removeSteering(): Promise<void>;
  removeVips(): Promise<void>;
  /**
   * Everything is installed: starts what runs beside the data path (the
   * balancer's health checks), which may reconfigure every queue's core
   * with `configureQueues` at any time.
   */
  start(configureQueues: (config: PathConfig) => Promise<void>): void;
  /** The daemon stops: stops what start() started. */
  stop(): void;
  /** Re-reads the --config paths; throws (ConfigErrors) on a bad configuration, having changed nothing. */
  reload(): Promise<Reloaded>;
  /** Fields for the `running` and `reloaded` log lines. */
  summary(): Record<string, unknown>;
  /** Its part of a snapshot; `queues` are the queues' own, taken at the same time. */
  snapshot(full: boolean, queues: readonly QueueSnapshot[]): Promise<RoleSnapshot>;
}
