// The capture reader against hand-built files: both classic byte orders and
// resolutions, pcapng with several sections and interfaces, and every kind
// of damage, each reported with its byte offset and record index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureReader, openCapture } from '../src/pcap/reader.js';
import { PcapError } from '../src/pcap/errors.js';
import { MAX_FILE_INTERFACES, MAX_SECTION_INTERFACES } from '../src/pcap/pcapng.js';
import type { CaptureRecord } from '../src/pcap/record.js';
import {
  ByteBuilder, CLASSIC_FILE_HEADER_SIZE, block, classicFile, classicRecordOffset, concat, customBlock, epb, idb, isb, nrb,
  pattern, pb, shb, spb, type ClassicRecordSpec,
} from './support/pcap-bytes.js';

interface Plain extends Omit<CaptureRecord, 'data'> {
  data: number[];
}

/** Reads every record, copying the data (views are only valid until the next read). */
async function readAll(from: string | Uint8Array, chunkSize?: number): Promise<Plain[]> {
  const reader = await openCapture(from, { chunkSize });
  const out: Plain[] = [];
  for await (const r of reader) out.push({ ...r, data: [...r.data] });
  return out;
}

/** Reads until the error; returns the records before it and the error. */
async function readUntilError(bytes: Uint8Array, chunkSize?: number): Promise<{ records: Plain[]; error: PcapError }> {
  const records: Plain[] = [];
  try {
    for await (const r of await openCapture(bytes, { chunkSize })) records.push({ ...r, data: [...r.data] });
  } catch (err) {
    assert.ok(err instanceof PcapError, `expected a PcapError, got ${String(err)}`);
    return { records, error: err };
  }
  assert.fail(`expected an error after ${records.length} records`);
}

function assertPosition(error: PcapError, code: string, offset: number, record: number | undefined): void {
  assert.equal(error.reason, code, error.message);
  assert.equal(error.offset, offset, error.message);
  assert.match(error.message, new RegExp(`byte offset ${offset}\\b`));
  assert.equal(error.record, record, error.message);
  if (record !== undefined) assert.match(error.message, new RegExp(`record index ${record}\\b`));
}

const classicRecords: ClassicRecordSpec[] = [
  { sec: 1_700_000_000, frac: 123_456, data: pattern(60, 1) },
  { sec: 1_700_000_001, frac: 999_999, data: pattern(1514, 2), originalLength: 1600 },
  { sec: 1_700_000_002, frac: 0, data: pattern(0, 3) },
  { sec: 0xffffffff, frac: 5, data: pattern(7, 4) },
];

for (const littleEndian of [true, false]) {
  for (const nano of [false, true]) {
    test(`classic pcap, ${littleEndian ? 'little' : 'big'}-endian, ${nano ? 'nano' : 'micro'}seconds`, async () => {
      const records = classicRecords.map((r) => (nano ? { ...r, frac: r.frac * 1000 + 789 } : r));
      const file = classicFile({ littleEndian, nano, linkType: 228, snapLength: 2000, records });
      const got = await readAll(file);
      assert.equal(got.length, records.length);
      got.forEach((r, i) => {
        assert.equal(r.index, i);
        assert.equal(r.offset, classicRecordOffset(records, i));
        assert.equal(r.linkType, 228);
        assert.equal(r.interfaceId, 0);
        assert.equal(r.tsSec, records[i].sec);
        assert.equal(r.tsFrac, records[i].frac);
        assert.equal(r.tsResolution, nano ? 1e9 : 1e6);
        assert.equal(r.capturedLength, records[i].data.length);
        assert.equal(r.originalLength, records[i].originalLength ?? records[i].data.length);
        assert.deepEqual(r.data, [...records[i].data]);
      });
      const reader = await openCapture(file);
      assert.equal(reader.format, 'pcap');
      assert.deepEqual(reader.interfaces, [{ section: 0, id: 0, linkType: 228, snapLength: 2000, tsResolution: nano ? 1e9 : 1e6 }]);
      await reader.close();
    });
  }
}

