// [lb NAME] sections: one VIP of the load balancer (l3dsr lb) each, read
// into an LbVip (src/lb/types.ts) with every problem named by file, line and
// field; then the sections together: a VIP shared only by sections whose
// ports do not overlap, a DSCP that stands for one VIP on each backend, the
// limits. The semantics of each key are in docs/lb.md#configuration.
//
//   [lb web]
//   vip = 203.0.113.10
//   dscp = 1
//   ports = tcp/80, tcp/443            # optional: without it every packet to the VIP
//   backends = 198.51.100.2, 198.51.100.3 weight=2, 198.51.100.4 drain
//   check = tcp 80                     # or: none
//   interval = 1s
//   rise = 2
//   fall = 2

import { MAX_LB_SECTIONS } from '../core/abi.generated.js';
import { parseAddress, type ParsedAddress } from '../core/address.js';
import { dscpValue } from '../core/rules.js';
import { DEFAULT_TABLE_SIZE, isPrime, MAX_BACKENDS, MAX_TABLE_SIZE, MAX_WEIGHT, MIN_TABLE_SIZE } from '../lb/maglev.js';
import { PORT_PROTOCOLS, type HashMode, type HealthCheck, type LbBackend, type LbVip, type PortProtocol, type PortRange } from '../lb/types.js';
import { integerValue, type PendingLb } from './config.js';
import { ConfigError, type Entry } from './parse.js';

/** Each VIP has its own Maglev table (2 bytes a slot) in every queue's core. */
export const MAX_LB_VIPS = MAX_LB_SECTIONS;

const LB_KEYS = ['vip', 'dscp', 'ports', 'backends', 'check', 'interval', 'timeout', 'rise', 'fall', 'hash', 'table-size'] as const;
type LbKey = typeof LB_KEYS[number];
const isLbKey = (k: string): k is LbKey => (LB_KEYS as readonly string[]).includes(k);
const REQUIRED = ['vip', 'dscp', 'backends', 'check'] as const;

/** A name that can be a metric label and a command-line argument as it is. */
const LB_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const DEFAULT_INTERVAL_MS = 1000;
const INTERVAL_MS = { min: 100, max: 60_000 };
const TIMEOUT_MS = { min: 10, max: 60_000 };
const DEFAULT_RISE = 2;
const DEFAULT_FALL = 2;
const MAX_RISE_FALL = 100;

/** A section as read: its VIP, and the line of each field, for problems found between sections. */
export interface ReadLb {
  vip: LbVip;
  file: string;
  /** `FILE:LINE` of the section header. */
  at: string;
  lines: Record<LbKey, number>;
}

