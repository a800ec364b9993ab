// End to end with the other data-path shapes: two TUN queues (one worker
// each, the kernel spreads flows over them), the read()/write() engine, and
// the path without TUN offloads. HTTP to every VIP and 10 MB transfers
// checked by SHA-256, as in e2e-traffic. Needs root (skipped without it).
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, probe, sameAddress, startEchoService } from '../tools/lab/index.js';
import type { EchoService } from '../tools/lab/index.js';
import { writeSysctl } from '../src/system/index.js';
import { LabDaemon, assertNothingInstalled, daemonArgs, requireLabRoot, ruleBytes, sumQueues, totals } from './support/daemon.js';
import { MIB, startBulkService, transfer, type BulkService } from './support/daemon-traffic.js';
import { privileged } from './support/privilege.js';

const TRANSFER_BYTES = 10 * MIB;
/** Uploads at once on the two-queue daemon: several flows for the kernel to spread. */
const PARALLEL_UPLOADS = 4;

// The default offload mode is auto (granted here); --no-offload is the one-packet-per-read path.
const SHAPES = [
  { engine: 'io_uring', queues: 2, flags: [] },
  { engine: 'readwrite', queues: 1, flags: [] },
  { engine: 'readwrite', queues: 2, flags: [] },
  { engine: 'io_uring', queues: 1, flags: ['--no-offload'] },
] as const;

describe('l3dsr run in the lab: queues and engines', privileged('runs the daemon in the three-namespace lab'), () => {
  let lab: Lab;
  let echo: EchoService;
  let bulk: BulkService;
  let daemon: LabDaemon | undefined;

  before(async () => {
    requireLabRoot();
    lab = await Lab.create();
    // The services listen on the VIPs while daemons come and go (and add and remove the VIPs on lo).
    for (const family of ['ipv4', 'ipv6']) await writeSysctl(`net.${family}.ip_nonlocal_bind`, '1', lab.where('srv'));
    echo = await startEchoService(lab, lab.vips.map((v) => v.address));
    bulk = await startBulkService(lab, lab.vips.map((v) => v.address));
  });

  afterEach(async () => {
    if (daemon?.running) await daemon.stop();
  });

  after(async () => {
    await bulk?.stop();
    await echo?.stop();
    await lab?.destroy();
  });

  for (const { engine, queues, flags } of SHAPES) {
    const shape = [`--engine ${engine}`, `--queues ${queues}`, ...flags].join(' ');
    it(`${shape}: HTTP to every VIP, 10 MB up and down intact, counters per queue add up`, async (t) => {
      daemon = await LabDaemon.start(lab, daemonArgs({ vips: lab.vips, engine, queues, extra: flags }));
      const s0 = await daemon.status();
      assert.deepEqual(s0.queues.map((q) => q.mode), Array(queues).fill(engine), 'engine per queue');

      const results = await probe(lab, lab.vips.map((v) => ({ protocol: 'http' as const, address: v.address })));
      for (const r of results) {
        assert.ok(r.ok, `HTTP to ${r.target.address}: ${r.error}`);
        assert.ok(sameAddress(r.from!, r.target.address) && sameAddress(r.reply!.local, r.target.address), JSON.stringify(r));
      }

      for (const vip of [lab.vips[0]!.address, lab.vips[1]!.address]) {
        const uploads = queues > 1 ? PARALLEL_UPLOADS : 1;
        const before = await daemon.status();
        const runs = await Promise.all([
          ...Array.from({ length: uploads }, () => transfer(lab, { address: vip, op: 'upload', bytes: TRANSFER_BYTES / uploads })),
          transfer(lab, { address: vip, op: 'download', bytes: TRANSFER_BYTES }),
        ]);
        for (const r of runs) {
          assert.equal(r.error, undefined, `transfer with ${vip}: ${r.error}`);
          assert.equal(r.received!.sha256, r.sent!.sha256, `transfer with ${vip}: SHA-256 differs`);
          assert.ok(r.received!.bytes > 0 && r.received!.bytes === r.sent!.bytes);
        }
        const after = await daemon.status();
        const bytes = ruleBytes(after, vip) - ruleBytes(before, vip);
        assert.ok(bytes >= BigInt(TRANSFER_BYTES), `only ${bytes} bytes rewritten for ${vip}`);
      }

      const s = await daemon.status();
      const all = totals(s);
      assert.equal(s.queues.length, queues);
      // The totals are sums over the queues; each queue's own counters are consistent.
      for (const q of s.queues) {
        assert.equal(BigInt(q.tun.packetsRead), BigInt(q.counters.verdicts.rewritten), `queue ${q.queue}: read vs rewritten`);
        assert.equal(BigInt(q.tun.packetsWritten), BigInt(q.tun.packetsRead), `queue ${q.queue}: read vs written`);
      }
      assert.equal(all.read, sumQueues(s, (q) => q.counters.verdicts.rewritten));
      t.diagnostic(`packets per queue: ${s.queues.map((q) => `${q.queue}: ${q.tun.packetsRead}`).join(', ')}; kernel tx_dropped ${all.kernelTxDropped}`);

      assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.log);
      await assertNothingInstalled(lab, lab.vips, `after ${shape}`);
    });
  }
});
