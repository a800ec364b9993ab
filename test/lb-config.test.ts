// [lb NAME] sections (src/config/lb.ts): the example as it reads,
// the defaults, every error with its file, line and field, the checks
// between sections, and one configuration per command: l3dsr run (and
// rewrite, and a reload) refuse [lb] sections, the balancer's loader
// refuses the real server's rules.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_LB_VIPS } from '../src/config/lb.js';
import { lbConfigurationFrom, loadAnyConfiguration, loadConfiguration, loadLbConfiguration } from '../src/config/load.js';
import { ConfigErrors } from '../src/config/parse.js';
import { parseRunOptions } from '../src/cli/run-options.js';
import { MAX_BACKENDS } from '../src/lb/maglev.js';

const F = '/etc/l3dsr-lb.conf';
const lb = (text: string) => lbConfigurationFrom([{ file: F, text }]);

/** The messages of the problems a load reports (it must fail). */
function problems(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    assert.ok(err instanceof ConfigErrors, `not a ConfigErrors: ${(err as Error).stack}`);
    return err.problems.map((p) => p.message);
  }
  assert.fail('the configuration was accepted');
}
async function problemsOf(load: Promise<unknown>): Promise<string[]> {
  try {
    await load;
  } catch (err) {
    assert.ok(err instanceof ConfigErrors, `not a ConfigErrors: ${(err as Error).stack}`);
    return err.problems.map((p) => p.message);
  }
  assert.fail('the configuration was accepted');
}

/** The example, as written there. */
const EXAMPLE = `[daemon]
tun = lb0
steer = lb-c                 # where client traffic for the VIPs arrives
metrics = 127.0.0.1:9110

[lb web]
vip = 203.0.113.10
dscp = 1
ports = tcp/8080             # optional; without it every packet to the VIP is balanced
backends = 198.51.100.2, 198.51.100.3 weight=2, 198.51.100.4 drain
check = tcp 8080             # or: none
interval = 1s
rise = 2
fall = 2
`;

/** A valid section to vary: `extra` lines are appended. */
const section = (name: string, vip: string, dscp: number, backends: string, extra = '') =>
  `[lb ${name}]\nvip = ${vip}\ndscp = ${dscp}\nbackends = ${backends}\ncheck = none\n${extra}`;

