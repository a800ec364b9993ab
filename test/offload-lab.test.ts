// `l3dsr run` with and without TUN offload in the three-namespace lab:
// hashed TCP transfers (IPv4 and IPv6, both directions) with offload auto
// (the default), --no-offload, and --offload on two queues; what the log,
// /status and /metrics say about super-packets; the TUN's MTU stays that
// of the links. Options without the system: flags and the config key.
// The lab parts need root (skipped without it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../src/config/parse.js';
import { parseRunOptions } from '../src/cli/run-options.js';
import { isL3dsrError } from '../src/errors.js';
import { Lab, type LabVip } from '../tools/lab/index.js';
import { ipJson } from '../src/system/index.js';
import { LabDaemon, daemonArgs, metric, requireLabRoot, sumQueues, type StatusJson } from './support/daemon.js';
import { MIB, startBulkService, startTransfer, transfer, type BulkService, type TransferResult } from './support/daemon-traffic.js';
import { privileged } from './support/privilege.js';

const TRANSFER_BYTES = 8 * MIB;
/** Parallel flows for two queues: the kernel picks a queue per flow by hash, so all 16 on one queue has odds 2^-15. */
const PARALLEL_FLOWS = 16;
const PARALLEL_BYTES = MIB;
const LINK_MTU = 1500;
/** The largest TCP payload per segment on these links (IPv4, timestamps on: 1500 - 20 - 32). */
const MAX_MSS = 1448n;
const RULE = ['--rule', '1=203.0.113.10', '--no-steer'];

function assertIntact(r: TransferResult, bytes: number, what: string): void {
  assert.equal(r.error, undefined, `${what}: ${r.error}`);
  assert.equal(r.received!.bytes, bytes, `${what}: bytes received`);
  assert.equal(r.received!.sha256, r.sent!.sha256, `${what}: SHA-256 of what arrived differs from what was sent`);
}

const tunTotals = (s: StatusJson) => ({
  reads: sumQueues(s, (q) => q.tun.packetsRead),
  gsoPackets: sumQueues(s, (q) => q.tun.gsoPackets),
  gsoSegments: sumQueues(s, (q) => q.tun.gsoSegments),
});

describe('run options: offload', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'l3dsr-offload-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const config = (text: string) => {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.conf`);
    writeFileSync(file, text);
    return file;
  };

  it('defaults to auto; --offload is yes, --no-offload is no', async () => {
    assert.equal((await parseRunOptions(RULE)).offload, 'auto');
    assert.equal((await parseRunOptions([...RULE, '--offload'])).offload, 'yes');
    assert.equal((await parseRunOptions([...RULE, '--no-offload'])).offload, 'no');
  });

  it('refuses --offload together with --no-offload', async () => {
    await assert.rejects(parseRunOptions([...RULE, '--offload', '--no-offload']), (e: Error) => isL3dsrError(e, 'ERR_L3DSR_USAGE') && /--offload and --no-offload/.test(e.message));
  });

  it('takes offload = auto|yes|no from [daemon]; a flag wins over the file', async () => {
    for (const v of ['auto', 'yes', 'no'] as const) {
      assert.equal((await parseRunOptions([...RULE, '--config', config(`[daemon]\noffload = ${v}\n`)])).offload, v);
    }
    assert.equal((await parseRunOptions([...RULE, '--no-offload', '--config', config('[daemon]\noffload = yes\n')])).offload, 'no');
  });

  it('names the file, line and key for a bad value', async () => {
    const file = config('[daemon]\n\noffload = maybe\n');
    await assert.rejects(parseRunOptions([...RULE, '--config', file]), (e: Error) =>
      e instanceof ConfigError && e.message.includes(`${file}:3`) && /offload: expected one of auto, yes, no, got "maybe"/.test(e.message));
  });
});