/** Reads one [lb NAME] section; every problem goes to `problems`, and then nothing is returned. */
export function readLbSection({ section, file }: PendingLb, names: Map<string, string>, problems: ConfigError[]): ReadLb | undefined {
  if (!section.name) {
    problems.push(new ConfigError(file, section.line, '[lb] needs a name: [lb NAME]'));
    return undefined;
  }
  const title = `[lb ${section.name}]`;
  if (!LB_NAME.test(section.name)) {
    problems.push(new ConfigError(file, section.line, `${title}: a name is 1-64 letters, digits, "-", "_" or ".", starting with a letter or digit`));
    return undefined;
  }
  const first = names.get(section.name);
  if (first) {
    problems.push(new ConfigError(file, section.line, `a second ${title} (the first is at ${first})`));
    return undefined;
  }
  names.set(section.name, `${file}:${section.line}`);

  const before = problems.length;
  const fail = (line: number, detail: string) => { problems.push(new ConfigError(file, line, `${title} ${detail}`)); };
  const values = new Map<LbKey, Entry>();
  const backendLines: Entry[] = [];
  for (const e of section.entries) {
    const key = e.key.toLowerCase();
    if (e.value === undefined) fail(e.line, `expects "key = value", got "${e.key}"`);
    else if (!isLbKey(key)) fail(e.line, `has no key "${e.key}"; known: ${LB_KEYS.join(', ')}`);
    else if (key === 'backends') backendLines.push(e);
    else if (values.has(key)) fail(e.line, `${key}: given twice (first at line ${values.get(key)!.line})`);
    else values.set(key, e);
  }
  for (const key of REQUIRED) {
    if (key === 'backends' ? backendLines.length === 0 : !values.has(key)) fail(section.line, `has no "${key}"`);
  }
  const line = (k: LbKey) => (k === 'backends' ? backendLines[0]?.line : values.get(k)?.line) ?? section.line;

  /** The field's value parsed (never a string: a string is why not), its default when absent, or undefined after reporting why not. */
  function field<T>(key: LbKey, parse: (v: string) => T | string, fallback?: T): T | undefined {
    const e = values.get(key);
    if (!e) return fallback;
    const r = parse(e.value!);
    if (typeof r === 'string') {
      fail(e.line, `${key}: ${r}`);
      return undefined;
    }
    return r;
  }

  const vip = field('vip', (v) => usableAddress(v));
  const dscp = field('dscp', (v) => dscpValue(v));
  const ports = field<PortRange[] | null>('ports', parsePorts, null);
  const check = field('check', parseCheck);
  const intervalMs = field('interval', (v) => duration(v, INTERVAL_MS), DEFAULT_INTERVAL_MS);
  const timeoutMs = field('timeout', (v) => duration(v, TIMEOUT_MS));
  const rise = field('rise', (v) => integerValue(v, 1, MAX_RISE_FALL), DEFAULT_RISE);
  const fall = field('fall', (v) => integerValue(v, 1, MAX_RISE_FALL), DEFAULT_FALL);
  const hash = field<{ mode: HashMode }>('hash', (v) => (v === '5-tuple' || v === '3-tuple' ? { mode: v } : `expected 5-tuple or 3-tuple, got "${v}"`), { mode: '5-tuple' })?.mode;
  const tableSize = field('table-size', (v) => {
    const n = integerValue(v, MIN_TABLE_SIZE, MAX_TABLE_SIZE);
    return typeof n === 'number' && !isPrime(n) ? `expected a prime (the Maglev table size), got ${n}; 65537 and 131071 are primes` : n;
  }, DEFAULT_TABLE_SIZE);
  if (timeoutMs !== undefined && intervalMs !== undefined && timeoutMs > intervalMs) {
    fail(line('timeout'), `timeout: ${timeoutMs} ms is longer than the interval (${intervalMs} ms): a check must end before the next one starts`);
  }

  const backends: LbBackend[] = [];
  const seen = new Map<string, number>();
  let tooMany = false;
  for (const e of backendLines) {
    for (const item of e.value!.split(',').map((s) => s.trim())) {
      const b = parseBackend(item, `${file}:${e.line}`);
      if (typeof b === 'string') {
        fail(e.line, `backends: ${b}`);
        continue;
      }
      if (vip && b.family !== vip.family) {
        fail(e.line, `backends: ${b.backend.address} is IPv${b.family} but the VIP ${vip.text} is IPv${vip.family}: L3DSR rewrites the destination only, so both are of one family`);
      } else if (vip && b.backend.address === vip.text) {
        fail(e.line, `backends: ${b.backend.address} is the VIP itself`);
      } else if (seen.has(b.backend.address)) {
        fail(e.line, `backends: ${b.backend.address} is listed twice (first at line ${seen.get(b.backend.address)})`);
      } else if (backends.length === MAX_BACKENDS) {
        if (!tooMany) fail(e.line, `backends: at most ${MAX_BACKENDS} per VIP; this is number ${MAX_BACKENDS + 1}`);
        tooMany = true;
      } else {
        seen.set(b.backend.address, e.line);
        backends.push(b.backend);
      }
    }
  }
  if (tableSize !== undefined && backends.length > tableSize) {
    fail(line('table-size'), `table-size: ${tableSize} slots for ${backends.length} backends: each backend needs slots (about 100 each balances within 1 %)`);
  }
  if (problems.length > before || !vip || dscp === undefined || !check || intervalMs === undefined || rise === undefined
    || fall === undefined || hash === undefined || tableSize === undefined || ports === undefined) {
    return undefined;
  }
  const lines = Object.fromEntries(LB_KEYS.map((k) => [k, line(k)])) as Record<LbKey, number>;
  return {
    vip: {
      name: section.name, family: vip.family, vip: vip.text, dscp, ports, hash, tableSize, backends, check,
      intervalMs, timeoutMs: timeoutMs ?? intervalMs, rise, fall, origin: `${file}:${section.line} ${title}`,
    },
    file,
    at: `${file}:${section.line}`,
    lines,
  };
}

