// What a configuration file's text means: daemon settings, dsr.conf VIP
// lines and [rule] sections, with errors that name the file, the line and
// the field. [lb] sections are collected here and read by lb.ts. Reading the
// files and settling the VIPs is load.ts.

import { parseAddress } from '../core/address.js';
import type { RuleError, RuleInput } from '../core/rules.js';
import { MAX_CONNECTIONS, MIN_CONNECTIONS } from '../lb/connections.js';
import { LEVELS, LOG_FORMATS, type Level, type LogFormat } from '../log.js';
import { interfaceNameProblem } from '../system/interface-name.js';
import { TUN_ENGINES, type TunEngine } from '../tun/abi.generated.js';
import { OFFLOAD_POLICIES, type OffloadPolicy } from '../tun/offload-policy.js';
import { ConfigError, parseIni, type Entry, type Section } from './parse.js';

export type Engine = TunEngine;
/** IFF_VNET_HDR + TSO on the TUN: `auto` uses what the kernel grants, `yes` requires TSO4 and TSO6 (TunDevice.open decides). */
export type OffloadMode = OffloadPolicy;

export interface DaemonSettings {
  tun?: string;
  steer?: string[];
  queues?: number;
  metrics?: string;
  /** Add the VIPs to `lo` (and remove those we added on exit). */
  loopbackVips?: boolean;
  /** Leave steering to the operator. */
  noSteer?: boolean;
  engine?: Engine;
  offload?: OffloadMode;
  batch?: number;
  logLevel?: Level;
  logFormat?: LogFormat;
  /** l3dsr lb: connection-table entries per TUN queue (docs/lb.md#connection-table). */
  connections?: number;
}

type Setter = (v: string, e: Entry, file: string, out: DaemonSettings) => void;

/** A Map, not an object: a key such as `__proto__` or `constructor` must be unknown, not inherited. */
const DAEMON_KEYS = new Map<string, Setter>([
  ['tun', (v, e, f, o) => { o.tun = interfaceName(v, e, f); }],
  ['steer', (v, e, f, o) => { o.steer = [...(o.steer ?? []), ...v.split(/[\s,]+/).filter(Boolean).map((n) => interfaceName(n, e, f))]; }],
  ['queues', (v, e, f, o) => { o.queues = integer(v, e, f, 1, 64); }],
  ['metrics', (v, e, f, o) => { o.metrics = listenAddress(v, e, f); }],
  ['loopback-vips', (v, e, f, o) => { o.loopbackVips = boolean(v, e, f); }],
  ['no-steer', (v, e, f, o) => { o.noSteer = boolean(v, e, f); }],
  ['engine', (v, e, f, o) => { o.engine = oneOf(v, e, f, TUN_ENGINES); }],
  ['offload', (v, e, f, o) => { o.offload = oneOf(v, e, f, OFFLOAD_POLICIES); }],
  ['batch', (v, e, f, o) => { o.batch = integer(v, e, f, 1, 4096); }],
  ['log-level', (v, e, f, o) => { o.logLevel = oneOf(v, e, f, LEVELS); }],
  ['log-format', (v, e, f, o) => { o.logFormat = oneOf(v, e, f, LOG_FORMATS); }],
  ['connections', (v, e, f, o) => { o.connections = powerOfTwo(v, e, f, MIN_CONNECTIONS, MAX_CONNECTIONS); }],
]);

/**
 * [daemon] settings that mean something to one command only: the VIPs on
 * lo are the real server's, the connection table is the balancer's. The
 * loader of the other command refuses them at their line.
 */
export const DAEMON_KEY_COMMAND = new Map<string, 'run' | 'lb'>([['loopback-vips', 'run'], ['connections', 'lb']]);

/** The keys of a [rule NAME] section, named as validateRule names its fields. */
const RULE_KEYS = ['dscp', 'destination', 'match', 'set-dscp'] as const;
type RuleKey = typeof RULE_KEYS[number];
const isRuleKey = (k: string): k is RuleKey => (RULE_KEYS as readonly string[]).includes(k);

/**
 * A VIP as a file gives it, checked for syntax only: its destination may be
 * a host name still to be resolved (see load.ts).
 */
export interface PendingVip {
  /** `l2dsr`: a dsr.conf line without `=DSCP` (on lo, no rewrite rule). */
  type: 'l3dsr' | 'l2dsr';
  input: RuleInput & { destination: string; origin: string };
  file: string;
  /** The line of each field, so an error names the line the field is on. */
  lines: Record<RuleKey, number>;
  /** `[rule NAME]` for a rule section, for error messages. */
  section?: string;
}

