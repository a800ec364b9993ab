// README.md checked against the code. Every command the README shows in a
// fenced block of "Quick start", "Deploying on a real server",
// "Configuration" and "Command line" (the extraction rule is at the top of
// test/support/readme.ts: the lines of ```sh blocks, trailing comments cut)
// has an entry here keyed by its exact text, and every entry's command is
// still in the README: a command added, changed or removed on one side only
// fails this suite.
//
// An entry runs its command — `l3dsr` is this checkout's bin/l3dsr.js,
// `npm run` the documented script — and asserts what the README says it
// does (output, exit status, effect). A path the README names on a server
// (/etc/l3dsr.conf, /tmp/l3dsr.sock) is a temporary file with the README's
// content (the ```ini block is /etc/l3dsr.conf). The commands of a running
// service run against deploy/l3dsr.service's ExecStart, started in a network
// namespace of its own the way systemd would (test/support/systemd-stand-in.ts:
// same argv, a user of its own with CAP_NET_ADMIN only, RUNTIME_DIRECTORY),
// with the README's configuration as /etc/l3dsr.conf and dummy interfaces
// named as its `steer` line names them. `npm pack` and `npm install -g` are
// run by scripts/pack-check.sh in CI (.ci/run): their entries check that it
// does, and what the README's paths and names rest on. NOT_RUN lists the few
// commands this suite cannot run, each with why. The synopsis and the
// example configuration are checked against the flags and settings the code
// takes, in both directions.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHECK_OPTIONS } from '../src/cli/check.js';
import { REWRITE_OPTIONS } from '../src/cli/rewrite.js';
import { RUN_OPTIONS } from '../src/cli/run-options.js';
import { LB_OPTIONS } from '../src/cli/lb.js';
import { STATUS_OPTIONS } from '../src/cli/status.js';
import { DAEMON_KEY_COMMAND } from '../src/config/config.js';
import { LINKTYPE, locateL3 } from '../src/pcap/linklayer.js';
import { openCapture } from '../src/pcap/reader.js';
import { inspectSteering } from '../src/steering/index.js';
import { ip, ipJson } from '../src/system/index.js';
import { NamespaceLab } from '../tools/lab/index.js';
import { nextLabName } from '../tools/lab/namespaces.js';
import { addressText } from '../tools/packets/address.js';
import { DEFAULT_MACS, arpRequest, buildPacket, ethernetFrame, filler, tcp, udp, type PacketSpec } from '../tools/packets/build.js';
import { ARP, PROTO } from '../tools/packets/layout.js';
import { L3DSR_BIN, LabDaemon, metric, requireLabRoot, runL3dsr, runToEnd, waitFor, type CliRun, type StatusJson } from './support/daemon.js';
import { DAEMON_PARTS, installCopy } from './support/install-copy.js';
import { classicFile } from './support/pcap-bytes.js';
import { needs, privileged, tools } from './support/privilege.js';
import { ROOT, readReadme, type Readme } from './support/readme.js';
import { DYNAMIC_UID, SystemdStandIn, readServiceUnit, type ServiceUnit } from './support/systemd-stand-in.js';

const readme: Readme = readReadme();
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string> };
const UNIT_PATH = join(ROOT, 'deploy', 'l3dsr.service');
/** The README's install: the tarball npm pack writes, into a prefix. */
const INSTALL = `npm install -g --prefix /usr/local ./${pkg.name}-${pkg.version}.tgz`;
const PREFIX = /--prefix (\S+)/.exec(INSTALL)![1]!;
const EXIT_USAGE = 2;
/** Bounds a hang. */
const BOUND = { timeout: 60_000 };

// ---- the README's own facts, read from it ----

interface DocVip {
  type: 'l3dsr' | 'l2dsr';
  vip: string;
  dscp: number | null;
  /** Line in the configuration of the VIP (the [rule] header for a section). */
  line: number;
  match?: string;
  setDscp?: number;
  /** The NAME of a [rule NAME] section. */
  rule?: string;
}

/** The source `check` and `status` give a VIP: FILE:LINE, and the section of a [rule]. */
const sourceOf = (v: DocVip, file: string): string => `${file}:${v.line}${v.rule === undefined ? '' : ` [rule ${v.rule}]`}`;

/** A DSCP as dsr.conf(5) writes it: decimal, 0x hex, or octal with a leading zero. */
function dscpValue(text: string): number {
  if (/^0x/i.test(text)) return Number.parseInt(text.slice(2), 16);
  if (/^0\d/.test(text)) return Number.parseInt(text.slice(1), 8);
  return Number.parseInt(text, 10);
}

