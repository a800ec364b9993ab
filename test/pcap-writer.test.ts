// The classic pcap writer: exact bytes, precision choice, streaming with
// back-pressure, the errors it refuses to paper over, and files that tshark
// and tcpdump read without complaint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapWriter, classicOptionsFor, precisionFor } from '../src/pcap/writer.js';
import { openCapture } from '../src/pcap/reader.js';
import { PcapError } from '../src/pcap/errors.js';
import type { WritableRecord } from '../src/pcap/record.js';
import { buildPacket, ethernetFrame, tcp, udp } from '../tools/packets/build.js';
import { PROTO } from '../tools/packets/layout.js';
import { ByteBuilder, pattern } from './support/pcap-bytes.js';
import { epochText, mustRun, toHex, tsharkFrames } from './support/pcap-tools.js';
import { tools } from './support/privilege.js';

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l3dsr-pcapw-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function frames(n: number): WritableRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const v4 = i % 2 === 0;
    const l3 = buildPacket({
      src: v4 ? '192.0.2.1' : '2001:db8::1', dst: v4 ? '198.51.100.2' : '2001:db8::2', id: i,
      ...(i % 3 === 0 ? { protocol: PROTO.UDP, transport: udp(pattern(i * 11, i)) } : { protocol: PROTO.TCP, transport: tcp(pattern(i * 11, i)) }),
    });
    const data = ethernetFrame(l3, v4 ? 4 : 6);
    return { linkType: 1, tsSec: 1_700_000_000 + i, tsFrac: i * 1000 + 7, tsResolution: 1e6, originalLength: data.length, data };
  });
}

test('the file is exactly header + record headers + the bytes given (micro- and nanosecond magic)', withDir(async (dir) => {
  for (const precision of ['us', 'ns'] as const) {
    const path = join(dir, `${precision}.pcap`);
    const w = await PcapWriter.create(path, { linkType: 1, precision, snapLength: 65535 });
    const a = pattern(60, 1);
    const b = pattern(33, 2);
    w.write({ linkType: 1, tsSec: 1_700_000_000, tsFrac: 123_456, tsResolution: 1e6, originalLength: 60, data: a });
    w.write({ linkType: 1, tsSec: 1_700_000_001, tsFrac: 999_999_999, tsResolution: 1e9, originalLength: 1500, data: b });
    await w.close();
    const ns = precision === 'ns';
    const expected = new ByteBuilder(true)
      .u32(ns ? 0xa1b23c4d : 0xa1b2c3d4).u16(2).u16(4).u32(0).u32(0).u32(65535).u32(1)
      .u32(1_700_000_000).u32(ns ? 123_456_000 : 123_456).u32(60).u32(60).bytes(a)
      .u32(1_700_000_001).u32(ns ? 999_999_999 : 999_999).u32(33).u32(1500).bytes(b)
      .build();
    assert.deepEqual(new Uint8Array(readFileSync(path)), expected, precision);
    assert.equal(w.recordsWritten, 2);
    assert.equal(w.bytesWritten, expected.length);
  }
}));

test('precision: microseconds when the input is no finer, else nanoseconds', () => {
  assert.equal(precisionFor(1e6), 'us');
  assert.equal(precisionFor(1000), 'us');
  assert.equal(precisionFor(2 ** 10), 'us');
  assert.equal(precisionFor(2 ** 20), 'ns');
  assert.equal(precisionFor(1e9), 'ns');
  const ifaces = [
    { section: 0, id: 0, linkType: 1, snapLength: 1500, tsResolution: 1e6 },
    { section: 0, id: 1, linkType: 1, snapLength: 9000, tsResolution: 1e9 },
    { section: 0, id: 2, linkType: 113, snapLength: 0, tsResolution: 1e6 },
  ];
  assert.deepEqual(classicOptionsFor({ linkType: 1 }, ifaces), { linkType: 1, precision: 'ns', snapLength: 9000 });
  assert.deepEqual(classicOptionsFor({ linkType: 113 }, ifaces.slice(2)), { linkType: 113, precision: 'us', snapLength: 262144 });
  // More interfaces than a call's arguments may number (Math.max(...list) overflowed the stack).
  const many = Array.from({ length: 200_000 }, (_, id) => ({ section: 0, id, linkType: 1, snapLength: 1000 + (id % 7), tsResolution: id === 150_000 ? 1e9 : 1e6 }));
  assert.deepEqual(classicOptionsFor({ linkType: 1 }, many), { linkType: 1, precision: 'ns', snapLength: 1006 });
});

