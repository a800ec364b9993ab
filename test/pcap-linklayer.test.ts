// Finding the IP packet behind every supported link layer, and leaving
// everything that is not IP alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ETHERTYPE, LINKTYPE, isSupportedLinkType, linkTypeName, locateL3, locateRecordL3 } from '../src/pcap/linklayer.js';
import { PcapError } from '../src/pcap/errors.js';
import { buildPacket, ethernetFrame, sll2Frame, sllFrame, tcp, udp } from '../tools/packets/build.js';
import { ARP as ARP_LAYOUT, PROTO } from '../tools/packets/layout.js';
import { ByteBuilder, concat } from './support/pcap-bytes.js';

const v4 = buildPacket({ src: '192.0.2.1', dst: '198.51.100.2', dscp: 1, protocol: PROTO.UDP, transport: udp() });
const v6 = buildPacket({ src: '2001:db8::1', dst: '2001:db8::2', dscp: 1, protocol: PROTO.TCP, transport: tcp() });
const ARP = ARP_LAYOUT.ETHERTYPE;
const LLDP = 0x88cc;


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
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL, sllFrame(v5, ETHERTYPE.IPV6)), { ip: true, offset: 16 });
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL2, sll2Frame(v6, ETHERTYPE.IPV4, 3)), { ip: true, offset: 20 });
});

test('Linux cooked SLL (113) and SLL2 (276)', () => {
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL, sllFrame(v4, ETHERTYPE.IPV4)), { ip: true, offset: 16 });
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL, sllFrame(v6, ETHERTYPE.IPV6)), { ip: true, offset: 16 });
  assert.equal(locateL3(LINKTYPE.LINUX_SLL, sllFrame(new Uint8Array(28), ARP)).ip, false);
  assert.equal(locateL3(LINKTYPE.LINUX_SLL, new Uint8Array(15)).ip, false);
  const tagged = sllFrame(concat(new ByteBuilder(false).u16(42).u16(ETHERTYPE.IPV4).build(), v4), ETHERTYPE.VLAN);
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL, tagged), { ip: true, offset: 20 });

  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL2, sll2Frame(v4, ETHERTYPE.IPV4, 3)), { ip: true, offset: 20 });
  assert.deepEqual(locateL3(LINKTYPE.LINUX_SLL2, sll2Frame(v6, ETHERTYPE.IPV6, 3)), { ip: true, offset: 20 });
  assert.equal(locateL3(LINKTYPE.LINUX_SLL2, sll2Frame(new Uint8Array(30), LLDP, 3)).ip, false);
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
