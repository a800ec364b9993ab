// Helpers for the daemon's lab tests: start and stop `l3dsr run` inside the
// lab's srv namespace, run the CLI to completion, and read back what the
// daemon left in the system (TUN devices, tc filters, VIPs on lo) and what
// it counted (status JSON, Prometheus metrics).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { L3DSR_BIN, LabDaemon, rulePackets, sumQueues, waitFor, type LabDaemonOptions, type StatusJson } from '../../tools/demo/lab-daemon.js';
import { LAB_INTERFACES, sameAddress, type Lab, type LabRole, type LabVip, type NamespaceLab } from '../../tools/lab/index.js';
import { inspectSteering, type InstalledFilter } from '../../src/steering/index.js';
import { ipJson, tc } from '../../src/system/index.js';

export { L3DSR_BIN, LabDaemon, rulePackets, sumQueues, waitFor };
export type { LabDaemonOptions, StatusJson };

/** The interface of srv where the LB's marked packets arrive. */
export const STEER = LAB_INTERFACES.srvToLb;

/** Says why the lab tests cannot run here. Their suites skip without root
 * (privileged()); this fails them where they must run (CI) yet cannot. */
export function requireLabRoot(): void {
  assert.equal(process.getuid?.(), 0, 'the daemon lab tests build network namespaces, TUN devices and tc filters: run them as root');
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    assert.fail('the daemon lab tests need /dev/net/tun (modprobe tun)');
  }
}

export interface DaemonArgs {
  vips?: readonly LabVip[];
  engine?: 'auto' | 'io_uring' | 'readwrite';
  queues?: number;
  config?: string;
  loopbackVips?: boolean;
  extra?: readonly string[];
}