/** An [lb NAME] section as read, for lb.ts. */
export interface PendingLb {
  section: Section;
  file: string;
}

/** What the files read so far have given: each file adds to it, as if the files were one. */
export interface ConfigState {
  daemon: DaemonSettings;
  /** Where each [daemon] setting was written (lower-case key), so a command can refuse another's. */
  daemonKeys: { key: string; file: string; line: number }[];
  vips: PendingVip[];
  lb: PendingLb[];
  problems: ConfigError[];
  /** Rule section name -> where it was first given (`FILE:LINE`). */
  ruleNames: Map<string, string>;
}

export const newConfigState = (): ConfigState => ({ daemon: {}, daemonKeys: [], vips: [], lb: [], problems: [], ruleNames: new Map() });

/**
 * Reads one file's text into `state`: [daemon] settings (a later file's
 * override an earlier one's, `steer` adds up), dsr.conf lines and [rule]
 * sections. Every problem is collected with its file and line; a bad line
 * is skipped, so one reading reports them all.
 */
export function parseConfig(text: string, file: string, state: ConfigState = newConfigState()): ConfigState {
  const problems = state.problems;
  for (const section of parseIni(text, file, problems)) {
    if (section.invalid) continue;
    switch (section.kind) {
      case '':
      case 'vips':
        for (const e of section.entries) {
          const vip = vipLine(e, file);
          if (vip instanceof ConfigError) problems.push(vip);
          else state.vips.push(vip);
        }
        break;
      case 'daemon':
        for (const e of section.entries) {
          const set = DAEMON_KEYS.get(e.key.toLowerCase());
          if (e.value === undefined) problems.push(new ConfigError(file, e.line, `expected "key = value" in [daemon], got "${e.key}"`));
          else if (!set) problems.push(new ConfigError(file, e.line, `unknown setting "${e.key}" in [daemon]; known: ${[...DAEMON_KEYS.keys()].join(', ')}`));
          else {
            state.daemonKeys.push({ key: e.key.toLowerCase(), file, line: e.line });
            collect(problems, () => set(e.value!, e, file, state.daemon));
          }
        }
        break;
      case 'rule': {
        const vip = ruleSection(section, file, state.ruleNames);
        if (vip instanceof ConfigError) problems.push(vip);
        else state.vips.push(vip);
        break;
      }
      case 'lb':
        state.lb.push({ section, file });
        break;
      default:
        problems.push(new ConfigError(file, section.line, `unknown section [${section.kind}]; expected [daemon], [vips], [rule NAME] or [lb NAME]`));
    }
  }
  return state;
}

function collect(problems: ConfigError[], f: () => void): void {
  try {
    f();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(err);
  }
}

/** A dsr.conf line: `VIP = DSCP`, or a bare `VIP` (L2DSR). */
function vipLine(e: Entry, file: string): PendingVip | ConfigError {
  // dsr.conf(5): no spaces within the VIP; "203.0.113.10 1" is a typo, not a host name.
  if (/\s/.test(e.key)) {
    return new ConfigError(file, e.line, `expected "VIP = DSCP", or a VIP alone for L2DSR (e.g. 203.0.113.10 = 1), got "${e.key}"`);
  }
  const origin = `${file}:${e.line}`;
  const at = { dscp: e.line, destination: e.line, match: e.line, 'set-dscp': e.line };
  if (e.value === undefined) return { type: 'l2dsr', input: { dscp: undefined, destination: e.key, origin }, file, lines: at };
  return { type: 'l3dsr', input: { dscp: e.value, destination: e.key, origin }, file, lines: at };
}

