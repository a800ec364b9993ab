// The core's balancer (assembly/lb.ts, src/core/balancer.ts) held to the
// reference model (tools/oracle/lb.ts) packet for packet: the same generated
// traffic (tools/fuzz/lb-traffic.ts: both families, every port protocol,
// ICMP errors, fragments, extension headers, truncated and mutated packets)
// through both, with health changes and reloads on the way, must give the
// same verdicts, reasons, sections, backends, flow keys, connection-table
// outcomes and bytes, and the same connection table, entry for entry.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lbConfigurationFrom } from '../src/config/load.js';
import { createBalancer, type Balancer, type BalanceResult } from '../src/core/balancer.js';
import { L3dsrError } from '../src/errors.js';
import type { LbVip } from '../src/lb/types.js';
import { buildPacket, icmp, tcp, udp } from '../tools/packets/build.js';
import { PROTO, TCP } from '../tools/packets/layout.js';
import { Rng } from '../tools/packets/rng.js';
import { vnetHeader, VNET_F_NEEDS_CSUM } from '../tools/packets/vnet.js';
import { LbTraffic } from '../tools/fuzz/lb-traffic.js';
import { pseudoSum, seedPlace } from '../tools/fuzz/vnet.js';
import { LbModel, type LbOutcome } from '../tools/oracle/lb.js';

const PORTS = 'tcp/80, udp/53, udplite/5002, sctp/5000, dccp/5001';
// Sections that take every packet, sections by port, two sections of one VIP
// listing one protocol (fragments ambiguous), a 3-tuple VIP, a drained pool
// (no backend), small tables.
const CONFIG = `
[lb web]
vip = 203.0.113.10
dscp = 1
ports = ${PORTS}
backends = 198.51.100.2, 198.51.100.3 weight=2, 198.51.100.4
check = tcp 80
table-size = 251

[lb tls]
vip = 203.0.113.10
dscp = 5
ports = tcp/443, udp/443
backends = 198.51.100.7, 198.51.100.8
check = none
table-size = 13

[lb web6]
vip = 2001:db8:203::10
dscp = 2
ports = ${PORTS}
hash = 3-tuple
backends = 2001:db8:198::2, 2001:db8:198::3, 2001:db8:198::4
check = none

[lb any]
vip = 203.0.113.20
dscp = 3
backends = 198.51.100.2, 198.51.100.5, 198.51.100.6 drain
check = none
table-size = 1021

[lb any6]
vip = 2001:db8:203::20
dscp = 4
backends = 2001:db8:198::2, 2001:db8:198::5
check = none
table-size = 13

[lb dark6]
vip = 2001:db8:203::30
dscp = 6
backends = 2001:db8:198::9 drain, 2001:db8:198::a weight=0
check = none
table-size = 13
`;

const load = (text: string): LbVip[] => lbConfigurationFrom([{ file: 'lb.conf', text }]).vips;
const VIPS = load(CONFIG);
/** The same sections after a reload: a backend added to web, one removed from any, web6 renamed. */
const RELOADED = load(CONFIG
  .replace('198.51.100.3 weight=2, 198.51.100.4', '198.51.100.3 weight=2, 198.51.100.4, 198.51.100.9')
  .replace('198.51.100.2, 198.51.100.5, 198.51.100.6 drain', '198.51.100.5, 198.51.100.6 drain')
  .replace('[lb web6]', '[lb web6b]'));

const CONNECTIONS = 1024;
const SEED = 0x5eed1234;

/** The model's outcome without its bytes, as the core reports it. */
function expected(o: LbOutcome): BalanceResult {
  const { output: _, ...rest } = o;
  return rest;
}

async function pair(): Promise<{ core: Balancer; model: LbModel }> {
  const core = await createBalancer({ vips: VIPS, connections: CONNECTIONS, tableSeed: SEED, slotCount: 64,
    capacity: { sections: 16, backends: 64, ranges: 32, slots: 200000 } });
  return { core, model: new LbModel(VIPS, { connections: CONNECTIONS, tableSeed: SEED }) };
}

