// Steering and system helpers without a kernel: command errors, filter
// arguments, and reading `tc -j` output back.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CommandError, commandLine, formatCommand, runCommand, sysctlPath } from '../src/system/index.js';
import { isL3dsrError } from '../src/errors.js';
import {
  DEFAULT_LB_PRIORITY_BASE, DESTINATION_CLASSES, classifyFilters, filterAddArgs, filterDeleteArgs, ownerOf, parseFilterListing, priorityOf,
  Steering,
} from '../src/steering/index.js';
import type { TcFilterJson } from '../src/steering/index.js';

describe('system commands', () => {
  it('resolves with stdout and feeds stdin', async () => {
    assert.equal(await runCommand('cat', [], { input: 'table ip t {\n}\n' }), 'table ip t {\n}\n');
  });

  it('a failure names the whole command line and carries the tool\'s stderr', async () => {
    const err = await runCommand('ip', ['link', 'show', 'dev', 'no-such-dev0']).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof CommandError);
    assert.equal(err.code, 'ERR_L3DSR_COMMAND');
    assert.equal(err.exitStatus, 1);
    assert.deepEqual(err.argv, ['ip', 'link', 'show', 'dev', 'no-such-dev0']);
    assert.match(err.message, /^ip link show dev no-such-dev0: exit status 1: /);
    assert.match(err.stderr, /no-such-dev0/);
  });

  it('a program that does not exist is a CommandError too', async () => {
    await assert.rejects(runCommand('/nonexistent/tool', ['x']), (e: unknown) => e instanceof CommandError && /cannot start/.test(e.message));
  });

  it('puts ip/tc in a namespace with -n and everything else behind ip netns exec', () => {
    assert.deepEqual(commandLine('tc', ['qdisc', 'show'], { netns: 'n1' }), ['tc', '-n', 'n1', 'qdisc', 'show']);
    assert.deepEqual(commandLine('nft', ['list', 'ruleset'], { netns: 'n1' }), ['ip', 'netns', 'exec', 'n1', 'nft', 'list', 'ruleset']);
    assert.deepEqual(commandLine('nft', ['list', 'ruleset']), ['nft', 'list', 'ruleset']);
  });

  it('quotes arguments a shell would split', () => {
    assert.equal(formatCommand(['nft', 'add rule', "it's", '']), `nft 'add rule' 'it'\\''s' ''`);
  });

  it('maps sysctl keys to /proc/sys and refuses ones that could leave it', () => {
    assert.equal(sysctlPath('net.ipv4.conf.all.rp_filter'), '/proc/sys/net/ipv4/conf/all/rp_filter');
    assert.equal(sysctlPath('net/ipv4/conf/eth0.100/rp_filter'), '/proc/sys/net/ipv4/conf/eth0.100/rp_filter');
    assert.throws(() => sysctlPath('net/../../etc/passwd'), { code: 'ERR_L3DSR_SYSCTL_KEY' });
    assert.throws(() => sysctlPath('net..ipv4'), { code: 'ERR_L3DSR_SYSCTL_KEY' });
  });
});

