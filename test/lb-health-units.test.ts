// Health checks without a network: the TCP segments (checked against the
// oracle's independent checksums), the prober's matching of answers to
// checks (spoofed, stale and stray segments ignored), and rise/fall.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addSums, onesSum, pseudoHeaderSum } from '../tools/packets/checksum.js';
import { parseAddress } from '../src/core/address.js';
import { BackendChecker, HealthChecks, type HealthChange } from '../src/lb/health.js';
import { PROBE_PORTS, TcpProber, type ProbeResult, type ProbeTarget } from '../src/lb/tcp-prober.js';
import { TCP_FLAGS, buildTcp, readTcp } from '../src/lb/tcp-segment.js';
import type { RawSocket } from '../src/lb/raw-socket.js';
import type { LbVip } from '../src/lb/types.js';
import type { Family } from '../src/core/types.js';

const bytesOf = (a: string): Uint8Array => (parseAddress(a) as { bytes: Uint8Array }).bytes;
const verifies = (family: Family, src: string, dst: string, segment: Buffer): boolean =>
  addSums(pseudoHeaderSum(bytesOf(src), bytesOf(dst), 6, segment.length), onesSum(segment)) === 0xffff;

describe('health check segments', () => {
  it('a SYN and an RST carry a valid checksum for their pseudo-header, both families', () => {
    for (const [family, src, dst] of [[4, '198.51.100.1', '198.51.100.11'], [6, '2001:db8:198::1', '2001:db8:198::11']] as const) {
      for (const flags of [TCP_FLAGS.syn, TCP_FLAGS.rst]) {
        const s = buildTcp(family, src, dst, { srcPort: 61234, dstPort: 8080, seq: 0xfffffffe, ack: 0, flags });
        assert.ok(verifies(family, src, dst, s), `IPv${family} flags ${flags}`);
        assert.equal(s[13], flags);
        assert.equal(s.readUInt32BE(4), 0xfffffffe);
      }
    }
  });

  it('reads a TCP header behind an IPv4 header (with options) and refuses fragments and other protocols', () => {
    const tcp = buildTcp(4, '203.0.113.10', '198.51.100.1', { srcPort: 8080, dstPort: 61000, seq: 7, ack: 9, flags: TCP_FLAGS.syn | TCP_FLAGS.ack });
    const ip = Buffer.alloc(24);
    ip[0] = 0x46;
    ip[9] = 6;
    ip.set([203, 0, 113, 10], 12);
    const packet = Buffer.concat([ip, tcp]);
    assert.deepEqual(readTcp(4, packet, '0.0.0.0'), { source: '203.0.113.10', tcp: { srcPort: 8080, dstPort: 61000, seq: 7, ack: 9, flags: 0x12 } });
    const fragment = Buffer.from(packet);
    fragment.writeUInt16BE(0x2000, 6);
    assert.equal(readTcp(4, fragment, '0.0.0.0'), undefined);
    const udp = Buffer.from(packet);
    udp[9] = 17;
    assert.equal(readTcp(4, udp, '0.0.0.0'), undefined);
    assert.equal(readTcp(6, tcp.subarray(0, 19), '2001:db8:203::10'), undefined);
    assert.equal(readTcp(6, tcp, '2001:DB8:203:0::10')?.source, '2001:db8:203::10');
  });
});

