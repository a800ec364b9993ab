// What `l3dsr run` was asked to do, validated completely before the daemon
// touches the system (the command line and the configuration are read in
// src/cli/run-options.ts), and what a reload may change of it: a flag wins
// over the configuration's [daemon] setting, at start and on every reload.

import type { DaemonSettings, Engine, OffloadMode } from '../config/config.js';
import type { L2dsrVip } from '../config/load.js';
import type { Rule } from '../core/types.js';
import type { LbVip } from '../lb/types.js';
import type { Level, LogFormat } from '../log.js';

/** The [daemon] settings of l3dsr run, as they apply: from a flag, else the configuration, else the default. */
export interface RunSettings {
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
  logLevel: Level;
  logFormat: LogFormat;
}

export const DEFAULT_SETTINGS: Readonly<RunSettings> = {
  tun: 'dsr0', steer: [], noSteer: false, queues: 1, metrics: undefined, loopbackVips: false,
  engine: 'auto', offload: 'auto', batch: 64, logLevel: 'info', logFormat: 'logfmt',
};

/**
 * Where `l3dsr lb`'s defaults differ from `l3dsr run`'s: its own TUN (and
 * so its own control socket and state file), so one host can run both.
 */
export const LB_DEFAULTS: Readonly<Pick<DaemonSettings, 'tun'>> = { tun: 'lb0' };

/** A balancer configuration's [daemon] settings with the balancer's defaults under them. */
export const lbDaemonSettings = (file: DaemonSettings): DaemonSettings => ({ ...LB_DEFAULTS, ...file });

/** Settings given as flags on the command line. */
export type RunFlags = Partial<RunSettings>;

/** What either daemon (`l3dsr run`, `l3dsr lb`) starts with. */
export interface DaemonCommon extends RunSettings {
  /** Which daemon: the real server's or the balancer. */
  command: 'run' | 'lb';
  /** The settings given as flags: they keep winning over the configuration on reload. */
  flags: RunFlags;
  /** --config paths in the order given (files or directories), read again on reload. */
  configPaths: string[];
  warnings: string[];
  controlSocket: string;
}

/** `l3dsr run`. */
export interface DaemonOptions extends DaemonCommon {
  /** --rule flags: kept across reloads of the config. */
  ruleSpecs: string[];
  rules: Rule[];
  /** VIPs that go on lo without a rewrite rule (dsr.conf lines without a DSCP). */
  l2dsr: L2dsrVip[];
}

/** `l3dsr lb`. */
export interface LbOptions extends DaemonCommon {
  vips: LbVip[];
  /** Connection-table entries per TUN queue: the core's layout, so a change needs a restart. */
  connections: number;
}

type Key = keyof RunSettings;
const KEYS = Object.keys(DEFAULT_SETTINGS) as Key[];

/** Only the settings of `options`. */
export const runSettings = (options: RunSettings): RunSettings =>
  Object.fromEntries(KEYS.map((key) => [key, options[key]])) as unknown as RunSettings;

/** The settings in effect: each from its flag, else from the configuration, else its default. */
export function resolveSettings(flags: RunFlags, file: DaemonSettings): RunSettings {
  const pick = <K extends Key>(key: K): RunSettings[K] => (flags[key] ?? file[key] ?? DEFAULT_SETTINGS[key]) as RunSettings[K];
  return Object.fromEntries(KEYS.map((key) => [key, pick(key)])) as unknown as RunSettings;
}

/**
 * How a changed setting reaches a running daemon. `reload`: applied by the
 * reload. `restart`: the running value stays until the next start, and the
 * reload says so. The TUN, its queues, engine, offloads and batch size are
 * the open devices and the workers' memory; the steered interfaces and
 * loopback-vips are what the daemon installed and recorded in its state
 * file: changing those in place would be a second, less tested path of
 * the startup and the teardown, where a restart takes a second and keeps
 * the marked packets on one path (the next run takes over the state file).
 */
export const ON_CHANGE: Readonly<Record<Key, 'reload' | 'restart'>> = {
  logLevel: 'reload', logFormat: 'reload', metrics: 'reload',
  tun: 'restart', steer: 'restart', noSteer: 'restart', queues: 'restart', engine: 'restart', offload: 'restart', batch: 'restart', loopbackVips: 'restart',
};

/** The configuration's name of a setting: `loopbackVips` is `loopback-vips`. */
export const settingName = (key: Key): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export interface SettingChange {
  /** As the configuration names it (`log-level`). */
  setting: string;
  running: string;
  configured: string;
}

export interface ReloadPlan {
  /** The settings after the reload: the changed `reload` ones applied, the `restart` ones as they run. */
  next: RunSettings;
  /** Changed and applied by this reload. */
  applied: SettingChange[];
  /** Changed, but only a restart applies them. */
  needRestart: SettingChange[];
  /** Changed in the configuration, but a flag on the command line wins. */
  overridden: (SettingChange & { flag: string })[];
}

const text = (v: unknown): string => (v === undefined ? '(none)' : Array.isArray(v) ? v.join(',') || '(none)' : String(v));
const same = (a: unknown, b: unknown): boolean => text(a) === text(b);

/** What a reload of `file` (the configuration's [daemon] settings, read again) changes of the `running` settings. */
export function planReload(running: RunSettings, flags: RunFlags, file: DaemonSettings): ReloadPlan {
  const wanted = resolveSettings(flags, file);
  const next = { ...running };
  const plan: ReloadPlan = { next, applied: [], needRestart: [], overridden: [] };
  for (const key of KEYS) {
    const setting = settingName(key);
    if (flags[key] !== undefined && file[key] !== undefined && !same(file[key], flags[key])) {
      plan.overridden.push({ setting, running: text(running[key]), configured: text(file[key]), flag: text(flags[key]) });
    }
    if (same(wanted[key], running[key])) continue;
    const change = { setting, running: text(running[key]), configured: text(wanted[key]) };
    if (ON_CHANGE[key] === 'restart') {
      plan.needRestart.push(change);
      continue;
    }
    (next as Record<Key, unknown>)[key] = wanted[key];
    plan.applied.push(change);
  }
  return plan;
}
