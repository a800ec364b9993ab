// Proof that the NEEDS_CSUM seeds the core leaves in GSO super-packets are
// right (TCP and UDP, IPv4 and IPv6), where a wrong one would show. Delivered locally, the kernel
// trusts a NEEDS_CSUM packet's checksum, so a wrong seed goes unnoticed.
// Here srv forwards the rewritten super-packets to a fourth namespace over
// a link without checksum offload: the kernel segments each one in
// software and computes every segment's checksum from our seed. tshark on
// the receiving side validates every IPv4 header and TCP checksum, the
// receiver's TCP counts what it refused, and the transfer is hashed end to
// end. A negative control with a deliberately wrong seed shows that the
// same checks catch it. Needs root, tcpdump and tshark (skipped without them).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, LAB_INTERFACES, type LabVip } from '../tools/lab/index.js';
import { IPV4, IPV6, UDP } from '../tools/packets/layout.js';
import { checksumVerdicts, startCapture, type CaptureResult, type ChecksumVerdicts } from './support/checksum-capture.js';
import { LabDaemon, daemonArgs, requireLabRoot, sumQueues, waitFor, type StatusJson } from './support/daemon.js';
import {
  FORWARD_INTERFACES, ForwardTarget, sendHashed, sendUdpSuperPackets, startReceiver, startUdpSink, type HashedTransfer, type UdpSink,
} from './support/offload-forward.js';
import { SeedFaultRelay } from './support/offload-relay.js';
import { needs, privileged, tools } from './support/privilege.js';

const MIB = 1024 * 1024;
const TRANSFER_BYTES = 16 * MIB;
const CONTROL_BYTES = 2 * MIB;
/** Super-packets the negative control spoils. */
const SPOILED = 3;
/** UDP: this many sends of SEGMENTS datagrams of DATAGRAM bytes, each one GSO packet (UDP_SEGMENT). */
const UDP_SENDS = 50;
const UDP_SEGMENTS = 40;
const UDP_DATAGRAM = 1200;
const LINK_MTU = 1500;
/** The largest TCP payload per segment on these links (IPv4, timestamps on: 1500 - 20 - 32). */
const MAX_MSS = 1448n;
const VIPS: readonly LabVip[] = [
  { family: 4, address: '203.0.113.10', dscp: 1 },
  { family: 6, address: '2001:db8:203::10', dscp: 1 },
];

interface Observed {
  transfer: HashedTransfer;
  verdicts: ChecksumVerdicts;
  captured: number;
  receivedByFilter: number;
  droppedByKernel: number;
  refusedByReceiver: number;
}

/** One hashed upload from cli to `vip`, captured on fwd's side and judged by tshark. */
async function observeUpload(lab: Lab, fwd: ForwardTarget, vip: string, bytes: number): Promise<Observed> {
  const capture = await startCapture(fwd.ns, FORWARD_INTERFACES.fwdToSrv, `tcp and dst host ${vip}`);
  try {
    const refused0 = (await fwd.checksumErrors()).tcp;
    const transfer = await sendHashed(lab, vip, bytes);
    const refusedByReceiver = (await fwd.checksumErrors()).tcp - refused0;
    const c = await capture.stop();
    return { transfer, verdicts: await checksumVerdicts(c.file), ...c, refusedByReceiver };
  } finally {
    capture.dispose();
  }
}

function assertIntact(t: HashedTransfer, bytes: number, what: string): void {
  assert.equal(t.error, undefined, `${what}: ${t.error}`);
  assert.equal(t.received!.bytes, bytes, `${what}: bytes received`);
  assert.equal(t.received!.sha256, t.sent!.sha256, `${what}: SHA-256 of what arrived differs from what was sent`);
}

const gso = (s: StatusJson) => ({
  reads: sumQueues(s, (q) => q.tun.packetsRead),
  packets: sumQueues(s, (q) => q.tun.gsoPackets),
  segments: sumQueues(s, (q) => q.tun.gsoSegments),
});