describe('steering filters', () => {
  it('writes DSCP d as d<<2 under mask 0xfc, in the field of each family', () => {
    assert.deepEqual(filterAddArgs('eth0', 100, { family: 4, dscp: 63 }, 'dsr0').join(' '),
      'filter add dev eth0 ingress protocol ip prio 100 u32 match ip dsfield 0xfc 0xfc action mirred egress redirect dev dsr0');
    assert.deepEqual(filterAddArgs('eth0', 101, { family: 6, dscp: 0 }, 'dsr0').join(' '),
      'filter add dev eth0 ingress protocol ipv6 prio 101 u32 match ip6 priority 0x00 0xfc action mirred egress redirect dev dsr0');
    assert.deepEqual(filterDeleteArgs('eth0', 7), ['filter', 'del', 'dev', 'eth0', 'ingress', 'prio', '7']);
  });

  it('owns four priorities from the base: two bands of IPv4 and IPv6', () => {
    const base = 1000;
    const seen = new Set<number>();
    for (const band of [0, 1] as const) {
      for (const family of [4, 6] as const) {
        const p = priorityOf(base, band, family);
        assert.deepEqual(ownerOf(base, p), { band, family });
        seen.add(p);
      }
    }
    assert.deepEqual([...seen].sort(), [1000, 1001, 1002, 1003]);
    assert.equal(ownerOf(base, 999), undefined);
    assert.equal(ownerOf(base, 1004), undefined);
  });

  const entry = (pref: number, protocol: string, value: string, mask: string, extra: Partial<TcFilterJson> = {}): TcFilterJson => ({
    protocol, pref, kind: 'u32',
    options: {
      fh: '800::800', match: { value, mask, off: 0 },
      actions: [{ kind: 'mirred', mirred_action: 'redirect', direction: 'egress', to_dev: 'dsr0' }],
    },
    ...extra,
  });

  it('reads back our filters from tc -j output and sets the rest apart', () => {
    const entries: TcFilterJson[] = [
      { protocol: 'ip', pref: 1000, kind: 'u32' },
      { protocol: 'ip', pref: 1000, kind: 'u32', options: { fh: '800:' } },
      entry(1000, 'ip', '440000', 'fc0000'),
      entry(1001, 'ipv6', '4400000', 'fc00000'),
      entry(1002, 'ip', '40000', 'ff0000'), // another mask: not ours
      entry(1003, 'ip', '40000', 'fc0000'), // IPv4 at an IPv6 priority: not ours
      entry(10, 'ip', '40000', 'fc0000'),
    ];
    const listing = classifyFilters(entries, 1000);
    assert.deepEqual(listing.ours.map((f) => [f.family, f.dscp, f.priority, f.band, f.target]), [[4, 17, 1000, 0, 'dsr0'], [6, 17, 1001, 0, 'dsr0']]);
    assert.deepEqual(listing.foreignInRange, [1002, 1003]);
    assert.equal(listing.othersCount, 1);
  });

  it('a dry run for an interface that does not exist plans for a bare interface', async () => {
    const s = new Steering({ interfaces: ['no-such-dev0'], tun: 'no-such-tun0', dryRun: true });
    const text = Steering.format(await s.install([{ family: 4, dscp: 1 }, { family: 6, dscp: 1 }]));
    assert.match(text, /^tc qdisc add dev no-such-dev0 clsact$/m);
    assert.match(text, /^sysctl -w net\/ipv4\/conf\/no-such-tun0\/rp_filter=0$/m);
    assert.match(text, /^tc filter add dev no-such-dev0 ingress protocol ip prio 49152 u32 match ip dsfield 0x04 0xfc action mirred egress redirect dev no-such-tun0$/m);
    assert.match(text, /^tc filter add dev no-such-dev0 ingress protocol ipv6 prio 49153 u32 match ip6 priority 0x04 0xfc action mirred egress redirect dev no-such-tun0$/m);
  });

  it('refuses bad configuration before touching anything', async () => {
    assert.throws(() => new Steering({ interfaces: [], tun: 'dsr0' }), { code: 'ERR_L3DSR_STEERING_CONFIG' });
    assert.throws(() => new Steering({ interfaces: ['eth0'], tun: 'dsr0', priorityBase: 65534 }), { code: 'ERR_L3DSR_STEERING_CONFIG' });
    const s = new Steering({ interfaces: ['eth0'], tun: 'dsr0', dryRun: true });
    await assert.rejects(s.install([{ family: 4, dscp: 64 }]), (e: unknown) => isL3dsrError(e, 'ERR_L3DSR_STEERING_CONFIG'));
  });
});