test('classic pcap: the link type field drops the FCS bits', async () => {
  const file = classicFile({ linkType: 1 | (1 << 28) | (4 << 29), records: [classicRecords[0]] });
  const [r] = await readAll(file);
  assert.equal(r.linkType, 1);
});

test('records that straddle chunks, and records larger than a chunk, read the same as with one big chunk', async () => {
  const records: ClassicRecordSpec[] = Array.from({ length: 50 }, (_, i) => ({ sec: i, frac: i, data: pattern((i * 37) % 300, i) }));
  const file = classicFile({ records });
  const expected = await readAll(file);
  assert.equal(expected.length, 50);
  for (const chunkSize of [16, 17, 64, 100, 333]) {
    assert.deepEqual(await readAll(file, chunkSize), expected, `chunk size ${chunkSize}`);
  }
});

test('nextBatch returns at most the asked number, then null, and data views stay valid within a batch', async () => {
  const records: ClassicRecordSpec[] = Array.from({ length: 10 }, (_, i) => ({ sec: i, frac: 0, data: pattern(40, i) }));
  const reader = await CaptureReader.open(classicFile({ records }), { chunkSize: 128 });
  const seen: number[][] = [];
  for (let batch = await reader.nextBatch(3); batch !== null; batch = await reader.nextBatch(3)) {
    assert.ok(batch.length >= 1 && batch.length <= 3);
    for (const r of batch) seen.push([...r.data]);
  }
  assert.deepEqual(seen, records.map((r) => [...r.data]));
  assert.equal(reader.recordsRead, 10);
  assert.equal(await reader.nextBatch(), null);
  await reader.close();
});