describe('NEEDS_CSUM seeds of rewritten super-packets, checked after the kernel segments them in software',
  needs(privileged('runs the daemon in a four-namespace lab'), tools('tcpdump', 'tshark')), () => {
  let lab: Lab;
  let fwd: ForwardTarget;
  let udpSink: UdpSink;

  before(async () => {
    requireLabRoot();
    lab = await Lab.create({ vips: VIPS });
    fwd = await ForwardTarget.create(lab, VIPS);
    assert.deepEqual(fwd.srvLinkOffloads, { txChecksum: false, tso: false }, 'srv must compute every checksum itself on its link to fwd');
    await startReceiver(fwd, VIPS.map((v) => v.address));
    udpSink = await startUdpSink(fwd, VIPS.map((v) => v.address));
  });

  after(async () => {
    await fwd?.destroy();
    await lab?.destroy();
  });

  describe('l3dsr run --offload', () => {
    let daemon: LabDaemon;
    before(async () => {
      // No --loopback-vips: srv must forward the VIPs, not deliver them.
      daemon = await LabDaemon.start(lab, daemonArgs({ vips: VIPS, loopbackVips: false, extra: ['--offload'] }));
    });
    after(async () => {
      if (daemon?.running) await daemon.stop();
    });

    for (const vip of VIPS) {
      it(`IPv${vip.family}: ${TRANSFER_BYTES / MIB} MiB through super-packets arrive intact, every segment with valid checksums`, async () => {
        const before = gso(await daemon.status());
        const o = await observeUpload(lab, fwd, vip.address, TRANSFER_BYTES);
        const after = gso(await daemon.status());
        assertIntact(o.transfer, TRANSFER_BYTES, `upload to ${vip.address}`);

        // The capture is complete: everything the filter saw was written, and it carries every byte.
        assert.equal(o.droppedByKernel, 0, 'tcpdump lost packets: the capture would not cover every segment');
        assert.equal(o.captured, o.receivedByFilter);
        assert.equal(o.verdicts.packets, o.captured);
        assert.ok(o.verdicts.payloadBytes >= TRANSFER_BYTES, `the capture holds ${o.verdicts.payloadBytes} payload bytes of ${TRANSFER_BYTES}`);

        // Every segment checked, none bad: the seeds the core moved were right.
        const v = o.verdicts;
        assert.equal(v.tcpBad, 0, `bad TCP checksums in frames ${v.badFrames}`);
        assert.equal(v.tcpGood, v.packets, 'every TCP checksum was validated');
        if (vip.family === 4) {
          assert.equal(v.ipv4Bad, 0, `bad IPv4 header checksums in frames ${v.badFrames}`);
          assert.equal(v.ipv4Good, v.packets);
        }
        assert.equal(o.refusedByReceiver, 0, 'fwd\'s TCP refused segments for bad checksums');

        // The segments were cut by srv from super-packets the daemon read and wrote whole.
        assert.ok(v.largestIpPacket <= LINK_MTU, `a ${v.largestIpPacket}-byte packet on a ${LINK_MTU}-byte link`);
        const reads = after.reads - before.reads;
        const packets = after.packets - before.packets;
        assert.ok(packets > 0n, 'no GSO super-packet went through the daemon');
        // A read that is not a super-packet carries at most one MSS: most of the data came in super-packets.
        assert.ok(2n * (reads - packets) * MAX_MSS < BigInt(TRANSFER_BYTES), `only ${packets} of ${reads} reads were super-packets`);
        assert.ok(after.segments - before.segments > 2n * packets, 'super-packets of one or two segments only');
      });
    }

    for (const vip of VIPS) {
      it(`IPv${vip.family}: UDP super-packets (${UDP_SENDS} x ${UDP_SEGMENTS} datagrams) arrive as datagrams with valid checksums, every one`, async () => {
        const status = await daemon.status();
        assert.ok(status.queues[0]!.offloads?.includes('uso4'), `USO not granted (${status.queues[0]!.offloads}): needs kernel >= 6.2`);
        const before = gso(status);
        const errors0 = await fwd.checksumErrors();
        const sink0 = await udpSink.count();
        const capture = await startCapture(fwd.ns, FORWARD_INTERFACES.fwdToSrv, `udp and dst host ${vip.address}`);
        let c: CaptureResult | undefined;
        try {
          await sendUdpSuperPackets(lab, vip.address, UDP_SENDS, UDP_SEGMENTS, UDP_DATAGRAM);
          const total = UDP_SENDS * UDP_SEGMENTS;
          // Until the last datagram is in (a hang detector, not a measurement).
          const sink = await waitFor('every datagram at the sink in fwd', 10_000, async () => {
            const n = await udpSink.count();
            return n.datagrams - sink0.datagrams >= total ? n : undefined;
          });
          assert.equal(sink.bytes - sink0.bytes, total * UDP_DATAGRAM);
          c = await capture.stop();
          const v = await checksumVerdicts(c.file);
          const errors = await fwd.checksumErrors();
          assert.equal(c.droppedByKernel, 0);
          assert.equal(v.packets, total, 'datagrams captured at fwd');
          assert.equal(v.udpBad, 0, `bad UDP checksums in frames ${v.badFrames}`);
          assert.equal(v.udpGood, v.packets, 'every UDP checksum was validated');
          if (vip.family === 4) assert.equal(v.ipv4Good, v.packets);
          assert.equal(v.largestIpPacket, (vip.family === 4 ? IPV4.SIZE : IPV6.SIZE) + UDP.SIZE + UDP_DATAGRAM);
          assert.equal(errors.udp4 + errors.udp6, errors0.udp4 + errors0.udp6, 'fwd\'s UDP refused datagrams for bad checksums');
          const after = gso(await daemon.status());
          assert.equal(after.packets - before.packets, BigInt(UDP_SENDS), 'each send went through the daemon as one super-packet');
          assert.equal(after.segments - before.segments, BigInt(total));
        } finally {
          if (!c) await capture.stop().catch(() => undefined);
          capture.dispose();
        }
      });
    }

    it('the daemon dropped nothing (none inconsistent, none malformed) and wrote back every packet it read', async () => {
      const s = await daemon.status();
      const q = s.queues[0]!;
      assert.deepEqual(q.offloads?.slice(0, 3), ['csum', 'tso4', 'tso6']);
      assert.equal(BigInt(q.counters.reasons['vnet-inconsistent'] ?? 0), 0n);
      // Not all reads are rewritten: with forwarding on, srv's kernel sends its own MLD reports out of the TUN (passed).
      assert.equal(sumQueues(s, (x) => x.counters.verdicts.dropped) + sumQueues(s, (x) => x.counters.verdicts.malformed), 0n, JSON.stringify(q.counters));
      assert.ok(sumQueues(s, (x) => x.counters.verdicts.rewritten) > 0n);
      assert.equal(sumQueues(s, (x) => x.tun.packetsWritten), sumQueues(s, (x) => x.tun.packetsRead));
    });
  });

  describe('negative control: the same checks catch a wrong seed', () => {
    let relay: SeedFaultRelay;
    before(async () => {
      relay = await SeedFaultRelay.start({
        netns: lab.namespaces.srv, tun: `sf${process.pid % 100000}`, steer: LAB_INTERFACES.srvToLb,
        rules: VIPS.map((v) => `${v.dscp}=${v.address}`), corrupt: SPOILED,
      });
    });
    after(async () => {
      await relay?.stop();
    });

    it(`${SPOILED} super-packets with one bit of their seed flipped: tshark and the receiver see bad checksums; TCP resends, the data arrives intact`, async () => {
      const o = await observeUpload(lab, fwd, VIPS[0]!.address, CONTROL_BYTES);
      assertIntact(o.transfer, CONTROL_BYTES, 'upload through the spoiling relay');
      assert.equal(relay.corrupted, SPOILED, 'the relay spoiled fewer super-packets than asked');
      assert.equal(o.droppedByKernel, 0);
      // Each spoiled super-packet became at least two segments with a wrong checksum.
      assert.ok(o.verdicts.tcpBad >= 2 * SPOILED, `tshark found ${o.verdicts.tcpBad} bad TCP checksums`);
      assert.equal(o.refusedByReceiver, o.verdicts.tcpBad, 'fwd\'s TCP refused exactly the segments tshark calls bad');
      assert.equal(o.verdicts.ipv4Bad, 0, 'only the TCP seed was touched');
      assert.ok(relay.stats().gsoPackets > 0);
    });
  });
});
