// Streaming classic pcap writer. Records are copied into a chunk buffer and
// written a chunk at a time in the background while the next chunk fills;
// the caller awaits drain() when `needsDrain` says the queue is long, which
// keeps memory bounded without an await per record.
//
// The output is always little-endian, with the nanosecond magic when asked
// for nanosecond precision. Link-layer bytes are written exactly as given.
import { open, type FileHandle } from 'node:fs/promises';
import { PcapError } from './errors.js';
import { FILE_HEADER, MAGIC_MICRO, MAGIC_NANO, PCAP_VERSION_MAJOR, PCAP_VERSION_MINOR, RECORD_HEADER } from './classic.js';
import { linkTypeName } from './linklayer.js';
import { MAX_RECORD_LENGTH, MICROSECONDS, NANOSECONDS, type CaptureInterface, type WritableRecord } from './record.js';
import { convertFraction } from './timestamp.js';

export type TimestampPrecision = 'us' | 'ns';

export interface WriterOptions {
  linkType: number;
  precision: TimestampPrecision;
  /** Snap length for the file header; raised at close() if a record was longer. Default 262144. */
  snapLength?: number;
  /** Bytes per write system call. Default 1 MiB. */
  chunkSize?: number;
}

/** libpcap's default and largest ordinary snap length. */
export const DEFAULT_SNAP_LENGTH = 262144;
export const DEFAULT_WRITE_CHUNK_SIZE = 1024 * 1024;
const MAX_CLASSIC_SECONDS = 2 ** 32;
/** Chunks waiting to be written beyond which the caller should await drain(). */
const DRAIN_THRESHOLD = 2;

/** Microseconds if the input unit is no finer, else nanoseconds (the finest classic pcap has). */
export function precisionFor(tsResolution: number): TimestampPrecision {
  return tsResolution <= MICROSECONDS ? 'us' : 'ns';
}

/**
 * Writer options that keep a capture's link type and timestamp precision.
 * `interfaces` are the reader's interfaces known at the first record; the
 * link type is that record's (a later record on an interface of another link
 * type makes write() fail with LINKTYPE_MISMATCH).
 */
export function classicOptionsFor(first: { linkType: number }, interfaces: readonly CaptureInterface[]): WriterOptions {
  // Loops, not Math.max(...list): a pcapng file may declare tens of thousands of interfaces.
  let finest = MICROSECONDS;
  let snapLength = 0;
  let unlimited = false;
  for (const i of interfaces) {
    finest = Math.max(finest, i.tsResolution);
    if (i.linkType !== first.linkType) continue;
    // pcapng's snap length 0 means "no limit": fall back to the classic default.
    if (i.snapLength === 0) unlimited = true;
    snapLength = Math.max(snapLength, i.snapLength);
  }
  return { linkType: first.linkType, precision: precisionFor(finest), snapLength: snapLength === 0 || unlimited ? DEFAULT_SNAP_LENGTH : snapLength };
}

interface Chunk {
  bytes: Uint8Array;
  view: DataView;
}

export class PcapWriter {
  readonly path: string;
  readonly linkType: number;
  readonly precision: TimestampPrecision;
  private readonly unitsPerSec: number;
  private readonly chunkSize: number;
  private readonly snapLength: number;
  private maxCaptured = 0;
  private chunk: Chunk;
  private used = 0;
  private readonly queue: Uint8Array[] = [];
  private readonly spare: Chunk[] = [];
  private pumping: Promise<void> | null = null;
  private failure: unknown = undefined;
  private closed = false;
  recordsWritten = 0;
  /** Bytes handed to the file so far, header included. */
  bytesWritten = 0;

  private constructor(
    private readonly handle: FileHandle,
    path: string,
    options: WriterOptions,
  ) {
    this.path = path;
    this.linkType = options.linkType;
    this.precision = options.precision;
    this.unitsPerSec = options.precision === 'ns' ? NANOSECONDS : MICROSECONDS;
    this.chunkSize = Math.max(options.chunkSize ?? DEFAULT_WRITE_CHUNK_SIZE, FILE_HEADER.SIZE);
    this.snapLength = options.snapLength ?? DEFAULT_SNAP_LENGTH;
    this.chunk = newChunk(this.chunkSize);
    this.writeFileHeader(this.snapLength);
  }

  /** Creates (or truncates) `path` and buffers the file header. */
  static async create(path: string, options: WriterOptions): Promise<PcapWriter> {
    return new PcapWriter(await open(path, 'w'), path, options);
  }

  /** True when enough is queued that the caller should `await drain()` before writing more. */
  get needsDrain(): boolean {
    return this.queue.length >= DRAIN_THRESHOLD;
  }