describe('[lb] sections', () => {
  it("reads the issue's example into what l3dsr lb needs", () => {
    const c = lb(EXAMPLE);
    assert.deepEqual(c.daemon, { tun: 'lb0', steer: ['lb-c'], metrics: '127.0.0.1:9110' });
    assert.deepEqual(c.vips, [{
      name: 'web', family: 4, vip: '203.0.113.10', dscp: 1, ports: [{ protocol: 'tcp', from: 8080, to: 8080 }],
      hash: '5-tuple', tableSize: 65537,
      backends: [
        { address: '198.51.100.2', weight: 1, drain: false, origin: `${F}:10` },
        { address: '198.51.100.3', weight: 2, drain: false, origin: `${F}:10` },
        { address: '198.51.100.4', weight: 1, drain: true, origin: `${F}:10` },
      ],
      check: { type: 'tcp', port: 8080 }, intervalMs: 1000, timeoutMs: 1000, rise: 2, fall: 2, origin: `${F}:6 [lb web]`,
    }]);
    assert.deepEqual(c.warnings, []);
  });

  it('defaults, IPv6, several backends lines, every key', () => {
    const c = lb(`[daemon]\nconnections = 262144\n${section('v6', '2001:DB8:203::10', 0x21, '2001:db8:198::2 weight=0, 2001:db8:198::3',
      'backends = 2001:db8:198::4 drain weight=7\nports = udp, tcp/80-89 sctp/9\nhash = 3-tuple\ntable-size = 131071\ninterval = 500ms\ntimeout = 200ms\nrise = 1\nfall = 5\n')}`);
    assert.equal(c.daemon.connections, 262144);
    const [v] = c.vips;
    assert.deepEqual([v.vip, v.family, v.dscp, v.hash, v.tableSize, v.intervalMs, v.timeoutMs, v.rise, v.fall], ['2001:db8:203::10', 6, 33, '3-tuple', 131071, 500, 200, 1, 5]);
    assert.deepEqual(v.ports, [{ protocol: 'udp', from: 0, to: 65535 }, { protocol: 'tcp', from: 80, to: 89 }, { protocol: 'sctp', from: 9, to: 9 }]);
    assert.deepEqual(v.backends.map((b) => [b.address, b.weight, b.drain, b.origin]), [
      ['2001:db8:198::2', 0, false, `${F}:6`], ['2001:db8:198::3', 1, false, `${F}:6`], ['2001:db8:198::4', 7, true, `${F}:8`],
    ]);
    assert.deepEqual(v.check, { type: 'none' });
  });

  const S = (extra: string, backends = '198.51.100.2') => section('web', '203.0.113.10', 1, backends, extra);
  const bad: [string, string, string][] = [
    ['no name', '[lb]\nvip = 203.0.113.10', `${F}:1: [lb] needs a name: [lb NAME]`],
    ['a name that is no label', '[lb web site]\nvip = 203.0.113.10', `${F}:1: [lb web site]: a name is 1-64 letters, digits`],
    ['a missing key', '[lb web]\nvip = 203.0.113.10\ndscp = 1\ncheck = none', `${F}:1: [lb web] has no "backends"`],
    ['an unknown key', S('weight = 2'), `${F}:6: [lb web] has no key "weight"; known: vip, dscp, ports, backends, check`],
    ['a key twice', S('dscp = 2'), `${F}:6: [lb web] dscp: given twice (first at line 3)`],
    ['a key without a value', S('ports'), `${F}:6: [lb web] expects "key = value", got "ports"`],
    ['a bad VIP', '[lb web]\nvip = 203.0.113.300\ndscp = 1\nbackends = 198.51.100.2\ncheck = none', `${F}:2: [lb web] vip: "203.0.113.300": expected a dotted-quad`],
    ['a host name as VIP', '[lb web]\nvip = localhost\ndscp = 1\nbackends = 198.51.100.2\ncheck = none', `${F}:2: [lb web] vip: "localhost": expected an IPv4 address`],
    ['a multicast VIP', '[lb web]\nvip = 224.0.0.5\ndscp = 1\nbackends = 198.51.100.2\ncheck = none', `${F}:2: [lb web] vip: 224.0.0.5 is a multicast address`],
    ['a DSCP out of range', '[lb web]\nvip = 203.0.113.10\ndscp = 64\nbackends = 198.51.100.2\ncheck = none', `${F}:3: [lb web] dscp: expected an integer 0-63, got "64"`],
    ['a backend of the other family', S('', '198.51.100.2, 2001:db8::2'), `${F}:4: [lb web] backends: 2001:db8::2 is IPv6 but the VIP 203.0.113.10 is IPv4: L3DSR rewrites the destination only`],
    ['the VIP as a backend', S('', '203.0.113.10'), `${F}:4: [lb web] backends: 203.0.113.10 is the VIP itself`],
    ['a loopback backend', S('', '127.0.0.2'), `${F}:4: [lb web] backends: 127.0.0.2 is a loopback address: the kernel does not forward to it`],
    ['a backend twice', S('backends = 198.51.100.2 weight=3'), `${F}:6: [lb web] backends: 198.51.100.2 is listed twice (first at line 4)`],
    ['a weight out of range', S('', '198.51.100.2 weight=1001'), `${F}:4: [lb web] backends: "198.51.100.2 weight=1001": weight: expected an integer 0-1000, got "1001"`],
    ['an unknown backend option', S('', '198.51.100.2 wieght=2'), `${F}:4: [lb web] backends: "198.51.100.2 wieght=2": unknown option "wieght=2"; expected ADDRESS [weight=N] [drain]`],
    ['an option twice', S('', '198.51.100.2 drain drain'), `${F}:4: [lb web] backends: "198.51.100.2 drain drain": "drain" given twice`],
    ['an empty item', S('', '198.51.100.2,,198.51.100.3'), `${F}:4: [lb web] backends: an empty item in the list`],
    ['an unknown protocol', S('ports = icmp/1'), `${F}:6: [lb web] ports: "icmp/1": unknown protocol "icmp"; one of tcp, udp, udplite, sctp, dccp`],
    ['a port out of range', S('ports = tcp/0'), `${F}:6: [lb web] ports: "tcp/0": ports are 1-65535, a range low-high`],
    ['a backwards range', S('ports = tcp/90-80'), `${F}:6: [lb web] ports: "tcp/90-80": ports are 1-65535`],
    ['overlapping ports', S('ports = tcp/80-90, udp/53, tcp/85'), `${F}:6: [lb web] ports: "tcp/85" overlaps "tcp/80-90" listed before`],
    ['a check without a port', '[lb web]\nvip = 203.0.113.10\ndscp = 1\nbackends = 198.51.100.2\ncheck = tcp', `${F}:5: [lb web] check: expected "tcp PORT" (a TCP connect to each backend, e.g. tcp 8080) or "none", got "tcp"`],
    ['a check port out of range', '[lb web]\nvip = 203.0.113.10\ndscp = 1\nbackends = 198.51.100.2\ncheck = tcp 70000', `${F}:5: [lb web] check: port: expected an integer 1-65535, got "70000"`],
    ['an interval without a unit', S('interval = 5'), `${F}:6: [lb web] interval: expected a duration such as 1s or 500ms, 100 ms to 60 s, got "5"`],
    ['an interval too short', S('interval = 10ms'), `${F}:6: [lb web] interval: expected a duration`],
    ['a timeout longer than the interval', S('interval = 1s\ntimeout = 2s'), `${F}:7: [lb web] timeout: 2000 ms is longer than the interval (1000 ms)`],
    ['rise 0', S('rise = 0'), `${F}:6: [lb web] rise: expected an integer 1-100, got "0"`],
    ['an unknown hash', S('hash = 4-tuple'), `${F}:6: [lb web] hash: expected 5-tuple or 3-tuple, got "4-tuple"`],
    ['a table size that is no prime', S('table-size = 65536'), `${F}:6: [lb web] table-size: expected a prime (the Maglev table size), got 65536`],
    ['a table size out of range', S('table-size = 262147'), `${F}:6: [lb web] table-size: expected an integer 13-131071, got "262147"`],
    ['a table smaller than the backends', S('table-size = 13', Array.from({ length: 14 }, (_, i) => `198.51.100.${i + 2}`).join(', ')), `${F}:6: [lb web] table-size: 13 slots for 14 backends`],
    ['connections not a power of two', `[daemon]\nconnections = 100000\n${S('')}`, `${F}:2: connections: expected a power of two 1024-16777216, got "100000"`],
    ['a second section of a name', `${S('')}${S('')}`, `${F}:6: a second [lb web] (the first is at ${F}:1)`],
  ];
  for (const [name, text, message] of bad) {
    it(`refuses ${name}, naming file, line and field`, () => {
      const [first] = problems(() => lb(text));
      assert.ok(first.startsWith(message), `got: ${first}`);
    });
  }

  it('reports every problem of every section, in order', () => {
    const found = problems(() => lb(`${S('rise = 0\nhash = x\n', '198.51.100.2 weight=-1')}[lb b]\nvip = 203.0.113.11\ndscp = 99\nbackends = 198.51.100.3\ncheck = none\n`));
    assert.deepEqual(found.map((m) => m.split(': ').slice(0, 2).join(': ')), [
      `${F}:4: [lb web] backends`, `${F}:6: [lb web] rise`, `${F}:7: [lb web] hash`, `${F}:10: [lb b] dscp`,
    ]);
  });

  it('at most MAX_BACKENDS backends per VIP, said once', () => {
    const many = Array.from({ length: MAX_BACKENDS + 5 }, (_, i) => `2001:db8::${i.toString(16)}`).join(', ');
    assert.deepEqual(problems(() => lb(section('big', '2001:db8:203::10', 1, many, 'table-size = 131071\n'))),
      [`${F}:4: [lb big] backends: at most ${MAX_BACKENDS} per VIP; this is number ${MAX_BACKENDS + 1}`]);
  });

  it('at most MAX_LB_VIPS sections', () => {
    const text = Array.from({ length: MAX_LB_VIPS + 1 }, (_, i) => section(`v${i}`, `2001:db8:203::${i.toString(16)}`, 1, `2001:db8:198::${i.toString(16)}`)).join('');
    assert.deepEqual(problems(() => lb(text)), [`${F}:${MAX_LB_VIPS * 5 + 2}: at most ${MAX_LB_VIPS} [lb] sections`]);
  });
});