describe('steering filters by destination (the balancer)', () => {
  it('writes a VIP as ip dst /32 or ip6 dst /128', () => {
    assert.equal(filterAddArgs('eth0', 5, { family: 4, destination: '203.0.113.10' }, 'lb0', DESTINATION_CLASSES).join(' '),
      'filter add dev eth0 ingress protocol ip prio 5 u32 match ip dst 203.0.113.10/32 action mirred egress redirect dev lb0');
    assert.equal(filterAddArgs('eth0', 6, { family: 6, destination: '2001:db8:203::10' }, 'lb0', DESTINATION_CLASSES).join(' '),
      'filter add dev eth0 ingress protocol ipv6 prio 6 u32 match ip6 dst 2001:db8:203::10/128 action mirred egress redirect dev lb0');
  });

  // `tc -j filter show` of iproute2 6.1, verbatim: one "match" member per key.
  const LISTING = '[{"protocol":"ipv6","pref":49157,"kind":"u32","chain":0},{"protocol":"ipv6","pref":49157,"kind":"u32","chain":0,"options":{"fh":"800:","ht_divisor":1}},'
    + '{"protocol":"ipv6","pref":49157,"kind":"u32","chain":0,"options":{"fh":"800::800","order":2048,"key_ht":"800","bkt":"0","flowid":"ffff:1","not_in_hw":true,'
    + '"match":{"value":"3aff","mask":"ffff","offmask":"","off":4},"match":{"value":"86000000","mask":"fe000000","offmask":"","off":40}}},'
    + '{"protocol":"ipv6","pref":49157,"kind":"u32","chain":0,"options":{"fh":"800::801","order":2049,"key_ht":"800","bkt":"0","not_in_hw":true,'
    + '"match":{"value":"20010db8","mask":"ffffffff","offmask":"","off":24},"match":{"value":"2030000","mask":"ffffffff","offmask":"","off":28},'
    + '"match":{"value":"0","mask":"ffffffff","offmask":"","off":32},"match":{"value":"10","mask":"ffffffff","offmask":"","off":36},'
    + '"actions":[{"order":1,"kind":"mirred","mirred_action":"redirect","direction":"egress","to_dev":"lb0","control_action":{"type":"stolen"},"index":1,"ref":1,"bind":1}]}}]';

  it('keeps every key of a filter from tc -j output, in order', () => {
    const entries = parseFilterListing(LISTING);
    assert.deepEqual((entries[3]!.options!.match as Array<{ off: number }>).map((m) => m.off), [24, 28, 32, 36]);
    assert.deepEqual(parseFilterListing(''), []);
  });

  it('reads back IPv4 and IPv6 VIPs, skips its guards, and takes a DSCP filter in its range for someone else\'s', () => {
    const listing = classifyFilters(parseFilterListing(LISTING), DEFAULT_LB_PRIORITY_BASE, DESTINATION_CLASSES);
    assert.deepEqual(listing.ours.map((f) => [f.family, f.destination, f.band, f.target]), [[6, '2001:db8:203::10', 0, 'lb0']]);
    assert.deepEqual(listing.foreignInRange, []);
    const v4 = { protocol: 'ip', pref: DEFAULT_LB_PRIORITY_BASE, kind: 'u32', options: {
      fh: '801::800', match: [{ value: 'cb00710a', mask: 'ffffffff', off: 16 }],
      actions: [{ kind: 'mirred', mirred_action: 'redirect', direction: 'egress', to_dev: 'lb0' }] } };
    const dscp = { ...v4, pref: DEFAULT_LB_PRIORITY_BASE + 2, options: { ...v4.options, match: [{ value: '40000', mask: 'fc0000', off: 0 }] } };
    const both = classifyFilters([v4, dscp], DEFAULT_LB_PRIORITY_BASE, DESTINATION_CLASSES);
    assert.deepEqual(both.ours.map((f) => f.destination), ['203.0.113.10']);
    assert.deepEqual(both.foreignInRange, [DEFAULT_LB_PRIORITY_BASE + 2]);
  });

  it('plans the neighbour discovery guards before the IPv6 VIPs, at the balancer\'s own priorities', async () => {
    const s = new Steering({ interfaces: ['no-such-dev0'], tun: 'lb0', dryRun: true, kind: DESTINATION_CLASSES });
    const lines = Steering.format(await s.install([{ family: 6, destination: '2001:DB8:203:0::10' }, { family: 4, destination: '203.0.113.10' }])).split('\n');
    const filters = lines.filter((l) => l.includes(' filter add '));
    assert.deepEqual(filters.map((l) => /prio (\d+)/.exec(l)![1]), ['49157', '49157', '49157', '49156', '49157']);
    assert.match(filters[0]!, /u32 match ip6 protocol 58 0xff match u8 0xff 0xff at 7 match u8 0x85 0xff at 40 classid ffff:1$/);
    assert.match(filters[3]!, /match ip dst 203\.0\.113\.10\/32 action mirred egress redirect dev lb0$/);
    assert.match(filters[4]!, /match ip6 dst 2001:db8:203::10\/128 action/, 'the address is written canonically');
    assert.deepEqual(s.classes, []);
  });
});

