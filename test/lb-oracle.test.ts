// The balancer's reference model (tools/oracle/lb.ts) against docs/lb.md:
// every balanced packet is compared byte for byte with the same packet built
// afresh with the backend as destination and the VIP's DSCP (tools/packets/
// build.ts computes every checksum from scratch), and its backend with the
// Maglev table's choice for the documented flow key.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lbConfigurationFrom } from '../src/config/load.js';
import { flowHash, flowKey, type FlowTuple } from '../src/lb/flow-hash.js';
import { buildMaglevTable, canonicalOrder, slotOf } from '../src/lb/maglev.js';
import type { LbVip } from '../src/lb/types.js';
import { addressBytes as bytes } from '../tools/packets/address.js';
import { buildPacket, dccp, echo, icmp, tcp, udp, type PacketSpec } from '../tools/packets/build.js';
import { read16, write16, write32 } from '../tools/packets/bytes.js';
import { PROTO } from '../tools/packets/layout.js';
import { ConnectionTableModel } from '../tools/oracle/connection-table.js';
import { LbModel, type LbOutcome } from '../tools/oracle/lb.js';
import { checksumReport } from '../tools/oracle/oracle.js';


/** The checkout: this file runs as dist/test/NAME.test.js. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PORTS = 'tcp/80, udp/53, udplite/5002, sctp/5000, dccp/5001';
const CONFIG = `
[lb web]
vip = 203.0.113.10
dscp = 1
ports = ${PORTS}
backends = 198.51.100.2, 198.51.100.3 weight=2, 198.51.100.4
check = tcp 80

[lb web6]
vip = 2001:db8:203::10
dscp = 2
ports = ${PORTS}
backends = 2001:db8:198::2, 2001:db8:198::3, 2001:db8:198::4
check = none

[lb any]
vip = 203.0.113.20
dscp = 3
backends = 198.51.100.2, 198.51.100.5
check = none

[lb any6]
vip = 2001:db8:203::20
dscp = 4
backends = 2001:db8:198::2, 2001:db8:198::5
check = none
`;

const load = (text: string): LbVip[] => lbConfigurationFrom([{ file: 'lb.conf', text }]).vips;
const VIPS = load(CONFIG);
const vipNamed = (vips: readonly LbVip[], name: string): LbVip => vips.find((v) => v.name === name)!;

/** The backend the Maglev table gives a key, worked out here from the documented pieces. */
function maglevChoice(vip: LbVip, tuple: FlowTuple, down: readonly string[] = []): string {
  const list = canonicalOrder(vip.backends.map((b) => ({ address: bytes(b.address), text: b.address, weight: b.drain || down.includes(b.address) ? 0 : b.weight })));
  return list[buildMaglevTable(list, vip.tableSize)[slotOf(flowHash(flowKey(tuple)), vip.tableSize)]].text;
}

/** An SCTP common header (ports, verification tag, CRC32c left 0: it covers no pseudo-header) and a chunk's worth of bytes. */
function sctp(ports: [number, number]): Uint8Array {
  const b = new Uint8Array(28);
  write16(b, 0, ports[0]);
  write16(b, 2, ports[1]);
  write32(b, 4, 0xdeadbeef);
  return b;
}

/** An ICMP or ICMPv6 error quoting `quoted` (a next-hop MTU of 1400 where the type has one). */
const icmpError = (v6: boolean, type: number, code: number, quoted: Uint8Array): Uint8Array => icmp(v6, type, code, 1400, quoted);

/** Asserts a balanced packet: the section, the backend, and bytes equal to the packet built afresh for the backend. */
function assertBalanced(r: LbOutcome, spec: PacketSpec, vip: LbVip, backend: string): void {
  assert.equal(r.verdict, 'rewritten', `${r.verdict} ${r.reason ?? ''}`);
  assert.equal(r.vip, vip.name);
  assert.equal(r.backend, backend);
  assert.deepEqual(r.output, buildPacket({ ...spec, dst: backend, dscp: vip.dscp }), 'bytes differ from the packet built for the backend');
}

const V4 = { client: '192.0.2.7', vip: '203.0.113.10', any: '203.0.113.20' };
const V6 = { client: '2001:db8:c::7', vip: '2001:db8:203::10', any: '2001:db8:203::20' };

