// A window onto a capture file that the format parsers read records from in
// place. Reads are large (a chunk at a time) so the per-record cost is a few
// DataView reads, and memory stays constant: the window only grows when one
// record is larger than it, up to the format's sanity limit.
import { open, type FileHandle } from 'node:fs/promises';

/** Where the bytes come from: a file, or bytes already in memory (tests). */
export interface ByteSource {
  readonly name: string;
  /** Total size in bytes, when known (for progress). */
  readonly size: number | undefined;
  /** Reads up to `length` bytes at file `position` into `into[at..]`; 0 at end of file. */
  read(into: Uint8Array, at: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

export async function fileSource(path: string): Promise<ByteSource> {
  const handle: FileHandle = await open(path, 'r');
  let size: number | undefined;
  try {
    const st = await handle.stat();
    if (st.isFile()) size = st.size;
  } catch (err) {
    await handle.close();
    throw err;
  }
  return {
    name: path,
    size,
    async read(into, at, length, position) {
      const { bytesRead } = await handle.read(into, at, length, position);
      return bytesRead;
    },
    close: () => handle.close(),
  };
}

export function memorySource(bytes: Uint8Array, name = '<memory>'): ByteSource {
  return {
    name,
    size: bytes.length,
    async read(into, at, length, position) {
      const n = Math.max(0, Math.min(length, bytes.length - position));
      into.set(bytes.subarray(position, position + n), at);
      return n;
    },
    async close() {},
  };
}

export const DEFAULT_CHUNK_SIZE = 1024 * 1024;

export class ChunkedInput {
  /** Buffered bytes; valid from `pos` to `end`. Replaced when the window grows. */
  buf: Uint8Array;
  view: DataView;
  /** Next unparsed byte in `buf`. Parsers advance it. */
  pos = 0;
  /** End of the valid bytes in `buf`. */
  end = 0;
  /** File offset of buf[0]. */
  base = 0;
  /** The source returned 0 bytes: nothing follows `end`. */
  eof = false;

  constructor(
    readonly source: ByteSource,
    chunkSize = DEFAULT_CHUNK_SIZE,
  ) {
    this.buf = new Uint8Array(chunkSize);
    this.view = new DataView(this.buf.buffer);
  }

  /** File offset of `pos`. */
  get offset(): number {
    return this.base + this.pos;
  }

  get available(): number {
    return this.end - this.pos;
  }

  /**
   * Makes at least `need` bytes available from `pos`, reading as much as the
   * window holds. Moves the unparsed tail to the front of the buffer, so it
   * invalidates every view handed out before. Returns false when the file
   * ends first.
   */
  async fill(need: number): Promise<boolean> {
    if (this.end - this.pos >= need) return true;
    if (this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.end);
      this.base += this.pos;
      this.end -= this.pos;
      this.pos = 0;
    }
    if (need > this.buf.length) this.grow(need);
    while (this.end < need && !this.eof) {
      const n = await this.source.read(this.buf, this.end, this.buf.length - this.end, this.base + this.end);
      if (n === 0) this.eof = true;
      else this.end += n;
    }
    return this.end >= need;
  }

  private grow(need: number): void {
    const bigger = new Uint8Array(Math.max(need, this.buf.length * 2));
    bigger.set(this.buf.subarray(0, this.end));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }
}
