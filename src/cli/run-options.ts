// `l3dsr run` flags: the command line merged with the configuration,
// validated completely before the daemon touches the system. `l3dsr lb`
// (lb.ts) takes the same daemon flags, less the real server's, through
// parseDaemonFlags.

import { parseArgs } from 'node:util';
import { parseListenAddress } from '../config/config.js';
import { loadConfiguration } from '../config/load.js';
import { resolveSettings, type DaemonOptions, type RunFlags, type RunSettings } from '../daemon/options.js';
import { controlSocketPath } from '../daemon/runtime-dir.js';
import { L3dsrError } from '../errors.js';
import { LEVELS, LOG_FORMATS } from '../log.js';
import { interfaceNameProblem } from '../system/interface-name.js';
import { TUN_ENGINES } from '../tun/abi.generated.js';
import { flagsProblem } from './flags.js';

export const RUN_USAGE = `usage: l3dsr run [--config PATH ...] [--rule DSCP=VIP ...] [--tun NAME] [--steer IFACE ...]
                 [--no-steer] [--queues N] [--metrics HOST:PORT] [--loopback-vips]
                 [--engine auto|io_uring|readwrite] [--offload | --no-offload] [--batch N] [--log-level LEVEL] [--log-format logfmt|json]
                 [--control-socket PATH]`;

/** Help lines of the data-path flags run and lb share (the same flags in RUN_OPTIONS). */
export const DATA_PATH_FLAGS_HELP = `      --queues N             TUN queues, one worker thread each (1-64, default 1)
      --engine ENGINE        auto (default), io_uring or readwrite
      --offload              require TSO/USO on the TUN (default: use what the kernel grants)
      --no-offload           a plain TUN, without the virtio-net header
      --batch N              packets per batch (1-4096, default 64)`;

/** Help lines of the logging and control flags run and lb share, --help last. */
export const LOG_FLAGS_HELP = `      --log-level LEVEL      debug, info (default), warn or error
      --log-format FORMAT    logfmt (default) or json
      --control-socket PATH  where l3dsr status asks (default /run/l3dsr/TUN.netns-INODE.sock,
                             INODE: this network namespace's; \$RUNTIME_DIRECTORY in place of /run/l3dsr)
  -h, --help                 this text`;