describe('the flow key and hash', () => {
  it('the test vectors of docs/lb.md: key bytes, hash and slot', () => {
    const doc = readFileSync(join(ROOT, 'docs/lb.md'), 'utf8');
    const rows: [string, FlowTuple][] = [
      ['TCP 192.0.2.1:40000 → 203.0.113.10:80', { src: bytes('192.0.2.1'), dst: bytes('203.0.113.10'), protocol: 6, ports: { src: 40000, dst: 80 } }],
      ['UDP 192.0.2.1 → 203.0.113.10, 3-tuple', { src: bytes('192.0.2.1'), dst: bytes('203.0.113.10'), protocol: 17 }],
      ['UDP [2001:db8::1]:5353 → [2001:db8:203::10]:53', { src: bytes('2001:db8::1'), dst: bytes('2001:db8:203::10'), protocol: 17, ports: { src: 5353, dst: 53 } }],
    ];
    for (const [name, tuple] of rows) {
      const key = flowKey(tuple);
      const row = `| ${name} | \`${Buffer.from(key).toString('hex')}\` | ${flowHash(key)} | ${slotOf(flowHash(key), 65537)} |`;
      assert.ok(doc.includes(row), `docs/lb.md lacks ${row}`);
    }
  });

  it('a 5-tuple key is 13 or 37 bytes, a 3-tuple key 9 or 33: ports big-endian, the protocol last', () => {
    const k = flowKey({ src: bytes('192.0.2.1'), dst: bytes('203.0.113.10'), protocol: 6, ports: { src: 0x1234, dst: 0xabcd } });
    assert.deepEqual([...k.subarray(8)], [0x12, 0x34, 0xab, 0xcd, 6]);
    assert.equal(flowKey({ src: bytes('2001:db8::1'), dst: bytes('2001:db8::2'), protocol: 6 }).length, 33);
    assert.throws(() => flowKey({ src: bytes('192.0.2.1'), dst: bytes('2001:db8::2'), protocol: 6 }), /one family/);
  });
});

describe('lb model: packets of a flow', () => {
  for (const [family, a, name] of [[4, V4, 'web'], [6, V6, 'web6']] as const) {
    const vip = vipNamed(VIPS, name);
    const protocols: [string, number, Uint8Array, [number, number]][] = [
      ['TCP', PROTO.TCP, tcp(10, [40000, 80]), [40000, 80]],
      ['UDP', PROTO.UDP, udp(10, [40000, 53]), [40000, 53]],
      ['UDP-Lite', PROTO.UDPLITE, udp(10, [40000, 5002], true), [40000, 5002]],
      ['SCTP', PROTO.SCTP, sctp([40000, 5000]), [40000, 5000]],
      ['DCCP', PROTO.DCCP, dccp(10), [40000, 5001]],
    ];
    for (const [pname, protocol, transport, ports] of protocols) {
      it(`IPv${family} ${pname}: the 5-tuple's Maglev backend, DSCP set with ECN kept, checksums recomputed`, () => {
        const model = new LbModel(VIPS);
        const spec: PacketSpec = { src: a.client, dst: a.vip, protocol, transport, ecn: 3, ttl: 17 };
        const r = model.process(buildPacket(spec));
        const want = maglevChoice(vip, { src: bytes(a.client), dst: bytes(a.vip), protocol, ports: { src: ports[0], dst: ports[1] } });
        assertBalanced(r, spec, vip, want);
        assert.equal(r.flow, '5-tuple');
        assert.equal(r.connection, 'new');
        if (protocol !== PROTO.SCTP) assert.equal(checksumReport(r.output).transport?.valid, true);
        assert.equal(model.process(buildPacket(spec)).connection, 'hit');
      });
    }
  }

  it('flows spread over every backend, in proportion to the weights', () => {
    const model = new LbModel(VIPS);
    const seen = new Map<string, number>();
    for (let port = 1024; port < 4024; port++) {
      const r = model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0, [port, 80]) }));
      seen.set(r.backend!, (seen.get(r.backend!) ?? 0) + 1);
    }
    // weight 2 on .3: about half of 3000 flows (a binomial's spread is ~27).
    assert.deepEqual([...seen.keys()].sort(), ['198.51.100.2', '198.51.100.3', '198.51.100.4']);
    assert.ok(Math.abs(seen.get('198.51.100.3')! - 1500) < 150, `${seen.get('198.51.100.3')} of 3000 on the weight-2 backend`);
  });

  it('IPv6: the flow label and ECN stay; the TTL (hop limit) is the kernel\'s to lower', () => {
    const spec: PacketSpec = { src: V6.client, dst: V6.vip, protocol: PROTO.TCP, transport: tcp(0, [40000, 80]), ecn: 1, ttl: 9 };
    const input = buildPacket(spec);
    input[1] |= 0x0a;
    input[2] = 0xbc;
    input[3] = 0xde;
    const r = new LbModel(VIPS).process(input);
    assert.equal(r.verdict, 'rewritten');
    assert.deepEqual([r.output[1] & 0x0f, r.output[2], r.output[3], r.output[7]], [0x0a, 0xbc, 0xde, 9]);
    assert.equal(((r.output[0] & 0x0f) << 4 | r.output[1] >> 4) & 3, 1, 'ECN');
    assert.equal(((r.output[0] & 0x0f) << 4 | r.output[1] >> 4) >> 2, 2, 'DSCP');
  });

  it('a wrong checksum stays exactly as wrong; a zero UDP checksum stays zero', () => {
    const model = new LbModel(VIPS);
    const bad = model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(4, [40000, 80]), checksum: 0x1234 }));
    assert.equal(bad.verdict, 'rewritten');
    assert.equal(checksumReport(bad.output).transport?.valid, false);
    const zero = model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.UDP, transport: udp(4, [40000, 53]), checksum: 'zero' }));
    assert.equal(read16(zero.output, 20 + 6), 0);
  });
});

