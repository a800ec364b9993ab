// Classic libpcap files: a 24-byte file header, then 16-byte record headers
// each followed by the captured bytes. The magic number gives the byte order
// and whether the fraction field counts micro- or nanoseconds.
import { PcapError } from './errors.js';
import type { ChunkedInput } from './chunked-input.js';
import { MAX_RECORD_LENGTH, MICROSECONDS, NANOSECONDS, type CaptureInterface, type CaptureRecord } from './record.js';

/** Magic numbers as they read in little-endian order. */
export const MAGIC_MICRO_LE = 0xa1b2c3d4;
export const MAGIC_MICRO_BE = 0xd4c3b2a1;
export const MAGIC_NANO_LE = 0xa1b23c4d;
export const MAGIC_NANO_BE = 0x4d3cb2a1;
/** The magic as the writer puts it in (native order of the value, little-endian). */
export const MAGIC_MICRO = MAGIC_MICRO_LE;
export const MAGIC_NANO = MAGIC_NANO_LE;

export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;

/** File header field offsets. */
export const FILE_HEADER = {
  MAGIC: 0,
  VERSION_MAJOR: 4,
  VERSION_MINOR: 6,
  THISZONE: 8,
  SIGFIGS: 12,
  SNAPLEN: 16,
  LINKTYPE: 20,
  SIZE: 24,
} as const;

/** Record header field offsets. */
export const RECORD_HEADER = {
  TS_SEC: 0,
  TS_FRAC: 4,
  CAPTURED_LENGTH: 8,
  ORIGINAL_LENGTH: 12,
  SIZE: 16,
} as const;

/**
 * The link-type field's low 28 bits hold the link type; the top bits may
 * carry FCS information (LINKTYPE_FCS), which is not part of the type.
 */
const LINKTYPE_MASK = 0x0fffffff;

export function isClassicMagic(magicLe: number): boolean {
  return magicLe === MAGIC_MICRO_LE || magicLe === MAGIC_MICRO_BE || magicLe === MAGIC_NANO_LE || magicLe === MAGIC_NANO_BE;
}

export class ClassicParser {
  readonly format = 'pcap';
  private readonly littleEndian: boolean;
  private readonly tsResolution: number;
  private readonly linkType: number;
  private readonly snapLength: number;
  private readonly fileName: string;
  private readonly iface: CaptureInterface;
  nextIndex = 0;

  /** Reads the file header at input.pos (the caller made FILE_HEADER.SIZE bytes available). */
  constructor(input: ChunkedInput) {
    const { view } = input;
    const at = input.pos;
    const magic = view.getUint32(at + FILE_HEADER.MAGIC, true);
    this.littleEndian = magic === MAGIC_MICRO_LE || magic === MAGIC_NANO_LE;
    this.tsResolution = magic === MAGIC_NANO_LE || magic === MAGIC_NANO_BE ? NANOSECONDS : MICROSECONDS;
    this.fileName = input.source.name;
    const major = view.getUint16(at + FILE_HEADER.VERSION_MAJOR, this.littleEndian);
    const minor = view.getUint16(at + FILE_HEADER.VERSION_MINOR, this.littleEndian);
    if (major !== PCAP_VERSION_MAJOR) {
      throw new PcapError('BAD_VERSION', `pcap file header: version ${major}.${minor}, expected ${PCAP_VERSION_MAJOR}.x`, {
        offset: input.offset + FILE_HEADER.VERSION_MAJOR,
        file: this.fileName,
      });
    }
    this.snapLength = view.getUint32(at + FILE_HEADER.SNAPLEN, this.littleEndian);
    this.linkType = view.getUint32(at + FILE_HEADER.LINKTYPE, this.littleEndian) & LINKTYPE_MASK;
    this.iface = { section: 0, id: 0, linkType: this.linkType, snapLength: this.snapLength, tsResolution: this.tsResolution };
    input.pos += FILE_HEADER.SIZE;
  }

  interfaces(): CaptureInterface[] {
    return [this.iface];
  }

  /**
   * Appends records from the input's window to `out` until `max` are there or
   * the window runs short. Returns the bytes needed at input.pos to go on
   * (0 when it stopped at `max`). Leaves input.pos after the last whole record.
   */
  parse(input: ChunkedInput, out: CaptureRecord[], max: number): number {
    const { buf, view, end, base } = input;
    const le = this.littleEndian;
    let pos = input.pos;
    try {
      while (out.length < max) {
        if (end - pos < RECORD_HEADER.SIZE) return RECORD_HEADER.SIZE;
        const captured = view.getUint32(pos + RECORD_HEADER.CAPTURED_LENGTH, le);
        if (captured > this.snapLength && this.snapLength !== 0) {
          throw this.error('SNAPLEN_EXCEEDED', `captured length ${captured} exceeds the file's snap length ${this.snapLength}`, base + pos);
        }
        if (captured > MAX_RECORD_LENGTH) {
          throw this.error('RECORD_TOO_LARGE', `captured length ${captured} is beyond any real capture (limit ${MAX_RECORD_LENGTH})`, base + pos);
        }
        const total = RECORD_HEADER.SIZE + captured;
        if (end - pos < total) return total;
        const dataStart = pos + RECORD_HEADER.SIZE;
        out.push({
          index: this.nextIndex++,
          offset: base + pos,
          linkType: this.linkType,
          interfaceId: 0,
          tsSec: view.getUint32(pos + RECORD_HEADER.TS_SEC, le),
          tsFrac: view.getUint32(pos + RECORD_HEADER.TS_FRAC, le),
          tsResolution: this.tsResolution,
          capturedLength: captured,
          originalLength: view.getUint32(pos + RECORD_HEADER.ORIGINAL_LENGTH, le),
          data: buf.subarray(dataStart, dataStart + captured),
        });
        pos += total;
      }
      return 0;
    } finally {
      input.pos = pos;
    }
  }

  /** The error for a file that ends `available` bytes into a record that needed `need`. */
  truncated(input: ChunkedInput, need: number): PcapError {
    const what = input.available < RECORD_HEADER.SIZE ? 'record header' : "record's data";
    return this.error('TRUNCATED', `file ends inside a ${what}: ${need} bytes needed, ${input.available} present`, input.offset);
  }

  private error(reason: 'SNAPLEN_EXCEEDED' | 'RECORD_TOO_LARGE' | 'TRUNCATED', detail: string, offset: number): PcapError {
    return new PcapError(reason, detail, { offset, record: this.nextIndex, file: this.fileName });
  }
}
