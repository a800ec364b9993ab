// What `l3dsr run` was asked to do, validated completely before the daemon
// touches the system (the command line and the configuration are read in
// src/cli/run-options.ts).

import type { DaemonSettings, Engine, OffloadMode } from '../config/config.js';
import type { L2dsrVip } from '../config/load.js';
import type { Rule } from '../core/types.js';

export interface DaemonOptions {
  tun: string;
  steer: string[];
  noSteer: boolean;
  queues: number;
  metrics?: string;
  loopbackVips: boolean;
  engine: Engine;
  /** IFF_VNET_HDR + TSO/USO on the TUN (default auto: what the kernel grants). */
  offload: OffloadMode;
  batch: number;
  /** --config paths in the order given (files or directories), read again on reload. */
  configPaths: string[];
  /** --rule flags: kept across reloads of the config. */
  ruleSpecs: string[];
  rules: Rule[];
  /** VIPs that go on lo without a rewrite rule (dsr.conf lines without a DSCP). */
  l2dsr: L2dsrVip[];
  warnings: string[];
  logLevel: NonNullable<DaemonSettings['logLevel']>;
  logFormat: 'logfmt' | 'json';
  controlSocket: string;
}