describe('lb model: which packets a VIP takes', () => {
  it('a destination that is no VIP, a port or protocol its list lacks: passed untouched', () => {
    const model = new LbModel(VIPS);
    for (const spec of [
      { src: V4.client, dst: '203.0.113.99', protocol: PROTO.TCP, transport: tcp(0, [40000, 80]) },
      { src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0, [40000, 81]) },
      { src: V4.client, dst: V4.vip, protocol: PROTO.UDP, transport: udp(0, [53, 40000]) },
      { src: V4.client, dst: V4.vip, protocol: PROTO.ICMP, transport: echo(false) },
      { src: V6.client, dst: V6.vip, protocol: PROTO.GRE, transport: new Uint8Array(8) },
    ]) {
      const input = buildPacket(spec);
      const r = model.process(input);
      assert.equal(r.verdict, 'passed', `${spec.dst} ${spec.protocol}`);
      assert.deepEqual(r.output, input);
    }
    assert.equal(model.connections.size, 0);
  });

  it('a VIP without a ports list takes everything: ICMP echo, GRE, ESP by the 3-tuple', () => {
    const model = new LbModel(VIPS);
    for (const [a, name] of [[V4, 'any'], [V6, 'any6']] as const) {
      for (const protocol of [a === V4 ? PROTO.ICMP : PROTO.ICMPV6, PROTO.GRE, PROTO.ESP]) {
        const transport = protocol === PROTO.ICMP || protocol === PROTO.ICMPV6 ? echo(a === V6) : new Uint8Array(16);
        const spec = { src: a.client, dst: a.any, protocol, transport };
        const r = model.process(buildPacket(spec));
        const vip = vipNamed(VIPS, name);
        assertBalanced(r, spec, vip, maglevChoice(vip, { src: bytes(a.client), dst: bytes(a.any), protocol }));
        assert.equal(r.flow, '3-tuple');
      }
    }
  });

  it('ICMPv6 of the link and the host (neighbour solicitation, router advertisement, MLD) stays with the balancer\'s kernel', () => {
    const model = new LbModel(VIPS);
    for (const type of [133, 134, 135, 136, 143]) {
      const m = new Uint8Array(24);
      m[0] = type;
      const r = model.process(buildPacket({ src: V6.client, dst: V6.any, protocol: PROTO.ICMPV6, transport: m }));
      assert.equal(r.verdict, 'passed', `type ${type}`);
    }
  });

  it('a VIP shared by sections with different ports: each port to its own section', () => {
    const vips = load(`
[lb http]
vip = 203.0.113.10
dscp = 1
ports = tcp/80
backends = 198.51.100.2
check = none
[lb https]
vip = 203.0.113.10
dscp = 5
ports = tcp/443, udp/443
backends = 198.51.100.9
check = none
`);
    const model = new LbModel(vips);
    const to = (port: number) => model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0, [40000, port]) }));
    assert.deepEqual([to(80).vip, to(80).backend, to(443).vip, to(443).backend, to(8080).verdict], ['http', '198.51.100.2', 'https', '198.51.100.9', 'passed']);
  });

  it('a transport header too short to read or fix: dropped when the VIP takes its protocol, passed when not', () => {
    const model = new LbModel(VIPS);
    const cases: [string, number, Uint8Array, string][] = [
      [V4.vip, PROTO.TCP, tcp(0).subarray(0, 17), 'dropped tcp-truncated'],
      [V4.vip, PROTO.UDP, udp(0).subarray(0, 7), 'dropped udp-truncated'],
      [V4.vip, PROTO.UDPLITE, udp(0).subarray(0, 5), 'dropped udplite-truncated'],
      [V4.vip, PROTO.DCCP, dccp(0).subarray(0, 7), 'dropped dccp-truncated'],
      [V4.vip, PROTO.SCTP, sctp([1, 5000]).subarray(0, 3), 'dropped sctp-truncated'],
      [V4.any, PROTO.ICMP, new Uint8Array(3), 'dropped icmp-truncated'],
      [V6.any, PROTO.ICMPV6, new Uint8Array(3), 'dropped icmpv6-truncated'],
    ];
    for (const [dst, protocol, transport, want] of cases) {
      const v6 = dst.includes(':');
      const r = model.process(buildPacket({ src: v6 ? V6.client : V4.client, dst, protocol, transport }));
      assert.equal(`${r.verdict} ${r.reason}`, want, `${protocol} to ${dst}`);
      assert.deepEqual(r.output, buildPacket({ src: v6 ? V6.client : V4.client, dst, protocol, transport }), 'untouched');
    }
    const sections = load('[lb dns]\nvip = 203.0.113.10\ndscp = 1\nports = udp/53\nbackends = 198.51.100.2\ncheck = none\n');
    const r = new LbModel(sections).process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0).subarray(0, 10) }));
    assert.equal(r.verdict, 'passed', 'no section takes TCP');
  });

  it('malformed: as the real server\'s semantics say, the extension chain only for a VIP', () => {
    const model = new LbModel(VIPS);
    const broken = (dst: string) => {
      const p = buildPacket({ src: V6.client, dst, protocol: PROTO.TCP, transport: tcp(0, [40000, 80]), ext: [{ type: 'hop-by-hop' }] });
      p[41] = 200; // the Hop-by-Hop header claims 1608 bytes
      return p;
    };
    assert.equal(`${model.process(broken(V6.vip)).verdict} ${model.process(broken(V6.vip)).reason}`, 'malformed ipv6-extension-chain');
    assert.equal(model.process(broken('2001:db8:203::99')).verdict, 'passed');
    const short = buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0, [40000, 80]) });
    write16(short, 2, 200);
    assert.equal(model.process(short).reason, 'ipv4-total-length');
  });

  it('IPv6 extension headers are walked to the ports; a pending Routing header (the VIP a waypoint) is passed', () => {
    const model = new LbModel(VIPS);
    const vip = vipNamed(VIPS, 'web6');
    const spec: PacketSpec = { src: V6.client, dst: V6.vip, protocol: PROTO.UDP, transport: udp(6, [41000, 53]), ext: [{ type: 'hop-by-hop' }, { type: 'destination-options', length: 1 }] };
    assertBalanced(model.process(buildPacket(spec)), spec, vip, maglevChoice(vip, { src: bytes(V6.client), dst: bytes(V6.vip), protocol: PROTO.UDP, ports: { src: 41000, dst: 53 } }));
    const routed = model.process(buildPacket({ ...spec, ext: [{ type: 'routing', segmentsLeft: 1 }] }));
    assert.equal(routed.verdict, 'passed');
  });
});