test('a file on disk reads the same as the bytes in memory, and reports size and position', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-pcap-'));
  try {
    const file = classicFile({ records: classicRecords, snapLength: 2000 });
    const path = join(dir, 'in.pcap');
    writeFileSync(path, file);
    assert.deepEqual(await readAll(path), await readAll(file));
    const reader = await openCapture(path);
    assert.equal(reader.size, file.length);
    while ((await reader.nextBatch()) !== null);
    assert.equal(reader.position, file.length);
    await reader.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- pcapng ----

const NS = 9; // if_tsresol 10^-9
const BINARY_1024 = 0x80 | 10; // if_tsresol 2^-10

function twoSectionFile(): { bytes: Uint8Array; blocks: Uint8Array[] } {
  const nsTimestamp = 1_700_000_000_123_456_789n; // > 2^53: needs exact 64-bit division
  const blocks = [
    shb(true),
    idb({ linkType: 1, snapLength: 262144 }),
    idb({ linkType: 101, snapLength: 1500, tsresol: NS }),
    nrb(),
    epb({ iface: 0, ts: 1_700_000_000_654_321n, data: pattern(60, 1) }),
    isb(),
    customBlock(),
    block(0x12345678, Uint8Array.of(1, 2, 3)), // unknown block type
    epb({ iface: 1, ts: nsTimestamp, data: pattern(41, 2), originalLength: 1400, withComment: true }),
    spb(pattern(64, 3)),
    pb({ iface: 1, ts: nsTimestamp + 1n, data: pattern(33, 4) }),
    // Second section, big-endian: interface ids restart at 0.
    shb(false),
    idb({ linkType: 276, snapLength: 128, tsresol: BINARY_1024, tsoffset: 100n }, false),
    epb({ iface: 0, ts: (5n << 10n) + 512n, data: pattern(50, 5) }, false),
  ];
  return { bytes: concat(...blocks), blocks };
}

function blockOffset(blocks: Uint8Array[], i: number): number {
  return blocks.slice(0, i).reduce((n, b) => n + b.length, 0);
}

test('pcapng: two sections of opposite byte order, interfaces with their own link types and timestamp units', async () => {
  const { bytes, blocks } = twoSectionFile();
  const got = await readAll(bytes);
  const expected = [
    { block: 4, linkType: 1, interfaceId: 0, tsSec: 1_700_000_000, tsFrac: 654_321, tsResolution: 1e6, data: pattern(60, 1), orig: 60 },
    { block: 8, linkType: 101, interfaceId: 1, tsSec: 1_700_000_000, tsFrac: 123_456_789, tsResolution: 1e9, data: pattern(41, 2), orig: 1400 },
    // Simple Packet Block: interface 0, no timestamp.
    { block: 9, linkType: 1, interfaceId: 0, tsSec: 0, tsFrac: 0, tsResolution: 1e6, data: pattern(64, 3), orig: 64 },
    { block: 10, linkType: 101, interfaceId: 1, tsSec: 1_700_000_000, tsFrac: 123_456_790, tsResolution: 1e9, data: pattern(33, 4), orig: 33 },
    // 2^-10 s units, plus if_tsoffset 100 s.
    { block: 13, linkType: 276, interfaceId: 0, tsSec: 105, tsFrac: 512, tsResolution: 1024, data: pattern(50, 5), orig: 50 },
  ];
  assert.equal(got.length, expected.length);
  got.forEach((r, i) => {
    const e = expected[i];
    assert.equal(r.index, i);
    assert.equal(r.offset, blockOffset(blocks, e.block), `record ${i} offset`);
    assert.equal(r.linkType, e.linkType);
    assert.equal(r.interfaceId, e.interfaceId);
    assert.equal(r.tsSec, e.tsSec, `record ${i} seconds`);
    assert.equal(r.tsFrac, e.tsFrac, `record ${i} fraction`);
    assert.equal(r.tsResolution, e.tsResolution);
    assert.equal(r.originalLength, e.orig);
    assert.deepEqual(r.data, [...e.data]);
  });
  const reader = await openCapture(bytes);
  assert.equal(reader.format, 'pcapng');
  while ((await reader.nextBatch()) !== null);
  assert.deepEqual(
    reader.interfaces.map((i) => [i.section, i.id, i.linkType, i.snapLength, i.tsResolution]),
    [[0, 0, 1, 262144, 1e6], [0, 1, 101, 1500, 1e9], [1, 0, 276, 128, 1024]],
  );
  await reader.close();
});

test('pcapng: the same file read through tiny chunks gives the same records', async () => {
  const { bytes } = twoSectionFile();
  const expected = await readAll(bytes);
  for (const chunkSize of [12, 13, 50]) assert.deepEqual(await readAll(bytes, chunkSize), expected);
});

test('pcapng: a Simple Packet Block is cut at interface 0\'s snap length', async () => {
  const bytes = concat(shb(), idb({ linkType: 1, snapLength: 20 }), spb(pattern(20, 1), 1500));
  const [r] = await readAll(bytes);
  assert.equal(r.capturedLength, 20);
  assert.equal(r.originalLength, 1500);
});

// ---- damage ----

test('errors: empty file, unknown magic, truncated file header, bad version', async () => {
  assertPosition((await readUntilError(new Uint8Array(0))).error, 'TRUNCATED', 0, undefined);
  const notPcap = new TextEncoder().encode('GIF89a, certainly not a capture');
  const bad = (await readUntilError(notPcap)).error;
  assertPosition(bad, 'BAD_MAGIC', 0, undefined);
  assert.match(bad.message, /47494638/);
  const header = classicFile({ records: [] }).subarray(0, 20);
  assertPosition((await readUntilError(header)).error, 'TRUNCATED', 0, undefined);
  const v3 = classicFile({ versionMajor: 3, records: [] });
  assertPosition((await readUntilError(v3)).error, 'BAD_VERSION', 4, undefined);
});

for (const littleEndian of [true, false]) {
  const order = littleEndian ? 'little' : 'big';
  test(`errors (${order}-endian classic): truncated record header and data come after the good records`, async () => {
    const file = classicFile({ littleEndian, records: classicRecords.slice(0, 2), snapLength: 2000 });
    const third = file.length;
    const withPartialHeader = concat(file, new Uint8Array(10));
    const a = await readUntilError(withPartialHeader, 64);
    assert.equal(a.records.length, 2);
    assertPosition(a.error, 'TRUNCATED', third, 2);
    assert.match(a.error.message, /record header/);

    const partialData = concat(file, new ByteBuilder(littleEndian).u32(1).u32(2).u32(100).u32(100).bytes(pattern(30)).build());
    const b = await readUntilError(partialData);
    assert.equal(b.records.length, 2);
    assertPosition(b.error, 'TRUNCATED', third, 2);
    assert.match(b.error.message, /record's data: 116 bytes needed, 46 present/);
  });

  test(`errors (${order}-endian classic): captured length over the snap length, and absurd`, async () => {
    const records = [
      { sec: 1, frac: 0, data: pattern(64) },
      { sec: 2, frac: 0, data: pattern(65) },
    ];
    const over = await readUntilError(classicFile({ littleEndian, snapLength: 64, records }));
    assert.equal(over.records.length, 1);
    assertPosition(over.error, 'SNAPLEN_EXCEEDED', classicRecordOffset(records, 1), 1);
    assert.match(over.error.message, /captured length 65 exceeds the file's snap length 64/);

    const absurd = classicFile({ littleEndian, snapLength: 0, records: [{ sec: 1, frac: 0, data: pattern(4), capturedLength: 0x7fffffff }] });
    assertPosition((await readUntilError(absurd)).error, 'RECORD_TOO_LARGE', CLASSIC_FILE_HEADER_SIZE, 0);
  });
}

test('errors (pcapng): block lengths too small, unaligned, absurd, or disagreeing with the trailer', async () => {
  const head = concat(shb(), idb({ linkType: 1 }), epb({ iface: 0, ts: 1n, data: pattern(20) }));
  const at = head.length;
  const cases: [string, Uint8Array][] = [
    ['too small', block(6, pattern(8), true, { start: 8 })],
    ['unaligned', new ByteBuilder().u32(6).u32(33).bytes(pattern(32)).build()],
    ['absurd', new ByteBuilder().u32(6).u32(0x7ffffff0).bytes(pattern(32)).build()],
    ['trailer', block(6, new ByteBuilder().u32(0).u32(0).u32(0).u32(4).u32(4).bytes(pattern(4)).build(), true, { end: 44 })],
    ['EPB below minimum', block(6, pattern(8))],
  ];
  for (const [what, bad] of cases) {
    const { records, error } = await readUntilError(concat(head, bad, epb({ iface: 0, ts: 2n, data: pattern(20) })));
    assert.equal(records.length, 1, what);
    assertPosition(error, 'BAD_BLOCK_LENGTH', at, 1);
  }
});

test('errors (pcapng): captured length beyond the block, over the snap length, unknown interface', async () => {
  const head = concat(shb(false), idb({ linkType: 1, snapLength: 100 }, false));
  const good = epb({ iface: 0, ts: 1n, data: pattern(20) }, false);
  const at = head.length + good.length;
  const beyond = epb({ iface: 0, ts: 1n, data: pattern(20), capturedLength: 200 }, false);
  const e1 = await readUntilError(concat(head, good, beyond));
  assertPosition(e1.error, 'BAD_BLOCK_LENGTH', at, 1);
  assert.match(e1.error.message, /captured length 200 does not fit/);

  const overSnap = epb({ iface: 0, ts: 1n, data: pattern(101) }, false);
  assertPosition((await readUntilError(concat(head, good, overSnap))).error, 'SNAPLEN_EXCEEDED', at, 1);

  const noSuch = epb({ iface: 3, ts: 1n, data: pattern(20) }, false);
  const e3 = await readUntilError(concat(head, good, noSuch));
  assertPosition(e3.error, 'UNKNOWN_INTERFACE', at, 1);
  assert.match(e3.error.message, /interface 3/);

  // Interfaces belong to their section: after a new SHB, interface 0 is gone.
  const e4 = await readUntilError(concat(head, good, shb(), epb({ iface: 0, ts: 1n, data: pattern(20) })));
  assertPosition(e4.error, 'UNKNOWN_INTERFACE', at + shb().length, 1);
});

/** `bytes` n times over, back to back. */
function repeated(bytes: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(bytes.length * n);
  for (let i = 0; i < n; i++) out.set(bytes, i * bytes.length);
  return out;
}

test('errors (pcapng): more interfaces than the cap in a section, or in the whole file, stop at the IDB past it', async () => {
  const one = idb({ linkType: 1 });
  const packet = (iface: number) => epb({ iface, ts: 1n, data: pattern(20) });
  // Exactly the cap: read, and a packet names the last interface.
  const full = await readAll(concat(shb(), repeated(one, MAX_SECTION_INTERFACES), packet(MAX_SECTION_INTERFACES - 1)));
  assert.deepEqual(full.map((r) => r.interfaceId), [MAX_SECTION_INTERFACES - 1]);

  const over = await readUntilError(concat(shb(), repeated(one, MAX_SECTION_INTERFACES + 1), packet(0)));
  assert.equal(over.records.length, 0);
  assertPosition(over.error, 'TOO_MANY_INTERFACES', shb().length + MAX_SECTION_INTERFACES * one.length, 0);
  assert.match(over.error.message, new RegExp(`section 0 declares more than ${MAX_SECTION_INTERFACES} interfaces`));

  // Sections each under the cap still add up: the file as a whole is bounded too.
  const perSection = MAX_FILE_INTERFACES / 2;
  const section = concat(shb(), repeated(one, perSection), packet(0));
  const many = await readUntilError(concat(section, section, section));
  assert.equal(many.records.length, 2);
  assertPosition(many.error, 'TOO_MANY_INTERFACES', 2 * section.length + shb().length, 2);
  assert.match(many.error.message, new RegExp(`the file declares more than ${MAX_FILE_INTERFACES} interfaces over its 3 sections`));
});

test('errors (pcapng): truncated block, bad byte-order magic, bad version, option overrunning its block', async () => {
  const head = concat(shb(), idb({ linkType: 1 }));
  const packet = epb({ iface: 0, ts: 1n, data: pattern(40) });
  const t = await readUntilError(concat(head, packet, packet.subarray(0, 30)), 32);
  assert.equal(t.records.length, 1);
  assertPosition(t.error, 'TRUNCATED', head.length + packet.length, 1);
  const t2 = await readUntilError(concat(head, packet.subarray(0, 6)));
  assertPosition(t2.error, 'TRUNCATED', head.length, 0);
  assert.match(t2.error.message, /block header/);

  assertPosition((await readUntilError(shb(true, { byteOrderMagic: 0x11223344 }))).error, 'BAD_MAGIC', 0, 0);
  assertPosition((await readUntilError(concat(head, shb(true, { versionMajor: 2 })))).error, 'BAD_VERSION', head.length, 0);

  const badOption = idb({ linkType: 1, extraOptions: [{ code: 2, value: pattern(8) }] });
  // Make the option claim 200 bytes.
  const view = new DataView(badOption.buffer, badOption.byteOffset);
  view.setUint16(16 + 2, 200, true);
  const e = await readUntilError(concat(shb(), badOption));
  assert.equal(e.error.reason, 'BAD_OPTION');
  assert.equal(e.error.offset, shb().length + 16);
});

test('an error is thrown once; the reader then reports the end', async () => {
  const file = concat(classicFile({ records: classicRecords.slice(0, 1) }), new Uint8Array(3));
  const reader = await openCapture(file);
  assert.equal((await reader.nextBatch())?.length, 1);
  await assert.rejects(reader.nextBatch(), (err: unknown) => err instanceof PcapError && err.reason === 'TRUNCATED');
  assert.equal(await reader.nextBatch(), null);
  await reader.close();
  await assert.rejects(reader.nextBatch(), (err: unknown) => err instanceof PcapError && err.reason === 'CLOSED');
});
