// Builds capture files byte by byte for the reader tests: classic pcap and
// pcapng blocks in either byte order, with every field under the test's
// control so that broken files can be made as easily as good ones.

export class ByteBuilder {
  private readonly parts: number[] = [];
  constructor(readonly littleEndian = true) {}

  get length(): number {
    return this.parts.length;
  }
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    const b = [(v >>> 8) & 0xff, v & 0xff];
    this.parts.push(...(this.littleEndian ? b.reverse() : b));
    return this;
  }
  u32(v: number): this {
    const b = [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
    this.parts.push(...(this.littleEndian ? b.reverse() : b));
    return this;
  }
  i64(v: bigint): this {
    const view = new DataView(new ArrayBuffer(8));
    view.setBigInt64(0, v, this.littleEndian);
    return this.bytes(new Uint8Array(view.buffer));
  }
  bytes(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.parts.push(b[i]);
    return this;
  }
  pad4(): this {
    while (this.parts.length % 4 !== 0) this.parts.push(0);
    return this;
  }
  build(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export function concat(...chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A distinct, recognisable payload of `n` bytes. */
export function pattern(n: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 13) & 0xff);
}

// ---- classic pcap ----

export interface ClassicRecordSpec {
  sec: number;
  frac: number;
  data: Uint8Array;
  /** Defaults to data.length. */
  originalLength?: number;
  /** Overrides the captured-length field (to make broken records). */
  capturedLength?: number;
}

export interface ClassicSpec {
  littleEndian?: boolean;
  nano?: boolean;
  snapLength?: number;
  linkType?: number;
  versionMajor?: number;
  records: ClassicRecordSpec[];
}

export const CLASSIC_FILE_HEADER_SIZE = 24;
export const CLASSIC_RECORD_HEADER_SIZE = 16;

export function classicFile(spec: ClassicSpec): Uint8Array {
  const b = new ByteBuilder(spec.littleEndian ?? true);
  b.u32(spec.nano ? 0xa1b23c4d : 0xa1b2c3d4)
    .u16(spec.versionMajor ?? 2)
    .u16(4)
    .u32(0)
    .u32(0)
    .u32(spec.snapLength ?? 65535)
    .u32(spec.linkType ?? 1);
  for (const r of spec.records) {
    b.u32(r.sec)
      .u32(r.frac)
      .u32(r.capturedLength ?? r.data.length)
      .u32(r.originalLength ?? r.data.length)
      .bytes(r.data);
  }
  return b.build();
}

/** Offset of record `i` in a classicFile() built from `records`. */
export function classicRecordOffset(records: ClassicRecordSpec[], i: number): number {
  let at = CLASSIC_FILE_HEADER_SIZE;
  for (let k = 0; k < i; k++) at += CLASSIC_RECORD_HEADER_SIZE + records[k].data.length;
  return at;
}

// ---- pcapng ----

/** A generic block: type, total length, body (padded), total length again. */
export function block(type: number, body: Uint8Array, littleEndian = true, lengthOverride?: { start?: number; end?: number }): Uint8Array {
  const padded = new ByteBuilder(littleEndian).bytes(body).pad4().build();
  const total = 12 + padded.length;
  return new ByteBuilder(littleEndian)
    .u32(type)
    .u32(lengthOverride?.start ?? total)
    .bytes(padded)
    .u32(lengthOverride?.end ?? total)
    .build();
}

export interface Option {
  code: number;
  value: Uint8Array;
}

function options(opts: Option[], le: boolean): Uint8Array {
  if (opts.length === 0) return new Uint8Array(0);
  const b = new ByteBuilder(le);
  for (const o of opts) b.u16(o.code).u16(o.value.length).bytes(o.value).pad4();
  b.u16(0).u16(0);
  return b.build();
}

export function shb(le = true, opts: { versionMajor?: number; byteOrderMagic?: number } = {}): Uint8Array {
  const body = new ByteBuilder(le)
    .u32(opts.byteOrderMagic ?? 0x1a2b3c4d)
    .u16(opts.versionMajor ?? 1)
    .u16(0)
    .i64(-1n)
    .build();
  return block(0x0a0d0d0a, body, le);
}

export interface IdbSpec {
  linkType: number;
  snapLength?: number;
  /** Raw if_tsresol byte. */
  tsresol?: number;
  tsoffset?: bigint;
  extraOptions?: Option[];
}

export function idb(spec: IdbSpec, le = true): Uint8Array {
  const opts: Option[] = [...(spec.extraOptions ?? [])];
  if (spec.tsresol !== undefined) opts.push({ code: 9, value: Uint8Array.of(spec.tsresol) });
  if (spec.tsoffset !== undefined) opts.push({ code: 14, value: new ByteBuilder(le).i64(spec.tsoffset).build() });
  const body = new ByteBuilder(le)
    .u16(spec.linkType)
    .u16(0)
    .u32(spec.snapLength ?? 0)
    .bytes(options(opts, le))
    .build();
  return block(1, body, le);
}

export interface EpbSpec {
  iface: number;
  /** 64-bit timestamp in the interface's units. */
  ts: bigint;
  data: Uint8Array;
  originalLength?: number;
  capturedLength?: number;
  /** An option (e.g. epb_flags), to check options after the data are skipped. */
  withComment?: boolean;
}

export function epb(spec: EpbSpec, le = true): Uint8Array {
  const b = new ByteBuilder(le)
    .u32(spec.iface)
    .u32(Number(spec.ts >> 32n))
    .u32(Number(spec.ts & 0xffffffffn))
    .u32(spec.capturedLength ?? spec.data.length)
    .u32(spec.originalLength ?? spec.data.length)
    .bytes(spec.data)
    .pad4();
  if (spec.withComment) b.bytes(options([{ code: 1, value: new TextEncoder().encode('a comment') }], le));
  return block(6, b.build(), le);
}

/** The obsolete Packet Block (type 2). */
export function pb(spec: EpbSpec, le = true): Uint8Array {
  const body = new ByteBuilder(le)
    .u16(spec.iface)
    .u16(0)
    .u32(Number(spec.ts >> 32n))
    .u32(Number(spec.ts & 0xffffffffn))
    .u32(spec.capturedLength ?? spec.data.length)
    .u32(spec.originalLength ?? spec.data.length)
    .bytes(spec.data)
    .build();
  return block(2, body, le);
}

export function spb(data: Uint8Array, originalLength = data.length, le = true): Uint8Array {
  return block(3, new ByteBuilder(le).u32(originalLength).bytes(data).build(), le);
}

/** A Name Resolution Block with one IPv4 record. */
export function nrb(le = true): Uint8Array {
  const name = new TextEncoder().encode('host.example\0');
  const body = new ByteBuilder(le)
    .u16(1)
    .u16(4 + name.length)
    .bytes([192, 0, 2, 1])
    .bytes(name)
    .pad4()
    .u16(0)
    .u16(0)
    .build();
  return block(4, body, le);
}

/** An Interface Statistics Block for interface 0. */
export function isb(le = true): Uint8Array {
  return block(5, new ByteBuilder(le).u32(0).u32(0).u32(1).build(), le);
}

/** A custom block (type 0x00000BAD) with a private enterprise number. */
export function customBlock(le = true): Uint8Array {
  return block(0x00000bad, new ByteBuilder(le).u32(32473).bytes([1, 2, 3, 4, 5]).build(), le);
}