describe('[lb] sections together', () => {
  it('a VIP shared by sections whose ports do not overlap; fragments of a protocol both list are warned about', () => {
    const c = lb(section('http', '203.0.113.10', 1, '198.51.100.2', 'ports = tcp/80\n') + section('dns', '203.0.113.10', 2, '198.51.100.2', 'ports = udp/53, tcp/53\n'));
    assert.deepEqual(c.vips.map((v) => v.name), ['http', 'dns']);
    assert.deepEqual(c.warnings, ['[lb http] and [lb dns] share tcp to 203.0.113.10: a fragment carries no port, so fragments of tcp to it are dropped (docs/lb.md#fragments)']);
  });

  it('refuses a VIP shared with a section without ports, or with overlapping ports, naming both', () => {
    assert.deepEqual(problems(() => lb(section('a', '203.0.113.10', 1, '198.51.100.2') + section('b', '203.0.113.10', 2, '198.51.100.3', 'ports = tcp/80\n'))),
      [`${F}:7: [lb b] vip: 203.0.113.10 is already balanced by [lb a] (${F}:1), which takes every packet to it (it has no "ports")`]);
    assert.deepEqual(problems(() => lb(section('a', '203.0.113.10', 1, '198.51.100.2', 'ports = tcp/80\n') + section('b', '203.0.113.10', 2, '198.51.100.3'))),
      [`${F}:8: [lb b] vip: 203.0.113.10 is also balanced by [lb a] (${F}:1); without "ports" this section would take every packet to it`]);
    assert.deepEqual(problems(() => lb(section('a', '203.0.113.10', 1, '198.51.100.2', 'ports = tcp/1-1024\n') + section('b', '203.0.113.10', 2, '198.51.100.3', 'ports = udp/53 tcp/443\n'))),
      [`${F}:12: [lb b] ports: tcp/443 overlaps tcp/1-1024 of [lb a] (${F}:1) on the same VIP 203.0.113.10`]);
  });

  it('refuses one DSCP for two VIPs on a backend: the real server could not tell them apart', () => {
    assert.deepEqual(problems(() => lb(section('a', '203.0.113.10', 1, '198.51.100.2, 198.51.100.3') + section('b', '203.0.113.11', 1, '198.51.100.4, 198.51.100.3'))),
      [`${F}:8: [lb b] dscp: DSCP 1 already stands for VIP 203.0.113.10 on backend 198.51.100.3 ([lb a], ${F}:1); a real server tells VIPs apart by the DSCP alone`]);
  });

  it('accepts one DSCP for two VIPs on separate backends, an IPv4 and an IPv6 VIP on one DSCP, and one VIP on two DSCPs', () => {
    const c = lb(section('a', '203.0.113.10', 1, '198.51.100.2') + section('b', '203.0.113.11', 1, '198.51.100.3')
      + section('c', '2001:db8:203::10', 1, '2001:db8:198::2') + section('d', '203.0.113.12', 7, '198.51.100.2', 'ports = udp/53\n')
      + section('e', '203.0.113.12', 8, '198.51.100.2', 'ports = tcp/53\n'));
    assert.equal(c.vips.length, 5);
  });

  it('warns about DSCP 0 and about a VIP no backend of which takes new flows', () => {
    assert.deepEqual(lb(section('a', '203.0.113.10', 0, '198.51.100.2 drain, 198.51.100.3 weight=0')).warnings, [
      `${F}:1 [lb a]: DSCP 0 is the default class: the real servers cannot tell these packets from unmarked ones`,
      `${F}:1 [lb a]: no backend takes new flows (every one is drained or of weight 0)`,
    ]);
  });
});

