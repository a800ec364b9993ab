// The TUN addon with offload (IFF_VNET_HDR + TUNSETOFFLOAD) against the
// real kernel, as root, in a namespace of its own: what is granted and
// whether the kernel agrees, the slot size it needs, and GSO super-packets
// read whole with their virtio-net header and counted. A super-packet is
// made by writing one into the TUN: the kernel forwards it (it is for a
// prefix routed into the same TUN) and hands it back to the reader as one
// GSO packet, because the device now has TSO/USO.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addressBytes } from '../tools/packets/address.js';
import { buildPacket, tcp, udp } from '../tools/packets/build.js';
import { read16 } from '../tools/packets/bytes.js';
import { pseudoHeaderSum } from '../tools/packets/checksum.js';
import { IPV4, PROTO, TCP, UDP } from '../tools/packets/layout.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO, readVnet, vnetHeader } from '../tools/packets/vnet.js';
import { loadAddon, type NativeTunHandle } from '../src/tun/addon.js';
import { OFFLOAD_NAMES } from '../src/tun/abi.generated.js';
import { OFFLOAD_MIN_SLOT_SIZE, TunDevice, VNET_HEADER_BYTES, type Offload, type TunOpenOptions } from '../src/tun/device.js';
import { offloadState } from './support/ethtool.js';
import { BatchMemory, Lab, REMOTE_ADDRESS, REMOTE_PREFIX, sh, waitFor } from './support/tun-lab.js';
import { privileged } from './support/privilege.js';

const quiet = { log: () => {} };
/** Every offload the addon can report, in the order it reports them. */
const ALL_OFFLOADS: readonly Offload[] = OFFLOAD_NAMES;
/** A source the namespace does not own: the kernel forwards the written packet instead of calling it martian. */
const FOREIGN_SOURCE = '192.0.2.99';
const SLOT_SIZE = Math.ceil(OFFLOAD_MIN_SLOT_SIZE / 64) * 64;

const CHECKSUM_FIELD = { [PROTO.TCP]: TCP.CHECKSUM, [PROTO.UDP]: UDP.CHECKSUM } as const;

let lab: Lab;
let devCount = 0;
const devName = () => `o${process.pid % 100000}n${devCount++}`;

/** Every suite here: the file-level hooks below run even when all of them skip. */
const TUN_LAB = privileged('creates TUN devices in a network namespace');

before(() => {
  if (TUN_LAB.skip) return;
  lab = new Lab();
  // The written super-packet is forwarded back out of the TUN it came in on.
  sh('sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.default.send_redirects=0');
});
after(() => {
  lab?.dispose();
});

/** vnet header + IPv4 packet whose L4 checksum field holds the pseudo-header seed, as a sender's stack leaves it. */
function superPacket(protocol: typeof PROTO.TCP | typeof PROTO.UDP, payload: number, gsoType: number, gsoSize: number): Uint8Array {
  const transport = protocol === PROTO.TCP ? tcp(payload) : udp(payload);
  const seed = pseudoHeaderSum(addressBytes(FOREIGN_SOURCE), addressBytes(REMOTE_ADDRESS), protocol, transport.length);
  const ip = buildPacket({ src: FOREIGN_SOURCE, dst: REMOTE_ADDRESS, protocol, transport, checksum: seed });
  const frame = new Uint8Array(VNET_HEADER_BYTES + ip.length);
  frame.set(vnetHeader({ flags: VNET_F_NEEDS_CSUM, gsoType, gsoSize, csumStart: IPV4.SIZE, csumOffset: CHECKSUM_FIELD[protocol] }));
  frame.set(ip, VNET_HEADER_BYTES);
  return frame;
}

/** Attaches a reader that keeps a copy of every packet for REMOTE_ADDRESS and drops them all (writing them back would loop). */
function collect(dev: TunDevice, mem: BatchMemory): Uint8Array[] {
  const seen: Uint8Array[] = [];
  const remote = REMOTE_ADDRESS.split('.').map(Number);
  dev.attach(mem.memory, mem.layout, (n) => {
    for (let i = 0; i < n; i++) {
      const p = mem.packet(i);
      const ip = p.subarray(dev.vnetHeaderBytes);
      if (ip[0] >> 4 === 4 && remote.every((b, k) => ip[16 + k] === b)) seen.push(p.slice());
      mem.lengths[i] = 0;
    }
  });
  return seen;
}