describe('lb model: fragments', () => {
  for (const [family, a, name] of [[4, V4, 'web'], [6, V6, 'web6']] as const) {
    it(`IPv${family}: first and later fragments of a datagram go to the 3-tuple's backend; an atomic fragment is a whole packet`, () => {
      const model = new LbModel(VIPS);
      const vip = vipNamed(VIPS, name);
      const want = maglevChoice(vip, { src: bytes(a.client), dst: bytes(a.vip), protocol: PROTO.UDP });
      const frag = (offset: number, more: boolean): PacketSpec => (family === 4
        ? { src: a.client, dst: a.vip, protocol: PROTO.UDP, transport: offset === 0 ? udp(24, [40000, 53]) : new Uint8Array(24).fill(7), fragment: { offset, more } }
        : { src: a.client, dst: a.vip, protocol: PROTO.UDP, transport: offset === 0 ? udp(24, [40000, 53]) : new Uint8Array(24).fill(7), ext: [{ type: 'fragment', offset, more }] });
      for (const spec of [frag(0, true), frag(4, true), frag(8, false)]) {
        const r = model.process(buildPacket(spec));
        assertBalanced(r, spec, vip, want);
        assert.equal(r.flow, '3-tuple');
      }
      if (family === 6) {
        const atomic = frag(0, false);
        const r = model.process(buildPacket(atomic));
        assert.equal(r.flow, '5-tuple');
        assertBalanced(r, atomic, vip, maglevChoice(vip, { src: bytes(a.client), dst: bytes(a.vip), protocol: PROTO.UDP, ports: { src: 40000, dst: 53 } }));
      }
    });
  }

  it('a fragment carries no port: of a protocol two sections of the VIP list, dropped (fragment-ambiguous); the VIP\'s only section for it takes it', () => {
    const vips = load(`
[lb http]
vip = 203.0.113.10
dscp = 1
ports = tcp/80, udp/53
backends = 198.51.100.2
check = none
[lb https]
vip = 203.0.113.10
dscp = 5
ports = tcp/443
backends = 198.51.100.9
check = none
`);
    const model = new LbModel(vips);
    const tcpFrag = model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: new Uint8Array(16), fragment: { offset: 3, more: false } }));
    assert.equal(`${tcpFrag.verdict} ${tcpFrag.reason}`, 'dropped fragment-ambiguous');
    const udpFrag = model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.UDP, transport: new Uint8Array(16), fragment: { offset: 3, more: false } }));
    assert.equal(udpFrag.backend, '198.51.100.2');
  });

  it('a first fragment too short for its checksum is dropped (as on the real server), a later one never is', () => {
    const model = new LbModel(VIPS);
    const first = model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0).subarray(0, 16), fragment: { offset: 0, more: true } }));
    assert.equal(`${first.verdict} ${first.reason}`, 'dropped tcp-truncated');
    const later = model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: new Uint8Array(2), fragment: { offset: 2, more: false } }));
    assert.equal(later.verdict, 'rewritten');
  });

  it('hash = 3-tuple: every packet of a client, fragment or not, whatever its ports, to one backend', () => {
    const vips = load('[lb sip]\nvip = 203.0.113.30\ndscp = 6\nports = udp/5060, tcp/5060\nhash = 3-tuple\nbackends = 198.51.100.2, 198.51.100.3, 198.51.100.4, 198.51.100.5\ncheck = none\n');
    const model = new LbModel(vips);
    for (const client of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) {
      const want = maglevChoice(vips[0], { src: bytes(client), dst: bytes('203.0.113.30'), protocol: PROTO.UDP });
      for (const port of [5060, 40000, 40001]) {
        const r = model.process(buildPacket({ src: client, dst: '203.0.113.30', protocol: PROTO.UDP, transport: udp(8, [port, 5060]) }));
        assert.deepEqual([r.backend, r.flow], [want, '3-tuple']);
      }
      const frag = model.process(buildPacket({ src: client, dst: '203.0.113.30', protocol: PROTO.UDP, transport: new Uint8Array(8), fragment: { offset: 9, more: false } }));
      assert.equal(frag.backend, want);
    }
  });
});