describe('l3dsr run in the lab with TUN offload', privileged('runs the daemon in the three-namespace lab'), () => {
  let lab: Lab;
  let bulk: BulkService;
  let vips: readonly LabVip[];
  const perFamily = () => [4, 6].map((f) => vips.find((v) => v.family === f)!.address);

  before(async () => {
    requireLabRoot();
    // The VIPs stay on srv's lo across the daemons of this file, so the service keeps listening.
    lab = await Lab.create({ vipsOnLoopback: true });
    vips = lab.vips;
    bulk = await startBulkService(lab, vips.map((v) => v.address));
  });
  after(async () => {
    await bulk?.stop();
    await lab?.destroy();
  });

  describe('offload auto (the default), 1 queue', () => {
    let daemon: LabDaemon;
    before(async () => { daemon = await LabDaemon.start(lab, daemonArgs({ vips, loopbackVips: false })); });
    after(async () => { if (daemon?.running) await daemon.stop(); });

    it('logs which offloads the kernel granted, with the header size and the slot size', async () => {
      const line = await daemon.waitForLine(/TUN offloads granted/, 1000);
      assert.match(line, /offload=auto granted=csum,tso4,tso6\b/);
      assert.match(line, /vnet_header=10 slot_size=65600\b/);
      const s = await daemon.status();
      assert.deepEqual(s.queues[0]!.offloads?.slice(0, 3), ['csum', 'tso4', 'tso6']);
    });

    it('keeps the TUN\'s MTU at that of the links', async () => {
      const [tun] = await ipJson<Array<{ mtu: number }>>(['link', 'show', 'dev', 'dsr0'], lab.where('srv'));
      assert.equal(tun!.mtu, LINK_MTU);
    });

    for (const family of [4, 6] as const) {
      it(`IPv${family}: 8 MiB up and down arrive intact; most of the upload came in GSO super-packets`, async () => {
        const vip = perFamily()[family === 4 ? 0 : 1]!;
        const before = tunTotals(await daemon.status());
        assertIntact(await transfer(lab, { address: vip, op: 'upload', bytes: TRANSFER_BYTES }), TRANSFER_BYTES, `upload to ${vip}`);
        const after = tunTotals(await daemon.status());
        const reads = after.reads - before.reads;
        const packets = after.gsoPackets - before.gsoPackets;
        assert.ok(packets > 0n, 'no super-packet');
        // A read that is not a super-packet carries at most one MSS, so these reads together carried less than half the data.
        assert.ok(2n * (reads - packets) * MAX_MSS < BigInt(TRANSFER_BYTES), `${packets} super-packets in ${reads} reads`);
        assert.ok(after.gsoSegments - before.gsoSegments > 2n * packets, 'super-packets of two segments or fewer');
        assertIntact(await transfer(lab, { address: vip, op: 'download', bytes: TRANSFER_BYTES }), TRANSFER_BYTES, `download from ${vip}`);
      });
    }

    it('/metrics has super-packets and segments per queue, as /status counts them; nothing dropped', async () => {
      const s = await daemon.status();
      const m = await daemon.metrics();
      const q = s.queues[0]!;
      assert.equal(metric(m, 'l3dsr_tun_gso_packets_total', { queue: '0' }), Number(q.tun.gsoPackets));
      assert.equal(metric(m, 'l3dsr_tun_gso_segments_total', { queue: '0' }), Number(q.tun.gsoSegments));
      assert.ok(Number(q.tun.gsoSegments) > Number(q.tun.gsoPackets));
      assert.equal(sumQueues(s, (x) => x.counters.verdicts.dropped), 0n);
      assert.equal(sumQueues(s, (x) => x.tun.packetsWritten), sumQueues(s, (x) => x.tun.packetsRead));
    });
  });

  describe('--no-offload', () => {
    let daemon: LabDaemon;
    before(async () => { daemon = await LabDaemon.start(lab, daemonArgs({ vips, loopbackVips: false, extra: ['--no-offload'] })); });
    after(async () => { if (daemon?.running) await daemon.stop(); });

    it('says offload is off; no virtio-net header, no super-packets, transfers intact', async () => {
      assert.match(await daemon.waitForLine(/TUN offloads off/, 1000), /offload=no/);
      for (const vip of perFamily()) {
        assertIntact(await transfer(lab, { address: vip, op: 'upload', bytes: TRANSFER_BYTES }), TRANSFER_BYTES, `upload to ${vip}`);
      }
      const s = await daemon.status();
      assert.equal(s.queues[0]!.offloads, null);
      const t = tunTotals(s);
      assert.equal(t.gsoPackets, 0n);
      // Every segment was read on its own: at least one read per MSS of data.
      assert.ok(t.reads * MAX_MSS >= BigInt(2 * TRANSFER_BYTES), `${t.reads} reads for ${2 * TRANSFER_BYTES} bytes`);
      assert.equal(metric(await daemon.metrics(), 'l3dsr_tun_gso_packets_total', { queue: '0' }), 0);
    });
  });

  describe('--offload, 2 queues', () => {
    let daemon: LabDaemon;
    before(async () => { daemon = await LabDaemon.start(lab, daemonArgs({ vips, loopbackVips: false, queues: 2, extra: ['--offload'] })); });
    after(async () => { if (daemon?.running) await daemon.stop(); });

    it(`${PARALLEL_FLOWS} parallel uploads (IPv4 and IPv6) arrive intact, spread over both queues, each reading super-packets`, async () => {
      const runs = Array.from({ length: PARALLEL_FLOWS }, (_, i) => perFamily()[i % 2]!)
        .map((address) => ({ address, run: startTransfer(lab, { address, op: 'upload', bytes: PARALLEL_BYTES }) }));
      for (const r of runs) assertIntact(await r.run.result, PARALLEL_BYTES, `upload to ${r.address}`);
      const s = await daemon.status();
      assert.equal(s.queues.length, 2);
      for (const q of s.queues) {
        assert.deepEqual(q.offloads, s.queues[0]!.offloads, 'offloads belong to the device: every queue reports the same');
        assert.ok(Number(q.tun.packetsRead) > 0, `queue ${q.queue} read nothing: the kernel put all ${PARALLEL_FLOWS} flows on one queue`);
        assert.ok(Number(q.tun.gsoPackets) > 0, `queue ${q.queue} read no super-packet`);
      }
      const m = await daemon.metrics();
      for (const q of s.queues) assert.equal(metric(m, 'l3dsr_tun_gso_packets_total', { queue: String(q.queue) }), Number(q.tun.gsoPackets));
      assert.equal(sumQueues(s, (x) => x.counters.verdicts.dropped), 0n);
    });
  });

  it('offload = no in the config file: the daemon runs without the header', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l3dsr-offload-'));
    const file = join(dir, 'l3dsr.conf');
    writeFileSync(file, '[daemon]\noffload = no\n');
    const daemon = await LabDaemon.start(lab, daemonArgs({ vips, loopbackVips: false, config: file }));
    try {
      assert.equal((await daemon.status()).queues[0]!.offloads, null);
      assertIntact(await transfer(lab, { address: perFamily()[0]!, op: 'upload', bytes: MIB }), MIB, 'upload');
    } finally {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
