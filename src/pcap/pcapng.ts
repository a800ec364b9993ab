// pcapng: a sequence of sections, each a Section Header Block (which fixes
// the byte order) followed by blocks. Interface Description Blocks declare
// each interface's link type, snap length and timestamp unit; packet blocks
// (Enhanced, Simple, and the obsolete Packet Block) refer to them by number.
// Every other block type is skipped by its length.
import { PcapError, type PcapReason } from './errors.js';
import type { ChunkedInput } from './chunked-input.js';
import { MAX_RECORD_LENGTH, MICROSECONDS, type CaptureInterface, type CaptureRecord } from './record.js';
import { splitTimestamp, type SplitTimestamp } from './timestamp.js';

export const BLOCK_TYPE = {
  SECTION_HEADER: 0x0a0d0d0a,
  INTERFACE_DESCRIPTION: 0x00000001,
  PACKET: 0x00000002, // obsolete, still written by old tools
  SIMPLE_PACKET: 0x00000003,
  NAME_RESOLUTION: 0x00000004,
  INTERFACE_STATISTICS: 0x00000005,
  ENHANCED_PACKET: 0x00000006,
} as const;

export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const BYTE_ORDER_MAGIC_SWAPPED = 0x4d3c2b1a;
export const PCAPNG_VERSION_MAJOR = 1;

/** Fields every block has. */
export const BLOCK = {
  TYPE: 0,
  TOTAL_LENGTH: 4,
  BODY: 8,
  /** Type, length, and the trailing copy of the length. */
  OVERHEAD: 12,
} as const;

export const SECTION_HEADER = {
  BYTE_ORDER_MAGIC: 8,
  VERSION_MAJOR: 12,
  VERSION_MINOR: 14,
  SECTION_LENGTH: 16,
  OPTIONS: 24,
  MIN_LENGTH: 28,
} as const;

export const INTERFACE_DESCRIPTION = {
  LINKTYPE: 8,
  RESERVED: 10,
  SNAPLEN: 12,
  OPTIONS: 16,
  MIN_LENGTH: 20,
} as const;

export const ENHANCED_PACKET = {
  INTERFACE_ID: 8,
  TS_HIGH: 12,
  TS_LOW: 16,
  CAPTURED_LENGTH: 20,
  ORIGINAL_LENGTH: 24,
  DATA: 28,
  MIN_LENGTH: 32,
} as const;

/** The obsolete Packet Block: like the EPB with a 16-bit interface id and a drop count. */
export const OBSOLETE_PACKET = {
  INTERFACE_ID: 8,
  DROPS_COUNT: 10,
  TS_HIGH: 12,
  TS_LOW: 16,
  CAPTURED_LENGTH: 20,
  ORIGINAL_LENGTH: 24,
  DATA: 28,
  MIN_LENGTH: 32,
} as const;

export const SIMPLE_PACKET = {
  ORIGINAL_LENGTH: 8,
  DATA: 12,
  MIN_LENGTH: 16,
} as const;

export const OPTION = {
  CODE: 0,
  LENGTH: 2,
  VALUE: 4,
  END_OF_OPTIONS: 0,
  IF_TSRESOL: 9,
  IF_TSOFFSET: 14,
} as const;

/** if_tsresol: top bit set means a power of two, else a power of ten. */
const TSRESOL_BINARY = 0x80;
const TSRESOL_EXPONENT = 0x7f;
/** Finer units than these are not exact in a double; no capture tool writes them. */
const MAX_DECIMAL_EXPONENT = 15;
const MAX_BINARY_EXPONENT = 52;

/** A block larger than the largest record plus generous room for options is corruption. */
export const MAX_BLOCK_LENGTH = MAX_RECORD_LENGTH + 1024 * 1024;

/**
 * Interfaces a section may declare: every id the obsolete Packet Block can
 * name (16 bits), far beyond what capture tools write. Every IDB is kept
 * (the writer reads them all), so this and the same cap over the whole file
 * bound the reader's memory against a file of nothing but IDBs.
 */
export const MAX_SECTION_INTERFACES = 65536;
export const MAX_FILE_INTERFACES = 65536;

export function isPcapngMagic(magicLe: number): boolean {
  return magicLe === BLOCK_TYPE.SECTION_HEADER;
}

