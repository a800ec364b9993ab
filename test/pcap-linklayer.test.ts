// Finding the IP packet behind every supported link layer, and leaving
// everything that is not IP alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ETHERTYPE, LINKTYPE, isSupportedLinkType, linkTypeName, locateL3, locateRecordL3 } from '../src/pcap/linklayer.js';
import { PcapError } from '../src/pcap/errors.js';
import { buildIpPacket, ethernetFrame } from '../tools/capture/generate.js';
import { ByteBuilder, concat } from './support/pcap-bytes.js';

const v4 = buildIpPacket({ family: 4, protocol: 'udp', source: '192.0.2.1', destination: '198.51.100.2', dscp: 1 });
const v6 = buildIpPacket({ family: 6, protocol: 'tcp', source: '2001:db8::1', destination: '2001:db8::2', dscp: 1 });
const ARP = 0x0806;
const LLDP = 0x88cc;

/** A Linux cooked (SLL) header: packet type, ARPHRD_ETHER, 6-byte address, protocol. */
function sll(protocol: number, payload: Uint8Array): Uint8Array {
  const h = new ByteBuilder(false).u16(0).u16(1).u16(6).bytes([2, 0, 0, 0, 0, 1, 0, 0]).u16(protocol).build();
  return concat(h, payload);
}

/** A Linux cooked v2 (SLL2) header: protocol first, then interface index, ARPHRD, packet type, address. */
function sll2(protocol: number, payload: Uint8Array): Uint8Array {
  const h = new ByteBuilder(false).u16(protocol).u16(0).u32(3).u16(1).u8(0).u8(6).bytes([2, 0, 0, 0, 0, 1, 0, 0]).build();
  return concat(h, payload);
}

test('Ethernet: IPv4 and IPv6 after the 14-byte header', () => {
  assert.deepEqual(locateL3(LINKTYPE.ETHERNET, ethernetFrame(v4, 4)), { ip: true, offset: 14 });
  assert.deepEqual(locateL3(LINKTYPE.ETHERNET, ethernetFrame(v6, 6)), { ip: true, offset: 14 });
});

test('Ethernet: VLAN tags of all three kinds, stacked, are stepped over', () => {
  const cases: [string, [number, number][]][] = [
    ['802.1Q', [[ETHERTYPE.VLAN, 100]]],
    ['802.1ad + 802.1Q', [[ETHERTYPE.SERVICE_VLAN, 10], [ETHERTYPE.VLAN, 100]]],
    ['0x9100 + 802.1Q', [[ETHERTYPE.QINQ_LEGACY, 10], [ETHERTYPE.VLAN, 100]]],
    ['three tags', [[ETHERTYPE.SERVICE_VLAN, 1], [ETHERTYPE.QINQ_LEGACY, 2], [ETHERTYPE.VLAN, 3]]],
  ];
  for (const [name, tags] of cases) {
    const offset = 14 + 4 * tags.length;
    const frame4 = ethernetFrame(v4, 4, tags);
    assert.deepEqual(locateL3(LINKTYPE.ETHERNET, frame4), { ip: true, offset }, name);
    assert.deepEqual([...frame4.subarray(offset)], [...v4], name);
    assert.deepEqual(locateL3(LINKTYPE.ETHERNET, ethernetFrame(v6, 6, tags)), { ip: true, offset }, name);
  }
});

test('Ethernet: ARP, LLDP, 802.3 length frames, and frames too short are not IP', () => {
  assert.equal(locateL3(LINKTYPE.ETHERNET, ethernetFrame(new Uint8Array(28), ARP)).ip, false);
  assert.equal(locateL3(LINKTYPE.ETHERNET, ethernetFrame(new Uint8Array(28), LLDP)).ip, false);
  assert.equal(locateL3(LINKTYPE.ETHERNET, ethernetFrame(new Uint8Array(28), ARP, [[ETHERTYPE.VLAN, 5]])).ip, false);
  assert.equal(locateL3(LINKTYPE.ETHERNET, ethernetFrame(new Uint8Array(40), 0x0028)).ip, false);
  assert.equal(locateL3(LINKTYPE.ETHERNET, new Uint8Array(13)).ip, false);
  // A VLAN tag cut off by the snap length.
  const cut = ethernetFrame(v4, 4, [[ETHERTYPE.VLAN, 7]]).subarray(0, 16);
  assert.equal(locateL3(LINKTYPE.ETHERNET, cut).ip, false);
});