describe('lb model: ICMP errors go to the backend of the flow they are about', () => {
  for (const [family, a, name, type, code] of [[4, V4, 'web', 3, 4], [6, V6, 'web6', 2, 0], [4, V4, 'web', 11, 0], [6, V6, 'web6', 1, 4]] as const) {
    it(`IPv${family} ICMP type ${type} code ${code}: the quoted reply's flow turned around; the quote untouched`, () => {
      const model = new LbModel(VIPS);
      const vip = vipNamed(VIPS, name);
      const flow = model.process(buildPacket({ src: a.client, dst: a.vip, protocol: PROTO.TCP, transport: tcp(0, [40000, 80]) }));
      // The backend's reply, from the VIP, as a router quotes it back to the VIP.
      const reply = buildPacket({ src: a.vip, dst: a.client, protocol: PROTO.TCP, transport: tcp(100, [80, 40000]) });
      const quote = reply.subarray(0, family === 4 ? 28 : 48 + 20);
      const spec: PacketSpec = { src: family === 4 ? '192.0.2.254' : '2001:db8:ff::1', dst: a.vip, protocol: family === 4 ? PROTO.ICMP : PROTO.ICMPV6, transport: icmpError(family === 6, type, code, quote) };
      const before = model.connections.size;
      const r = model.process(buildPacket(spec));
      assertBalanced(r, spec, vip, flow.backend!);
      assert.equal(r.connection, 'hit');
      assert.equal(model.connections.size, before, 'an ICMP error adds no entry');
      assert.deepEqual(r.output.subarray(r.output.length - quote.length), quote);
    });
  }

  it('after the backend set changed, the error still follows the connection table; an unknown flow\'s error goes to its Maglev backend and is not recorded', () => {
    const model = new LbModel(VIPS);
    const vip = vipNamed(VIPS, 'web');
    const bigger = load(CONFIG.replace('backends = 198.51.100.2, 198.51.100.3 weight=2, 198.51.100.4', 'backends = 198.51.100.2, 198.51.100.3 weight=2, 198.51.100.4, 198.51.100.6, 198.51.100.7'));
    // A client port whose flow the bigger table sends elsewhere.
    let port = 30000;
    const tuple = (p: number): FlowTuple => ({ src: bytes(V4.client), dst: bytes(V4.vip), protocol: PROTO.TCP, ports: { src: p, dst: 80 } });
    while (maglevChoice(vip, tuple(port)) === maglevChoice(vipNamed(bigger, 'web'), tuple(port))) port++;
    const first = model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0, [port, 80]) }));
    model.configure(bigger);
    const error = (p: number) => buildPacket({
      src: '192.0.2.254', dst: V4.vip, protocol: PROTO.ICMP,
      transport: icmpError(false, 3, 4, buildPacket({ src: V4.vip, dst: V4.client, protocol: PROTO.TCP, transport: tcp(0, [80, p]) }).subarray(0, 28)),
    });
    assert.equal(model.process(error(port)).backend, first.backend);
    assert.equal(model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0, [port, 80]) })).backend, first.backend);
    const size = model.connections.size;
    assert.equal(model.process(error(port + 50000 - port)).backend, maglevChoice(vipNamed(bigger, 'web'), tuple(50000)));
    assert.equal(model.connections.size, size);
  });

  it('an error about a port the VIP does not balance is passed; one whose quote is short, of another family or not from the VIP is dropped (icmp-embedded)', () => {
    const model = new LbModel(VIPS);
    const reply = (src: string, sport: number) => buildPacket({ src, dst: V4.client, protocol: PROTO.TCP, transport: tcp(0, [sport, 40000]) });
    const send = (quote: Uint8Array) => model.process(buildPacket({ src: '192.0.2.254', dst: V4.vip, protocol: PROTO.ICMP, transport: icmpError(false, 3, 1, quote) }));
    assert.equal(send(reply(V4.vip, 81).subarray(0, 28)).verdict, 'passed');
    for (const [why, quote] of [
      ['17 bytes quoted', reply(V4.vip, 80).subarray(0, 17)],
      ['no ports quoted', reply(V4.vip, 80).subarray(0, 22)],
      ['from another address', reply('203.0.113.11', 80).subarray(0, 28)],
      ['an IPv6 packet', buildPacket({ src: V6.vip, dst: V6.client, protocol: PROTO.TCP, transport: tcp(0) }).subarray(0, 48)],
    ] as const) {
      const r = send(quote);
      assert.equal(`${r.verdict} ${r.reason}`, 'dropped icmp-embedded', why);
    }
    const headerOnly = model.process(buildPacket({ src: '192.0.2.254', dst: V4.any, protocol: PROTO.ICMP, transport: Uint8Array.from([3, 1, 0, 0, 0, 0]) }));
    assert.equal(`${headerOnly.verdict} ${headerOnly.reason}`, 'dropped icmp-embedded');
  });

  it('an error quoting a later fragment (no ports) goes by the 3-tuple, as the fragments do', () => {
    const model = new LbModel(VIPS);
    const vip = vipNamed(VIPS, 'web');
    const quote = buildPacket({ src: V4.vip, dst: V4.client, protocol: PROTO.UDP, transport: new Uint8Array(8), fragment: { offset: 5, more: true } }).subarray(0, 28);
    const r = model.process(buildPacket({ src: '192.0.2.254', dst: V4.vip, protocol: PROTO.ICMP, transport: icmpError(false, 11, 1, quote) }));
    assert.deepEqual([r.backend, r.flow], [maglevChoice(vip, { src: bytes(V4.client), dst: bytes(V4.vip), protocol: PROTO.UDP }), '3-tuple']);
  });
});

