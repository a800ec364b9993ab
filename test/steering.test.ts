// Steering against the real kernel, in namespaces created here: a steered
// veth, a persistent TUN (`ip tuntap add`), and a peer namespace to send from.
// Needs root (skipped without it).
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { isL3dsrError } from '../src/errors.js';
import {
  DEFAULT_LB_PRIORITY_BASE, DESTINATION_CLASSES, LoopbackVips, Steering, classifyFilters, DEFAULT_PRIORITY_BASE,
  parseFilterListing, priorityOf, requireForwarding,
} from '../src/steering/index.js';
import type { DestinationClass, SteeredClass, SteeringOptions, TcFilterJson } from '../src/steering/index.js';
import {
  addNamespace, deleteNamespace, ip, ipJson, readSysctl, runCommand, spawnInNamespace, tc, tcJson, writeSysctl, type Where,
} from '../src/system/index.js';
import { ETHERTYPE } from '../src/pcap/linklayer.js';
import { addressBytes, macBytes } from '../tools/packets/address.js';
import { arpRequest, buildPacket, echo, ethernetFrame, icmp, tcp, udp, type ExtHeader, type PacketSpec } from '../tools/packets/build.js';
import { ARP, PROTO } from '../tools/packets/layout.js';
import { PYTHON } from './support/python.js';
import { privileged } from './support/privilege.js';

const STEERED = 'st0';
const PEER = 'pe0';
const TUN = 'dsrt0';
const OTHER_TUN = 'dsrt1';
const STEERED4 = '192.0.2.2';
const PEER4 = '192.0.2.1';
const STEERED6 = '2001:db8:1::2';
const PEER6 = '2001:db8:1::1';

let fixtureCount = 0;

/** Two namespaces joined by a veth; the steered side also has two persistent TUNs. */
class Fixture {
  readonly steered: string;
  readonly peer: string;

  constructor() {
    const n = ++fixtureCount;
    this.steered = `l3dsr-st-${process.pid}-${n}`;
    this.peer = `l3dsr-sp-${process.pid}-${n}`;
  }

  get here(): Where {
    return { netns: this.steered };
  }

  get there(): Where {
    return { netns: this.peer };
  }

  async create(): Promise<void> {
    await addNamespace(this.steered);
    await addNamespace(this.peer);
    for (const where of [this.here, this.there]) {
      await writeSysctl('net.ipv6.conf.default.accept_dad', '0', where);
      await ip(['link', 'set', 'dev', 'lo', 'up'], where);
    }
    await ip(['link', 'add', 'name', STEERED, 'type', 'veth', 'peer', 'name', PEER, 'netns', this.peer], this.here);
    await ip(['addr', 'add', `${STEERED4}/24`, 'dev', STEERED], this.here);
    await ip(['-6', 'addr', 'add', `${STEERED6}/64`, 'dev', STEERED, 'nodad'], this.here);
    await ip(['addr', 'add', `${PEER4}/24`, 'dev', PEER], this.there);
    await ip(['-6', 'addr', 'add', `${PEER6}/64`, 'dev', PEER, 'nodad'], this.there);
    await ip(['link', 'set', 'dev', STEERED, 'up'], this.here);
    await ip(['link', 'set', 'dev', PEER, 'up'], this.there);
    for (const tun of [TUN, OTHER_TUN]) {
      await ip(['tuntap', 'add', 'dev', tun, 'mode', 'tun'], this.here);
      // No link-local address: else the TUN sends its own router
      // solicitations, and the capture would see them among the steered packets.
      await ip(['link', 'set', 'dev', tun, 'addrgenmode', 'none'], this.here);
      await ip(['link', 'set', 'dev', tun, 'up'], this.here);
    }
  }

  async destroy(): Promise<void> {
    await deleteNamespace(this.steered);
    await deleteNamespace(this.peer);
  }

  steering(extra: Partial<SteeringOptions> = {}): Steering {
    return new Steering({ interfaces: [STEERED], tun: TUN, netns: this.steered, ...extra });
  }

  balancerSteering(extra: Partial<SteeringOptions<DestinationClass>> = {}): Steering<DestinationClass> {
    return new Steering({ interfaces: [STEERED], tun: TUN, netns: this.steered, kind: DESTINATION_CLASSES, ...extra });
  }

  filters(): Promise<TcFilterJson[]> {
    return tc(['-j', 'filter', 'show', 'dev', STEERED, 'ingress'], this.here).then(parseFilterListing, () => []);
  }