interface Interface extends CaptureInterface {
  /** if_tsoffset: seconds added to every timestamp. */
  tsOffset: number;
}

export class PcapngParser {
  readonly format = 'pcapng';
  private readonly fileName: string;
  private littleEndian = true;
  /** Number of the current section; -1 before the first SHB. */
  private section = -1;
  private sectionInterfaces: Interface[] = [];
  private readonly allInterfaces: Interface[] = [];
  private readonly ts: SplitTimestamp = { sec: 0, frac: 0 };
  nextIndex = 0;

  constructor(input: ChunkedInput) {
    this.fileName = input.source.name;
  }

  /** Every interface declared so far, over all sections. */
  interfaces(): CaptureInterface[] {
    return this.allInterfaces;
  }

  /** See ClassicParser.parse. */
  parse(input: ChunkedInput, out: CaptureRecord[], max: number): number {
    const { view, end, base } = input;
    let pos = input.pos;
    try {
      while (out.length < max) {
        // 12 bytes: the smallest block, and enough to read an SHB's byte-order magic.
        if (end - pos < BLOCK.OVERHEAD) return BLOCK.OVERHEAD;
        let type = view.getUint32(pos + BLOCK.TYPE, this.littleEndian);
        if (type === BLOCK_TYPE.SECTION_HEADER) this.littleEndian = this.sectionByteOrder(view, pos, base + pos);
        else if (this.section < 0) {
          throw this.error('BAD_MAGIC', `expected a section header block, found block type 0x${hex(type)}`, base + pos);
        }
        const le = this.littleEndian;
        type = view.getUint32(pos + BLOCK.TYPE, le);
        const length = view.getUint32(pos + BLOCK.TOTAL_LENGTH, le);
        this.checkLength(type, length, base + pos);
        if (end - pos < length) return length;
        const trailer = view.getUint32(pos + length - 4, le);
        if (trailer !== length) {
          throw this.error('BAD_BLOCK_LENGTH', `block type 0x${hex(type)}: total length ${length} at the start but ${trailer} at the end`, base + pos);
        }
        switch (type) {
          case BLOCK_TYPE.SECTION_HEADER:
            this.startSection(view, pos, base + pos);
            break;
          case BLOCK_TYPE.INTERFACE_DESCRIPTION:
            this.addInterface(view, pos, length, base + pos);
            break;
          case BLOCK_TYPE.ENHANCED_PACKET:
            out.push(this.enhancedPacket(input, pos, length));
            break;
          case BLOCK_TYPE.SIMPLE_PACKET:
            out.push(this.simplePacket(input, pos, length));
            break;
          case BLOCK_TYPE.PACKET:
            out.push(this.obsoletePacket(input, pos, length));
            break;
          default:
            // Name resolution, statistics, custom, decryption secrets, unknown: not packets.
            break;
        }
        pos += length;
      }
      return 0;
    } finally {
      input.pos = pos;
    }
  }

  truncated(input: ChunkedInput, need: number): PcapError {
    const what = input.available < BLOCK.OVERHEAD ? 'block header' : 'block';
    return this.error('TRUNCATED', `file ends inside a ${what}: ${need} bytes needed, ${input.available} present`, input.offset);
  }

  private sectionByteOrder(view: DataView, pos: number, offset: number): boolean {
    const magic = view.getUint32(pos + SECTION_HEADER.BYTE_ORDER_MAGIC, true);
    if (magic === BYTE_ORDER_MAGIC) return true;
    if (magic === BYTE_ORDER_MAGIC_SWAPPED) return false;
    throw this.error('BAD_MAGIC', `section header block: byte-order magic 0x${hex(magic)}, expected 0x${hex(BYTE_ORDER_MAGIC)}`, offset);
  }

  private checkLength(type: number, length: number, offset: number): void {
    const min = minimumLength(type);
    if (length < min || length % 4 !== 0 || length > MAX_BLOCK_LENGTH) {
      const why =
        length < min ? `shorter than the ${min} bytes this block type needs`
        : length % 4 !== 0 ? 'not a multiple of 4'
        : `beyond any real block (limit ${MAX_BLOCK_LENGTH})`;
      throw this.error('BAD_BLOCK_LENGTH', `block type 0x${hex(type)}: total length ${length} is ${why}`, offset);
    }
  }

