// Streaming capture reader: classic pcap (both byte orders, µs and ns) and
// pcapng, told apart by the first four bytes. Memory stays constant whatever
// the file size: records are parsed in place in a chunk-sized window.
//
//   const reader = await CaptureReader.open('in.pcap');
//   for await (const record of reader) { ... }          // simple
//   for (let b; (b = await reader.nextBatch()); ) { ... } // fast: one await per batch
import { PcapError } from './errors.js';
import { ChunkedInput, DEFAULT_CHUNK_SIZE, fileSource, memorySource, type ByteSource } from './chunked-input.js';
import { ClassicParser, FILE_HEADER, isClassicMagic } from './classic.js';
import { PcapngParser, isPcapngMagic } from './pcapng.js';
import type { CaptureInterface, CaptureRecord } from './record.js';

export type CaptureFormat = 'pcap' | 'pcapng';

export interface ReaderOptions {
  /** Bytes read per system call; the window also holds one whole record. Default 1 MiB. */
  chunkSize?: number;
  /** Name used in error messages when reading from memory. */
  name?: string;
}

/** Records per nextBatch() call unless asked otherwise. */
export const DEFAULT_BATCH_SIZE = 256;

const MAGIC_SIZE = 4;

interface FormatParser {
  readonly format: CaptureFormat;
  nextIndex: number;
  parse(input: ChunkedInput, out: CaptureRecord[], max: number): number;
  truncated(input: ChunkedInput, need: number): PcapError;
  interfaces(): CaptureInterface[];
}

export class CaptureReader implements AsyncIterable<CaptureRecord> {
  private pendingError: unknown = undefined;
  private finished = false;
  private closed = false;

  private constructor(
    private readonly input: ChunkedInput,
    private readonly parser: FormatParser,
  ) {}

  /** Opens a capture file (or bytes in memory) and reads its header. */
  static async open(from: string | Uint8Array, options: ReaderOptions = {}): Promise<CaptureReader> {
    const source: ByteSource = typeof from === 'string' ? await fileSource(from) : memorySource(from, options.name);
    try {
      const input = new ChunkedInput(source, options.chunkSize ?? DEFAULT_CHUNK_SIZE);
      return new CaptureReader(input, await detectFormat(input));
    } catch (err) {
      await source.close();
      throw err;
    }
  }

  get format(): CaptureFormat {
    return this.parser.format;
  }

  get name(): string {
    return this.input.source.name;
  }

  /** File size in bytes, when the input is a regular file. */
  get size(): number | undefined {
    return this.input.source.size;
  }

  /** File offset up to which records have been handed out (for progress). */
  get position(): number {
    return this.input.offset;
  }

  /** Index the next record will have = records handed out so far. */
  get recordsRead(): number {
    return this.parser.nextIndex;
  }

  /**
   * The interfaces declared so far: the one of a classic file, or every pcapng
   * IDB read up to now (pcapng declares interfaces before their packets, so
   * after the first record this holds at least the first section's).
   */
  get interfaces(): readonly CaptureInterface[] {
    return this.parser.interfaces();
  }

  /**
   * Up to `max` records, or null at the end of the file. Their `data` views
   * stay valid until the next call. A corrupt or truncated file throws a
   * PcapError — after the records before the fault have been returned, so a
   * consumer can write everything good and then report the error.
   */
  async nextBatch(max = DEFAULT_BATCH_SIZE): Promise<CaptureRecord[] | null> {
    if (this.closed) throw new PcapError('CLOSED', 'capture reader used after close()', { file: this.name });
    if (this.pendingError !== undefined) {
      const err = this.pendingError;
      this.pendingError = undefined;
      this.finished = true;
      throw err;
    }
    if (this.finished) return null;
    const out: CaptureRecord[] = [];
    for (;;) {
      let need: number;
      try {
        need = this.parser.parse(this.input, out, max);
      } catch (err) {
        if (out.length === 0) {
          this.finished = true;
          throw err;
        }
        this.pendingError = err;
        return out;
      }
      if (need === 0 || out.length > 0) return out;
      // Nothing parsed and the window is short: refilling may move the bytes,
      // which is safe only now that no view into them has been handed out.
      if (!(await this.input.fill(need))) {
        this.finished = true;
        if (this.input.available === 0) return null;
        throw this.parser.truncated(this.input, need);
      }
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<CaptureRecord> {
    try {
      for (let batch = await this.nextBatch(); batch !== null; batch = await this.nextBatch()) {
        for (const record of batch) yield record;
      }
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.input.source.close();
  }
}

/** Shorthand for CaptureReader.open. */
export function openCapture(from: string | Uint8Array, options?: ReaderOptions): Promise<CaptureReader> {
  return CaptureReader.open(from, options);
}

async function detectFormat(input: ChunkedInput): Promise<FormatParser> {
  const name = input.source.name;
  if (!(await input.fill(MAGIC_SIZE))) {
    throw new PcapError('TRUNCATED', `file is ${input.available} bytes long, too short for a capture file's magic number`, { offset: 0, file: name });
  }
  const magic = input.view.getUint32(input.pos, true);
  if (isPcapngMagic(magic)) return new PcapngParser(input);
  if (isClassicMagic(magic)) {
    if (!(await input.fill(FILE_HEADER.SIZE))) {
      throw new PcapError('TRUNCATED', `file ends inside the pcap file header: ${FILE_HEADER.SIZE} bytes needed, ${input.available} present`, {
        offset: 0,
        file: name,
      });
    }
    return new ClassicParser(input);
  }
  const bytes = input.view.getUint32(input.pos, false).toString(16).padStart(8, '0');
  throw new PcapError(
    'BAD_MAGIC',
    `not a pcap or pcapng file: it starts with ${bytes}, expected a pcap magic (a1b2c3d4 or a1b23c4d, in either byte order) or pcapng's 0a0d0d0a`,
    { offset: 0, file: name },
  );
}
