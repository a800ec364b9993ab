// Builds IPv4/IPv6 packets with correct checksums for the kernel-reference
// and steering tests: TCP, UDP, UDP-Lite, DCCP, ICMP, ICMPv6, IPv4 options,
// fragments and IPv6 extension headers. Deliberately independent of the
// core (it is what the core is tested against).

export const PROTO = {
  hopByHop: 0, icmp: 1, tcp: 6, udp: 17, dccp: 33, ipv6Routing: 43, ipv6Fragment: 44, esp: 50, ah: 51,
  icmpv6: 58, noNext: 59, ipv6DestOpts: 60, udpLite: 136,
} as const;

/** An L4 segment and where its checksum lives. */
export interface Segment {
  protocol: number;
  bytes: Uint8Array;
  /** Checksum offset in `bytes`, and whether it covers a pseudo-header; absent: no checksum to fill. */
  checksum?: { at: number; pseudo: boolean };
}

export interface Ipv4Header {
  src: string;
  dst: string;
  tos?: number;
  ttl?: number;
  id?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** In 8-byte units. */
  fragmentOffset?: number;
  /** Raw option bytes, a multiple of 4 long. */
  options?: Uint8Array;
  /** Override the computed header checksum. */
  headerChecksum?: number;
}

export interface Ipv6Header {
  src: string;
  dst: string;
  trafficClass?: number;
  flowLabel?: number;
  hopLimit?: number;
}

/** An extension header; `body` is everything after its Next Header byte. */
export interface ExtensionHeader {
  type: number;
  body: Uint8Array;
}