describe('opening with offload', TUN_LAB, () => {
  it('sets IFF_VNET_HDR, reports the offloads granted, and the kernel shows the same on the device', async () => {
    const name = devName();
    const dev = TunDevice.open({ name, offload: 'auto', ...quiet });
    const plain = TunDevice.open({ name: devName(), ...quiet });
    try {
      assert.equal(dev.vnetHeaderBytes, VNET_HEADER_BYTES);
      const granted = dev.offloads!;
      assert.deepEqual(granted, ALL_OFFLOADS.filter((o) => granted.includes(o)), `unknown name or order: ${granted}`);
      for (const o of ['csum', 'tso4', 'tso6'] as const) assert.ok(granted.includes(o), `${o} not granted (${granted}): this kernel (6.18) has TUN TSO`);
      // USO4/USO6 since kernel 6.2, only together.
      assert.ok(granted.includes('uso4') && granted.includes('uso6'), `USO not granted (${granted}): kernel >= 6.2 has it`);
      assert.ok(dev.segmentationOffload);
      assert.equal(dev.offloadNote, null, 'auto got TCP segmentation: nothing to say');
      const [link] = JSON.parse(sh('ip', '-d', '-j', 'link', 'show', 'dev', name)) as [{ linkinfo: { info_data: { vnet_hdr: boolean } } }];
      assert.equal(link.linkinfo.info_data.vnet_hdr, true);
      assert.deepEqual(await offloadState(name), { txChecksum: true, tso: true }, 'the kernel shows checksum offload and TSO on the device');

      assert.equal(plain.offloads, null);
      assert.equal(plain.vnetHeaderBytes, 0);
      assert.equal(plain.segmentationOffload, false);
      assert.deepEqual(await offloadState(plain.name), { txChecksum: false, tso: false });
    } finally {
      dev.close();
      plain.close();
    }
  });

  it('every queue of a multi-queue device opens alike and reports the same offloads', async () => {
    const name = devName();
    const first = TunDevice.open({ name, multiQueue: true, offload: 'yes', ...quiet });
    const queues = [first, TunDevice.open({ name, multiQueue: true, offload: first.otherQueueOffload, ...quiet })];
    try {
      assert.equal(first.otherQueueOffload, 'yes');
      assert.deepEqual(queues[1]!.offloads, queues[0]!.offloads);
      assert.ok(queues[0]!.segmentationOffload);
      assert.deepEqual(await offloadState(name), { txChecksum: true, tso: true });
    } finally {
      queues.forEach((q) => q.close());
    }
  });

  it('opens the other queues of a device as otherQueueOffload says, and each agrees with the device about the header', () => {
    for (const policy of ['no', 'yes', 'auto'] as const) {
      const name = devName();
      const first = TunDevice.open({ name, multiQueue: true, offload: policy, ...quiet });
      const other = TunDevice.open({ name, multiQueue: true, offload: first.otherQueueOffload, ...quiet });
      try {
        const [link] = JSON.parse(sh('ip', '-d', '-j', 'link', 'show', 'dev', name)) as [{ linkinfo: { info_data: { vnet_hdr: boolean } } }];
        assert.equal(link.linkinfo.info_data.vnet_hdr, policy !== 'no', `${policy}: the device's header`);
        for (const q of [first, other]) assert.equal(q.vnetHeaderBytes, policy === 'no' ? 0 : VNET_HEADER_BYTES, `${policy}: a queue's header`);
        assert.deepEqual(other.offloads, first.offloads);
      } finally {
        other.close();
        first.close();
      }
    }
  });

  it('refuses an offload policy other than auto, yes or no, and the addon an offload option that is not a boolean', () => {
    const name = devName();
    assert.throws(
      () => TunDevice.open({ name, offload: true as unknown as 'yes', ...quiet }),
      { code: 'ERR_INVALID_ARG_VALUE', message: /offload must be 'auto', 'yes' or 'no', got true/ },
    );
    assert.equal(lab.linkExists(name), false, 'a refused policy opens nothing');
    const { TunHandle } = loadAddon();
    const opened: NativeTunHandle[] = [];
    try {
      assert.throws(
        () => { opened.push(new TunHandle(name, false, { offload: 'yes' as unknown as boolean })); },
        { code: 'ERR_INVALID_ARG_TYPE', message: /offload must be a boolean/ },
      );
    } finally {
      for (const h of opened) h.close();
    }
  });

  it('refuses slots that cannot hold a 64 KiB super-packet and its header, and says how big they must be', () => {
    const dev = TunDevice.open({ name: devName(), offload: 'yes', ...quiet });
    const small = new BatchMemory(4, 8, 2048);
    try {
      assert.throws(() => dev.attach(small.memory, small.layout, () => {}), {
        code: 'ERR_OUT_OF_RANGE', message: new RegExp(`slotSize must be >= ${OFFLOAD_MIN_SLOT_SIZE} .*got 2048`),
      });
      assert.equal(dev.mode, null);
    } finally {
      dev.close();
    }
  });

  it('says in its log line which offloads were granted', () => {
    const lines: string[] = [];
    const dev = TunDevice.open({ name: devName(), offload: 'yes', log: (l) => lines.push(l) });
    const mem = new BatchMemory(4, 8, SLOT_SIZE);
    try {
      dev.attach(mem.memory, mem.layout, () => {});
      assert.equal(lines.length, 1);
      assert.match(lines[0]!, new RegExp(`; offloads granted: ${dev.offloads!.join(' ')}$`));
    } finally {
      dev.close();
    }
  });
});