describe('lb model: the connection table', () => {
  const flows = (model: LbModel, n: number, dst = V4.vip) => Array.from({ length: n }, (_, i) =>
    model.process(buildPacket({ src: `192.0.2.${1 + (i % 200)}`, dst, protocol: PROTO.TCP, transport: tcp(0, [20000 + i, 80]) })));

  it('a backend removed from the configuration: exactly its flows move; without the table more would', () => {
    const pool = (skip: number) => load(`[lb big]\nvip = ${V4.vip}\ndscp = 1\nports = tcp/80\nbackends = ${Array.from({ length: 30 }, (_, i) => i).filter((i) => i !== skip).map((i) => `198.51.100.${10 + i}`).join(', ')}\ncheck = none\n`);
    const model = new LbModel(pool(-1), { connections: 1 << 16 });
    const before = flows(model, 4000).map((r) => r.backend);
    const gone = '198.51.100.15';
    model.configure(pool(5));
    const after = flows(model, 4000);
    after.forEach((r, i) => {
      assert.equal(r.connection, before[i] === gone ? 'moved' : 'hit', `flow ${i}`);
      if (before[i] !== gone) assert.equal(r.backend, before[i]);
    });
    assert.ok(before.filter((b) => b === gone).length > 0);
    assert.equal(model.connections.evictions, 0);
    // Maglev alone keeps most flows of the other backends, not all: the table keeps them all.
    const fresh = flows(new LbModel(pool(5)), 4000).map((r) => r.backend);
    const movedByMaglev = fresh.filter((b, i) => before[i] !== gone && b !== before[i]).length;
    assert.ok(movedByMaglev > 0 && movedByMaglev < 0.02 * 4000, `Maglev alone moved ${movedByMaglev} flows of other backends`);
  });

  it('a backend added: every flow in progress stays; new flows may go to it', () => {
    const model = new LbModel(VIPS, { connections: 1 << 16 });
    const before = flows(model, 1000).map((r) => r.backend);
    model.configure(load(CONFIG.replace('198.51.100.4\ncheck = tcp 80', '198.51.100.4, 198.51.100.8\ncheck = tcp 80')));
    assert.deepEqual(flows(model, 1000).map((r) => r.backend), before);
    const next = flows(model, 3000).slice(1000);
    assert.ok(next.some((r) => r.backend === '198.51.100.8'));
  });

  it('drain: its flows stay with it, new flows never go to it; every backend drained: new flows dropped (no-backend), old ones served', () => {
    const model = new LbModel(VIPS, { connections: 1 << 16 });
    const before = flows(model, 600).map((r) => r.backend);
    model.configure(load(CONFIG.replace('198.51.100.4\ncheck', '198.51.100.4 drain\ncheck')));
    assert.deepEqual(flows(model, 600).map((r) => r.backend), before);
    assert.ok(before.includes('198.51.100.4'));
    assert.ok(flows(model, 1200).slice(600).every((r) => r.backend !== '198.51.100.4'));
    model.configure(load(CONFIG.replace('198.51.100.2, 198.51.100.3 weight=2, 198.51.100.4', '198.51.100.2 drain, 198.51.100.3 weight=0, 198.51.100.4 drain')));
    assert.deepEqual(flows(model, 600).map((r) => r.backend), before);
    const fresh = model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0, [60000, 80]) }));
    assert.equal(`${fresh.verdict} ${fresh.reason}`, 'dropped no-backend');
    assert.equal(model.connections.size, 1200, 'and recorded nothing');
  });

  it('a failed backend (health check down): its flows move, the others stay; back up, it takes new flows again', () => {
    const model = new LbModel(VIPS, { connections: 1 << 16 });
    const before = flows(model, 600).map((r) => r.backend);
    model.setHealth('web', '198.51.100.3', false);
    const after = flows(model, 600);
    after.forEach((r, i) => {
      if (before[i] === '198.51.100.3') assert.deepEqual([r.connection, r.backend === '198.51.100.3'], ['moved', false]);
      else assert.deepEqual([r.connection, r.backend], ['hit', before[i]]);
    });
    assert.deepEqual([...model.tableOf('web').table].filter((x) => model.tableOf('web').backends[x] === '198.51.100.3'), []);
    model.setHealth('web', '198.51.100.3', true);
    assert.ok(flows(model, 1800).slice(600).some((r) => r.backend === '198.51.100.3'));
  });

  it('health belongs to a backend of a section: removed and added again, a backend starts up', () => {
    const model = new LbModel(VIPS);
    model.setHealth('web', '198.51.100.4', false);
    const without = load(CONFIG.replace('198.51.100.3 weight=2, 198.51.100.4', '198.51.100.3 weight=2'));
    model.configure(without);
    model.configure(VIPS);
    assert.ok([...model.tableOf('web').table].some((x) => model.tableOf('web').backends[x] === '198.51.100.4'));
  });

  it('bounded: a full bucket evicts its least recently used entry, and counts it', () => {
    const model = new LbModel(VIPS, { connections: 4 });
    const send = (port: number) => model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0, [port, 80]) }));
    for (const port of [1, 2, 3, 4]) send(port);
    assert.equal(send(1).connection, 'hit', 'flow 1 is now the most recent');
    send(5);
    assert.equal(model.connections.evictions, 1);
    assert.equal(model.connections.size, 4);
    assert.equal(send(2).connection, 'new', 'flow 2 was the least recently used');
    assert.equal(send(1).connection, 'hit');
  });

  it('an ICMP error does not make its flow\'s entry recent: a forged error cannot keep a flow in, or push one out', () => {
    const model = new LbModel(VIPS, { connections: 4 });
    const send = (port: number) => model.process(buildPacket({ src: V4.client, dst: V4.vip, protocol: PROTO.TCP, transport: tcp(0, [port, 80]) }));
    for (const port of [1, 2, 3, 4]) send(port);
    const quote = buildPacket({ src: V4.vip, dst: V4.client, protocol: PROTO.TCP, transport: tcp(0, [80, 1]) }).subarray(0, 28);
    assert.equal(model.process(buildPacket({ src: '192.0.2.254', dst: V4.vip, protocol: PROTO.ICMP, transport: icmpError(false, 3, 4, quote) })).connection, 'hit');
    send(5);
    assert.equal(send(1).connection, 'new', 'flow 1 stayed the least recently used, and was evicted');
  });

  it('a model of the documented shape: a power of two of 4-entry buckets, chosen by the seeded hash', () => {
    assert.throws(() => new ConnectionTableModel(1000, 0), /power of two/);
    assert.throws(() => new ConnectionTableModel(2, 0), /power of two/);
    const t = new ConnectionTableModel(1 << 10, 7);
    assert.equal(t.buckets, 256);
    const key = flowKey({ src: bytes(V4.client), dst: bytes(V4.vip), protocol: 6, ports: { src: 1, dst: 80 } });
    t.put(key, 'web|x', '198.51.100.2');
    assert.deepEqual(t.bucket(key), [{ id: 'web|x', backend: '198.51.100.2' }]);
  });
});
