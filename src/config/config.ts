// What a configuration file means: daemon settings and rules, validated
// with errors that name the file, the line and the field.

import { readFile } from 'node:fs/promises';
import { RuleError, validateRule, validateRules, type RuleInput } from '../core/rules.js';
import type { Rule } from '../core/types.js';
import { INTERFACE_NAME_RULE, isInterfaceName } from '../system/interface-name.js';
import { ConfigError, parseIni, type Entry, type Section } from './parse.js';

export type Engine = 'auto' | 'io_uring' | 'readwrite';
/** IFF_VNET_HDR + TSO on the TUN: `auto` uses what the kernel grants, `yes` requires TSO4 and TSO6. */
export type OffloadMode = 'auto' | 'yes' | 'no';

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
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface Config {
  file: string;
  daemon: DaemonSettings;
  rules: Rule[];
  warnings: string[];
}

const DAEMON_KEYS: Record<string, (v: string, e: Entry, file: string, out: DaemonSettings) => void> = {
  tun: (v, e, f, o) => { o.tun = interfaceName(v, e, f); },
  steer: (v, e, f, o) => { o.steer = [...(o.steer ?? []), ...v.split(/[\s,]+/).filter(Boolean).map((n) => interfaceName(n, e, f))]; },
  queues: (v, e, f, o) => { o.queues = integer(v, e, f, 1, 64); },
  metrics: (v, e, f, o) => { o.metrics = listenAddress(v, e, f); },
  'loopback-vips': (v, e, f, o) => { o.loopbackVips = boolean(v, e, f); },
  'no-steer': (v, e, f, o) => { o.noSteer = boolean(v, e, f); },
  engine: (v, e, f, o) => { o.engine = oneOf(v, e, f, ['auto', 'io_uring', 'readwrite'] as const); },
  offload: (v, e, f, o) => { o.offload = oneOf(v, e, f, ['auto', 'yes', 'no'] as const); },
  batch: (v, e, f, o) => { o.batch = integer(v, e, f, 1, 4096); },
  'log-level': (v, e, f, o) => { o.logLevel = oneOf(v, e, f, ['debug', 'info', 'warn', 'error'] as const); },
};

const RULE_KEYS = ['dscp', 'destination', 'match', 'set-dscp'];

export function parseConfig(text: string, file: string): Config {
  const sections = parseIni(text, file);
  const daemon: DaemonSettings = {};
  const inputs: RuleInput[] = [];
  const names = new Set<string>();
  for (const section of sections) {
    switch (section.kind) {
      case '':
      case 'vips':
        for (const e of section.entries) inputs.push(vipLine(e, file));
        break;
      case 'daemon':
        for (const e of section.entries) {
          const set = DAEMON_KEYS[e.key.toLowerCase()];
          if (!set) throw new ConfigError(file, e.line, `unknown setting "${e.key}" in [daemon]; known: ${Object.keys(DAEMON_KEYS).join(', ')}`);
          set(e.value, e, file, daemon);
        }
        break;
      case 'rule':
        inputs.push(ruleSection(section, file, names));
        break;
      default:
        throw new ConfigError(file, section.line, `unknown section [${section.kind}]; expected [daemon], [vips] or [rule NAME]`);
    }
  }
  try {
    const set = validateRules(inputs);
    return { file, daemon, rules: set.rules, warnings: set.warnings };
  } catch (err) {
    if (err instanceof RuleError) throw asConfigError(err, file, lineOf(err.origin, file));
    throw err;
  }
}

/** A dsr.conf line: `VIP = DSCP`. */
function vipLine(e: Entry, file: string): RuleInput {
  const origin = `${file}:${e.line}`;
  if (!/^\d+$/.test(e.value)) {
    throw new ConfigError(file, e.line, `expected "VIP = DSCP" (e.g. 203.0.113.10 = 1), but "${e.value}" is not a DSCP number`);
  }
  const rule = { dscp: e.value, destination: e.key, origin };
  ruleOrConfigError(rule, file, e.line);
  return rule;
}

function ruleSection(section: Section, file: string, names: Set<string>): RuleInput {
  if (!section.name) throw new ConfigError(file, section.line, '[rule] needs a name: [rule NAME]');
  if (names.has(section.name)) throw new ConfigError(file, section.line, `a second [rule ${section.name}]`);
  names.add(section.name);
  const values: Record<string, Entry> = {};
  for (const e of section.entries) {
    const key = e.key.toLowerCase();
    if (!RULE_KEYS.includes(key)) throw new ConfigError(file, e.line, `unknown key "${e.key}" in [rule ${section.name}]; known: ${RULE_KEYS.join(', ')}`);
    if (values[key]) throw new ConfigError(file, e.line, `"${key}" given twice in [rule ${section.name}] (first at line ${values[key].line})`);
    values[key] = e;
  }
  for (const required of ['dscp', 'destination']) {
    if (!values[required]) throw new ConfigError(file, section.line, `[rule ${section.name}] has no "${required}"`);
  }
  const input: RuleInput = {
    dscp: values.dscp.value,
    destination: values.destination.value,
    match: values.match?.value,
    setDscp: values['set-dscp']?.value,
    origin: `${file}:${section.line} [rule ${section.name}]`,
  };
  ruleOrConfigError(input, file, section.line);
  return input;
}

/** Validates one rule now, so its error carries this file and line. */
function ruleOrConfigError(input: RuleInput, file: string, line: number): Rule {
  try {
    return validateRule(input);
  } catch (err) {
    if (err instanceof RuleError) throw asConfigError(err, file, line);
    throw err;
  }
}

function asConfigError(err: RuleError, file: string, line: number): ConfigError {
  const name = /\[rule (.*)\]$/.exec(err.origin)?.[1];
  return new ConfigError(file, line, `${name ? `[rule ${name}] ` : ''}${err.field}: ${err.detail}`);
}

/** The line number in an origin such as `/etc/l3dsr.conf:12 [rule web]`. */
function lineOf(origin: string, file: string): number {
  return origin.startsWith(`${file}:`) ? Number.parseInt(origin.slice(file.length + 1), 10) : 0;
}

function interfaceName(v: string, e: Entry, file: string): string {
  if (!isInterfaceName(v)) throw new ConfigError(file, e.line, `${e.key}: "${v}" is not an interface name (${INTERFACE_NAME_RULE})`);
  return v;
}

function integer(v: string, e: Entry, file: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new ConfigError(file, e.line, `${e.key}: expected an integer ${min}-${max}, got "${v}"`);
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

/** `HOST:PORT` with an IPv4 address, `[IPv6]:PORT`, or `:PORT` (all addresses). */
export function listenAddress(v: string, e: Entry | { key: string; line: number }, file: string): string {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3})|\[([0-9a-fA-F:.]+)\]|)?:(\d{1,5})$/.exec(v);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) {
    throw new ConfigError(file, e.line, `${e.key}: expected HOST:PORT such as 127.0.0.1:9109 or [::1]:9109, got "${v}"`);
  }
  return v;
}

export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, 0, `cannot read the file (${code ?? String(err)})`);
  }
  return parseConfig(text, file);
}