test('many records through a small chunk (back-pressure), including records larger than a chunk, read back identically', withDir(async (dir) => {
  const path = join(dir, 'many.pcap');
  const input = frames(300);
  const w = await PcapWriter.create(path, { linkType: 1, precision: 'us', chunkSize: 256 });
  let drains = 0;
  for (const r of input) {
    w.write(r);
    if (w.needsDrain) {
      drains++;
      await w.drain();
    }
  }
  await w.close();
  assert.ok(drains > 0, 'the queue should have asked for a drain');
  const reader = await openCapture(path);
  let i = 0;
  for await (const r of reader) {
    assert.deepEqual(r.data, input[i].data, `record ${i}`);
    assert.equal(r.tsSec, input[i].tsSec);
    assert.equal(r.tsFrac, input[i].tsFrac);
    i++;
  }
  assert.equal(i, input.length);
}));

test('a record longer than the declared snap length raises it at close, so the file stays valid', withDir(async (dir) => {
  const path = join(dir, 'snap.pcap');
  const w = await PcapWriter.create(path, { linkType: 1, precision: 'us', snapLength: 100 });
  w.write({ linkType: 1, tsSec: 1, tsFrac: 0, tsResolution: 1e6, originalLength: 150, data: pattern(150) });
  await w.close();
  const reader = await openCapture(path);
  assert.equal(reader.interfaces[0].snapLength, 150);
  let n = 0;
  for await (const r of reader) n += r.capturedLength;
  assert.equal(n, 150);
}));

test('a record of another link type, or a timestamp beyond 32 bits, is refused with its position; what was written is flushed', withDir(async (dir) => {
  const path = join(dir, 'mismatch.pcap');
  const w = await PcapWriter.create(path, { linkType: 1, precision: 'us' });
  const good = frames(3);
  for (const r of good) w.write(r);
  assert.throws(
    () => w.write({ ...good[0], linkType: 113, index: 3, offset: 4242 }),
    (err: unknown) =>
      err instanceof PcapError && err.reason === 'LINKTYPE_MISMATCH' && err.record === 3 && err.offset === 4242 &&
      /link type 113 \(LINUX_SLL\).*link type 1 \(ETHERNET\)/.test(err.message),
  );
  assert.throws(() => w.write({ ...good[0], tsSec: 2 ** 32 }), (err: unknown) => err instanceof PcapError && err.reason === 'TIMESTAMP_RANGE');
  assert.throws(() => w.write({ ...good[0], tsSec: -1 }), (err: unknown) => err instanceof PcapError && err.reason === 'TIMESTAMP_RANGE');
  await w.close();
  const back = [];
  for await (const r of await openCapture(path)) back.push(toHex(r.data));
  assert.deepEqual(back, good.map((r) => toHex(r.data)));
  assert.throws(() => w.write(good[0]), (err: unknown) => err instanceof PcapError && err.reason === 'CLOSED');
}));

test('tshark and tcpdump read the output without complaint and see the same packets and times', tools('tshark', 'capinfos', 'tcpdump'), withDir(async (dir) => {
  for (const precision of ['us', 'ns'] as const) {
    const path = join(dir, `tools-${precision}.pcap`);
    const input = frames(40).map((r) => (precision === 'ns' ? { ...r, tsFrac: r.tsFrac * 1000 + 321, tsResolution: 1e9 } : r));
    const w = await PcapWriter.create(path, { linkType: 1, precision });
    for (const r of input) w.write(r);
    await w.close();
    const seen = tsharkFrames(path, ['-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE']);
    assert.equal(seen.length, input.length);
    seen.forEach((f, i) => {
      assert.equal(f.hex, toHex(input[i].data));
      assert.equal(f.epoch, epochText(input[i]));
      assert.equal(f.len, input[i].originalLength);
    });
    const capinfos = mustRun('capinfos', ['-t', '-c', '-i', path]);
    assert.match(capinfos, precision === 'ns' ? /nanosecond pcap/ : /File type:\s+Wireshark\/tcpdump\/\.\.\. - pcap/);
    assert.match(capinfos, /Number of packets:\s+40\b/);
    const tcpdump = mustRun('tcpdump', ['-r', path, '-nn', '-q']);
    assert.equal(tcpdump.trim().split('\n').length, 40);
  }
}));
