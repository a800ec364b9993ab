// `l3dsr run` options: command-line flags merged with an optional config
// file, validated completely before the daemon touches the system.

import { parseArgs } from 'node:util';
import { loadConfig, listenAddress, type Config, type DaemonSettings, type Engine, type OffloadMode } from '../config/config.js';
import { ConfigError } from '../config/parse.js';
import { parseRuleSpec, validateRules } from '../core/rules.js';
import type { Rule } from '../core/types.js';
import { INTERFACE_NAME_RULE, isInterfaceName } from '../system/interface-name.js';
import { controlSocketPath } from './runtime-dir.js';

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
  configFile?: string;
  /** Rules from --rule flags: kept across reloads of the config file. */
  cliRules: Rule[];
  rules: Rule[];
  warnings: string[];
  logLevel: NonNullable<DaemonSettings['logLevel']>;
  logFormat: 'logfmt' | 'json';
  controlSocket: string;
}

export class UsageError extends Error {
  readonly code = 'ERR_L3DSR_USAGE';
}

export const RUN_USAGE = `usage: l3dsr run [--config FILE] [--rule DSCP=VIP ...] [--tun NAME] [--steer IFACE ...]
                 [--no-steer] [--queues N] [--metrics HOST:PORT] [--loopback-vips]
                 [--engine auto|io_uring|readwrite] [--offload | --no-offload] [--batch N] [--log-level LEVEL] [--log-format logfmt|json]
                 [--control-socket PATH]`;

const FLAGS = {
  config: { type: 'string' },
  rule: { type: 'string', multiple: true },
  tun: { type: 'string' },
  steer: { type: 'string', multiple: true },
  'no-steer': { type: 'boolean' },
  queues: { type: 'string' },
  metrics: { type: 'string' },
  'loopback-vips': { type: 'boolean' },
  engine: { type: 'string' },
  offload: { type: 'boolean' },
  'no-offload': { type: 'boolean' },
  batch: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'control-socket': { type: 'string' },
} as const;

function flagInt(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${flag}: expected an integer ${min}-${max}, got "${v}"`);
  return Number(v);
}

function flagChoice<T extends string>(v: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${flag}: expected one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

export async function parseRunOptions(argv: string[]): Promise<DaemonOptions> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: FLAGS, allowPositionals: false, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${RUN_USAGE}`);
  }
  const v = parsed.values;
  const cliRules = (v.rule ?? []).map((spec) => parseRuleSpec(spec));
  let config: Config | undefined;
  if (v.config !== undefined) config = await loadConfig(v.config);
  const d = config?.daemon ?? {};
  const rules = mergeRules(cliRules, config);
  if (rules.rules.length === 0) throw new UsageError(`no rules: give --rule DSCP=VIP or a --config file with VIP = DSCP lines\n${RUN_USAGE}`);

  const tun = v.tun ?? d.tun ?? 'dsr0';
  if (!isInterfaceName(tun)) throw new UsageError(`--tun: "${tun}" is not an interface name (${INTERFACE_NAME_RULE})`);
  const steer = v.steer ?? d.steer ?? [];
  for (const s of steer) if (!isInterfaceName(s)) throw new UsageError(`--steer: "${s}" is not an interface name (${INTERFACE_NAME_RULE})`);
  const noSteer = v['no-steer'] ?? d.noSteer ?? false;
  if (!noSteer && steer.length === 0) {
    throw new UsageError('--steer: name the interface(s) where marked packets arrive (e.g. --steer eth0), or pass --no-steer to steer them yourself');
  }
  if (v.offload && v['no-offload']) throw new UsageError('--offload and --no-offload contradict each other: give one');
  if (v.metrics !== undefined) {
    try { listenAddress(v.metrics, { key: '--metrics', line: 0 }, 'command line'); } catch (err) { throw new UsageError((err as ConfigError).message.replace(/^command line: /, '')); }
  }
  return {
    tun,
    steer,
    noSteer,
    queues: flagInt(v.queues, 'queues', 1, 64) ?? d.queues ?? 1,
    metrics: v.metrics ?? d.metrics,
    loopbackVips: v['loopback-vips'] ?? d.loopbackVips ?? false,
    engine: flagChoice(v.engine, 'engine', ['auto', 'io_uring', 'readwrite'] as const) ?? d.engine ?? 'auto',
    offload: v.offload ? 'yes' : v['no-offload'] ? 'no' : d.offload ?? 'auto',
    batch: flagInt(v.batch, 'batch', 1, 4096) ?? d.batch ?? 64,
    configFile: v.config,
    cliRules,
    rules: rules.rules,
    warnings: rules.warnings,
    logLevel: flagChoice(v['log-level'], 'log-level', ['debug', 'info', 'warn', 'error'] as const) ?? d.logLevel ?? 'info',
    logFormat: flagChoice(v['log-format'], 'log-format', ['logfmt', 'json'] as const) ?? 'logfmt',
    controlSocket: v['control-socket'] ?? controlSocketPath(tun),
  };
}

/** The CLI's rules and the config file's, validated together (a DSCP used by both is an error). */
export function mergeRules(cliRules: Rule[], config: Config | undefined): { rules: Rule[]; warnings: string[] } {
  return validateRules([...cliRules, ...(config?.rules ?? [])]);
}
