// Where the IP packet starts inside a captured frame. The rewriter works on
// bare L3 packets; everything before them (Ethernet with any stack of VLAN
// tags, Linux cooked headers) is left byte for byte as captured.
//
// A frame is IP when its link layer says so: always under the raw IP link
// types (101, 12, 14, 228, 229), and under Ethernet, SLL and SLL2 when the
// EtherType (after any VLAN tags) is IPv4 or IPv6. Which one it says does not
// matter: the packet goes to the core, which decides from the version nibble
// alone, exactly as the daemon's core does with what a TUN without protocol
// information hands it. So one packet gets one verdict whatever the framing:
// version 5 or 0 is malformed (bad-version) everywhere, and a version-6
// packet under LINKTYPE_IPV4 or the IPv4 EtherType is handled as IPv6, as the
// daemon would once tc redirected it. Every other frame (ARP, LLDP, other
// EtherTypes, a frame too short for its link-layer header) is not IP and
// passes untouched without reaching the core.
import { PcapError } from './errors.js';

/** LINKTYPE_* values (tcpdump.org/linktypes.html) this module understands. */
export const LINKTYPE = {
  ETHERNET: 1,
  /** DLT_RAW as most systems number it when it leaks into a file. */
  RAW_DLT12: 12,
  /** DLT_RAW as OpenBSD numbers it. */
  RAW_DLT14: 14,
  RAW: 101,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

const LINKTYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [LINKTYPE.ETHERNET, 'ETHERNET'],
  [LINKTYPE.RAW_DLT12, 'RAW (DLT 12)'],
  [LINKTYPE.RAW_DLT14, 'RAW (DLT 14)'],
  [LINKTYPE.RAW, 'RAW'],
  [LINKTYPE.LINUX_SLL, 'LINUX_SLL'],
  [LINKTYPE.IPV4, 'IPV4'],
  [LINKTYPE.IPV6, 'IPV6'],
  [LINKTYPE.LINUX_SLL2, 'LINUX_SLL2'],
]);

/** A few common types this module does not handle, named so the error says what the file is. */
const OTHER_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'NULL (BSD loopback)'],
  [105, 'IEEE802_11'],
  [108, 'LOOP (OpenBSD loopback)'],
  [127, 'IEEE802_11_RADIOTAP'],
  [147, 'USER0'],
  [189, 'USB_LINUX'],
  [220, 'USB_LINUX_MMAPPED'],
  [253, 'NETLINK'],
]);

export const ETHERTYPE = {
  IPV4: 0x0800,
  IPV6: 0x86dd,
  /** 802.1Q customer tag. */
  VLAN: 0x8100,
  /** 802.1ad service tag (QinQ outer tag). */
  SERVICE_VLAN: 0x88a8,
  /** Pre-standard QinQ outer tag. */
  QINQ_LEGACY: 0x9100,
} as const;

export const ETHERNET = { ETHERTYPE: 12, SIZE: 14 } as const;
/** A VLAN tag sits where the EtherType was: TCI, then the next EtherType. */
export const VLAN_TAG = { TCI: 0, ETHERTYPE: 2, SIZE: 4 } as const;
export const LINUX_SLL = { PACKET_TYPE: 0, ARPHRD_TYPE: 2, ADDRESS_LENGTH: 4, ADDRESS: 6, PROTOCOL: 14, SIZE: 16 } as const;
export const LINUX_SLL2 = { PROTOCOL: 0, RESERVED: 2, INTERFACE_INDEX: 4, ARPHRD_TYPE: 8, PACKET_TYPE: 10, ADDRESS_LENGTH: 11, ADDRESS: 12, SIZE: 20 } as const;

export interface L3Location {
  /** Whether the link layer says the frame carries IP (see the rule above); false for ARP, LLDP, other protocols, or a frame too short to tell. */
  ip: boolean;
  /** Byte offset of the IP header in the frame (for non-IP frames: where the link-layer headers parsed so far end). */
  offset: number;
}

export function isSupportedLinkType(linkType: number): boolean {
  return LINKTYPE_NAMES.has(linkType);
}

export function linkTypeName(linkType: number): string {
  return LINKTYPE_NAMES.get(linkType) ?? OTHER_NAMES.get(linkType) ?? 'unknown';
}

/** The error for a link type this module cannot find IP in (position added by the caller). */
export function unsupportedLinkType(linkType: number): PcapError {
  const supported = [...LINKTYPE_NAMES].map(([n, name]) => `${n} ${name}`).join(', ');
  return new PcapError('UNKNOWN_LINKTYPE', `link type ${linkType} (${linkTypeName(linkType)}) is not supported; supported: ${supported}`);
}

/** Finds the IP packet in a frame of the given link type; throws UNKNOWN_LINKTYPE for a type not listed in LINKTYPE. */
export function locateL3(linkType: number, frame: Uint8Array): L3Location {
  switch (linkType) {
    case LINKTYPE.ETHERNET:
      if (frame.length < ETHERNET.SIZE) return { ip: false, offset: frame.length };
      return afterEtherType(frame, readU16(frame, ETHERNET.ETHERTYPE), ETHERNET.SIZE);
    case LINKTYPE.LINUX_SLL:
      if (frame.length < LINUX_SLL.SIZE) return { ip: false, offset: frame.length };
      return afterEtherType(frame, readU16(frame, LINUX_SLL.PROTOCOL), LINUX_SLL.SIZE);
    case LINKTYPE.LINUX_SLL2:
      if (frame.length < LINUX_SLL2.SIZE) return { ip: false, offset: frame.length };
      return afterEtherType(frame, readU16(frame, LINUX_SLL2.PROTOCOL), LINUX_SLL2.SIZE);
    case LINKTYPE.RAW:
    case LINKTYPE.RAW_DLT12:
    case LINKTYPE.RAW_DLT14:
    case LINKTYPE.IPV4:
    case LINKTYPE.IPV6:
      return { ip: true, offset: 0 };
    default:
      throw unsupportedLinkType(linkType);
  }
}

/** Like locateL3, with the record's position in the error. */
export function locateRecordL3(record: { linkType: number; data: Uint8Array; index?: number; offset?: number }): L3Location {
  try {
    return locateL3(record.linkType, record.data);
  } catch (err) {
    if (err instanceof PcapError) throw err.at({ offset: record.offset, record: record.index });
    throw err;
  }
}

/** Peels VLAN tags (any number, any of the three tag types); the final EtherType says whether IP follows. */
function afterEtherType(frame: Uint8Array, etherType: number, offset: number): L3Location {
  let type = etherType;
  let at = offset;
  while (type === ETHERTYPE.VLAN || type === ETHERTYPE.SERVICE_VLAN || type === ETHERTYPE.QINQ_LEGACY) {
    if (frame.length < at + VLAN_TAG.SIZE) return { ip: false, offset: at };
    type = readU16(frame, at + VLAN_TAG.ETHERTYPE);
    at += VLAN_TAG.SIZE;
  }
  return { ip: type === ETHERTYPE.IPV4 || type === ETHERTYPE.IPV6, offset: at };
}

function readU16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}