  private startSection(view: DataView, pos: number, offset: number): void {
    const major = view.getUint16(pos + SECTION_HEADER.VERSION_MAJOR, this.littleEndian);
    const minor = view.getUint16(pos + SECTION_HEADER.VERSION_MINOR, this.littleEndian);
    if (major !== PCAPNG_VERSION_MAJOR) {
      throw this.error('BAD_VERSION', `section header block: version ${major}.${minor}, expected ${PCAPNG_VERSION_MAJOR}.x`, offset);
    }
    this.section += 1;
    this.sectionInterfaces = [];
  }

  private addInterface(view: DataView, pos: number, length: number, offset: number): void {
    if (this.sectionInterfaces.length >= MAX_SECTION_INTERFACES) {
      throw this.error(
        'TOO_MANY_INTERFACES',
        `interface description block: section ${this.section} declares more than ${MAX_SECTION_INTERFACES} interfaces (the limit of this reader)`,
        offset,
      );
    }
    if (this.allInterfaces.length >= MAX_FILE_INTERFACES) {
      throw this.error(
        'TOO_MANY_INTERFACES',
        `interface description block: the file declares more than ${MAX_FILE_INTERFACES} interfaces over its ${this.section + 1} sections (the limit of this reader)`,
        offset,
      );
    }
    const le = this.littleEndian;
    const iface: Interface = {
      section: this.section,
      id: this.sectionInterfaces.length,
      linkType: view.getUint16(pos + INTERFACE_DESCRIPTION.LINKTYPE, le),
      snapLength: view.getUint32(pos + INTERFACE_DESCRIPTION.SNAPLEN, le),
      tsResolution: MICROSECONDS,
      tsOffset: 0,
    };
    const optionsEnd = pos + length - 4;
    for (let at = pos + INTERFACE_DESCRIPTION.OPTIONS; at + OPTION.VALUE <= optionsEnd; ) {
      const code = view.getUint16(at + OPTION.CODE, le);
      const size = view.getUint16(at + OPTION.LENGTH, le);
      if (code === OPTION.END_OF_OPTIONS) break;
      const value = at + OPTION.VALUE;
      if (value + size > optionsEnd) {
        throw this.error('BAD_OPTION', `interface description block: option ${code} of length ${size} runs past the block`, offset + (at - pos));
      }
      if (code === OPTION.IF_TSRESOL && size >= 1) {
        iface.tsResolution = this.resolution(view.getUint8(value), offset + (at - pos));
      } else if (code === OPTION.IF_TSOFFSET && size >= 8) {
        iface.tsOffset = Number(view.getBigInt64(value, le));
      }
      at = value + align4(size);
    }
    this.sectionInterfaces.push(iface);
    this.allInterfaces.push(iface);
  }

  private resolution(tsresol: number, offset: number): number {
    const exponent = tsresol & TSRESOL_EXPONENT;
    const binary = (tsresol & TSRESOL_BINARY) !== 0;
    if (exponent > (binary ? MAX_BINARY_EXPONENT : MAX_DECIMAL_EXPONENT)) {
      throw this.error('BAD_OPTION', `interface description block: if_tsresol ${binary ? '2' : '10'}^-${exponent} is finer than this reader supports`, offset);
    }
    return binary ? 2 ** exponent : 10 ** exponent;
  }

  private interfaceFor(id: number, offset: number): Interface {
    const iface = this.sectionInterfaces[id];
    if (iface === undefined) {
      throw this.error(
        'UNKNOWN_INTERFACE',
        `packet block refers to interface ${id}, but section ${this.section} declares ${this.sectionInterfaces.length}`,
        offset,
      );
    }
    return iface;
  }

  /** Checks a packet block's captured length against its block, its interface and sanity. */
  private checkCaptured(captured: number, room: number, iface: Interface, length: number, offset: number): void {
    if (captured > MAX_RECORD_LENGTH) {
      throw this.error('RECORD_TOO_LARGE', `captured length ${captured} is beyond any real capture (limit ${MAX_RECORD_LENGTH})`, offset);
    }
    if (captured > room) {
      throw this.error('BAD_BLOCK_LENGTH', `captured length ${captured} does not fit a packet block of total length ${length}`, offset);
    }
    if (captured > iface.snapLength && iface.snapLength !== 0) {
      throw this.error('SNAPLEN_EXCEEDED', `captured length ${captured} exceeds interface ${iface.id}'s snap length ${iface.snapLength}`, offset);
    }
  }