/** `run` arguments: one --rule per VIP, --steer s-lb, --loopback-vips (unless told otherwise). */
export function daemonArgs(o: DaemonArgs = {}): string[] {
  const args: string[] = [];
  if (o.config !== undefined) args.push('--config', o.config);
  for (const v of o.vips ?? []) args.push('--rule', `${v.dscp}=${v.address}`);
  args.push('--steer', STEER);
  if (o.loopbackVips ?? true) args.push('--loopback-vips');
  if (o.engine) args.push('--engine', o.engine);
  if (o.queues !== undefined) args.push('--queues', String(o.queues));
  args.push(...(o.extra ?? []));
  return args;
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunL3dsrOptions {
  /** The lab's role to run in (default srv). */
  role?: string;
  /** Programs that run l3dsr inside the namespace (e.g. `unshare --user`, `nsenter …`). */
  prefix?: readonly string[];
  /** The l3dsr binary; default this checkout's. */
  bin?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs `l3dsr ARGS` to completion in a namespace of the lab (default srv). */
export function runL3dsr(lab: NamespaceLab<string>, args: readonly string[], options: RunL3dsrOptions = {}): Promise<CliRun> {
  const argv = ['netns', 'exec', lab.namespaces[options.role ?? 'srv'], ...(options.prefix ?? []), process.execPath, options.bin ?? L3DSR_BIN, ...args];
  return runToEnd('ip', argv, { env: options.env, cwd: options.cwd });
}

/** Runs `file ARGS` to completion, its output collected. */
export function runToEnd(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env, cwd: options.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Our steering filters on s-lb, read from the kernel. */
export async function steeringFilters(lab: Lab): Promise<InstalledFilter[]> {
  const status = await inspectSteering({ interfaces: [STEER], netns: lab.namespaces.srv });
  return status.interfaces[0]!.ours;
}

/** Whether s-lb has a clsact (or ingress) qdisc. */
export async function hasIngressQdisc(lab: Lab): Promise<boolean> {
  const status = await inspectSteering({ interfaces: [STEER], netns: lab.namespaces.srv });
  return status.interfaces[0]!.hasClsact;
}

/** `tc filter show dev s-lb ingress`, as text, for failure messages. */
export const filterText = (lab: Lab): Promise<string> =>
  tc(['filter', 'show', 'dev', STEER, 'ingress'], lab.where('srv')).catch((e: Error) => e.message);

/** TUN devices in srv. */
export async function tunDevices(lab: Lab): Promise<string[]> {
  const links = await ipJson<Array<{ ifname: string }>>(['link', 'show', 'type', 'tun'], lab.where('srv'));
  return links.map((l) => l.ifname);
}

/** Addresses on srv's lo. */
export async function loopbackAddresses(lab: Lab): Promise<string[]> {
  const links = await ipJson<Array<{ addr_info?: Array<{ local: string }> }>>(['addr', 'show', 'dev', 'lo'], lab.where('srv'));
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local));
}

export const onLoopback = (addresses: readonly string[], vip: string): boolean => addresses.some((a) => sameAddress(a, vip));

/**
 * Asserts that srv holds nothing of a daemon: no TUN, no steering filters
 * (and no qdisc, which only the daemon adds there), none of `vips` on lo.
 */
export async function assertNothingInstalled(lab: Lab, vips: readonly LabVip[], context: string): Promise<void> {
  assert.deepEqual(await tunDevices(lab), [], `${context}: a TUN device exists`);
  assert.deepEqual(await steeringFilters(lab), [], `${context}: steering filters exist:\n${await filterText(lab)}`);
  assert.equal(await hasIngressQdisc(lab), false, `${context}: a clsact qdisc was added to ${STEER}`);
  const lo = await loopbackAddresses(lab);
  for (const v of vips) assert.ok(!onLoopback(lo, v.address), `${context}: ${v.address} is on lo`);
}

/**
 * Asserts that s-lb carries exactly one steering filter per (family, DSCP)
 * of `vips`, all redirecting to `tun`: no stale or duplicate set.
 */
export async function assertOneFilterSet(lab: Lab, vips: readonly LabVip[], tun = 'dsr0'): Promise<void> {
  const filters = await steeringFilters(lab);
  const text = await filterText(lab);
  const want = [...new Set(vips.map((v) => `ipv${v.family} dscp ${v.dscp}`))].sort();
  const have = filters.map((f) => `ipv${f.family} dscp ${f.dscp}`).sort();
  assert.deepEqual(have, want, `steering filters on ${STEER}:\n${text}`);
  for (const f of filters) assert.equal(f.target, tun, `filter ${f.handle} redirects to ${f.target}:\n${text}`);
  // Nothing else on the interface redirects anywhere (a stale set at other priorities would).
  const redirects = (text.match(/mirred \(Egress Redirect to device/g) ?? []).length;
  assert.equal(redirects, want.length, `redirecting filters on ${STEER}:\n${text}`);
  // One band: one priority per family.
  assert.equal(new Set(filters.map((f) => f.priority)).size, new Set(filters.map((f) => f.family)).size, `filters in two bands:\n${text}`);
}

/** Totals of a status over all queues. */
export function totals(s: StatusJson) {
  return {
    rewritten: sumQueues(s, (q) => q.counters.verdicts.rewritten),
    passed: sumQueues(s, (q) => q.counters.verdicts.passed),
    malformed: sumQueues(s, (q) => q.counters.verdicts.malformed),
    dropped: sumQueues(s, (q) => q.counters.verdicts.dropped),
    read: sumQueues(s, (q) => q.tun.packetsRead),
    written: sumQueues(s, (q) => q.tun.packetsWritten),
    writeErrors: sumQueues(s, (q) => q.tun.writeErrors + q.tun.writeDrops),
    kernelTxDropped: BigInt(s.kernelTxDropped ?? 0),
  };
}

/** Bytes per rule as the status reports them (summed over queues). */
export function ruleBytes(s: StatusJson, vip: string): bigint {
  const i = s.rules.findIndex((r) => sameAddress(r.destination, vip));
  return i < 0 ? 0n : sumQueues(s, (q) => q.counters.rules[i]?.bytes ?? 0);
}

/** One sample of a Prometheus exposition: `name{labels} value` (labels must all match). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  throw new Error(`metric ${name}${JSON.stringify(labels)} not found in:\n${text}`);
}

/** What a GET from inside a namespace of the lab got: the status and body, or the error (ECONNREFUSED…). */
export interface NamespaceGet {
  status?: number;
  body?: string;
  error?: string;
}

/** GET `url` from inside a namespace of the lab (default srv), e.g. the daemon's metrics address on srv's own loopback. */
export async function getInNamespace(lab: Lab, url: string, role: LabRole = 'srv'): Promise<NamespaceGet> {
  const out = await lab.exec(role, process.execPath, ['-e', `
    require('node:http').get(process.argv[1], (res) => {
      let body = ''; res.on('data', (c) => { body += c; });
      res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body })));
    }).on('error', (e) => { process.stdout.write(JSON.stringify({ error: e.code ?? e.message })); });`, url]);
  return JSON.parse(out) as NamespaceGet;
}

interface TcStatsJson {
  pref?: number;
  options?: { actions?: Array<{ kind?: string; stats?: { packets?: number } }> };
}

/** Packets our steering filters on s-lb redirected to the TUN (mirred action counters). */
export async function steeredPackets(lab: Lab): Promise<number> {
  const ours = new Set((await steeringFilters(lab)).map((f) => f.priority));
  const entries = JSON.parse(await tc(['-s', '-j', 'filter', 'show', 'dev', STEER, 'ingress'], lab.where('srv'))) as TcStatsJson[];
  return entries
    .filter((e) => e.pref !== undefined && ours.has(e.pref))
    .flatMap((e) => e.options?.actions ?? [])
    .filter((a) => a.kind === 'mirred')
    .reduce((n, a) => n + (a.stats?.packets ?? 0), 0);
}