/** A raw socket that records what is sent and lets the test deliver answers. */
class FakeSocket implements RawSocket {
  readonly sent: Array<{ tos: number; to: string; segment: Buffer }> = [];
  #tos = 0;
  closed = false;
  constructor(readonly family: Family, readonly deliver: (packet: Buffer, source: string) => void) {}
  setTrafficClass(tos: number): void { this.#tos = tos; }
  send(segment: Buffer, to: string): number {
    this.sent.push({ tos: this.#tos, to, segment: Buffer.from(segment) });
    return segment.length;
  }
  close(): void { this.closed = true; }
}

const LOCAL = { 4: '198.51.100.1', 6: '2001:db8:198::1' } as const;
const TARGET: ProbeTarget = { family: 6, backend: '2001:db8:198::11', vip: '2001:db8:203::10', port: 8080, dscp: 17 };

function fixture() {
  const sockets: FakeSocket[] = [];
  const prober = new TcpProber({
    openSocket: (family, onPacket) => {
      const s = new FakeSocket(family, onPacket);
      sockets.push(s);
      return s;
    },
    sourceFor: async (family) => LOCAL[family],
  });
  /** The SYN of the check in progress (the first one sent), once it is out. */
  const syn = async () => {
    for (let k = 0; k < 100 && sockets[0]?.sent.length === undefined; k++) await new Promise((r) => setImmediate(r));
    for (let k = 0; k < 100 && sockets[0]!.sent.length === 0; k++) await new Promise((r) => setImmediate(r));
    const s = sockets[0]!.sent[0]!;
    return { ...s, port: s.segment.readUInt16BE(0), isn: s.segment.readUInt32BE(4) };
  };
  /** An answer from `from` (IPv6: the raw socket gives the TCP header alone). */
  const answer = (from: string, s: { srcPort: number; dstPort: number; ack: number; flags: number }) =>
    sockets[0]!.deliver(buildTcp(6, from, LOCAL[6], { ...s, seq: 1000 }), from);
  return { prober, sockets, syn, answer };
}

describe('TcpProber: an answer counts only for the check it answers', () => {
  it('a SYN-ACK from VIP:PORT acknowledging ISN+1: up, and an RST (seq ISN+1, same DSCP) ends the half-open connection', async () => {
    const f = fixture();
    const result = f.prober.probe(TARGET, 5000);
    const syn = await f.syn();
    assert.equal(syn.tos, 17 << 2);
    assert.equal(syn.to, TARGET.backend);
    assert.ok(syn.port >= PROBE_PORTS.from && syn.port <= PROBE_PORTS.to);
    assert.ok(verifies(6, LOCAL[6], TARGET.backend, syn.segment));
    f.answer(TARGET.vip, { srcPort: 8080, dstPort: syn.port, ack: (syn.isn + 1) >>> 0, flags: TCP_FLAGS.syn | TCP_FLAGS.ack });
    const r = await result;
    assert.equal(r.result, 'up');
    const rst = f.sockets[0]!.sent.at(-1)!;
    assert.equal(rst.segment[13], TCP_FLAGS.rst);
    assert.equal(rst.segment.readUInt32BE(4), (syn.isn + 1) >>> 0);
    assert.equal(rst.tos, 17 << 2);
    assert.ok(verifies(6, LOCAL[6], TARGET.backend, rst.segment));
    f.prober.close();
    assert.ok(f.sockets[0]!.closed);
  });

  it('ignores SYN-ACKs with a wrong acknowledgement, from the RIP or another address, from another port or to another port; then times out', async () => {
    const f = fixture();
    const result = f.prober.probe(TARGET, 300);
    const syn = await f.syn();
    const ok = { srcPort: 8080, dstPort: syn.port, ack: (syn.isn + 1) >>> 0, flags: TCP_FLAGS.syn | TCP_FLAGS.ack };
    f.answer(TARGET.vip, { ...ok, ack: syn.isn });
    f.answer(TARGET.vip, { ...ok, ack: (syn.isn + 2) >>> 0 });
    f.answer(TARGET.backend, ok); // what a server without l3dsr cannot send, but a spoofer can
    f.answer('2001:db8:203::99', ok);
    f.answer(TARGET.vip, { ...ok, srcPort: 8081 });
    f.answer(TARGET.vip, { ...ok, dstPort: syn.port === PROBE_PORTS.to ? syn.port - 1 : syn.port + 1 });
    f.answer(TARGET.vip, { ...ok, flags: TCP_FLAGS.ack }); // not a SYN-ACK
    f.answer(TARGET.vip, { ...ok, flags: TCP_FLAGS.syn }); // no ACK flag
    assert.deepEqual(await result, { result: 'timeout' });
    assert.equal(f.prober.counters.ignored, 8);
    // The SYN was sent again at half the timeout, with the same port and ISN.
    const syns = f.sockets[0]!.sent.filter((s) => s.segment[13] === TCP_FLAGS.syn);
    assert.equal(syns.length, 2);
    assert.ok(syns[1]!.segment.equals(syns[0]!.segment));
    // A late, correct answer to the finished check changes nothing.
    f.answer(TARGET.vip, ok);
    assert.equal(f.prober.counters.ignored, 9);
    f.prober.close();
  });

  it('an RST from VIP:PORT acknowledging the SYN: refused', async () => {
    const f = fixture();
    const result = f.prober.probe(TARGET, 5000);
    const syn = await f.syn();
    f.answer(TARGET.vip, { srcPort: 8080, dstPort: syn.port, ack: (syn.isn + 1) >>> 0, flags: TCP_FLAGS.rst | TCP_FLAGS.ack });
    assert.equal((await result).result, 'refused');
    f.prober.close();
  });

  it('without CAP_NET_RAW the error says what is missing', async () => {
    const prober = new TcpProber({
      openSocket: () => { throw Object.assign(new Error('socket(AF_INET6, SOCK_RAW, 6): Operation not permitted'), { code: 'EPERM' }); },
      sourceFor: async () => LOCAL[6],
    });
    const r = await prober.probe(TARGET, 100);
    assert.equal(r.result, 'error');
    assert.match((r as { message: string }).message, /needs CAP_NET_RAW: socket\(AF_INET6, SOCK_RAW, 6\): Operation not permitted/);
  });
});

const SECTION: LbVip = {
  name: 'web', family: 6, vip: TARGET.vip, dscp: 17, ports: null, hash: '5-tuple', tableSize: 13,
  backends: [{ address: TARGET.backend, weight: 1, drain: false, origin: 'x:1' }, { address: '2001:db8:198::12', weight: 1, drain: false, origin: 'x:1' }],
  check: { type: 'tcp', port: 8080 }, intervalMs: 100, timeoutMs: 100, rise: 3, fall: 2, origin: 'x:1 [lb web]',
};

/** A prober that answers from a script. */
const scripted = (results: ProbeResult['result'][]) =>
  ({ probe: async () => ({ result: results.shift() ?? 'timeout', latencyMs: 1 }) as ProbeResult }) as unknown as TcpProber;

describe('BackendChecker: rise and fall', () => {
  it('starts up; fall bad checks in a row take it down, rise good ones bring it back; each change is counted and reported once', async () => {
    const changes: HealthChange[] = [];
    const c = new BackendChecker(SECTION, TARGET.backend, {
      prober: scripted(['timeout', 'up', 'refused', 'timeout', 'up', 'up', 'timeout', 'up', 'up', 'up', 'up']),
      onChange: (ch) => changes.push(ch),
    });
    const states: string[] = [];
    for (let k = 0; k < 11; k++) {
      await c.checkOnce();
      states.push(c.state);
    }
    assert.deepEqual(states, ['up', 'up', 'up', 'down', 'down', 'down', 'down', 'down', 'down', 'up', 'up']);
    const s = c.status();
    assert.deepEqual(s.transitions, { up: 1, down: 1 });
    assert.deepEqual(s.checks, { up: 7, refused: 1, timeout: 3, error: 0 });
    assert.deepEqual(changes.map((ch) => `${ch.state}:${ch.result}`), ['down:timeout', 'up:up']);
  });

  it('HealthChecks makes one checker per backend of the sections that have a check', () => {
    const checks = new HealthChecks([SECTION, { ...SECTION, name: 'other', check: { type: 'none' } }], { prober: scripted([]) });
    assert.deepEqual(checks.status().map((h) => `${h.section} ${h.backend} ${h.state}`), ['web 2001:db8:198::11 up', 'web 2001:db8:198::12 up']);
    assert.equal(checks.isUp('other', TARGET.backend), true);
  });
});