/** What the example configuration says, read line by line as its comments explain it. */
function documentedConfig(lines: readonly string[]): { vips: DocVip[]; daemon: Map<string, string> } {
  const vips: DocVip[] = [];
  const daemon = new Map<string, string>();
  let section = '';
  let rule: DocVip | undefined;
  lines.forEach((raw, k) => {
    const line = raw.replace(/#.*$/, '').replace(/(^|\s);.*$/, '').trim();
    if (line === '') return;
    const header = /^\[(\w+)(?:\s+(\S+))?\]$/.exec(line);
    if (header) {
      section = header[1]!;
      if (section === 'rule') vips.push(rule = { type: 'l3dsr', vip: '', dscp: null, line: k + 1, rule: header[2] });
      return;
    }
    const [key, value] = line.split('=').map((s) => s.trim()) as [string, string | undefined];
    if (section === 'daemon') daemon.set(key, value!);
    else if (section === 'rule') {
      if (key === 'dscp') rule!.dscp = dscpValue(value!);
      else if (key === 'destination') rule!.vip = value!;
      else if (key === 'match') rule!.match = value;
      else if (key === 'set-dscp') rule!.setDscp = dscpValue(value!);
    } else if (value === undefined) vips.push({ type: 'l2dsr', vip: key, dscp: null, line: k + 1 });
    else vips.push({ type: 'l3dsr', vip: key, dscp: dscpValue(value), line: k + 1 });
  });
  return { vips, daemon };
}

const CONFIG_TEXT = `${readme.config.join('\n')}\n`;
const CONFIG = documentedConfig(readme.config);
const STEER = (CONFIG.daemon.get('steer') ?? '').split(/[\s,]+/).filter(Boolean);
const METRICS = CONFIG.daemon.get('metrics');

// ---- running commands ----

/** `command` as argv, `l3dsr` as this checkout's (node bin/l3dsr.js), README paths replaced by `paths`. */
function argvOf(command: string, paths: Record<string, string> = {}): string[] {
  const words = command.split(/\s+/).map((w) => paths[w] ?? w);
  return words[0] === 'l3dsr' ? [process.execPath, L3DSR_BIN, ...words.slice(1)] : words;
}

function runHere(command: string, options: { cwd?: string; paths?: Record<string, string> } = {}): CliRun {
  const [file, ...args] = argvOf(command, options.paths);
  const r = spawnSync(file!, args, { cwd: options.cwd ?? ROOT, encoding: 'utf8', timeout: BOUND.timeout });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `sudo npm run demo …` as the README shows it, run to completion (as root already: `sudo` adds nothing here). */
function runDemo(command: string): Promise<CliRun> {
  const [sudo, npm, ...args] = command.split(/\s+/);
  assert.deepEqual([sudo, npm], ['sudo', 'npm'], command);
  return runToEnd('npm', args, { cwd: ROOT });
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const shown = (r: CliRun) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

function inTempDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l3dsr-readme-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** The README's configuration written where a check can give it as /etc/l3dsr.conf. */
function writeConfig(dir: string): string {
  const path = join(dir, 'l3dsr.conf');
  writeFileSync(path, CONFIG_TEXT);
  return path;
}

/** `npm pack --dry-run`: what the tarball would be called and hold (no build: --ignore-scripts). */
let packed: { filename: string; files: string[] } | undefined;
function dryPack(): { filename: string; files: string[] } {
  if (packed) return packed;
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [p] = JSON.parse(r.stdout) as [{ filename: string; files: { path: string }[] }];
  packed = { filename: p.filename, files: p.files.map((f) => f.path) };
  return packed;
}

const scriptText = (path: string) => readFileSync(join(ROOT, path), 'utf8');

// ---- captures for the rewrite commands ----

const RIP4 = '198.51.100.2';
const RIP6 = '2001:db8:198::2';
const CLIENT4 = '192.0.2.1';
const CLIENT6 = '2001:db8:192::1';

function toServer(family: 4 | 6, dscp: number, seed: number, dst = family === 4 ? RIP4 : RIP6): PacketSpec {
  const body = filler(16 + seed, seed);
  return { src: family === 4 ? CLIENT4 : CLIENT6, dst, dscp, id: seed, flowLabel: seed, protocol: seed % 2 ? PROTO.UDP : PROTO.TCP, transport: seed % 2 ? udp(body) : tcp(body) };
}

function writeCapture(path: string, frames: readonly Uint8Array[], linkType: number): void {
  writeFileSync(path, classicFile({ linkType, records: frames.map((data, i) => ({ sec: 1_700_000_000 + i, frac: i, data })) }));
}

/** Destination and DSCP of each IP packet of a capture, in order. */
async function packetsOf(path: string): Promise<{ dst: string; dscp: number }[]> {
  const out: { dst: string; dscp: number }[] = [];
  for await (const r of await openCapture(path)) {
    const l3 = r.data.subarray(locateL3(r.linkType, r.data).offset);
    const v6 = l3[0]! >> 4 === 6;
    out.push(v6
      ? { dst: addressText(l3.subarray(24, 40)), dscp: (((l3[0]! & 0x0f) << 4) | (l3[1]! >> 4)) >> 2 }
      : { dst: addressText(l3.subarray(16, 20)), dscp: l3[1]! >> 2 });
  }
  return out;
}

// ---- the server the service commands run on ----

/** One network namespace with the interfaces the README's `steer` line names (veth pairs, both ends inside: steering needs only that they exist). */
class ServerHost extends NamespaceLab<'srv'> {
  static async create(): Promise<ServerHost> {
    const host = new ServerHost(nextLabName(), ['srv']);
    try {
      await host.createNamespaces();
      for (const dev of STEER) {
        await ip(['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}-peer`], host.where('srv'));
        for (const end of [dev, `${dev}-peer`]) await ip(['link', 'set', end, 'up'], host.where('srv'));
      }
    } catch (err) {
      await host.destroy().catch(() => {});
      throw err;
    }
    return host;
  }
}

/** A row of `l3dsr status` for each VIP of the README's configuration, as that section of the README describes them. */
function assertStatusRows(stdout: string, source: string): void {
  for (const v of CONFIG.vips) {
    const row = new RegExp(`^${v.type}\\s+started\\s+${escape(v.vip)}\\s+${v.dscp ?? '--'}\\s+yes\\s+${v.type === 'l3dsr' ? 'up' : '--'}\\s+${escape(sourceOf(v, source))}\\s*$`, 'm');
    assert.match(stdout, row, `no row for ${v.vip} (${source}:${v.line})`);
  }
}

/** Nothing of a daemon in the server's namespace: no TUN, no qdisc or filter on the steered interfaces, nothing but loopback on lo. */
async function assertNothingLeft(host: ServerHost): Promise<void> {
  const where = host.where('srv');
  assert.deepEqual(await ipJson<unknown[]>(['link', 'show', 'type', 'tun'], where), [], 'a TUN device is left');
  const steering = await inspectSteering({ interfaces: STEER, netns: host.namespaces.srv });
  for (const i of steering.interfaces) {
    assert.equal(i.hasClsact, false, `${i.name}: the clsact qdisc is left`);
    assert.deepEqual(i.ours, [], `${i.name}: steering filters are left`);
  }
  const lo = await ipJson<{ addr_info?: { local: string }[] }[]>(['addr', 'show', 'dev', 'lo'], where);
  assert.deepEqual(lo.flatMap((l) => (l.addr_info ?? []).map((a) => a.local)).sort(), ['127.0.0.1', '::1']);
}

// ---- the checks ----

interface Service {
  host: ServerHost;
  unit: ServiceUnit;
  systemd: SystemdStandIn;
  dir: string;
}

interface Check {
  /** Where the check runs: here (no root), against the service, or the demo. */
  group: 'here' | 'service' | 'demo';
  /** Bounds a hang of a demo check (default 120 s). */
  timeout?: number;
  /** `command` is the check's key: the README's text. */
  run: (command: string, service: Service) => Promise<void> | void;
}

const here = (run: (command: string) => Promise<void> | void): Check => ({ group: 'here', run });
const onService = (run: (s: Service) => Promise<void>): Check => ({ group: 'service', run: (_, s) => run(s) });

/** Commands of the README this suite does not run, and why. Keep it short. */
const NOT_RUN: Record<string, string> = {
  'npm test': 'it runs this suite among the others; CI runs it as root (.ci/run), and the README gives its time as measured from a fresh clone',
  'sudo npm test': 'the same: .ci/run runs it, nothing allowed to skip (L3DSR_REQUIRE_PRIVILEGED=1)',
  'apt-get install -y iproute2 g++ make python3': 'installs system packages on the server; what they are for, npm install -g building the addon with node-gyp, scripts/pack-check.sh runs in CI',
};

const CHECKS = new Map<string, Check>([
  // Quick start
  ['sudo npm run demo', { group: 'demo', run: async (command) => {
    const r = await runDemo(command);
    assert.equal(r.code, 0, shown(r));
    const ok = /^OK: (\d+) of (\d+) requests answered by their VIP; replies all came straight from srv\.$/m.exec(r.stdout);
    assert.ok(ok && ok[1] === ok[2] && Number(ok[1]) > 0, shown(r));
    // It shows the commands it runs: l3dsr status asks the daemon through the socket it was started with.
    const run = /\$ ip netns exec (\S+) l3dsr run .*--control-socket (\S+)$/m.exec(r.stdout);
    assert.ok(run, shown(r));
    assert.ok(r.stdout.includes(`$ ip netns exec ${run[1]} l3dsr status --control-socket ${run[2]}\n`), `the demo does not show the status command it runs:\n${r.stdout}`);
    // "builds a 3-namespace lab": its namespaces are named, and gone again.
    const names = /namespaces: (\S+), (\S+), (\S+)\n/.exec(r.stdout);
    assert.ok(names, shown(r));
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    for (const ns of names.slice(1)) assert.ok(!left.includes(ns!), `namespace ${ns} left behind`);
  } }],
  ['sudo npm run demo -- --lb', { group: 'demo', timeout: 300_000, run: async (command) => {
    const r = await runDemo(command);
    assert.equal(r.code, 0, shown(r));
    const out = r.stdout;
    const ok = /^OK: every check held \((\d+) of (\d+)\)\.$/m.exec(out);
    assert.ok(ok && ok[1] === ok[2], shown(r));
    // What it shows is read back from its output, not from its verdict: a demo that says OK over a broken transfer fails here.
    // "the 7-namespace ECMP lab": its namespaces are named, and gone again.
    const names = /^ +namespaces: (.*)$/m.exec(out)?.[1]?.split(', ') ?? [];
    assert.equal(names.length, 7, shown(r));
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    for (const ns of names) assert.ok(!left.includes(ns), `namespace ${ns} left behind`);
    // "2 × l3dsr lb, 2 × l3dsr run", each in a namespace of its own.
    for (const daemon of ['lb', 'run']) {
      const where = [...out.matchAll(new RegExp(`^ +\\$ ip netns exec (\\S+) l3dsr ${daemon} --config `, 'gm'))].map((m) => m[1]!);
      assert.equal(new Set(where).size, 2, `l3dsr ${daemon} started in ${where.join(', ')}`);
    }
    // "spread by weight": what the servers answered per VIP; both got some; the heavier weight has the larger share of the table.
    const perVip = Number(/The spread: (\d+) TCP connections per VIP/.exec(out)?.[1]);
    const rows = [...out.matchAll(/^ {7}(\S+) +srv1 +(\d+) \([^;]*; weight (\d+), table ([\d.]+) %\) +srv2 +(\d+) \([^;]*; weight (\d+), table ([\d.]+) %\)$/gm)];
    assert.equal(rows.length, 2, `one row per VIP, IPv4 and IPv6:\n${out}`);
    for (const [row, , srv1, w1, t1, srv2, w2, t2] of rows) {
      assert.ok(Number(srv1) > 0 && Number(srv2) > 0 && Number(srv1) + Number(srv2) === perVip, row);
      assert.ok(Number(w1) > Number(w2) && Number(t1) > Number(t2), row);
    }
    const syns = /what rtr's ECMP route sent each balancer \(SYNs\): lb1 (\d+), lb2 (\d+)$/m.exec(out);
    assert.ok(syns && Number(syns[1]) > 0 && Number(syns[2]) > 0 && Number(syns[1]) + Number(syns[2]) >= 2 * perVip, shown(r));
    // Straight back: the replies reached rtr from the servers' segment, and no balancer saw one.
    assert.match(out, /replies from the VIPs: [1-9]\d* packets reached rtr from the server segment; lb1 saw 0, lb2 saw 0$/m);
    // "a failed health check": both balancers take srv2 out of each VIP and back; every new connection meanwhile answered, none sent to it.
    for (const lb of ['lb1', 'lb2']) {
      for (const [section, rip] of [['web4', '198.51.100.12'], ['web6', '2001:db8:198::12']]) {
        for (const state of ['down', 'up']) assert.ok(out.includes(`${lb}: backend ${state} ${section} ${rip} (`), `${lb}: no backend ${state} for ${section} ${rip}:\n${out}`);
      }
    }
    const fresh = /^ +(\d+) of (\d+) new HTTP connections to the VIPs .* answered by the VIP$/m.exec(out);
    assert.ok(fresh && fresh[1] === fresh[2] && Number(fresh[1]) > 0, shown(r));
    assert.match(out, /packets the balancers sent meanwhile: to srv1 [1-9]\d*, to srv2 0$/m);
    // "a balancer killed mid-transfer": kill -9, the cut, and every long connection answered by the same server before and after.
    assert.match(out, /^ +\$ kill -9 \d+ +# l3dsr lb in lb1$/m);
    assert.match(out, /^ +\$ ip netns exec \S+-lb1 ip link set lb-r down /m);
    const flows = Number(/while (\d+) long TCP connections per VIP run/.exec(out)?.[1]);
    const carried = /the connections through rtr \(SYNs\): lb1 (\d+), lb2 (\d+)$/m.exec(out);
    assert.ok(carried && Number(carried[1]) > 0, `lb1 carried none of the long connections:\n${out}`);
    const servers = (when: string) => new Map([...out.matchAll(new RegExp(`^ {7}${when} +(\\S+) +(.*)$`, 'gm'))].map((m) => [m[1]!, m[2]!.split(' ')]));
    const [before, after] = [servers('before'), servers('after')];
    assert.equal(before.size, 2, `no connection list per VIP before the kill:\n${out}`);
    for (const [vip, was] of before) {
      assert.equal(was.length, flows, `${vip}: ${was.join(' ')}`);
      for (const s of was) assert.match(s, /^srv[12]$/, `${vip} before the kill: ${was.join(' ')}`);
      assert.deepEqual(after.get(vip), was, `${vip}: a long connection broke or changed its server when lb1 was killed`);
    }
    assert.match(out, /^ +after the cut rtr sent lb1 0 packets$/m);
  } }],

  // Deploying: packing and installing (scripts/pack-check.sh runs both in CI)
  ['npm ci && npm pack', here(() => {
    const ci = scriptText('.ci/run');
    assert.match(ci, /^npm ci$/m, '.ci/run does not run npm ci');
    assert.match(ci, /^scripts\/pack-check\.sh$/m, '.ci/run does not run scripts/pack-check.sh');
    assert.match(scriptText('scripts/pack-check.sh'), /^npm pack /m, 'pack-check.sh does not run npm pack');
    // The comment beside it names the tarball: the README's name must be npm's.
    const { filename, files } = dryPack();
    assert.equal(filename, `${pkg.name}-${pkg.version}.tgz`);
    assert.match(readme.sections['Deploying on a real server'], new RegExp(`npm ci && npm pack\\s+# writes ${filename.replace(/\./g, '\\.')}`));
    for (const f of ['bin/l3dsr.js', 'deploy/l3dsr.service', 'deploy/l3dsr.conf.example', 'dist/wasm/core.wasm', 'binding.gyp']) assert.ok(files.includes(f), `the tarball lacks ${f}`);
  })],
  [INSTALL, here(() => {
    assert.match(scriptText('scripts/pack-check.sh'), /npm install -g .*--prefix "\$tmp\/prefix"/, 'pack-check.sh does not install with npm install -g --prefix');
    assert.equal(dryPack().filename, `${pkg.name}-${pkg.version}.tgz`);
    // npm links a package's bin as PREFIX/bin/NAME: the program the unit starts.
    assert.deepEqual(Object.keys(pkg.bin), ['l3dsr']);
    assert.equal(readServiceUnit(UNIT_PATH).execStart[0], `${PREFIX}/bin/l3dsr`, `ExecStart is not what npm install -g --prefix ${PREFIX} installs`);
  })],
  ['l3dsr --version', here(() => {
    const r = runHere('l3dsr --version');
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout, `l3dsr ${pkg.version}\n`);
    assert.deepEqual(runHere('l3dsr version'), r, '"l3dsr version" differs from --version');
  })],

  // Deploying: under systemd
  ['cp /usr/local/lib/node_modules/l3dsr/deploy/l3dsr.service /etc/systemd/system/', here((command) => {
    // npm install -g --prefix P puts the package in P/lib/node_modules/NAME, with what "files" packs.
    assert.ok(dryPack().files.includes('deploy/l3dsr.service'), 'the tarball lacks deploy/l3dsr.service');
    assert.equal(command.split(' ')[1], `${PREFIX}/lib/node_modules/${pkg.name}/deploy/l3dsr.service`);
  })],
  ['systemctl enable --now l3dsr', onService(async ({ systemd }) => {
    const d = await systemd.start();
    const status = readFileSync(`/proc/${d.pid}/status`, 'utf8');
    const field = (key: string) => new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(status)![1]!.trim();
    assert.deepEqual(field('Uid').split(/\s+/), Array(4).fill(String(DYNAMIC_UID)), 'not the unit\'s own user');
    for (const set of ['CapEff', 'CapPrm', 'CapAmb', 'CapBnd']) assert.equal(BigInt(`0x${field(set)}`), 1n << 12n, `${set}: CAP_NET_ADMIN and nothing else`);
    const runtime = systemd.path('/run/l3dsr');
    assert.ok(readdirSync(runtime).length > 0, 'nothing in the runtime directory');
    for (const name of readdirSync(runtime)) assert.equal(lstatSync(join(runtime, name)).uid, DYNAMIC_UID, `${name} is not the service user's`);
  })],
  ['l3dsr status', onService(async ({ host, systemd }) => {
    const r = await runL3dsr(host, ['status'], { prefix: systemd.prefix });
    assert.equal(r.code, 0, shown(r));
    assertStatusRows(r.stdout, '/etc/l3dsr.conf');
    assert.match(r.stdout, new RegExp(`^steering: tc ingress redirect on ${STEER.join(', ')}$`, 'm'));
  })],
  [`curl ${METRICS}/metrics`, onService(async ({ host }) => {
    const [file, ...args] = argvOf(`curl ${METRICS}/metrics`);
    const text = await host.exec('srv', file!, args);
    assert.equal(metric(text, 'l3dsr_rules'), CONFIG.vips.filter((v) => v.type === 'l3dsr').length);
    assert.equal(metric(text, 'l3dsr_packets_total', { verdict: 'rewritten' }), 0);
  })],
  ['systemctl reload l3dsr', onService(async ({ host, systemd }) => {
    // A VIP added (a reload applies it) and queues changed (it names it: a restart is needed).
    assert.equal(CONFIG.daemon.get('queues'), '1', 'the example configuration no longer sets queues = 1');
    const conf = systemd.path('/etc/l3dsr.conf');
    writeFileSync(conf, `${CONFIG_TEXT.replace(/^queues = 1\b/m, 'queues = 2')}[vips]\n203.0.113.40 = 20\n`);
    const d = systemd.daemon;
    const from = d.log.length;
    await systemd.reload();
    await waitFor('the reload', 10_000, async () => (/msg=reloaded|reload refused/.test(d.log.slice(from)) ? true : undefined));
    const log = d.log.slice(from);
    assert.match(log, /msg=reloaded rules=5\b/, log);
    assert.match(log, /level=warn msg="setting changed: it needs a restart, the running value stays until then" setting=queues running=1 configured=2/, log);
    const r = await runL3dsr(host, ['status', '--json'], { prefix: systemd.prefix });
    const added = (JSON.parse(r.stdout) as StatusJson).vips?.find((v) => v.vip === '203.0.113.40');
    assert.equal(added?.state, 'started', shown(r));
    assert.equal((JSON.parse(r.stdout) as StatusJson).queues.length, 1);
  })],
  ['systemctl restart l3dsr', onService(async ({ host, systemd }) => {
    assert.deepEqual(await systemd.stop(true), { code: 0, signal: null }, systemd.daemon.log);
    assert.ok(existsSync(systemd.path('/run/l3dsr')), 'RuntimeDirectoryPreserve=restart keeps the runtime directory');
    await systemd.start();
    const r = await runL3dsr(host, ['status', '--json'], { prefix: systemd.prefix });
    assert.equal(r.code, 0, shown(r));
    assert.equal((JSON.parse(r.stdout) as StatusJson).queues.length, 2, 'the restart did not take the new queues');
  })],

  // Command line
  ['l3dsr help status', here(() => {
    const r = runHere('l3dsr help status');
    assert.equal(r.code, 0, shown(r));
    assert.deepEqual(runHere('l3dsr status --help'), r, '"l3dsr status --help" differs from "l3dsr help status"');
    for (const flag of Object.keys(STATUS_OPTIONS)) assert.match(r.stdout, new RegExp(`--${flag}\\b`), `help status does not name --${flag}`);
    // Where it looks for the daemon, as the README says.
    const socket = /`(\/run\/l3dsr\/<tun>\.netns-<inode>\.sock)`/.exec(readme.sections['Command line'])?.[1];
    assert.ok(socket, 'the README no longer names the control socket\'s path');
    assert.ok(r.stdout.includes(socket.replace('<tun>', 'NAME').replace('<inode>', 'INODE')), `help status does not name ${socket}:\n${r.stdout}`);
  })],
  ['l3dsr check --config /etc/l3dsr.conf', here(inTempDir((dir) => {
    const conf = writeConfig(dir);
    const r = runHere('l3dsr check --config /etc/l3dsr.conf', { paths: { '/etc/l3dsr.conf': conf } });
    assert.equal(r.code, 0, shown(r));
    for (const v of CONFIG.vips) {
      const row = new RegExp(`^${v.type}\\s+${escape(v.vip)}\\s+${v.dscp ?? '--'}\\s+${escape(v.match ?? '--')}\\s+${v.setDscp ?? '--'}\\s+${escape(sourceOf(v, conf))}\\s*$`, 'm');
      assert.match(r.stdout, row, `no row for ${v.vip}`);
    }
    const l3 = CONFIG.vips.filter((v) => v.type === 'l3dsr').length;
    assert.match(r.stdout, new RegExp(`^valid: ${l3} L3DSR rules, ${CONFIG.vips.length - l3} L2DSR VIPs, from 1 file$`, 'm'));
    // "exit 2 and every problem": two bad lines, both named.
    writeFileSync(conf, `${CONFIG_TEXT}[vips]\n203.0.113.50 = 64\n203.0.113.300 = 3\n`);
    const bad = runHere('l3dsr check --config /etc/l3dsr.conf', { paths: { '/etc/l3dsr.conf': conf } });
    assert.equal(bad.code, EXIT_USAGE, shown(bad));
    const n = readme.config.length;
    assert.match(bad.stderr, new RegExp(`:${n + 2}: dscp: expected an integer 0-63, got "64"`), shown(bad));
    assert.match(bad.stderr, new RegExp(`:${n + 3}: destination: "203\\.0\\.113\\.300"`), shown(bad));
  }))],
  ['l3dsr check --json --rule 1=203.0.113.10', here(() => {
    const r = runHere('l3dsr check --json --rule 1=203.0.113.10');
    assert.equal(r.code, 0, shown(r));
    const got = JSON.parse(r.stdout) as Record<string, unknown> & { rules: Record<string, unknown>[] };
    // The document the README shows, its "..." taken out: the same keys, and values of the same kinds.
    const span = /`(\{"ok": true, "command": "run",[^`]*)`/.exec(readme.sections['Command line']);
    assert.ok(span, 'the README no longer shows check --json\'s document');
    const documented = JSON.parse(span[1]!.replace(/\s+/g, ' ').replace(/\[\.\.\.\]/g, '[]').replace(/\{\.\.\.\}/g, '{}').replace(/, \.\.\.\]/g, ']')) as typeof got;
    const kinds = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v]));
    assert.deepEqual(kinds(got), kinds(documented));
    assert.deepEqual(kinds(got.rules[0]!), kinds(documented.rules[0]!));
    assert.deepEqual({ ...got.rules[0], source: undefined }, { type: 'l3dsr', vip: '203.0.113.10', family: 4, dscp: 1, match: null, setDscp: null, source: undefined });
  })],
  ['l3dsr status --json', onService(async ({ host, systemd }) => {
    const r = await runL3dsr(host, ['status', '--json'], { prefix: systemd.prefix });
    assert.equal(r.code, 0, shown(r));
    const s = JSON.parse(r.stdout) as StatusJson;
    assert.equal(s.pid, systemd.daemon.pid);
    for (const v of CONFIG.vips) {
      const row = s.vips?.find((x) => x.vip === v.vip);
      assert.deepEqual(row && { ...row, family: undefined }, {
        type: v.type, state: 'started', vip: v.vip, family: undefined, dscp: v.dscp, onLo: true, steering: v.type === 'l3dsr' ? 'up' : null, source: sourceOf(v, '/etc/l3dsr.conf'),
      });
    }
  })],
  ['l3dsr status --control-socket /tmp/l3dsr.sock', onService(async ({ host, systemd, dir }) => {
    // The service stops (SIGTERM, KillSignal=): a clean exit undoes everything.
    assert.deepEqual(await systemd.stop(), { code: 0, signal: null }, systemd.daemon.log);
    await assertNothingLeft(host);
    assert.equal(existsSync(systemd.path('/run/l3dsr')), false, 'the runtime directory outlived a stop');
    // A daemon started with --control-socket is found only through it.
    const conf = writeConfig(dir);
    const socket = join(dir, 'l3dsr.sock');
    const d = await LabDaemon.start(host, ['--config', conf], { controlSocket: socket });
    try {
      const r = await runL3dsr(host, argvOf('l3dsr status --control-socket /tmp/l3dsr.sock', { '/tmp/l3dsr.sock': socket }).slice(2));
      assert.equal(r.code, 0, shown(r));
      assertStatusRows(r.stdout, conf);
      const plain = await runL3dsr(host, ['status']);
      assert.equal(plain.code, 1, `status without --control-socket found a daemon:\n${shown(plain)}`);
    } finally {
      assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log);
    }
    await assertNothingLeft(host);
  })],
  ['l3dsr rewrite -r 1=203.0.113.10 -r 1=2001:db8:203::10 --verdicts v.jsonl in.pcap out.pcap', here(inTempDir(async (dir) => {
    const cases: { frame: Uint8Array; verdict: string; reason?: string; rule?: string; ip: boolean }[] = [
      { frame: ethernetFrame(buildPacket(toServer(4, 1, 1)), 0x0800), verdict: 'rewritten', rule: '1=203.0.113.10', ip: true },
      { frame: ethernetFrame(buildPacket(toServer(6, 1, 2)), 0x86dd), verdict: 'rewritten', rule: '1=2001:db8:203::10', ip: true },
      { frame: ethernetFrame(buildPacket(toServer(4, 0, 3)), 0x0800), verdict: 'passed', ip: true },
      { frame: ethernetFrame(arpRequest(DEFAULT_MACS.src, CLIENT4, RIP4), ARP.ETHERTYPE), verdict: 'passed', ip: false },
      { frame: ethernetFrame(Uint8Array.from(buildPacket(toServer(4, 1, 5)), (b, i) => (i === 0 ? 0x44 : b)), 0x0800), verdict: 'malformed', reason: 'ipv4-header', ip: true },
      // A rule matches, but a TCP header does not fit in the 10 bytes after the IP header.
      { frame: ethernetFrame(buildPacket({ ...toServer(4, 1, 7), protocol: PROTO.TCP, transport: udp(filler(2, 7)) }), 0x0800), verdict: 'dropped', reason: 'tcp-truncated', rule: '1=203.0.113.10', ip: true },
    ];
    writeCapture(join(dir, 'in.pcap'), cases.map((c) => c.frame), LINKTYPE.ETHERNET);
    const r = runHere('l3dsr rewrite -r 1=203.0.113.10 -r 1=2001:db8:203::10 --verdicts v.jsonl in.pcap out.pcap', { cwd: dir });
    assert.equal(r.code, 0, shown(r));
    assert.match(r.stderr, /^ {2}rewritten +2$/m, 'the summary');
    const lines = readFileSync(join(dir, 'v.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    // The README: always index and verdict; reason for malformed and dropped; rule when a rule matched; "l3": false when not IP.
    assert.deepEqual(lines, cases.map((c, index) => ({
      index, verdict: c.verdict, ...(c.reason ? { reason: c.reason } : {}), ...(c.rule ? { rule: c.rule } : {}), ...(c.ip ? {} : { l3: false }),
    })));
    assert.equal((await packetsOf(join(dir, 'out.pcap'))).length, cases.length - 1, 'every packet but the dropped one is written');
    // The command's own help names each of those keys too.
    const help = /--verdicts FILE\s+(.*)/.exec(runHere('l3dsr rewrite --help').stdout)?.[1] ?? '';
    for (const key of new Set(lines.flatMap((l) => Object.keys(l)))) assert.match(help, new RegExp(`\\b${key}\\b`), `rewrite --help does not name "${key}"`);
  }))],
  ['l3dsr rewrite -q -c /etc/l3dsr.conf in.pcap out.pcap', here(inTempDir(async (dir) => {
    const conf = writeConfig(dir);
    // A marked packet for each rule of the configuration, to an address its match takes; one its match does not take.
    const rules = CONFIG.vips.filter((v) => v.type === 'l3dsr');
    const outside = rules.find((v) => v.match !== undefined);
    assert.ok(outside, 'the example configuration has no rule with a match');
    const specs = rules.map((v, i) => toServer(v.vip.includes(':') ? 6 : 4, v.dscp!, i + 1));
    specs.push(toServer(4, outside.dscp!, 9, CLIENT4));
    writeCapture(join(dir, 'in.pcap'), specs.map((s) => buildPacket(s)), LINKTYPE.RAW);
    const r = runHere('l3dsr rewrite -q -c /etc/l3dsr.conf in.pcap out.pcap', { cwd: dir, paths: { '/etc/l3dsr.conf': conf } });
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stderr, '', '-q: no summary');
    assert.deepEqual(await packetsOf(join(dir, 'out.pcap')), [
      ...rules.map((v) => ({ dst: v.vip, dscp: v.setDscp ?? v.dscp! })),
      { dst: CLIENT4, dscp: outside.dscp! },
    ]);
  }))],
]);

// ---- the suite ----

describe('README.md: every command shown has a check here, and every check a command there', () => {
  const documented = [...new Set(readme.commands.map((c) => c.text))];
  const known = new Set([...CHECKS.keys(), ...Object.keys(NOT_RUN)]);

  it('each command of the README is checked or says why not (NOT_RUN)', () => {
    const missing = readme.commands.filter((c) => !known.has(c.text)).map((c) => `README.md:${c.line}: ${c.text}`);
    assert.deepEqual(missing, [], 'README commands without a check in test/readme.test.ts');
  });

  it('each check and NOT_RUN entry is a command the README still shows', () => {
    assert.deepEqual([...known].filter((k) => !documented.includes(k)), [], 'checks of commands the README no longer shows');
    assert.deepEqual(Object.keys(NOT_RUN).filter((k) => CHECKS.has(k)), [], 'a command both checked and not run');
  });

  it('the synopsis shows every command and every flag each takes; flags shown as alternatives are refused together', inTempDir((dir) => {
    const commands = [...runHere('l3dsr help').stdout.matchAll(/^ {2}l3dsr (\w+)/gm)].map((m) => m[1]!);
    // A command may have several synopsis lines (rewrite: rules, or --lb-config); its flags are their union.
    const synopsis = new Map<string, string>();
    for (const s of readme.synopsis) synopsis.set(s.split(' ')[1]!, `${synopsis.get(s.split(' ')[1]!) ?? ''} ${s}`.trim());
    assert.deepEqual([...synopsis.keys()].sort(), [...commands].sort(), 'the synopsis and l3dsr help list different commands');
    const options: Record<string, Record<string, { type: string; short?: string }>> = { run: RUN_OPTIONS, lb: LB_OPTIONS, check: CHECK_OPTIONS, rewrite: REWRITE_OPTIONS, status: STATUS_OPTIONS, version: {}, help: {} };
    for (const [command, line] of synopsis) {
      const flags = [...new Set([...line.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!))].sort();
      assert.deepEqual(flags, Object.keys(options[command]!).filter((f) => f !== 'help').sort(), `l3dsr ${command}: the synopsis and the code's flags differ`);
      for (const [flag, o] of Object.entries(options[command]!)) {
        if (o.short && flag !== 'help') assert.match(readme.sections['Command line'], new RegExp(`\`-${o.short}\`[^.]*\`--${flag}\``), `-${o.short} (--${flag}) is not documented`);
      }
      // Given together, two alternatives are refused before anything runs (the socket is one nobody answers on).
      for (const [, a, b] of line.matchAll(/\[--([a-z-]+)[^|\]]*\| --([a-z-]+)[^\]]*\]/g)) {
        const value = (f: string) => options[command]![f]!.type === 'string' ? [`--${f}`, f === 'control-socket' ? join(dir, 'none.sock') : 'dsr9'] : [`--${f}`];
        const extra = command === 'run' ? ['--rule', '1=203.0.113.10', '--steer', 'r2-none0', '--control-socket', join(dir, 'run.sock')] : [];
        const r = spawnSync(process.execPath, [L3DSR_BIN, command, ...value(a!), ...value(b!), ...extra], { encoding: 'utf8' });
        assert.equal(r.status, EXIT_USAGE, `l3dsr ${command} --${a} --${b}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`--${a} and --${b} (are alternatives|contradict each other): give one`));
      }
    }
  }));

  it('the example configuration shows every [daemon] setting of l3dsr run, and only those', inTempDir((dir) => {
    const probe = join(dir, 'probe.conf');
    writeFileSync(probe, '[daemon]\nno-such-setting = 1\n');
    const r = runHere(`l3dsr check --config ${probe}`);
    const known = /known: (.*)$/m.exec(r.stderr)?.[1]?.split(', ');
    assert.ok(known, shown(r));
    const forRun = known.filter((k) => DAEMON_KEY_COMMAND.get(k) !== 'lb').sort();
    assert.deepEqual([...CONFIG.daemon.keys()].sort(), forRun);
  }));
});

describe('README.md commands that need no root', () => {
  for (const [command, check] of CHECKS) {
    if (check.group === 'here') it(command, BOUND, () => check.run(command, undefined as never));
  }
});

describe('README.md: the quick start demo', privileged('builds the demo\'s three network namespaces'), () => {
  for (const [command, check] of CHECKS) {
    if (check.group === 'demo') it(command, { timeout: check.timeout ?? 120_000 }, () => check.run(command, undefined as never));
  }
});

describe('README.md: the service, run from deploy/l3dsr.service as systemd would, with the README\'s configuration',
  needs(privileged('builds a network namespace, a mount namespace and a TUN, and changes the mode of /dev/net/tun'), tools('curl')), () => {
    let service: Service | undefined;
    let install: string | undefined;
    let dir: string | undefined;
    let host: ServerHost | undefined;
    let systemd: SystemdStandIn | undefined;

    before(async () => {
      requireLabRoot();
      const unit = readServiceUnit(UNIT_PATH);
      install = installCopy(DAEMON_PARTS);
      dir = mkdtempSync(join(tmpdir(), 'l3dsr-readme-'));
      host = await ServerHost.create();
      systemd = await SystemdStandIn.create(host, 'srv', unit, {
        etc: { 'l3dsr.conf': CONFIG_TEXT },
        // What npm install -g --prefix /usr/local links, and node where systemd's PATH finds it.
        bin: { l3dsr: join(install, pkg.bin.l3dsr!), node: process.execPath },
      });
      service = { host, unit, systemd, dir };
    });

    after(async () => {
      await systemd?.destroy();
      await host?.destroy();
      for (const d of [dir, install]) if (d) rmSync(d, { recursive: true, force: true });
    });

    for (const [command, check] of CHECKS) {
      if (check.group === 'service') it(command, BOUND, () => check.run(command, service!));
    }
  });
