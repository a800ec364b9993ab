// Packets behind a virtio-net header (TUN with IFF_VNET_HDR): a NEEDS_CSUM
// packet's L4 checksum field holds the folded pseudo-header sum, which the
// core must move by the uncomplemented update; everything else as before.

import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createRewriter, decodeResult, type Rewriter } from '../src/core/rewriter.js';
import { buildPacket, tcp, udp, type ExtHeader } from '../tools/packets/build.js';
import { read16, write16 } from '../tools/packets/bytes.js';
import { checksumFor, onesSum, pseudoHeaderSum } from '../tools/packets/checksum.js';
import { PROTO, transportChecksum } from '../tools/packets/layout.js';
import { VNET, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, readVnet, vnetHeader } from '../tools/packets/vnet.js';
import { findTransport, parseFixedHeader } from '../tools/oracle/packet.js';
import { checksumReport, oracleRewrite } from '../tools/oracle/oracle.js';

const RULES = ['1=203.0.113.10', '1=2001:db8:203::10'];

let rw: Rewriter;
before(async () => { rw = await createRewriter({ rules: RULES, vnetHeaderBytes: VNET.SIZE, slotSize: 70000, slotCount: 4 }); });

interface Gso { type: number; size: number; hdrLen: number }

/** The packet with its L4 field turned into the pseudo-header seed, behind a NEEDS_CSUM header. */
function partial(ip: Uint8Array, gso: Gso): { frame: Uint8Array; field: number } {
  const h = parseFixedHeader(ip);
  if ('malformed' in h) throw new Error('test packet malformed');
  const t = findTransport(ip, h);
  if ('malformed' in t) throw new Error('test packet chain broken');
  const c = transportChecksum(h.family, t.protocol)!;
  const field = t.offset + c.field;
  write16(ip, field, seedOf(ip));
  const header = vnetHeader({ flags: VNET_F_NEEDS_CSUM, gsoType: gso.type, hdrLen: gso.hdrLen, gsoSize: gso.size, csumStart: t.offset, csumOffset: c.field });
  const frame = new Uint8Array(VNET.SIZE + ip.length);
  frame.set(header);
  frame.set(ip, VNET.SIZE);
  return { frame, field: VNET.SIZE + field };
}

/** The folded pseudo-header sum, computed from scratch: what the kernel puts in the field. */
function seedOf(ip: Uint8Array): number {
  const h = parseFixedHeader(ip);
  if ('malformed' in h) throw new Error('malformed');
  const t = findTransport(ip, h);
  if ('malformed' in t) throw new Error('chain');
  return pseudoHeaderSum(ip.subarray(h.dstAt - h.addrLen, h.dstAt), ip.subarray(h.dstAt, h.dstAt + h.addrLen), t.protocol, t.length);
}

/** What the kernel does when it sends the packet on: complete the checksum over the data from the seed. */
function finish(ip: Uint8Array, fieldInIp: number, l4Start: number): Uint8Array {
  const out = ip.slice();
  const seed = read16(out, fieldInIp);
  write16(out, fieldInIp, 0);
  write16(out, fieldInIp, checksumFor(onesSum(out.subarray(l4Start), seed)));
  return out;
}

function runOne(frame: Uint8Array) {
  rw.batch.slot(0).set(frame);
  rw.batch.setEntry(0, 0, frame.length);
  rw.rewriteSlots(1);
  return { out: rw.batch.slot(0).slice(0, frame.length), result: rw.batch.result(0), length: rw.batch.entryLength(0) };
}

const ext: fc.Arbitrary<ExtHeader[]> = fc.array(fc.oneof(
  fc.record({ type: fc.constantFrom('hop-by-hop' as const, 'destination-options' as const), length: fc.nat(2) }),
  fc.record({ type: fc.constant('fragment' as const), offset: fc.constant(0), more: fc.boolean() }),
), { maxLength: 3 });