export function parseIpv4(text: string): Uint8Array {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad IPv4 ${text}`);
  return new Uint8Array(parts);
}

export function parseIpv6(text: string): Uint8Array {
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new Error(`bad IPv6 ${text}`);
  const out = new Uint8Array(16);
  groups.forEach((g, k) => {
    const v = Number.parseInt(g, 16);
    out[2 * k] = v >> 8;
    out[2 * k + 1] = v & 0xff;
  });
  return out;
}

/** One's-complement sum of 16-bit big-endian words, folded, not complemented. */
function sum16(chunks: readonly Uint8Array[]): number {
  let sum = 0;
  for (const c of chunks) {
    for (let k = 0; k + 1 < c.length; k += 2) sum += (c[k]! << 8) | c[k + 1]!;
    if (c.length % 2 === 1) sum += c[c.length - 1]! << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function fillChecksum(seg: Segment, pseudo: Uint8Array | undefined): Uint8Array {
  const bytes = seg.bytes.slice();
  if (seg.checksum === undefined) return bytes;
  put16(bytes, seg.checksum.at, 0);
  const sum = sum16(seg.checksum.pseudo && pseudo !== undefined ? [pseudo, bytes] : [bytes]);
  put16(bytes, seg.checksum.at, ~sum & 0xffff || (seg.protocol === PROTO.udp ? 0xffff : 0));
  return bytes;
}

const ipv4Pseudo = (src: Uint8Array, dst: Uint8Array, protocol: number, length: number): Uint8Array =>
  new Uint8Array([...src, ...dst, 0, protocol, length >> 8, length & 0xff]);

const ipv6Pseudo = (src: Uint8Array, dst: Uint8Array, protocol: number, length: number): Uint8Array =>
  new Uint8Array([...src, ...dst, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff, 0, 0, 0, protocol]);

/**
 * An IPv4 packet around `seg` with a valid header checksum and, unless
 * `fillL4` is false (fragments carry another datagram's checksum), a valid L4
 * checksum.
 */
export function ipv4(h: Ipv4Header, seg: Segment, fillL4 = true): Uint8Array {
  const options = h.options ?? new Uint8Array(0);
  if (options.length % 4 !== 0) throw new Error('IPv4 options must be a multiple of 4 bytes');
  const ihl = 5 + options.length / 4;
  const src = parseIpv4(h.src);
  const dst = parseIpv4(h.dst);
  const l4 = fillL4 ? fillChecksum(seg, ipv4Pseudo(src, dst, seg.protocol, seg.bytes.length)) : seg.bytes;
  const out = new Uint8Array(ihl * 4 + l4.length);
  out[0] = 0x40 | ihl;
  out[1] = h.tos ?? 0;
  put16(out, 2, out.length);
  put16(out, 4, h.id ?? 0x1234);
  put16(out, 6, (h.dontFragment ? 0x4000 : 0) | (h.moreFragments ? 0x2000 : 0) | (h.fragmentOffset ?? 0));
  out[8] = h.ttl ?? 64;
  out[9] = seg.protocol;
  out.set(src, 12);
  out.set(dst, 16);
  out.set(options, 20);
  put16(out, 10, h.headerChecksum ?? ~sum16([out.subarray(0, ihl * 4)]) & 0xffff);
  out.set(l4, ihl * 4);
  return out;
}

/**
 * An IPv6 packet: `ext` headers chained in order, then `seg`. The L4
 * checksum's pseudo-header uses `finalDestination` when given (a Routing
 * header's last address, RFC 8200 §8.1), else `dst`.
 */
export function ipv6(h: Ipv6Header, seg: Segment, ext: readonly ExtensionHeader[] = [], finalDestination?: string, fillL4 = true): Uint8Array {
  const src = parseIpv6(h.src);
  const dst = parseIpv6(h.dst);
  const pseudoDst = finalDestination === undefined ? dst : parseIpv6(finalDestination);
  const l4 = fillL4 ? fillChecksum(seg, ipv6Pseudo(src, pseudoDst, seg.protocol, seg.bytes.length)) : seg.bytes;
  const extLength = ext.reduce((n, e) => n + 1 + e.body.length, 0);
  const out = new Uint8Array(40 + extLength + l4.length);
  const tc = h.trafficClass ?? 0;
  const flow = h.flowLabel ?? 0;
  out[0] = 0x60 | (tc >> 4);
  out[1] = ((tc & 0x0f) << 4) | ((flow >> 16) & 0x0f);
  put16(out, 2, flow & 0xffff);
  put16(out, 4, extLength + l4.length);
  out[6] = ext.length > 0 ? ext[0]!.type : seg.protocol;
  out[7] = h.hopLimit ?? 64;
  out.set(src, 8);
  out.set(dst, 24);
  let at = 40;
  ext.forEach((e, k) => {
    out[at] = k + 1 < ext.length ? ext[k + 1]!.type : seg.protocol;
    out.set(e.body, at + 1);
    at += 1 + e.body.length;
  });
  out.set(l4, at);
  return out;
}

// ---- L4 segments -----------------------------------------------------------

export const tcp = (srcPort: number, dstPort: number, payload: Uint8Array, headerLength = 20): Segment => {
  const b = new Uint8Array(headerLength + payload.length);
  put16(b, 0, srcPort);
  put16(b, 2, dstPort);
  b.set([0, 0, 0, 1], 4); // sequence
  b[12] = (headerLength / 4) << 4;
  b[13] = 0x18; // PSH, ACK
  put16(b, 14, 0xffff);
  b.set(payload, headerLength);
  return { protocol: PROTO.tcp, bytes: b, checksum: { at: 16, pseudo: true } };
};

export const udp = (srcPort: number, dstPort: number, payload: Uint8Array, noChecksum = false): Segment => {
  const b = new Uint8Array(8 + payload.length);
  put16(b, 0, srcPort);
  put16(b, 2, dstPort);
  put16(b, 4, b.length);
  b.set(payload, 8);
  return noChecksum ? { protocol: PROTO.udp, bytes: b } : { protocol: PROTO.udp, bytes: b, checksum: { at: 6, pseudo: true } };
};

/** UDP-Lite with full coverage (coverage field 0). */
export const udpLite = (srcPort: number, dstPort: number, payload: Uint8Array): Segment => {
  const seg = udp(srcPort, dstPort, payload);
  put16(seg.bytes, 4, 0);
  return { ...seg, protocol: PROTO.udpLite };
};

/** DCCP generic header with extended sequence numbers, full checksum coverage. */
export const dccp = (srcPort: number, dstPort: number, payload: Uint8Array): Segment => {
  const headerLength = 16;
  const b = new Uint8Array(headerLength + payload.length);
  put16(b, 0, srcPort);
  put16(b, 2, dstPort);
  b[4] = headerLength / 4; // data offset
  b[5] = 0; // CCVal 0, CsCov 0: whole packet
  b[8] = (2 << 1) | 1; // type 2 (Data), X = 1
  b.set([0, 0, 0, 0, 0, 7], 10); // 48-bit sequence number
  b.set(payload, headerLength);
  return { protocol: PROTO.dccp, bytes: b, checksum: { at: 6, pseudo: true } };
};

/** ICMP echo request (no pseudo-header). */
export const icmpEcho = (id: number, payload: Uint8Array): Segment => {
  const b = new Uint8Array(8 + payload.length);
  b[0] = 8;
  put16(b, 4, id);
  put16(b, 6, 1);
  b.set(payload, 8);
  return { protocol: PROTO.icmp, bytes: b, checksum: { at: 2, pseudo: false } };
};

/** ICMPv6 echo request. */
export const icmpv6Echo = (id: number, payload: Uint8Array): Segment => {
  const b = new Uint8Array(8 + payload.length);
  b[0] = 128;
  put16(b, 4, id);
  put16(b, 6, 1);
  b.set(payload, 8);
  return { protocol: PROTO.icmpv6, bytes: b, checksum: { at: 2, pseudo: true } };
};

/** Bytes under some protocol number, untouched (GRE, ESP, a fragment's tail...). */
export const opaque = (protocol: number, bytes: Uint8Array): Segment => ({ protocol, bytes: bytes.slice() });

// ---- IPv6 extension headers --------------------------------------------------

/** Hop-by-Hop or Destination Options padded with PadN to 8 bytes. */
export const optionsHeader = (type: typeof PROTO.hopByHop | typeof PROTO.ipv6DestOpts): ExtensionHeader =>
  ({ type, body: new Uint8Array([0, 1, 4, 0, 0, 0, 0]) });

/** Routing header of `routingType` with `addresses` and `segmentsLeft`. */
export function routingHeader(routingType: number, segmentsLeft: number, addresses: readonly string[]): ExtensionHeader {
  const body = new Uint8Array(7 + 16 * addresses.length);
  body[0] = 2 * addresses.length; // hdr ext len, 8-byte units beyond the first 8
  body[1] = routingType;
  body[2] = segmentsLeft;
  addresses.forEach((a, k) => body.set(parseIpv6(a), 7 + 16 * k));
  return { type: PROTO.ipv6Routing, body };
}

export function fragmentHeader(offset: number, more: boolean, id: number): ExtensionHeader {
  const body = new Uint8Array(7);
  put16(body, 1, (offset << 3) | (more ? 1 : 0));
  body.set([(id >>> 24) & 0xff, (id >> 16) & 0xff, (id >> 8) & 0xff, id & 0xff], 3);
  return { type: PROTO.ipv6Fragment, body };
}

/** AH with a 12-byte ICV (payload length in 4-byte units minus 2 = 4). */
export const authHeader = (spi: number): ExtensionHeader => {
  const body = new Uint8Array(23);
  body[0] = 4;
  body.set([(spi >>> 24) & 0xff, (spi >> 16) & 0xff, (spi >> 8) & 0xff, spi & 0xff], 3);
  body[10] = 1; // sequence number
  return { type: PROTO.ah, body };
};

// ---- link layer, for injecting into a veth ---------------------------------------

export const ETHERTYPE = { ipv4: 0x0800, arp: 0x0806, ipv6: 0x86dd } as const;

export function ethernet(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(14 + payload.length);
  out.set(dst, 0);
  out.set(src, 6);
  put16(out, 12, type);
  out.set(payload, 14);
  return out;
}

export const parseMac = (text: string): Uint8Array => new Uint8Array(text.split(':').map((x) => Number.parseInt(x, 16)));

/** ARP request "who has `target`, tell `sender`" (`hardwareType` 1 = Ethernet). */
export function arpRequest(senderMac: Uint8Array, sender: string, target: string, hardwareType = 1): Uint8Array {
  const b = new Uint8Array(28);
  put16(b, 0, hardwareType);
  put16(b, 2, ETHERTYPE.ipv4);
  b[4] = 6;
  b[5] = 4;
  put16(b, 6, 1);
  b.set(senderMac, 8);
  b.set(parseIpv4(sender), 14);
  b.set(parseIpv4(target), 24);
  return b;
}

/** Deterministic filler bytes (xorshift), so failures are reproducible. */
export function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let k = 0; k < length; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[k] = x & 0xff;
  }
  return out;
}