describe('one configuration per command', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'l3dsr-lb-config-')); });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('the balancer refuses the real server\'s rules, --rule and [daemon] loopback-vips, each at its place', () => {
    const text = `203.0.113.5 = 1\n203.0.113.6\n[vips]\n203.0.113.7 = 2\n[rule r]\ndscp = 3\ndestination = 203.0.113.8\n[daemon]\nloopback-vips = yes\n${section('a', '203.0.113.10', 1, '198.51.100.2')}`;
    const tail = "is a real-server rule, for l3dsr run; the load balancer's configuration holds [daemon] and [lb NAME] sections: one configuration serves one command";
    assert.deepEqual(problems(() => lbConfigurationFrom([{ file: F, text }], ['1=203.0.113.9'])), [
      `--rule 1=203.0.113.9: --rule ${tail}`,
      `${F}:1: the VIP line 203.0.113.5 = 1 ${tail}`,
      `${F}:2: the L2DSR VIP 203.0.113.6 ${tail}`,
      `${F}:4: the VIP line 203.0.113.7 = 2 ${tail}`,
      `${F}:7: [rule r] ${tail}`,
      `${F}:9: loopback-vips: a setting of l3dsr run only, and this configuration is for l3dsr lb`,
    ]);
  });

  it('the real server refuses [lb] sections and [daemon] connections: l3dsr run, its reload and rewrite use this loader', async () => {
    const file = join(dir, 'lb.conf');
    writeFileSync(file, `203.0.113.5 = 1\n[daemon]\nconnections = 4096\n${EXAMPLE.replace('[daemon]', '[vips]').replace(/^(tun|steer|metrics) =.*$/gm, '')}`);
    const expected = [
      `${file}:3: connections: a setting of l3dsr lb only, and this configuration is for l3dsr run`,
      `${file}:9: [lb web] configures the load balancer (l3dsr lb); the real server's configuration holds VIP = DSCP lines, [vips] and [rule NAME]: one configuration serves one command`,
    ];
    assert.deepEqual(await problemsOf(loadConfiguration({ configs: [file] })), expected);
    assert.deepEqual(await problemsOf(parseRunOptions(['--config', file, '--no-steer'])), expected);
  });

  it('loadAnyConfiguration: for l3dsr lb when any file has an [lb] section, for l3dsr run otherwise', async () => {
    const server = join(dir, 'server.conf');
    const balancer = join(dir, 'balancer.conf');
    writeFileSync(server, '203.0.113.5 = 1\n');
    writeFileSync(balancer, EXAMPLE);
    assert.equal((await loadAnyConfiguration({ configs: [server] })).command, 'run');
    const any = await loadAnyConfiguration({ configs: [balancer] });
    assert.equal(any.command, 'lb');
    assert.deepEqual(any.config, await loadLbConfiguration({ configs: [balancer] }));
    const both = await problemsOf(loadAnyConfiguration({ configs: [server, balancer] }));
    assert.match(both[0], /server\.conf:1: the VIP line 203\.0\.113\.5 = 1 is a real-server rule, for l3dsr run/);
    assert.deepEqual(await problemsOf(loadLbConfiguration({ configs: [server] })), [
      `${server}: no [lb NAME] section: l3dsr lb needs at least one VIP`,
      `${server}:1: the VIP line 203.0.113.5 = 1 is a real-server rule, for l3dsr run; the load balancer's configuration holds [daemon] and [lb NAME] sections: one configuration serves one command`,
    ]);
  });

  it('sections may come from several files, their names unique across them', async () => {
    writeFileSync(join(dir, 'a.conf'), section('web', '203.0.113.10', 1, '198.51.100.2'));
    writeFileSync(join(dir, 'b.conf'), section('web', '203.0.113.11', 2, '198.51.100.3'));
    assert.deepEqual(await problemsOf(loadLbConfiguration({ configs: [join(dir, 'a.conf'), join(dir, 'b.conf')] })),
      [`${join(dir, 'b.conf')}:1: a second [lb web] (the first is at ${join(dir, 'a.conf')}:1)`]);
  });
});