  /** The destinations our balancer filters steer now, sorted, as text. */
  async destinationsNow(): Promise<string[]> {
    return classifyFilters(await this.filters(), DEFAULT_LB_PRIORITY_BASE, DESTINATION_CLASSES).ours.map((f) => `${f.family}/${f.destination}`).sort();
  }

  async qdiscKinds(): Promise<string[]> {
    return (await tcJson<Array<{ kind: string }>>(['qdisc', 'show', 'dev', STEERED], this.here)).map((q) => q.kind);
  }

  /** The (family, dscp) pairs our filters steer now, sorted, as text. */
  async steeredNow(): Promise<string[]> {
    return classifyFilters(await this.filters(), DEFAULT_PRIORITY_BASE).ours.map((f) => `${f.family}/${f.dscp}`).sort();
  }
}

function requireRoot(): void {
  assert.equal(process.getuid?.(), 0, 'steering tests create namespaces, TUNs and tc filters: run as root');
}

const CLASSES: SteeredClass[] = [{ family: 4, dscp: 1 }, { family: 6, dscp: 1 }, { family: 4, dscp: 17 }, { family: 6, dscp: 17 }];
const asText = (classes: readonly SteeredClass[]): string[] => classes.map((c) => `${c.family}/${c.dscp}`).sort();

