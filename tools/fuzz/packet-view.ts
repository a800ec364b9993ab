// A lenient reading of a packet for the mutators: where the fields they aim
// at sit, even when the packet is already broken. It never rejects and never
// reads past the buffer; it is not a validator (the oracle is).

import { write16 } from '../packets/bytes.js';
import { EXT, EXT_HEADER, IPV4, IPV6 } from '../packets/layout.js';

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
  if (type === EXT.FRAGMENT) return EXT_HEADER.FRAGMENT_SIZE;
  if (type === EXT.AH) return (p[at + EXT_HEADER.LENGTH] + 2) * 4;
  return (p[at + EXT_HEADER.LENGTH] + 1) * 8;
}

export function viewOf(p: Uint8Array): PacketView {
  const version = p.length > 0 ? p[0] >> 4 : 0;
  if (version === 4 && p.length >= IPV4.SIZE) {
    const ihl = (p[0] & 0x0f) * 4;
    return { family: 4, headerLength: ihl, protocolAt: IPV4.PROTOCOL, protocol: p[IPV4.PROTOCOL], transportAt: Math.max(ihl, IPV4.SIZE), exts: [] };
  }
  if (version === 6 && p.length >= IPV6.SIZE) {
    const exts: ExtView[] = [];
    let linkAt: number = IPV6.NEXT_HEADER;
    let at: number = IPV6.SIZE;
    // AH is walked through here (unlike the core) so splices can move it around.
    while (chained.has(p[linkAt]) && at + 2 <= p.length && exts.length < 64) {
      const type = p[linkAt];
      const length = extLength(p, type, at);
      if (at + length > p.length) break;
      exts.push({ type, at, length, linkAt });
      linkAt = at;
      at += length;
    }
    return { family: 6, headerLength: IPV6.SIZE, protocolAt: linkAt, protocol: p[linkAt], transportAt: at, exts };
  }
  return { family: 0, headerLength: 0, protocolAt: -1, protocol: -1, transportAt: p.length, exts: [] };
}

/** write16 where the field lies inside the buffer; nothing where it does not (offsets read from a broken packet). */
export function write16Within(p: Uint8Array, at: number, v: number): void {
  if (at >= 0 && at + 1 < p.length) write16(p, at, v);
}

/** Sets IPv4 total length or IPv6 payload length to say the buffer is all packet. */
export function fitLengthField(p: Uint8Array, view: PacketView = viewOf(p)): void {
  if (view.family === 4) write16Within(p, IPV4.TOTAL_LENGTH, Math.min(p.length, 0xffff));
  else if (view.family === 6) write16Within(p, IPV6.PAYLOAD_LENGTH, Math.min(p.length - IPV6.SIZE, 0xffff));
}