const ENGINES: { label: string; options: Partial<TunOpenOptions> }[] = [
  { label: 'io_uring, multishot read', options: { engine: 'io_uring', readMode: 'multishot' } },
  { label: 'io_uring, single-shot reads', options: { engine: 'io_uring', readMode: 'single' } },
  { label: 'readwrite', options: { engine: 'readwrite' } },
];

for (const engine of ENGINES) {
  describe(`GSO super-packets, ${engine.label}`, TUN_LAB, () => {
    const cases = [
      { what: 'TCP (TSO)', protocol: PROTO.TCP, payload: 10_000, gsoType: VNET_GSO.TCPV4, gsoSize: 1448 },
      { what: 'TCP, a 64 KiB one (the largest)', protocol: PROTO.TCP, payload: 65535 - IPV4.SIZE - 20, gsoType: VNET_GSO.TCPV4, gsoSize: 1448 },
      { what: 'UDP (USO)', protocol: PROTO.UDP, payload: 4000, gsoType: VNET_GSO.UDP_L4, gsoSize: 1000 },
    ] as const;
    for (const c of cases) {
      it(`${c.what}: one read holds the whole super-packet behind its header, counted as one packet of its segments`, async () => {
        const name = devName();
        const dev = TunDevice.open({ name, offload: 'yes', ...engine.options, ...quiet });
        const mem = new BatchMemory(4, 8, SLOT_SIZE);
        try {
          lab.routeInto(name, REMOTE_PREFIX);
          const seen = collect(dev, mem);
          const frame = superPacket(c.protocol, c.payload, c.gsoType, c.gsoSize);
          assert.equal(dev.writePacket(frame), frame.length);
          await waitFor(() => seen.length > 0, 'the super-packet forwarded back into the TUN');

          assert.equal(seen.length, 1, `reads: ${seen.map((p) => p.length)}`);
          const got = seen[0]!;
          assert.equal(got.length, frame.length, 'read whole: header and every byte of the packet');
          const h = readVnet(got);
          assert.equal(h.flags & VNET_F_NEEDS_CSUM, VNET_F_NEEDS_CSUM, 'NEEDS_CSUM');
          assert.equal(h.gsoType, c.gsoType);
          assert.equal(h.gsoSize, c.gsoSize);
          assert.equal(h.csumStart, IPV4.SIZE);
          assert.equal(h.csumOffset, CHECKSUM_FIELD[c.protocol]);
          // Forwarding changed TTL and the header checksum; the seed and the payload came back as written.
          const ipIn = frame.subarray(VNET_HEADER_BYTES);
          const ipOut = got.subarray(VNET_HEADER_BYTES);
          assert.equal(ipOut[IPV4.TTL], ipIn[IPV4.TTL]! - 1);
          const field = IPV4.SIZE + CHECKSUM_FIELD[c.protocol];
          assert.equal(read16(ipOut, field), read16(ipIn, field), 'the pseudo-header seed');
          const unchanged = (p: Uint8Array) => [...p.subarray(0, IPV4.TTL), ...p.subarray(IPV4.TTL + 1, IPV4.CHECKSUM), ...p.subarray(IPV4.CHECKSUM + 2)];
          assert.deepEqual(unchanged(ipOut), unchanged(ipIn));

          const st = dev.stats();
          assert.equal(st.gsoPackets, 1);
          assert.equal(st.gsoSegments, Math.ceil(c.payload / c.gsoSize));
          assert.equal(st.bytesRead, frame.length, 'bytesRead counts the header too');
        } finally {
          dev.close();
        }
      });
    }
  });
}
