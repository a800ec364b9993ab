// A lenient reading of a packet for the mutators: where the fields they aim
// at sit, even when the packet is already broken. It never rejects and never
// reads past the buffer; it is not a validator (the oracle is).

export const IPV4_TOS = 1;
export const IPV4_TOTAL_LENGTH = 2;
export const IPV4_FLAGS_FRAGMENT = 6;
export const IPV4_PROTOCOL = 9;
export const IPV4_CHECKSUM = 10;
export const IPV4_DST = 16;
export const IPV4_MIN_HEADER = 20;

export const IPV6_PAYLOAD_LENGTH = 4;
export const IPV6_NEXT_HEADER = 6;
export const IPV6_DST = 24;
export const IPV6_HEADER = 40;

/** Offsets inside an extension header, and the Fragment header's offset/M word. */
export const EXT_LENGTH = 1;
export const FRAGMENT_OFFSET_FLAGS = 2;
/** The UDP (and UDP-Lite coverage) length field. */
export const UDP_LENGTH = 4;

export const EXT = { HOP_BY_HOP: 0, ROUTING: 43, FRAGMENT: 44, ESP: 50, AH: 51, NO_NEXT: 59, DEST_OPTS: 60 } as const;

/** An IPv6 extension header found by the walk. */
export interface ExtView {
  type: number;
  at: number;
  length: number;
  /** Where the Next Header byte that names this header sits (6 for the first). */
  linkAt: number;
}

export interface PacketView {
  family: 4 | 6 | 0;
  /** IPv4 header length from IHL (may be a lie). */
  headerLength: number;
  /** Byte holding the Next Header / Protocol value of the transport. */
  protocolAt: number;
  protocol: number;
  transportAt: number;
  exts: ExtView[];
}

const chained = new Set<number>([EXT.HOP_BY_HOP, EXT.ROUTING, EXT.DEST_OPTS, EXT.FRAGMENT, EXT.AH]);

/** The length of the extension header at `at`, by its type's length rule. */
export function extLength(p: Uint8Array, type: number, at: number): number {
  if (type === EXT.FRAGMENT) return 8;
  if (type === EXT.AH) return (p[at + EXT_LENGTH] + 2) * 4;
  return (p[at + EXT_LENGTH] + 1) * 8;
}

export function viewOf(p: Uint8Array): PacketView {
  const version = p.length > 0 ? p[0] >> 4 : 0;
  if (version === 4 && p.length >= IPV4_MIN_HEADER) {
    const ihl = (p[0] & 0x0f) * 4;
    return { family: 4, headerLength: ihl, protocolAt: IPV4_PROTOCOL, protocol: p[IPV4_PROTOCOL], transportAt: Math.max(ihl, IPV4_MIN_HEADER), exts: [] };
  }
  if (version === 6 && p.length >= IPV6_HEADER) {
    const exts: ExtView[] = [];
    let linkAt = IPV6_NEXT_HEADER;
    let at = IPV6_HEADER;
    // AH is walked through here (unlike the core) so splices can move it around.
    while (chained.has(p[linkAt]) && at + 2 <= p.length && exts.length < 64) {
      const type = p[linkAt];
      const length = extLength(p, type, at);
      if (at + length > p.length) break;
      exts.push({ type, at, length, linkAt });
      linkAt = at;
      at += length;
    }
    return { family: 6, headerLength: IPV6_HEADER, protocolAt: linkAt, protocol: p[linkAt], transportAt: at, exts };
  }
  return { family: 0, headerLength: 0, protocolAt: -1, protocol: -1, transportAt: p.length, exts: [] };
}

export function read16(p: Uint8Array, at: number): number {
  return (p[at] << 8) | p[at + 1];
}

export function write16(p: Uint8Array, at: number, v: number): void {
  if (at < 0 || at + 1 >= p.length) return;
  p[at] = (v >> 8) & 0xff;
  p[at + 1] = v & 0xff;
}

/** Sets IPv4 total length or IPv6 payload length to say the buffer is all packet. */
export function fitLengthField(p: Uint8Array, view: PacketView = viewOf(p)): void {
  if (view.family === 4) write16(p, IPV4_TOTAL_LENGTH, Math.min(p.length, 0xffff));
  else if (view.family === 6) write16(p, IPV6_PAYLOAD_LENGTH, Math.min(p.length - IPV6_HEADER, 0xffff));
}

/** Transport checksum field offset inside the transport header, for the protocols the core fixes. */
export function transportChecksumField(family: 4 | 6, protocol: number): number | undefined {
  switch (protocol) {
    case 6: return 16;
    case 17: case 136: case 33: return 6;
    case 58: return family === 6 ? 2 : undefined;
    default: return undefined;
  }
}