function ruleSection(section: Section, file: string, names: Map<string, string>): PendingVip | ConfigError {
  if (!section.name) return new ConfigError(file, section.line, '[rule] needs a name: [rule NAME]');
  const title = `[rule ${section.name}]`;
  const first = names.get(section.name);
  if (first) return new ConfigError(file, section.line, `a second ${title} (the first is at ${first})`);
  names.set(section.name, `${file}:${section.line}`);
  const values = new Map<RuleKey, Entry>();
  for (const e of section.entries) {
    const key = e.key.toLowerCase();
    if (e.value === undefined) return new ConfigError(file, e.line, `expected "key = value" in ${title}, got "${e.key}"`);
    if (!isRuleKey(key)) return new ConfigError(file, e.line, `unknown key "${e.key}" in ${title}; known: ${RULE_KEYS.join(', ')}`);
    const earlier = values.get(key);
    if (earlier) return new ConfigError(file, e.line, `"${key}" given twice in ${title} (first at line ${earlier.line})`);
    values.set(key, e);
  }
  for (const required of ['dscp', 'destination'] as const) {
    if (!values.has(required)) return new ConfigError(file, section.line, `${title} has no "${required}"`);
  }
  const line = (k: RuleKey) => values.get(k)?.line ?? section.line;
  return {
    type: 'l3dsr',
    input: {
      dscp: values.get('dscp')!.value,
      destination: values.get('destination')!.value!,
      match: values.get('match')?.value,
      setDscp: values.get('set-dscp')?.value,
      origin: `${file}:${section.line} ${title}`,
    },
    file,
    lines: { dscp: line('dscp'), destination: line('destination'), match: line('match'), 'set-dscp': line('set-dscp') },
    section: title,
  };
}

/** A RuleError about a pending VIP, as a ConfigError at the line of the field it names. */
export function pendingError(vip: PendingVip, err: RuleError): ConfigError {
  const line = isRuleKey(err.field) ? vip.lines[err.field] : vip.lines.dscp;
  return new ConfigError(vip.file, line, `${vip.section ? `${vip.section} ` : ''}${err.field}: ${err.detail}`);
}

function interfaceName(v: string, e: Entry, file: string): string {
  const problem = interfaceNameProblem(v);
  if (problem) throw new ConfigError(file, e.line, `${e.key}: ${problem.message}`);
  return v;
}

/** A decimal integer min..max, or a sentence saying why `v` is not one. */
export function integerValue(v: string, min: number, max: number): number | string {
  const n = Number(v);
  return /^\d+$/.test(v) && n >= min && n <= max ? n : `expected an integer ${min}-${max}, got "${v}"`;
}

function integer(v: string, e: Entry, file: string, min: number, max: number): number {
  const n = integerValue(v, min, max);
  if (typeof n === 'string') throw new ConfigError(file, e.line, `${e.key}: ${n}`);
  return n;
}

function powerOfTwo(v: string, e: Entry, file: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max || (n & (n - 1)) !== 0) {
    throw new ConfigError(file, e.line, `${e.key}: expected a power of two ${min}-${max}, got "${v}"`);
  }
  return n;
}

function boolean(v: string, e: Entry, file: string): boolean {
  const s = v.toLowerCase();
  if (['yes', 'true', 'on', '1'].includes(s)) return true;
  if (['no', 'false', 'off', '0'].includes(s)) return false;
  throw new ConfigError(file, e.line, `${e.key}: expected yes or no, got "${v}"`);
}

function oneOf<T extends string>(v: string, e: Entry, file: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new ConfigError(file, e.line, `${e.key}: expected one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

/**
 * A listen address as written: `127.0.0.1:9109`, `[::1]:9109`, and all
 * interfaces only when said so (`0.0.0.0:9109`, `[::]:9109`). An IP literal,
 * never a name, so it is known good before anything starts. The one parser
 * for the config file, --metrics and the server that binds it.
 */
export function parseListenAddress(v: string): { host: string; port: number } | string {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(v);
  if (!m) return 'expected HOST:PORT with an IP address, such as 127.0.0.1:9109 or [::1]:9109';
  const [, v6, v4, portText] = m;
  if (v4 === '') {
    return `no address before ":${portText}": write 127.0.0.1:${portText} for this host only, or 0.0.0.0:${portText} or [::]:${portText} for all interfaces`;
  }
  const port = Number(portText);
  if (!/^[1-9]\d{0,4}$/.test(portText) || port > 65535) return 'expected a port 1-65535 after the last ":"';
  const host = v6 ?? v4;
  const address = parseAddress(host);
  if (typeof address === 'string') return `"${host}": ${address}`;
  if (v6 !== undefined && address.family === 4) return `"${host}" in brackets: only an IPv6 address goes in brackets`;
  return { host: address.text, port };
}

export function listenAddress(v: string, e: Entry | { key: string; line: number }, file: string): string {
  const parsed = parseListenAddress(v);
  if (typeof parsed === 'string') throw new ConfigError(file, e.line, `${e.key}: ${parsed}, got "${v}"`);
  return v;
}