test('raw IP (101, DLT_RAW 12/14, IPV4 228, IPV6 229): every frame is IP at offset 0, whatever its version nibble', () => {
  // The version nibble is the core's business (bad-version is malformed), as in the daemon.
  for (const lt of [LINKTYPE.RAW, LINKTYPE.RAW_DLT12, LINKTYPE.RAW_DLT14, LINKTYPE.IPV4, LINKTYPE.IPV6]) {
    for (const frame of [v4, v6, Uint8Array.of(0x50, 0, 0, 0), Uint8Array.of(0x00, 0, 0, 0), new Uint8Array(0)]) {
      assert.deepEqual(locateL3(lt, frame), { ip: true, offset: 0 }, `link type ${lt}, frame ${frame[0]}`);
    }
  }
});

test('Ethernet and SLL: an IP EtherType makes the frame IP whatever the version nibble says', () => {
  const v5 = Uint8Array.of(0x55, 0, 0, 20);
  assert.deepEqual(locateL3(LINKTYPE.ETHERNET, ethernetFrame(v5, 4)), { ip: true, offset: 14 });
  assert.deepEqual(locateL3(LINKTYPE.ETHERNET, ethernetFrame(v4, 6)), { ip: true, offset: 14 });
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL, sll(ETHERTYPE.IPV6, v5)), { ip: true, offset: 16 });
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL2, sll2(ETHERTYPE.IPV4, v6)), { ip: true, offset: 20 });
});

test('Linux cooked SLL (113) and SLL2 (276)', () => {
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL, sll(ETHERTYPE.IPV4, v4)), { ip: true, offset: 16 });
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL, sll(ETHERTYPE.IPV6, v6)), { ip: true, offset: 16 });
  assert.equal(locateL3(LINKTYPE.LINUX_SLL, sll(ARP, new Uint8Array(28))).ip, false);
  assert.equal(locateL3(LINKTYPE.LINUX_SLL, new Uint8Array(15)).ip, false);
  const tagged = sll(ETHERTYPE.VLAN, concat(new ByteBuilder(false).u16(42).u16(ETHERTYPE.IPV4).build(), v4));
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL, tagged), { ip: true, offset: 20 });

  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL2, sll2(ETHERTYPE.IPV4, v4)), { ip: true, offset: 20 });
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL2, sll2(ETHERTYPE.IPV6, v6)), { ip: true, offset: 20 });
  assert.equal(locateL3(LINKTYPE.LINUX_SLL2, sll2(LLDP, new Uint8Array(30))).ip, false);
  assert.equal(locateL3(LINKTYPE.LINUX_SLL2, new Uint8Array(19)).ip, false);
});

test('an unknown link type is an error that names it, with the record position when known', () => {
  assert.equal(isSupportedLinkType(147), false);
  assert.equal(isSupportedLinkType(LINKTYPE.LINUX_SLL2), true);
  assert.throws(() => locateL3(147, v4), (err: unknown) => {
    assert.ok(err instanceof PcapError);
    assert.equal(err.reason, 'UNKNOWN_LINKTYPE');
    assert.match(err.message, /link type 147 \(USER0\) is not supported/);
    assert.match(err.message, /1 ETHERNET/);
    return true;
  });
  assert.throws(
    () => locateRecordL3({ linkType: 9999, data: v4, index: 7, offset: 1234 }),
    (err: unknown) => err instanceof PcapError && err.offset === 1234 && err.record === 7 && /link type 9999 \(unknown\).*byte offset 1234, record index 7/.test(err.message),
  );
  assert.equal(linkTypeName(0), 'NULL (BSD loopback)');
});