function assertSameTable(core: Balancer, model: LbModel, when: string): void {
  const got = core.connections().map((e) => ({ bucket: e.bucket, way: e.way, id: `${e.vip}|${e.key}`, backend: e.backend }));
  assert.deepEqual(got, model.connections.entries(), `connection table ${when}`);
  assert.equal(core.counters().evictions, BigInt(model.connections.evictions), `evictions ${when}`);
}

/** Runs `count` packets through both in batches; returns how many of each outcome were seen, and adds the balanced ones to `perBackend` (by `vip backend`). */
function runBoth(core: Balancer, model: LbModel, traffic: LbTraffic, count: number, perBackend = new Map<string, bigint>()): Map<string, number> {
  const seen = new Map<string, number>();
  const batch = 64;
  for (let done = 0; done < count; done += batch) {
    const packets = Array.from({ length: batch }, () => traffic.next());
    const want = packets.map((p) => model.process(p));
    const got = core.balancePackets(packets);
    packets.forEach((p, i) => {
      const label = `packet ${done + i} ${Buffer.from(want[i].output).toString('hex')}`;
      assert.deepEqual(got[i], expected(want[i]), label);
      // Dropped packets keep their bytes in the slot; every verdict's bytes must match the model's.
      assert.deepEqual(p, want[i].output, `${label}: bytes`);
      const key = `${want[i].verdict}${want[i].reason ? ` ${want[i].reason}` : ''}${want[i].connection ? ` ${want[i].connection}` : ''}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (want[i].verdict === 'rewritten') {
        const b = `${want[i].vip} ${want[i].backend}`;
        perBackend.set(b, (perBackend.get(b) ?? 0n) + 1n);
      }
    });
  }
  return seen;
}

describe('the core balancer against the reference model', () => {
  it('gives the same outcome, bytes and connection table for generated traffic, across health changes and a reload', async () => {
    const { core, model } = await pair();
    const traffic = new LbTraffic(new Rng(7), VIPS, 60);
    const seen = new Map<string, number>();
    const add = (m: Map<string, number>) => { for (const [k, n] of m) seen.set(k, (seen.get(k) ?? 0) + n); };
    const perBackend = new Map<string, bigint>();
    add(runBoth(core, model, traffic, 6000, perBackend));
    assertSameTable(core, model, 'after the first traffic');
    for (const [vip, backend] of [['web', '198.51.100.3'], ['any6', '2001:db8:198::5'], ['tls', '198.51.100.7']]) {
      core.setHealth(vip, backend, false);
      model.setHealth(vip, backend, false);
    }
    add(runBoth(core, model, traffic, 4000, perBackend));
    assertSameTable(core, model, 'after backends went down');
    core.setHealth('web', '198.51.100.3', true);
    model.setHealth('web', '198.51.100.3', true);
    core.configure(RELOADED);
    model.configure(RELOADED);
    add(runBoth(core, model, traffic, 6000, perBackend));
    assertSameTable(core, model, 'after the reload');

    // The traffic reached every outcome the comparison is about.
    for (const k of ['rewritten hit', 'rewritten new', 'rewritten moved', 'passed', 'dropped no-backend', 'dropped fragment-ambiguous',
      'dropped icmp-embedded', 'dropped tcp-truncated', 'dropped sctp-truncated', 'dropped icmp-truncated', 'dropped icmpv6-truncated',
      'malformed ipv6-extension-chain', 'malformed ipv4-total-length']) {
      assert.ok((seen.get(k) ?? 0) > 0, `no packet was ${k}: ${JSON.stringify([...seen])}`);
    }
    assert.ok(model.connections.evictions > 0, 'no eviction');
    // Counters: the core's verdict tallies are the model's.
    const counters = core.counters();
    const count = (verdict: string) => [...seen].filter(([k]) => k.split(' ')[0] === verdict).reduce((n, [, c]) => n + c, 0);
    for (const v of ['passed', 'rewritten', 'malformed', 'dropped'] as const) assert.equal(counters.verdicts[v], BigInt(count(v)), v);
    // Per backend: the model's rewritten packets to it, across the health changes and the reload (which every backend counted here outlived).
    const want = RELOADED.flatMap((v) => v.backends.map((b) => `${v.name} ${b.address} ${perBackend.get(`${v.name} ${b.address}`) ?? 0n}`));
    assert.deepEqual(counters.backends.map((b) => `${b.vip} ${b.backend} ${b.packets}`), want);
    assert.ok(counters.backends.filter((b) => b.packets > 0n).length >= 4, JSON.stringify(want));
    // Table shares: a section's slots all go to the backends that take new flows (none to one drained, of weight 0 or still down).
    const down = ['tls 198.51.100.7', 'any6 2001:db8:198::5'];
    for (const v of RELOADED) {
      const of = counters.backends.filter((b) => b.vip === v.name);
      const taking = v.backends.filter((b) => !b.drain && b.weight > 0 && !down.includes(`${v.name} ${b.address}`)).map((b) => b.address);
      assert.equal(of.reduce((n, b) => n + b.slots, 0), taking.length ? v.tableSize : 0, v.name);
      for (const b of of) assert.equal(b.slots > 0, taking.includes(b.backend), `${v.name} ${b.backend}: ${b.slots} slots`);
    }
  });

  it('sends a TCP SYN where the Maglev table says, over an entry an earlier connection on the same 5-tuple left; other packets keep the entry', async () => {
    const { core, model } = await pair();
    const fresh = (await pair()).core;
    fresh.configure(RELOADED);
    const packet = (port: number, flags: number) => {
      const transport = tcp(0, [port, 80]);
      transport[TCP.FLAGS] = flags;
      return buildPacket({ src: '192.0.2.77', dst: '203.0.113.10', protocol: PROTO.TCP, transport });
    };
    const both = (p: Uint8Array) => {
      const want = expected(model.process(p.slice()));
      const got = core.balance(p.slice());
      assert.deepEqual(got, want);
      return got;
    };
    const PSH_ACK = 0x18, SYN = 0x02, SYN_ACK = 0x12;
    const ports = Array.from({ length: 200 }, (_, i) => 40000 + i);
    const before = new Map(ports.map((port) => [port, both(packet(port, PSH_ACK)).backend]));
    // The reload adds a backend to web: some flows' table backend changes, their entries stay.
    core.configure(RELOADED);
    model.configure(RELOADED);
    let checked = 0;
    for (const port of ports) {
      const table = fresh.balance(packet(port, SYN)).backend;
      if (table === before.get(port)) continue;
      checked++;
      assert.deepEqual([both(packet(port, PSH_ACK)).backend, both(packet(port, SYN_ACK)).backend], [before.get(port), before.get(port)], `port ${port}: not a SYN`);
      const opened = both(packet(port, SYN));
      assert.deepEqual([opened.backend, opened.connection], [table, 'moved'], `port ${port}: the SYN`);
      assert.deepEqual([both(packet(port, PSH_ACK)).backend, both(packet(port, SYN)).connection], [table, 'hit'], `port ${port}: after the SYN`);
    }
    assert.ok(checked > 0, 'no flow whose table backend the reload changed');
  });

  it('answers an ICMP error from the table without changing it', async () => {
    const { core, model } = await pair();
    const flow = buildPacket({ src: '192.0.2.77', dst: '203.0.113.20', protocol: PROTO.TCP, transport: tcp(0, [40000, 80]) });
    const first = core.balance(flow.slice());
    assert.equal(first.connection, 'new');
    model.process(flow);
    const before = core.connections();
    // The backend's reply as a router quotes it in a "fragmentation needed".
    const quoted = buildPacket({ src: '203.0.113.20', dst: '192.0.2.77', protocol: PROTO.TCP, transport: tcp(0, [80, 40000]) });
    const error = buildPacket({ src: '198.51.100.254', dst: '203.0.113.20', protocol: PROTO.ICMP, transport: icmp(false, 3, 4, 1400, quoted) });
    const got = core.balance(error.slice());
    assert.deepEqual(got, expected(model.process(error)));
    assert.equal(got.backend, first.backend);
    assert.deepEqual(core.connections(), before);
  });

  it('refuses a reload that does not fit the room its core was laid out with, and keeps the live set', async () => {
    const core = await createBalancer({ vips: VIPS, connections: CONNECTIONS, tableSeed: SEED, slotCount: 4 });
    const bigger = load(`${CONFIG}\n[lb more]\nvip = 203.0.113.40\ndscp = 9\nbackends = 198.51.100.2\ncheck = none\ntable-size = 131071\n`);
    assert.throws(() => core.configure(bigger), (e: unknown) => e instanceof L3dsrError && e.code === 'ERR_L3DSR_LB_TABLES' && /131071|Maglev slots/.test(e.message));
    const p = buildPacket({ src: '192.0.2.1', dst: '203.0.113.20', protocol: PROTO.UDP, transport: udp(4, [4000, 53]) });
    assert.equal(core.balance(p).verdict, 'rewritten');
    assert.equal(core.vips, VIPS);
  });
});

describe('the core balancer with virtio-net headers', () => {
  it('updates a NEEDS_CSUM seed like the real server, and drops an inconsistent header before the table changes', async () => {
    const core = await createBalancer({ vips: VIPS, connections: CONNECTIONS, tableSeed: SEED, slotCount: 4, vnetHeaderBytes: 10 });
    const model = new LbModel(VIPS, { connections: CONNECTIONS, tableSeed: SEED });
    const packet = buildPacket({ src: '192.0.2.9', dst: '203.0.113.20', protocol: PROTO.TCP, transport: tcp(100, [40000, 80]) });
    const place = seedPlace(packet)!;
    const seeded = packet.slice();
    seeded[place.field] = pseudoSum(packet, place) >> 8;
    seeded[place.field + 1] = pseudoSum(packet, place) & 0xff;
    const { batch } = core;
    const run = (header: Uint8Array, p: Uint8Array): { result: BalanceResult; out: Uint8Array } => {
      batch.slot(0).set(header, 0);
      batch.slot(0).set(p, header.length);
      batch.setEntry(0, 0, header.length + p.length);
      core.balanceSlots(1);
      return { result: core.result(0), out: batch.slot(0).slice(header.length, header.length + p.length) };
    };
    const bad = run(vnetHeader({ flags: VNET_F_NEEDS_CSUM, csumStart: place.t.offset, csumOffset: 6 }), seeded);
    assert.deepEqual(bad.result, { verdict: 'dropped', reason: 'vnet-inconsistent', vip: 'any' });
    assert.deepEqual(core.connections(), [], 'a dropped packet made no entry');
    const good = run(vnetHeader({ flags: VNET_F_NEEDS_CSUM, csumStart: place.t.offset, csumOffset: place.c.field }), seeded);
    const want = model.process(packet.slice());
    assert.deepEqual(good.result, expected(want));
    // The seed is the pseudo-header sum of the packet as it leaves: the rest as the model rewrote it.
    const outPlace = seedPlace(good.out)!;
    assert.equal((good.out[outPlace.field] << 8) | good.out[outPlace.field + 1], pseudoSum(good.out, outPlace));
    const rest = (b: Uint8Array) => [...b.subarray(0, place.field), ...b.subarray(place.field + 2)];
    assert.deepEqual(rest(good.out), rest(want.output));
  });
});