const superPacket = fc.record({
  v6: fc.boolean(),
  protocol: fc.constantFrom(PROTO.TCP, PROTO.UDP),
  payload: fc.oneof(fc.nat(200), fc.integer({ min: 1000, max: 64000 })),
  ext,
  gso: fc.record({ type: fc.constantFrom(0, 1, 3, 4, 5), size: fc.integer({ min: 0, max: 9000 }), hdrLen: fc.nat(200) }),
  dst: fc.constantFrom('198.51.100.2', '198.51.100.99'),
}).map((s) => {
  const ip = buildPacket({
    src: s.v6 ? '2001:db8:192::1' : '192.0.2.1',
    dst: s.v6 ? `2001:db8:198::${s.dst.split('.')[3]}` : s.dst,
    dscp: 1, protocol: s.protocol,
    transport: s.protocol === PROTO.TCP ? tcp(s.payload) : udp(s.payload),
    ext: s.v6 ? s.ext : undefined,
  });
  return { ip, gso: s.gso };
});

describe('NEEDS_CSUM packets (IFF_VNET_HDR)', () => {
  it('the seed is moved by the uncomplemented update: it equals the from-scratch pseudo-header sum of the new destination', () => {
    fc.assert(fc.property(superPacket, ({ ip, gso }) => {
      const { frame, field } = partial(ip.slice(), gso);
      const { out, result, length } = runOne(frame);
      assert.equal(result & 0xff, 1, 'rewritten');
      assert.equal(length, frame.length);
      const outIp = out.subarray(VNET.SIZE);
      assert.deepEqual(out.subarray(0, VNET.SIZE), frame.subarray(0, VNET.SIZE), 'virtio-net header unchanged');
      assert.equal(read16(out, field), seedOf(outIp), 'seed = pseudo-header sum over the new addresses');
      const v6 = outIp[0] >> 4 === 6;
      assert.equal(v6 ? outIp[39] : outIp[19], v6 ? 0x10 : 0x0a, 'destination is the VIP');
      if (!v6) assert.equal(onesSum(outIp.subarray(0, 20)), 0xffff, 'IPv4 header checksum valid');
      // Finished the way the kernel would, the transport checksum is valid.
      assert.equal(checksumReport(finish(outIp, field - VNET.SIZE, readVnet(out).csumStart)).transport?.valid, true);
    }), { numRuns: 400 });
  });

  it('a UDP seed of zero is updated (it is not "no checksum")', () => {
    const ip = buildPacket({ src: '192.0.2.1', dst: '198.51.100.2', dscp: 1, protocol: PROTO.UDP, transport: udp(16) });
    const { frame, field } = partial(ip, { type: 0, size: 0, hdrLen: 0 });
    write16(frame, field, 0);
    const { out } = runOne(frame);
    assert.notEqual(read16(out, field), 0);
  });

  it('a header that points somewhere else than the transport checksum: dropped, untouched', () => {
    const ip = buildPacket({ src: '192.0.2.1', dst: '198.51.100.2', dscp: 1, protocol: PROTO.TCP, transport: tcp(16) });
    for (const wrong of [{ csumStart: 24 }, { csumOffset: 6 }]) {
      const { frame } = partial(ip.slice(), { type: 1, size: 1448, hdrLen: 52 });
      frame.set(vnetHeader({ ...readVnet(frame), ...wrong }));
      const { out, result, length } = runOne(frame);
      assert.equal(result & 0xff, 3);
      assert.equal(decodeResult(result).reason, 'vnet-inconsistent');
      assert.equal(length, 0);
      assert.deepEqual(out, frame);
    }
    assert.equal(rw.counters().reasons['vnet-inconsistent'], 2n);
  });

  it('packets without NEEDS_CSUM follow the ordinary rules, byte for byte as the oracle says', () => {
    for (const flags of [0, VNET_F_DATA_VALID]) {
      const ip = buildPacket({ src: '2001:db8:192::1', dst: '2001:db8:198::2', dscp: 1, protocol: PROTO.UDP, transport: udp(40) });
      const frame = new Uint8Array(VNET.SIZE + ip.length);
      frame.set(vnetHeader({ flags, csumStart: 0, csumOffset: 0 }));
      frame.set(ip, VNET.SIZE);
      const { out } = runOne(frame);
      assert.deepEqual(out.subarray(VNET.SIZE), oracleRewrite(ip, rw.rules).output);
    }
  });

  it('a slot shorter than the virtio-net header is malformed', () => {
    rw.batch.setEntry(0, 0, VNET.SIZE - 1);
    rw.rewriteSlots(1);
    assert.equal(rw.batch.result(0) & 0xff, 2);
    assert.equal(rw.counters().reasons['vnet-header'], 1n);
  });
});