  private enhancedPacket(input: ChunkedInput, pos: number, length: number): CaptureRecord {
    const interfaceId = input.view.getUint32(pos + ENHANCED_PACKET.INTERFACE_ID, this.littleEndian);
    return this.timestampedPacket(input, pos, length, ENHANCED_PACKET, interfaceId);
  }

  /** The obsolete Packet Block: an Enhanced Packet Block with a 16-bit interface id and a drops count. */
  private obsoletePacket(input: ChunkedInput, pos: number, length: number): CaptureRecord {
    const interfaceId = input.view.getUint16(pos + OBSOLETE_PACKET.INTERFACE_ID, this.littleEndian);
    return this.timestampedPacket(input, pos, length, OBSOLETE_PACKET, interfaceId);
  }

  private timestampedPacket(
    input: ChunkedInput, pos: number, length: number, layout: typeof ENHANCED_PACKET | typeof OBSOLETE_PACKET, interfaceId: number,
  ): CaptureRecord {
    const { view, base } = input;
    const le = this.littleEndian;
    const offset = base + pos;
    const iface = this.interfaceFor(interfaceId, offset);
    const captured = view.getUint32(pos + layout.CAPTURED_LENGTH, le);
    this.checkCaptured(captured, length - layout.MIN_LENGTH, iface, length, offset);
    splitTimestamp(view.getUint32(pos + layout.TS_HIGH, le), view.getUint32(pos + layout.TS_LOW, le), iface.tsResolution, this.ts);
    const data = pos + layout.DATA;
    return {
      index: this.nextIndex++,
      offset,
      linkType: iface.linkType,
      interfaceId: iface.id,
      tsSec: this.ts.sec + iface.tsOffset,
      tsFrac: this.ts.frac,
      tsResolution: iface.tsResolution,
      capturedLength: captured,
      originalLength: view.getUint32(pos + layout.ORIGINAL_LENGTH, le),
      data: input.buf.subarray(data, data + captured),
    };
  }

  /** A Simple Packet Block has no timestamp and no captured length: it is cut at interface 0's snap length. */
  private simplePacket(input: ChunkedInput, pos: number, length: number): CaptureRecord {
    const { view, base } = input;
    const offset = base + pos;
    const iface = this.interfaceFor(0, offset);
    const original = view.getUint32(pos + SIMPLE_PACKET.ORIGINAL_LENGTH, this.littleEndian);
    const captured = iface.snapLength !== 0 ? Math.min(original, iface.snapLength) : original;
    this.checkCaptured(captured, length - SIMPLE_PACKET.MIN_LENGTH, iface, length, offset);
    const data = pos + SIMPLE_PACKET.DATA;
    return {
      index: this.nextIndex++,
      offset,
      linkType: iface.linkType,
      interfaceId: iface.id,
      tsSec: 0,
      tsFrac: 0,
      tsResolution: iface.tsResolution,
      capturedLength: captured,
      originalLength: original,
      data: input.buf.subarray(data, data + captured),
    };
  }

  private error(reason: PcapReason, detail: string, offset: number): PcapError {
    return new PcapError(reason, detail, { offset, record: this.nextIndex, file: this.fileName });
  }
}

function minimumLength(type: number): number {
  switch (type) {
    case BLOCK_TYPE.SECTION_HEADER: return SECTION_HEADER.MIN_LENGTH;
    case BLOCK_TYPE.INTERFACE_DESCRIPTION: return INTERFACE_DESCRIPTION.MIN_LENGTH;
    case BLOCK_TYPE.ENHANCED_PACKET: return ENHANCED_PACKET.MIN_LENGTH;
    case BLOCK_TYPE.PACKET: return OBSOLETE_PACKET.MIN_LENGTH;
    case BLOCK_TYPE.SIMPLE_PACKET: return SIMPLE_PACKET.MIN_LENGTH;
    default: return BLOCK.OVERHEAD;
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