describe('tc steering', privileged('creates namespaces, a TUN and tc filters'), () => {
  let fx: Fixture;

  before(requireRoot);
  beforeEach(async () => {
    fx = new Fixture();
    await fx.create();
  });
  afterEach(async () => {
    await fx.destroy();
  });

  it('install() adds clsact and exactly our filters, redirecting to the TUN', async () => {
    assert.deepEqual(await fx.qdiscKinds(), ['noqueue']);
    await fx.steering().install(CLASSES);
    assert.ok((await fx.qdiscKinds()).includes('clsact'));
    const listing = classifyFilters(await fx.filters(), DEFAULT_PRIORITY_BASE);
    assert.deepEqual(listing.ours.map((f) => `${f.family}/${f.dscp}`).sort(), asText(CLASSES));
    assert.equal(listing.othersCount, 0);
    assert.deepEqual(listing.foreignInRange, []);
    for (const f of listing.ours) assert.equal(f.target, TUN);
    // Read back the raw match too: DSCP 17 is 0x44 in the TOS byte.
    const raw = JSON.stringify(await fx.filters());
    assert.match(raw, /"value":"440000","mask":"fc0000"/);
    assert.match(raw, /"value":"4400000","mask":"fc00000"/);
  });

  it('install() twice leaves one set, and status() reports it', async () => {
    const s = fx.steering();
    await s.install(CLASSES);
    await s.install(CLASSES);
    assert.deepEqual(await fx.steeredNow(), asText(CLASSES));
    const status = await s.status();
    assert.equal(status.interfaces.length, 1);
    assert.equal(status.interfaces[0]!.hasClsact, true);
    assert.deepEqual(status.interfaces[0]!.ours.map((f) => `${f.family}/${f.dscp}`).sort(), asText(CLASSES));
  });

  it('leaves a clsact and filters it did not create as they were', async () => {
    await tc(['qdisc', 'add', 'dev', STEERED, 'clsact'], fx.here);
    await tc(['filter', 'add', 'dev', STEERED, 'ingress', 'protocol', 'ip', 'prio', '10', 'u32',
      'match', 'ip', 'dsfield', '0x04', '0xfc', 'action', 'mirred', 'egress', 'redirect', 'dev', OTHER_TUN], fx.here);
    await tc(['filter', 'add', 'dev', STEERED, 'egress', 'protocol', 'ip', 'prio', '20', 'u32',
      'match', 'ip', 'dsfield', '0x08', '0xfc', 'action', 'mirred', 'egress', 'redirect', 'dev', OTHER_TUN], fx.here);
    const foreign = async () => JSON.stringify((await fx.filters()).filter((f) => f.pref === 10).map((f) => ({ ...f, options: { ...f.options, actions: undefined } })));
    const before = await foreign();
    const s = fx.steering();
    await s.install(CLASSES);
    assert.equal(await foreign(), before);
    await s.remove();
    assert.equal(await foreign(), before);
    assert.deepEqual(await fx.steeredNow(), []);
    assert.ok((await fx.qdiscKinds()).includes('clsact'), 'a clsact we did not create was deleted');
    const egress = await tcJson<TcFilterJson[]>(['filter', 'show', 'dev', STEERED, 'egress'], fx.here);
    assert.ok(egress.some((f) => f.pref === 20), 'egress filter gone');
  });

  it('remove() deletes the clsact it created, and restores the sysctls it changed', async () => {
    await writeSysctl('net.ipv4.conf.all.rp_filter', '1', fx.here);
    await writeSysctl(`net/ipv4/conf/${TUN}/rp_filter`, '2', fx.here);
    const s = fx.steering();
    await s.install(CLASSES);
    assert.equal(await readSysctl('net.ipv4.conf.all.rp_filter', fx.here), '0');
    assert.equal(await readSysctl(`net/ipv4/conf/${TUN}/rp_filter`, fx.here), '0');
    await s.remove();
    assert.deepEqual(await fx.qdiscKinds(), ['noqueue']);
    assert.equal(await readSysctl('net.ipv4.conf.all.rp_filter', fx.here), '1');
    assert.equal(await readSysctl(`net/ipv4/conf/${TUN}/rp_filter`, fx.here), '2');
    assert.deepEqual(await s.remove(), [], 'a second remove() has nothing left to do');
  });

  it('a sysctl someone changed after install() is not restored over', async () => {
    await writeSysctl('net.ipv4.conf.all.rp_filter', '1', fx.here);
    const s = fx.steering();
    await s.install(CLASSES);
    await writeSysctl('net.ipv4.conf.all.rp_filter', '2', fx.here);
    await s.remove();
    assert.equal(await readSysctl('net.ipv4.conf.all.rp_filter', fx.here), '2');
  });

  it('replaces stale filters of an earlier run (even ones whose TUN is gone) with the new set', async () => {
    await fx.steering({ tun: OTHER_TUN }).install([{ family: 4, dscp: 5 }, { family: 6, dscp: 9 }]);
    await ip(['link', 'delete', 'dev', OTHER_TUN], fx.here);
    const stale = classifyFilters(await fx.filters(), DEFAULT_PRIORITY_BASE).ours;
    assert.ok(stale.length === 2 && stale.every((f) => f.target !== TUN));
    // A new process: it knows nothing of the old instance.
    await fx.steering().install(CLASSES);
    const now = classifyFilters(await fx.filters(), DEFAULT_PRIORITY_BASE).ours;
    assert.deepEqual(now.map((f) => `${f.family}/${f.dscp}`).sort(), asText(CLASSES));
    assert.ok(now.every((f) => f.target === TUN));
  });

  it('leaves another live l3dsr\'s filters (into a TUN that exists) alone: install() refuses, and remove() after it keeps them', async () => {
    const first = fx.steering({ tun: OTHER_TUN });
    await first.install([{ family: 4, dscp: 5 }, { family: 6, dscp: 9 }]);
    const theirs = classifyFilters(await fx.filters(), DEFAULT_PRIORITY_BASE).ours;
    // A second daemon on the same interface, whose start fails and is torn down.
    const second = fx.steering();
    await assert.rejects(second.install(CLASSES), (e: unknown) =>
      isL3dsrError(e, 'ERR_L3DSR_STEERING_PRIORITY_TAKEN') && e.message.includes(`steer into ${OTHER_TUN}, which exists`));
    await second.remove();
    assert.deepEqual(classifyFilters(await fx.filters(), DEFAULT_PRIORITY_BASE).ours, theirs);
    assert.ok((await fx.qdiscKinds()).includes('clsact'));
    await first.remove();
    assert.deepEqual(await fx.qdiscKinds(), ['noqueue']);
  });

  it('update() keeps one complete set in place at every step, adding before deleting', async () => {
    const oldSet = CLASSES;
    const newSet: SteeredClass[] = [{ family: 4, dscp: 1 }, { family: 4, dscp: 33 }, { family: 6, dscp: 40 }];
    const samples: string[][] = [];
    const commands: string[] = [];
    const s = fx.steering({
      afterStep: async (argv) => {
        commands.push(argv.join(' '));
        samples.push(await fx.steeredNow());
      },
    });
    await s.install(oldSet);
    samples.length = 0;
    commands.length = 0;
    await s.update(newSet);
    assert.ok(samples.length >= newSet.length + 2);
    const covers = (have: string[], want: string[]) => want.every((w) => have.includes(w));
    for (const [k, have] of samples.entries()) {
      assert.ok(covers(have, asText(oldSet)) || covers(have, asText(newSet)), `after "${commands[k]}" only ${have.join(' ')} was steered`);
    }
    const firstDelete = commands.findIndex((c) => c.includes(' filter del '));
    const lastAdd = commands.map((c) => c.includes(' filter add ')).lastIndexOf(true);
    assert.ok(lastAdd < firstDelete, 'an old filter was deleted before the new set was complete');
    assert.deepEqual(await fx.steeredNow(), asText(newSet));
    assert.deepEqual(asText(s.classes), asText(newSet));
    await s.update(oldSet);
    assert.deepEqual(await fx.steeredNow(), asText(oldSet));
  });

  it('dry run returns the commands and changes nothing', async () => {
    await writeSysctl('net.ipv4.conf.all.rp_filter', '1', fx.here);
    const snapshot = async () => JSON.stringify([
      await fx.qdiscKinds(), await fx.filters(),
      await readSysctl('net.ipv4.conf.all.rp_filter', fx.here), await readSysctl(`net/ipv4/conf/${TUN}/rp_filter`, fx.here),
    ]);
    const before = await snapshot();
    const dry = fx.steering({ dryRun: true });
    const commands = await dry.install(CLASSES);
    assert.equal(await snapshot(), before);
    const text = Steering.format(commands);
    assert.match(text, new RegExp(`^tc -n ${fx.steered} qdisc add dev ${STEERED} clsact$`, 'm'));
    assert.match(text, /^ip netns exec \S+ sysctl -w net\/ipv4\/conf\/all\/rp_filter=0$/m);
    assert.match(text, new RegExp(`filter add dev ${STEERED} ingress protocol ip prio ${DEFAULT_PRIORITY_BASE} u32 match ip dsfield 0x44 0xfc action mirred egress redirect dev ${TUN}`));
    assert.match(text, new RegExp(`filter add dev ${STEERED} ingress protocol ipv6 prio ${DEFAULT_PRIORITY_BASE + 1} u32 match ip6 priority 0x04 0xfc`));
    assert.equal(commands.filter((c) => c.includes('add') && c.includes('filter')).length, CLASSES.length);
    // The printed commands are runnable as they stand and give the real result.
    for (const argv of commands) await runCommand(argv[0]!, argv.slice(1));
    assert.deepEqual(await fx.steeredNow(), asText(CLASSES));
    const real = fx.steering();
    await real.install(CLASSES);
    const afterInstall = await snapshot();
    assert.ok((await dry.remove()).some((c) => c.includes('del')));
    assert.equal(await snapshot(), afterInstall);
  });

  it('refuses to share its priority range with someone else\'s filter', async () => {
    await tc(['qdisc', 'add', 'dev', STEERED, 'clsact'], fx.here);
    await tc(['filter', 'add', 'dev', STEERED, 'ingress', 'protocol', 'ipv6', 'prio', String(DEFAULT_PRIORITY_BASE), 'u32',
      'match', 'ip6', 'priority', '0x04', '0xfc', 'action', 'mirred', 'egress', 'redirect', 'dev', TUN], fx.here);
    await assert.rejects(fx.steering().install(CLASSES), (e: unknown) => isL3dsrError(e, 'ERR_L3DSR_STEERING_PRIORITY_TAKEN'));
    assert.equal((await fx.filters()).filter((f) => f.pref !== DEFAULT_PRIORITY_BASE).length, 0, 'nothing of ours was added');
    await fx.steering({ priorityBase: 30000 }).install(CLASSES);
  });

  it('refuses a missing TUN with a specific error', async () => {
    await assert.rejects(fx.steering({ tun: 'nosuchtun0' }).install(CLASSES), (e: unknown) => isL3dsrError(e, 'ERR_L3DSR_STEERING_NO_TUN'));
  });

  it('redirects marked IPv4/IPv6 packets into the TUN; unmarked packets and ARP take the normal path', async () => {
    await fx.steering().install([{ family: 4, dscp: 1 }, { family: 6, dscp: 1 }]);
    const steeredMac = macBytes((await ipJson<Array<{ address: string }>>(['link', 'show', 'dev', STEERED], fx.here))[0]!.address);
    const peerMac = macBytes((await ipJson<Array<{ address: string }>>(['link', 'show', 'dev', PEER], fx.there))[0]!.address);
    const frame = (type: number, payload: Uint8Array) => ethernetFrame(payload, type, [], { dst: steeredMac, src: peerMac });
    const text = (s: string) => new TextEncoder().encode(s);
    const v4 = (tos: number, body: string) => buildPacket({ src: PEER4, dst: STEERED4, dscp: tos >> 2, ecn: tos & 3, protocol: PROTO.UDP, transport: udp(text(body), [40000, 9999]) });
    const v6 = (tclass: number, body: string) => buildPacket({ src: PEER6, dst: STEERED6, dscp: tclass >> 2, ecn: tclass & 3, protocol: PROTO.UDP, transport: udp(text(body), [40000, 9999]) });

    const capture = new LineReader(spawnInNamespace(fx.steered, PYTHON, [helper('tun_capture.py'), TUN], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const listener = new LineReader(spawnInNamespace(fx.steered, process.execPath, ['-e', UDP_LISTENER, STEERED4], { stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      await capture.waitFor((l) => l === 'ready', 'TUN capture attached');
      await listener.waitFor((l) => l === 'ready', 'UDP listener');
      // The TUN's queue starts a moment after the reader attaches: send a
      // marked packet until one comes through.
      const warmup = v4(0x04, 'warm-up');
      const warmupHex = Buffer.from(warmup).toString('hex');
      for (let k = 0; k < 100 && !capture.lines.includes(warmupHex); k++) {
        await sendFrames(fx.peer, [frame(4, warmup)]);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(capture.lines.includes(warmupHex), 'a marked packet never reached the TUN');

      const expected = [v4(0x05, 'dscp1-ecn1'), v6(0x04, 'v6-dscp1'), v4(0x04, 'end')];
      await sendFrames(fx.peer, [
        frame(4, v4(0x00, 'unmarked')),
        frame(4, v4(0x08, 'dscp2')),
        frame(4, expected[0]!),
        frame(6, expected[1]!),
        frame(6, v6(0x00, 'v6-unmarked')),
        frame(6, v6(0x08, 'v6-dscp2')),
        frame(ARP.ETHERTYPE, arpRequest(peerMac, PEER4, STEERED4)),
        // Hardware type 5 puts 0x05 where an IPv4 TOS would be: only the
        // protocol qualifier keeps this ARP frame out of the IPv4 filter.
        frame(ARP.ETHERTYPE, arpRequest(peerMac, PEER4, STEERED4, 5)),
        frame(4, expected[2]!),
      ]);
      const endHex = Buffer.from(expected[2]!).toString('hex');
      await capture.waitFor((l) => l === endHex, 'the end marker in the TUN');
      const captured = capture.lines.filter((l) => l !== 'ready' && l !== warmupHex);
      assert.deepEqual(captured, expected.map((p) => Buffer.from(p).toString('hex')));

      await listener.waitFor((l) => l === 'dscp2', 'DSCP 2 datagram delivered normally');
      assert.deepEqual(listener.lines.filter((l) => l !== 'ready'), ['unmarked', 'dscp2']);
      const neighbours = await ipJson<Array<{ dst: string; lladdr?: string }>>(['neigh', 'show', 'dev', STEERED], fx.here);
      assert.ok(neighbours.some((n) => n.dst === PEER4), 'the ARP request was not processed by the kernel');
    } finally {
      capture.child.kill();
      listener.child.kill();
    }
  });
});

describe('VIPs on lo', privileged('adds addresses to lo in a namespace'), () => {
  let fx: Fixture;
  before(async () => {
    requireRoot();
    fx = new Fixture();
    await fx.create();
  });
  after(async () => fx?.destroy());

  it('adds the missing VIPs (IPv6 without DAD) and removes only those', async () => {
    await ip(['addr', 'add', '203.0.113.10/32', 'dev', 'lo'], fx.here);
    const lo = new LoopbackVips({ netns: fx.steered });
    const vips = [{ family: 4 as const, address: '203.0.113.10' }, { family: 4 as const, address: '203.0.113.20' }, { family: 6 as const, address: '2001:db8:203::10' }];
    const added = await lo.add(vips);
    assert.equal(added.length, 2);
    assert.ok(added.some((c) => c.includes('nodad')));
    assert.deepEqual(lo.added.map((a) => a.address), ['203.0.113.20', '2001:db8:203::10']);
    const addresses = async () => (await ipJson<Array<{ addr_info: Array<{ local: string }> }>>(['addr', 'show', 'dev', 'lo'], fx.here))
      .flatMap((l) => l.addr_info.map((a) => a.local));
    for (const v of vips) assert.ok((await addresses()).includes(v.address), v.address);
    assert.deepEqual(await lo.add(vips), [], 'adding again does nothing');
    await lo.remove();
    const left = await addresses();
    assert.ok(left.includes('203.0.113.10'), 'a VIP that was there before was removed');
    assert.ok(!left.includes('203.0.113.20') && !left.includes('2001:db8:203::10'));
  });
});

// ---- the balancer's steering: by destination ------------------------------------

const VIP4 = '203.0.113.10';
const VIP6 = '2001:db8:203::10';
const VIPS: DestinationClass[] = [{ family: 4, destination: VIP4 }, { family: 6, destination: VIP6 }];
const asDestinations = (classes: readonly DestinationClass[]): string[] => classes.map((c) => `${c.family}/${c.destination}`).sort();

/** What goes inside an IP packet, for buildPacket. */
interface Segment { protocol: number; transport: Uint8Array; checksum?: 'keep' }

/** ICMPv6 neighbour solicitation for `target` with the sender's link-layer address (so the kernel learns it). */
function neighbourSolicitation(target: string, mac: Uint8Array): Segment {
  const body = new Uint8Array(24);
  body.set(addressBytes(target), 0);
  body.set([1, 1, ...mac], 16);
  return { protocol: PROTO.ICMPV6, transport: icmp(true, 135, 0, 0, body) };
}

/** An ICMP error (`type`/`code`) quoting `quoted`; an ICMPv6 packet too big says MTU 1280. */
const icmpError = (family: 4 | 6, type: number, code: number, quoted: Uint8Array): Segment => ({
  protocol: family === 4 ? PROTO.ICMP : PROTO.ICMPV6,
  transport: icmp(family === 6, type, code, family === 6 && type === 2 ? 1280 : 0, quoted),
});

describe('tc steering by destination (the balancer)', privileged('creates namespaces, a TUN and tc filters'), () => {
  let fx: Fixture;

  before(requireRoot);
  beforeEach(async () => {
    fx = new Fixture();
    await fx.create();
  });
  afterEach(async () => {
    await fx.destroy();
  });

  it('install() adds one filter per VIP, neighbour discovery guards first for IPv6; remove() leaves nothing', async () => {
    const s = fx.balancerSteering();
    await s.install(VIPS);
    assert.deepEqual(await fx.destinationsNow(), asDestinations(VIPS));
    const raw = await fx.filters();
    const listing = classifyFilters(raw, DEFAULT_LB_PRIORITY_BASE, DESTINATION_CLASSES);
    assert.deepEqual(listing.foreignInRange, []);
    assert.ok(listing.ours.every((f) => f.target === TUN));
    // The IPv6 instance: three guards (no action), then the VIP's redirect, in handle order.
    const v6 = raw.filter((f) => f.pref === priorityOf(DEFAULT_LB_PRIORITY_BASE, 0, 6) && f.options?.match !== undefined)
      .sort((a, b) => Number.parseInt(a.options!.fh!.split('::')[1]!, 16) - Number.parseInt(b.options!.fh!.split('::')[1]!, 16));
    assert.deepEqual(v6.map((f) => (f.options!.actions === undefined ? `guard ${f.options!.flowid}` : 'redirect')),
      ['guard ffff:1', 'guard ffff:1', 'guard ffff:1', 'redirect']);
    // All four words of the IPv6 VIP are read back (tc -j repeats "match"; JSON.parse would keep the last).
    assert.equal((v6[3]!.options!.match as unknown[]).length, 4);
    // A DSCP steering of the real server at its own priorities is neither touched nor taken for ours.
    await fx.steering().install(CLASSES);
    await s.update([VIPS[1]!]);
    assert.deepEqual(await fx.steeredNow(), asText(CLASSES));
    await s.remove();
    assert.deepEqual(await fx.destinationsNow(), []);
    assert.deepEqual(await fx.steeredNow(), asText(CLASSES));
  });

  it('update() keeps one complete set in place at every step', async () => {
    const newSet: DestinationClass[] = [{ family: 4, destination: '203.0.113.20' }, VIPS[1]!, { family: 6, destination: '2001:db8:203::20' }];
    const samples: string[][] = [];
    const s = fx.balancerSteering({ afterStep: async () => { samples.push(await fx.destinationsNow()); } });
    await s.install(VIPS);
    samples.length = 0;
    await s.update(newSet);
    const covers = (have: string[], want: string[]) => want.every((w) => have.includes(w));
    for (const have of samples) assert.ok(covers(have, asDestinations(VIPS)) || covers(have, asDestinations(newSet)), `only ${have.join(' ')} was steered`);
    assert.deepEqual(await fx.destinationsNow(), asDestinations(newSet));
  });

  it('refuses what is not an address of its family before touching anything', async () => {
    await assert.rejects(fx.balancerSteering().install([{ family: 4, destination: VIP6 }]), { code: 'ERR_L3DSR_STEERING_CONFIG' });
    await assert.rejects(fx.balancerSteering().install([{ family: 4, destination: '203.0.113' }]), { code: 'ERR_L3DSR_STEERING_CONFIG' });
    assert.deepEqual(await fx.qdiscKinds(), ['noqueue']);
  });

  it('redirects every packet to a VIP (ICMP errors and fragments too) into the TUN; neighbour discovery, ARP and other destinations take the normal path', async () => {
    // The IPv6 VIP is an address of the steered interface: its neighbour discovery must stay with the kernel.
    await ip(['-6', 'addr', 'add', `${VIP6}/128`, 'dev', STEERED, 'nodad'], fx.here);
    await fx.balancerSteering().install(VIPS);
    const steeredMac = macBytes((await ipJson<Array<{ address: string }>>(['link', 'show', 'dev', STEERED], fx.here))[0]!.address);
    const peerMac = macBytes((await ipJson<Array<{ address: string }>>(['link', 'show', 'dev', PEER], fx.there))[0]!.address);
    const frame = (type: number, payload: Uint8Array) => ethernetFrame(payload, type, [], { dst: steeredMac, src: peerMac });
    const text = (s: string) => new TextEncoder().encode(s);
    const v4 = (dst: string, seg: Segment, extra: Partial<PacketSpec> = {}) =>
      frame(ETHERTYPE.IPV4, buildPacket({ src: PEER4, dst, ...seg, ...extra }));
    const v6 = (dst: string, seg: Segment, hopLimit = 64, ext: ExtHeader[] = []) =>
      frame(ETHERTYPE.IPV6, buildPacket({ src: PEER6, dst, ...seg, ttl: hopLimit, ext }));
    const tcpSegment = (ports: [number, number], payload: Uint8Array): Segment => ({ protocol: PROTO.TCP, transport: tcp(payload, ports) });
    const udpSegment = (ports: [number, number], payload: Uint8Array): Segment => ({ protocol: PROTO.UDP, transport: udp(payload, ports) });
    // What a backend's reply (VIP -> client) looks like when an error quotes it.
    const reply4 = buildPacket({ src: VIP4, dst: '192.0.2.99', ...tcpSegment([8080, 40000], text('reply')) });
    const reply6 = buildPacket({ src: VIP6, dst: '2001:db8:1::99', ...tcpSegment([8080, 40000], text('reply')) });

    const capture = new LineReader(spawnInNamespace(fx.steered, PYTHON, [helper('tun_capture.py'), TUN], { stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      await capture.waitFor((l) => l === 'ready', 'TUN capture attached');
      const warmup = v4(VIP4, udpSegment([40000, 9999], text('warm-up')));
      const warmupHex = Buffer.from(warmup.subarray(14)).toString('hex');
      for (let k = 0; k < 100 && !capture.lines.includes(warmupHex); k++) {
        await sendFrames(fx.peer, [warmup]);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(capture.lines.includes(warmupHex), 'a packet to the VIP never reached the TUN');

      const steered = [
        v4(VIP4, tcpSegment([40000, 22], text('any port'))),
        v6(VIP6, udpSegment([40000, 53], text('v6'))),
        v4(VIP4, icmpError(4, 3, 4, reply4)),
        v6(VIP6, icmpError(6, 2, 0, reply6)),
        v4(VIP4, { protocol: PROTO.UDP, transport: text('later fragment'), checksum: 'keep' }, { fragment: { offset: 100, more: false } }),
        v6(VIP6, { protocol: PROTO.UDP, transport: text('v6 later fragment'), checksum: 'keep' }, 64, [{ type: 'fragment', offset: 100, more: false, id: 7 }]),
        v6(VIP6, { protocol: PROTO.ICMPV6, transport: echo(true, text('echo'), 1) }),
        // Only hop limit 255 makes a neighbour solicitation one (RFC 4861).
        v6(VIP6, neighbourSolicitation(VIP6, peerMac), 64),
      ];
      const end = v4(VIP4, udpSegment([40000, 9999], text('end')));
      await sendFrames(fx.peer, [
        v4(STEERED4, udpSegment([40000, 9999], text('to the host'))),
        v4('203.0.113.11', udpSegment([40000, 9999], text('another address'))),
        v6(STEERED6, udpSegment([40000, 9999], text('v6 to the host'))),
        frame(ARP.ETHERTYPE, arpRequest(peerMac, PEER4, VIP4)),
        v6(VIP6, neighbourSolicitation(VIP6, peerMac), 255),
        ...steered,
        end,
      ]);
      const endHex = Buffer.from(end.subarray(14)).toString('hex');
      await capture.waitFor((l) => l === endHex, 'the end marker in the TUN');
      assert.deepEqual(capture.lines.filter((l) => l !== 'ready' && l !== warmupHex), [...steered, end].map((f) => Buffer.from(f.subarray(14)).toString('hex')));
      // The guarded solicitation reached the kernel, which learnt the sender's link-layer address from it.
      const neighbours = await ipJson<Array<{ dst: string; lladdr?: string }>>(['-6', 'neigh', 'show', 'dev', STEERED], fx.here);
      assert.ok(neighbours.some((n) => n.dst === PEER6), `the neighbour solicitation did not reach the kernel: ${JSON.stringify(neighbours)}`);
    } finally {
      capture.child.kill();
    }
  });

  it('requireForwarding() refuses, naming what to set, until the kernel forwards both families', async () => {
    await writeSysctl('net.ipv4.ip_forward', '0', fx.here);
    await writeSysctl('net.ipv6.conf.all.forwarding', '0', fx.here);
    await assert.rejects(requireForwarding([4, 6], TUN, fx.here), (e: unknown) => isL3dsrError(e, 'ERR_L3DSR_STEERING_FORWARDING')
      && e.message.includes(`net/ipv4/conf/${TUN}/forwarding = 0`) && e.message.includes('set net.ipv4.ip_forward = 1')
      && e.message.includes('set net.ipv6.conf.all.forwarding = 1'));
    await writeSysctl('net.ipv4.ip_forward', '1', fx.here);
    await assert.rejects(requireForwarding([4, 6], TUN, fx.here), (e: unknown) => isL3dsrError(e, 'ERR_L3DSR_STEERING_FORWARDING') && !e.message.includes('IPv4'));
    await requireForwarding([4], TUN, fx.here);
    await writeSysctl('net.ipv6.conf.all.forwarding', '1', fx.here);
    await requireForwarding([4, 6], TUN, fx.here);
  });
});


// ---- helpers -----------------------------------------------------------------

const UDP_LISTENER = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m) => process.stdout.write(m.toString() + '\\n'));
s.bind(9999, process.argv[1], () => process.stdout.write('ready\\n'));
`;

function helper(name: string): string {
  const candidates = [`./support/${name}`, `../../test/support/${name}`].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  const found = candidates.find((p) => existsSync(p));
  assert.ok(found, `${name} not found at ${candidates.join(', ')}`);
  return found;
}

async function sendFrames(netns: string, frames: Uint8Array[]): Promise<void> {
  await runCommand('ip', ['netns', 'exec', netns, PYTHON, helper('send_frames.py'), PEER], {
    input: frames.map((f) => Buffer.from(f).toString('hex')).join('\n') + '\n',
  });
}

/** Collects a child's stdout lines; waitFor() resolves when one matches. */
class LineReader {
  readonly lines: string[] = [];
  #stderr = '';
  #buffer = '';
  #waiters: Array<() => void> = [];
  #exited = false;

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.#buffer += chunk;
      const parts = this.#buffer.split('\n');
      this.#buffer = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.#waiters.splice(0)) w();
    });
    child.stderr!.on('data', (chunk: Buffer) => { this.#stderr += chunk.toString(); });
    child.on('exit', () => {
      this.#exited = true;
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Waits for a matching line; fails (rather than hangs) if the child exits or 5 s pass without one. */
  async waitFor(match: (line: string) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!this.lines.some(match)) {
      if (this.#exited) assert.fail(`${what}: helper exited: ${this.#stderr.trim()}`);
      if (Date.now() > deadline) assert.fail(`${what}: not seen; got ${this.lines.length} line(s); stderr: ${this.#stderr.trim()}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}
