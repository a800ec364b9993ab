// Every problem with a capture file surfaces as one error type, so the CLI can
// tell "this file is bad" (exit non-zero after flushing what it wrote) from a
// bug, and so every message says where in the file the problem is.

import { L3dsrError } from '../errors.js';

/** What is wrong with the file (PcapError.reason). */
export type PcapReason =
  /** Not a capture file this module reads (first four bytes name no known format). */
  | 'BAD_MAGIC'
  /** A classic pcap version other than 2.x, or a pcapng section version other than 1.x. */
  | 'BAD_VERSION'
  /** The file ends inside a header, a record or a block. */
  | 'TRUNCATED'
  /** A pcapng block whose total length is too small, not a multiple of 4, absurd, or disagrees with its trailer. */
  | 'BAD_BLOCK_LENGTH'
  /** A pcapng option list that runs past its block. */
  | 'BAD_OPTION'
  /** A record's captured length is larger than the interface's snap length. */
  | 'SNAPLEN_EXCEEDED'
  /** A record's captured length is beyond any sane capture (see MAX_RECORD_LENGTH). */
  | 'RECORD_TOO_LARGE'
  /** A pcapng packet block names an interface no IDB in its section described. */
  | 'UNKNOWN_INTERFACE'
  /** A pcapng section, or the whole file, declares more interfaces than the reader keeps (MAX_SECTION_INTERFACES). */
  | 'TOO_MANY_INTERFACES'
  /** A link type the link-layer module cannot find an IP packet in. */
  | 'UNKNOWN_LINKTYPE'
  /** A record whose link type differs from the one the classic pcap output was opened with. */
  | 'LINKTYPE_MISMATCH'
  /** A timestamp that does not fit a classic pcap record header. */
  | 'TIMESTAMP_RANGE'
  /** The reader or writer was used after close(). */
  | 'CLOSED';

/** Where in the input file a problem was found. */
export interface PcapPosition {
  /** Byte offset in the file of the header, record or block at fault. */
  offset?: number;
  /** Index (0-based, counting packet records only) of the record at fault or about to be read. */
  record?: number;
  /** The file's name, for the message. */
  file?: string;
}

/** A damaged or unsupported capture: code ERR_L3DSR_PCAP, what is wrong in `reason`, where in the file. */
export class PcapError extends L3dsrError {
  override name = 'PcapError';
  readonly reason: PcapReason;
  readonly offset: number | undefined;
  readonly record: number | undefined;
  readonly file: string | undefined;
  /** The message without the position suffix, for re-wrapping with a position. */
  readonly detail: string;

  constructor(reason: PcapReason, detail: string, position: PcapPosition = {}) {
    super('ERR_L3DSR_PCAP', formatMessage(detail, position));
    this.reason = reason;
    this.detail = detail;
    this.offset = position.offset;
    this.record = position.record;
    this.file = position.file;
  }

  /** The same error with a position filled in (for errors raised by code that does not know the file). */
  at(position: PcapPosition): PcapError {
    return new PcapError(this.reason, this.detail, {
      offset: this.offset ?? position.offset,
      record: this.record ?? position.record,
      file: this.file ?? position.file,
    });
  }
}

function formatMessage(detail: string, { offset, record, file }: PcapPosition): string {
  const where: string[] = [];
  if (file !== undefined) where.push(file);
  if (offset !== undefined) where.push(`byte offset ${offset}`);
  // Indexes count from 0 like the verdict file's `index`; Wireshark numbers frames from 1.
  if (record !== undefined) where.push(`record index ${record}`);
  return where.length === 0 ? detail : `${detail} (${where.join(', ')})`;
}
