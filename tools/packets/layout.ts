// Where the fields of the headers that the tests, the fuzzer and the
// benchmarks build and read sit (RFC 791, 8200, 9293, 768, 3828, 4340, 792,
// 4443, 826), and which transport checksums cover a pseudo-header. Written
// from the RFCs, independently of the core's own offsets in assembly/.

export const PROTO = { ICMP: 1, IGMP: 2, TCP: 6, UDP: 17, DCCP: 33, GRE: 47, ESP: 50, AH: 51, ICMPV6: 58, NONE: 59, SCTP: 132, UDPLITE: 136 } as const;

/** IPv6 Next Header values of the extension headers (and of what ends a walk). */
export const EXT = { HOP_BY_HOP: 0, ROUTING: 43, FRAGMENT: 44, ESP: 50, AH: 51, NO_NEXT: 59, DEST_OPTS: 60 } as const;

export const IPV4 = {
  VERSION_IHL: 0, TOS: 1, TOTAL_LENGTH: 2, ID: 4, FLAGS_FRAGMENT: 6, TTL: 8, PROTOCOL: 9, CHECKSUM: 10, SOURCE: 12, DESTINATION: 16,
  OPTIONS: 20, SIZE: 20, MAX_OPTIONS: 40,
} as const;
/** Bits of the IPv4 flags/fragment-offset word. */
export const IPV4_FLAGS = { DONT_FRAGMENT: 0x4000, MORE_FRAGMENTS: 0x2000, OFFSET: 0x1fff } as const;

export const IPV6 = { VERSION_CLASS_FLOW: 0, PAYLOAD_LENGTH: 4, NEXT_HEADER: 6, HOP_LIMIT: 7, SOURCE: 8, DESTINATION: 24, SIZE: 40 } as const;

/**
 * Inside an IPv6 extension header (RFC 8200 §4): the options of Hop-by-Hop
 * and Destination Options, the Routing header's fields and addresses, the
 * Fragment header's offset/M word and identification, AH's SPI.
 */
export const EXT_HEADER = {
  NEXT_HEADER: 0, LENGTH: 1, OPTIONS: 2, ROUTING_TYPE: 2, SEGMENTS_LEFT: 3, ROUTING_ADDRESSES: 8,
  FRAGMENT_OFFSET_FLAGS: 2, FRAGMENT_ID: 4, FRAGMENT_SIZE: 8, AH_SPI: 4,
} as const;
/** Option types of Hop-by-Hop and Destination Options. */
export const IPV6_OPTION = { PAD1: 0, PADN: 1 } as const;

export const TCP = { SOURCE_PORT: 0, DESTINATION_PORT: 2, SEQUENCE: 4, ACK: 8, DATA_OFFSET: 12, FLAGS: 13, WINDOW: 14, CHECKSUM: 16, URGENT: 18, SIZE: 20 } as const;
/** UDP; in UDP-Lite the length field holds the checksum coverage. */
export const UDP = { SOURCE_PORT: 0, DESTINATION_PORT: 2, LENGTH: 4, CHECKSUM: 6, SIZE: 8 } as const;
/** DCCP's generic header with extended sequence numbers (X = 1). */
export const DCCP = { SOURCE_PORT: 0, DESTINATION_PORT: 2, DATA_OFFSET: 4, CSCOV: 5, CHECKSUM: 6, TYPE_X: 8, SEQUENCE: 10, SIZE: 16 } as const;
/** ICMP and ICMPv6 share the first eight bytes: type, code, checksum, then the message's own four. */
export const ICMP = { TYPE: 0, CODE: 1, CHECKSUM: 2, REST: 4, SIZE: 8 } as const;

/** The ARP EtherType (the IP ones are src/pcap/linklayer.ts's ETHERTYPE) and an ARP packet's fields. */
export const ARP = { ETHERTYPE: 0x0806, HARDWARE_TYPE: 0, PROTOCOL_TYPE: 2, HARDWARE_SIZE: 4, PROTOCOL_SIZE: 5, OPERATION: 6, SENDER_MAC: 8, SENDER_IP: 14, TARGET_MAC: 18, TARGET_IP: 24, SIZE: 28 } as const;

/** A transport checksum that covers a pseudo-header: what a destination rewrite must fix. */
export interface TransportChecksum {
  name: 'tcp' | 'udp' | 'udplite' | 'dccp' | 'icmpv6';
  /** Offset of the checksum inside the transport header. */
  field: number;
  /** Bytes of transport header needed to reach it. */
  minBytes: number;
  /** UDP: a zero checksum means "none". */
  zeroIsNone: boolean;
}

const table: Record<number, TransportChecksum> = {
  [PROTO.TCP]: { name: 'tcp', field: TCP.CHECKSUM, minBytes: TCP.CHECKSUM + 2, zeroIsNone: false },
  [PROTO.UDP]: { name: 'udp', field: UDP.CHECKSUM, minBytes: UDP.SIZE, zeroIsNone: true },
  [PROTO.UDPLITE]: { name: 'udplite', field: UDP.CHECKSUM, minBytes: UDP.SIZE, zeroIsNone: false },
  [PROTO.DCCP]: { name: 'dccp', field: DCCP.CHECKSUM, minBytes: DCCP.CHECKSUM + 2, zeroIsNone: false },
};
const icmpv6: TransportChecksum = { name: 'icmpv6', field: ICMP.CHECKSUM, minBytes: ICMP.CHECKSUM + 2, zeroIsNone: false };

export function transportChecksum(family: 4 | 6, protocol: number): TransportChecksum | undefined {
  if (family === 6 && protocol === PROTO.ICMPV6) return icmpv6;
  return table[protocol];
}