/**
 * The sections together: a VIP in several sections only with ports that do
 * not overlap; on a backend one DSCP stands for one VIP of a family (the
 * real server tells VIPs apart by nothing else); at most MAX_LB_VIPS.
 */
export function combineLbVips(read: readonly ReadLb[], problems: ConfigError[], warnings: string[]): LbVip[] {
  const byVip = new Map<string, ReadLb[]>();
  /** `family/dscp/backend` -> the first section that sends that DSCP to that backend. */
  const dscpOn = new Map<string, ReadLb>();
  const vips: LbVip[] = [];
  for (const r of read) {
    const { vip } = r;
    const title = `[lb ${vip.name}]`;
    const fail = (key: LbKey, detail: string) => { problems.push(new ConfigError(r.file, r.lines[key], `${title} ${detail}`)); };
    let ok = true;
    for (const other of byVip.get(vip.vip) ?? []) {
      const where = `[lb ${other.vip.name}] (${other.at})`;
      if (other.vip.ports === null) {
        fail('vip', `vip: ${vip.vip} is already balanced by ${where}, which takes every packet to it (it has no "ports")`);
      } else if (vip.ports === null) {
        fail('vip', `vip: ${vip.vip} is also balanced by ${where}; without "ports" this section would take every packet to it`);
      } else {
        const clash = vip.ports.flatMap((a) => other.vip.ports!.filter((b) => overlaps(a, b)).map((b) => [a, b] as const))[0];
        if (!clash) continue;
        fail('ports', `ports: ${portText(clash[0])} overlaps ${portText(clash[1])} of ${where} on the same VIP ${vip.vip}`);
      }
      ok = false;
    }
    const reported = new Set<ReadLb>();
    for (const b of vip.backends) {
      const key = `${vip.family}/${vip.dscp}/${b.address}`;
      const other = dscpOn.get(key);
      if (!other) {
        dscpOn.set(key, r);
      } else if (other.vip.vip !== vip.vip && !reported.has(other)) {
        reported.add(other);
        fail('dscp', `dscp: DSCP ${vip.dscp} already stands for VIP ${other.vip.vip} on backend ${b.address} ([lb ${other.vip.name}], ${other.at}); a real server tells VIPs apart by the DSCP alone`);
        ok = false;
      }
    }
    if (!ok) continue;
    byVip.set(vip.vip, [...(byVip.get(vip.vip) ?? []), r]);
    vips.push(vip);
    if (vips.length === MAX_LB_VIPS + 1) problems.push(new ConfigError(r.file, r.lines.vip, `at most ${MAX_LB_VIPS} [lb] sections`));
    if (vip.dscp === 0) warnings.push(`${vip.origin}: DSCP 0 is the default class: the real servers cannot tell these packets from unmarked ones`);
    if (!vip.backends.some((b) => b.weight > 0 && !b.drain)) warnings.push(`${vip.origin}: no backend takes new flows (every one is drained or of weight 0)`);
  }
  for (const [address, sections] of byVip) {
    if (sections.length < 2) continue;
    for (const protocol of Object.keys(PORT_PROTOCOLS) as PortProtocol[]) {
      const sharing = sections.filter((s) => s.vip.ports!.some((p) => p.protocol === protocol));
      if (sharing.length > 1) {
        warnings.push(`${sharing.map((s) => `[lb ${s.vip.name}]`).join(' and ')} share ${protocol} to ${address}: a fragment carries no port, so fragments of ${protocol} to it are dropped (docs/lb.md#fragments)`);
      }
    }
  }
  return vips;
}

/** Addresses a packet cannot be sent to (or from a VIP): refused as VIPs and as backends. */
function usableAddress(text: string): ParsedAddress | string {
  const a = parseAddress(text);
  if (typeof a === 'string') return `"${text}": ${a}`;
  const b = a.bytes;
  if (b.every((x) => x === 0)) return `${a.text} is the unspecified address`;
  if (a.family === 4 ? b[0] >= 224 && b[0] < 240 : b[0] === 0xff) return `${a.text} is a multicast address`;
  if (a.family === 4 ? b[0] === 127 : b.every((x, i) => x === (i === 15 ? 1 : 0))) return `${a.text} is a loopback address: the kernel does not forward to it`;
  if (a.family === 4 && b.every((x) => x === 255)) return `${a.text} is the broadcast address`;
  return a;
}

