// What the capture reader hands out and the writer takes in.

/** One captured packet, whatever file format it came from. */
export interface CaptureRecord {
  /** 0-based position among the file's packet records (pcapng: packet blocks only). */
  index: number;
  /** Byte offset in the file of the record header (classic) or packet block (pcapng). */
  offset: number;
  /** LINKTYPE_* value of the interface the packet was captured on. */
  linkType: number;
  /** pcapng interface id within its section; 0 for classic pcap. */
  interfaceId: number;
  /** Whole seconds since the epoch (pcapng if_tsoffset applied). */
  tsSec: number;
  /** Fraction of the second, in units of 1/tsResolution seconds. */
  tsFrac: number;
  /** Timestamp units per second: 1e6 (µs), 1e9 (ns), or whatever the pcapng interface declared. */
  tsResolution: number;
  /** Bytes present in `data`. */
  capturedLength: number;
  /** Length of the packet on the wire (>= capturedLength when the capture was cut at the snap length). */
  originalLength: number;
  /**
   * The captured bytes, link-layer header included. A view into the reader's
   * buffer: valid until the reader is asked for the next record (or, with
   * nextBatch(), the next batch). Copy it to keep it longer; writing into it
   * is allowed (the rewrite mode changes packets in place before writing).
   */
  data: Uint8Array;
}

/** What the writer needs from a record (a CaptureRecord satisfies it). */
export interface WritableRecord {
  linkType: number;
  tsSec: number;
  tsFrac: number;
  tsResolution: number;
  originalLength: number;
  data: Uint8Array;
  /** For error messages only. */
  index?: number;
  offset?: number;
}

/** A capture interface: the only one of a classic pcap, or a pcapng IDB. */
export interface CaptureInterface {
  /** pcapng section number (0 for classic) — interface ids restart in every section. */
  section: number;
  id: number;
  linkType: number;
  /** 0 means "no limit declared" (pcapng allows it). */
  snapLength: number;
  tsResolution: number;
}

/** Timestamp units per second of the two classic pcap flavours. */
export const MICROSECONDS = 1_000_000;
export const NANOSECONDS = 1_000_000_000;

/**
 * No real link layer captures a frame this large (libpcap's largest
 * per-link-type limit is 256 KiB; pcapng allows snaplen 0 = unlimited).
 * Beyond it a length field is taken as corruption, which also bounds the
 * reader's memory.
 */
export const MAX_RECORD_LENGTH = 64 * 1024 * 1024;