/** The flags of `l3dsr run`, as node:util parseArgs takes them (the dispatcher reads them to find --help). */
export const RUN_OPTIONS = {
  config: { type: 'string', multiple: true },
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

/** What each flag that takes a value expects, for the error when its value is missing. */
const VALUE_OF: Record<string, string> = {
  config: 'a file name', rule: 'DSCP=VIP', tun: 'an interface name', steer: 'an interface name', queues: 'a number',
  metrics: 'HOST:PORT', engine: 'auto, io_uring or readwrite', batch: 'a number', 'log-level': 'a log level',
  'log-format': 'logfmt or json', 'control-socket': 'a socket path',
};

function flagInt(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new L3dsrError('ERR_L3DSR_USAGE', `--${flag}: expected an integer ${min}-${max}, got "${v}"`);
  return Number(v);
}

function flagChoice<T extends string>(v: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new L3dsrError('ERR_L3DSR_USAGE', `--${flag}: expected one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

/** The daemon flags as given: `values` holds every flag of RUN_OPTIONS that `options` has. */
export interface DaemonArgs {
  values: { [K in keyof typeof RUN_OPTIONS]?: (typeof RUN_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof RUN_OPTIONS)[K] extends { type: 'boolean' } ? boolean : string };
  /** The settings given as flags (validated): they keep winning over the configuration on every reload. */
  flags: RunFlags;
}

/** Parses and checks the daemon flags of `options` (RUN_OPTIONS or a subset); usage problems throw with `usage`. */
export function parseDaemonFlags(argv: string[], options: Partial<typeof RUN_OPTIONS>, usage: string): DaemonArgs {
  // Strict parseArgs calls a value that starts with "-" ambiguous; say which value is missing instead.
  for (const t of parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true }).tokens) {
    if (t.kind === 'option' && t.inlineValue === false && t.value?.startsWith('-')) {
      throw new L3dsrError('ERR_L3DSR_USAGE', `--${t.name} needs ${VALUE_OF[t.name] ?? 'a value'}, not the option ${t.value} (a value that starts with "-" is written --${t.name}=${t.value})\n${usage}`);
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: false, strict: true, tokens: true });
  } catch (err) {
    throw new L3dsrError('ERR_L3DSR_USAGE', `${(err as Error).message}\n${usage}`);
  }
  const v = parsed.values as DaemonArgs['values'];
  const flagProblem = flagsProblem(parsed.tokens, options, [['offload', 'no-offload', 'contradict each other']]);
  if (flagProblem) throw new L3dsrError('ERR_L3DSR_USAGE', `${flagProblem}\n${usage}`);
  if (v.metrics !== undefined) {
    const listen = parseListenAddress(v.metrics);
    if (typeof listen === 'string') throw new L3dsrError('ERR_L3DSR_USAGE', `--metrics: ${listen}, got "${v.metrics}"`);
  }
  const flags: RunFlags = {
    tun: v.tun, steer: v.steer, noSteer: v['no-steer'], metrics: v.metrics, loopbackVips: v['loopback-vips'],
    offload: v.offload ? 'yes' : v['no-offload'] ? 'no' : undefined,
    queues: flagInt(v.queues, 'queues', 1, 64),
    engine: flagChoice(v.engine, 'engine', TUN_ENGINES),
    batch: flagInt(v.batch, 'batch', 1, 4096),
    logLevel: flagChoice(v['log-level'], 'log-level', LEVELS),
    logFormat: flagChoice(v['log-format'], 'log-format', LOG_FORMATS),
  };
  return { values: v, flags };
}

/** The TUN and steered interfaces' names, and that something steers (`what`: the packets that arrive there). */
export function checkDaemonInterfaces({ tun, steer, noSteer }: RunSettings, what: string): void {
  for (const [flag, name] of [['tun', tun], ...steer.map((s) => ['steer', s])]) {
    const problem = interfaceNameProblem(name);
    if (problem) throw new L3dsrError('ERR_L3DSR_USAGE', `--${flag}: ${problem.message}`);
  }
  if (!noSteer && steer.length === 0) {
    throw new L3dsrError('ERR_L3DSR_USAGE', `--steer: name the interface(s) where ${what} arrive (e.g. --steer eth0), or pass --no-steer to steer them yourself`);
  }
}

export async function parseRunOptions(argv: string[]): Promise<DaemonOptions> {
  const { values: v, flags } = parseDaemonFlags(argv, RUN_OPTIONS, RUN_USAGE);
  const configPaths = v.config ?? [];
  const ruleSpecs = v.rule ?? [];
  const config = await loadConfiguration({ configs: configPaths, rules: ruleSpecs });
  if (config.rules.length === 0) throw new L3dsrError('ERR_L3DSR_USAGE', `no rules: give --rule DSCP=VIP or a --config with VIP = DSCP lines\n${RUN_USAGE}`);
  const settings = resolveSettings(flags, config.daemon);
  const { tun, loopbackVips } = settings;
  checkDaemonInterfaces(settings, 'marked packets');
  const warnings = [...config.warnings];
  if (config.l2dsr.length > 0 && !loopbackVips) {
    warnings.push(`L2DSR VIPs ${config.l2dsr.map((x) => x.address).join(', ')}: loopback-vips is off, so l3dsr leaves lo to you and does not add them`);
  }
  return {
    command: 'run',
    ...settings,
    flags,
    configPaths,
    ruleSpecs,
    rules: config.rules,
    l2dsr: config.l2dsr,
    warnings,
    controlSocket: v['control-socket'] ?? controlSocketPath(tun),
  };
}