  /**
   * Buffers one record. Synchronous: the bytes are copied, so `record.data`
   * may be reused as soon as this returns. Throws LINKTYPE_MISMATCH or
   * TIMESTAMP_RANGE (nothing of that record is written), or an earlier
   * background write's error.
   */
  write(record: WritableRecord): void {
    this.check();
    if (record.linkType !== this.linkType) {
      throw new PcapError(
        'LINKTYPE_MISMATCH',
        `record on link type ${record.linkType} (${linkTypeName(record.linkType)}) cannot go into a classic pcap of link type ${this.linkType} ` +
          `(${linkTypeName(this.linkType)}): a classic pcap holds one link type; split the pcapng input by interface first`,
        { offset: record.offset, record: record.index },
      );
    }
    const { tsSec } = record;
    if (!(tsSec >= 0 && tsSec < MAX_CLASSIC_SECONDS)) {
      throw new PcapError('TIMESTAMP_RANGE', `timestamp ${tsSec} s does not fit a classic pcap record (0 to 2^32-1 s)`, {
        offset: record.offset,
        record: record.index,
      });
    }
    const data = record.data;
    const captured = data.length;
    const total = RECORD_HEADER.SIZE + captured;
    if (this.used + total > this.chunkSize) this.submit(total);
    const { bytes, view } = this.chunk;
    const at = this.used;
    view.setUint32(at + RECORD_HEADER.TS_SEC, tsSec, true);
    view.setUint32(at + RECORD_HEADER.TS_FRAC, convertFraction(record.tsFrac, record.tsResolution, this.unitsPerSec), true);
    view.setUint32(at + RECORD_HEADER.CAPTURED_LENGTH, captured, true);
    // A wire length below the captured length is corrupt (libpcap refuses it); the captured length is the honest floor.
    view.setUint32(at + RECORD_HEADER.ORIGINAL_LENGTH, Math.max(record.originalLength, captured), true);
    bytes.set(data, at + RECORD_HEADER.SIZE);
    this.used += total;
    if (captured > this.maxCaptured) this.maxCaptured = captured;
    this.recordsWritten += 1;
  }

  /** Waits until everything submitted so far is written. */
  async drain(): Promise<void> {
    while (this.pumping !== null) await this.pumping;
    this.check();
  }

  /**
   * Writes out everything buffered and closes the file. Call it on the error
   * path too: the records written before the error end up in the file. Fixes
   * the header's snap length if a record was longer than declared.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.failure === undefined && this.used > 0) this.submit(0);
      await this.drain();
      if (this.maxCaptured > this.snapLength) {
        const field = new DataView(new ArrayBuffer(4));
        field.setUint32(0, this.maxCaptured, true);
        await this.handle.write(new Uint8Array(field.buffer), 0, 4, FILE_HEADER.SNAPLEN);
      }
    } finally {
      this.closed = true;
      await this.handle.close();
    }
  }

  private check(): void {
    if (this.closed) throw new PcapError('CLOSED', 'pcap writer used after close()', { file: this.path });
    if (this.failure !== undefined) throw this.failure;
  }

  private writeFileHeader(snapLength: number): void {
    const { view } = this.chunk;
    view.setUint32(FILE_HEADER.MAGIC, this.precision === 'ns' ? MAGIC_NANO : MAGIC_MICRO, true);
    view.setUint16(FILE_HEADER.VERSION_MAJOR, PCAP_VERSION_MAJOR, true);
    view.setUint16(FILE_HEADER.VERSION_MINOR, PCAP_VERSION_MINOR, true);
    view.setInt32(FILE_HEADER.THISZONE, 0, true);
    view.setUint32(FILE_HEADER.SIGFIGS, 0, true);
    view.setUint32(FILE_HEADER.SNAPLEN, Math.min(snapLength, MAX_RECORD_LENGTH), true);
    view.setUint32(FILE_HEADER.LINKTYPE, this.linkType, true);
    this.used = FILE_HEADER.SIZE;
  }

  /** Queues the current chunk for writing and provides one with room for `need` bytes. */
  private submit(need: number): void {
    if (this.used > 0) this.queue.push(this.chunk.bytes.subarray(0, this.used));
    this.used = 0;
    this.chunk = need > this.chunkSize ? newChunk(need) : (this.spare.pop() ?? newChunk(this.chunkSize));
    this.pumping ??= this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
        let done = 0;
        while (done < next.length) {
          const { bytesWritten } = await this.handle.write(next, done, next.length - done);
          done += bytesWritten;
        }
        this.bytesWritten += next.length;
        if (next.buffer.byteLength === this.chunkSize) this.spare.push(chunkOf(next));
      }
    } catch (err) {
      this.failure = err;
      this.queue.length = 0;
    } finally {
      this.pumping = null;
    }
  }
}

function newChunk(size: number): Chunk {
  const bytes = new Uint8Array(size);
  return { bytes, view: new DataView(bytes.buffer) };
}

function chunkOf(written: Uint8Array): Chunk {
  const bytes = new Uint8Array(written.buffer);
  return { bytes, view: new DataView(bytes.buffer) };
}