/** `ADDRESS [weight=N] [drain]`. */
function parseBackend(item: string, origin: string): { backend: LbBackend; family: 4 | 6 } | string {
  const expected = 'expected ADDRESS [weight=N] [drain], such as 198.51.100.3 weight=2';
  if (item === '') return `an empty item in the list: ${expected}, separated by commas`;
  const [addressText, ...options] = item.split(/\s+/);
  const address = usableAddress(addressText);
  if (typeof address === 'string') return address;
  let weight: number | undefined;
  let drain = false;
  for (const o of options) {
    const w = /^weight=(.*)$/i.exec(o);
    if (w && weight === undefined) {
      const n = integerValue(w[1], 0, MAX_WEIGHT);
      if (typeof n === 'string') return `"${item}": weight: ${n}`;
      weight = n;
    } else if (o.toLowerCase() === 'drain' && !drain) {
      drain = true;
    } else {
      return `"${item}": ${w || o.toLowerCase() === 'drain' ? `"${o}" given twice` : `unknown option "${o}"; ${expected}`}`;
    }
  }
  return { backend: { address: address.text, weight: weight ?? 1, drain, origin }, family: address.family };
}

/** `tcp/80, udp/53, tcp/8000-8099, sctp` (a protocol alone: every port of it). */
function parsePorts(v: string): PortRange[] | string {
  const expected = 'expected a list such as tcp/80, udp/53, tcp/8000-8099, or tcp alone for every TCP port';
  const items = v.split(/[\s,]+/).filter(Boolean);
  if (items.length === 0) return expected;
  const ranges: PortRange[] = [];
  for (const item of items) {
    const m = /^([a-z]+)(?:\/(\d{1,5})(?:-(\d{1,5}))?)?$/i.exec(item);
    const protocol = m?.[1].toLowerCase();
    if (!m || !protocol || !Object.hasOwn(PORT_PROTOCOLS, protocol)) {
      return `"${item}": ${m ? `unknown protocol "${m[1]}"; one of ${Object.keys(PORT_PROTOCOLS).join(', ')}` : expected}`;
    }
    const from = m[2] === undefined ? 0 : Number(m[2]);
    const to = m[3] === undefined ? (m[2] === undefined ? 65535 : from) : Number(m[3]);
    if (m[2] !== undefined && (from < 1 || to > 65535 || from > to)) return `"${item}": ports are 1-65535, a range low-high`;
    const range = { protocol: protocol as PortProtocol, from, to };
    const earlier = ranges.find((r) => overlaps(r, range));
    if (earlier) return `"${item}" overlaps "${portText(earlier)}" listed before`;
    ranges.push(range);
  }
  return ranges;
}

const overlaps = (a: PortRange, b: PortRange): boolean => a.protocol === b.protocol && a.from <= b.to && b.from <= a.to;

/** A range as written: `tcp`, `tcp/80`, `tcp/8000-8099`. */
export function portText(r: PortRange): string {
  if (r.from === 0 && r.to === 65535) return r.protocol;
  return r.from === r.to ? `${r.protocol}/${r.from}` : `${r.protocol}/${r.from}-${r.to}`;
}

function parseCheck(v: string): HealthCheck | string {
  if (v.toLowerCase() === 'none') return { type: 'none' };
  const m = /^tcp\s+(\S+)$/i.exec(v);
  if (!m) return `expected "tcp PORT" (a TCP connect to each backend, e.g. tcp 8080) or "none", got "${v}"`;
  const port = integerValue(m[1], 1, 65535);
  return typeof port === 'string' ? `port: ${port}` : { type: 'tcp', port };
}

/** `1s`, `500ms`: milliseconds within the bounds. */
function duration(v: string, { min, max }: { min: number; max: number }): number | string {
  const m = /^(\d{1,7})(ms|s)$/.exec(v);
  const ms = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : NaN;
  if (!(ms >= min && ms <= max)) return `expected a duration such as 1s or 500ms, ${min} ms to ${max / 1000} s, got "${v}"`;
  return ms;
}
