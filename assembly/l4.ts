// Transport protocols whose checksum covers a pseudo-header with the
// destination address: where the checksum sits and how many bytes of the
// transport header must be present to reach it.

export const TCP: u32 = 6;
export const UDP: u32 = 17;
export const DCCP: u32 = 33;
export const ICMPV6: u32 = 58;
export const UDPLITE: u32 = 136;

export const TCP_CHECKSUM: usize = 16;
export const TCP_MIN_BYTES: u32 = 18;
export const UDP_CHECKSUM: usize = 6;
export const UDP_MIN_BYTES: u32 = 8;
export const DCCP_CHECKSUM: usize = 6;
export const DCCP_MIN_BYTES: u32 = 8;
export const ICMPV6_CHECKSUM: usize = 2;
export const ICMPV6_MIN_BYTES: u32 = 4;

// What the balancer reads besides (docs/lb.md#what-the-balancer-reads).
export const ICMP: u32 = 1;
export const SCTP: u32 = 132;
/** TCP's flags byte, and the two that tell a connection's first packet (SYN without ACK). */
export const TCP_FLAGS: usize = 13;
export const TCP_SYN: u32 = 0x02;
export const TCP_ACK: u32 = 0x10;
/** Source and destination port, the first four bytes of every port protocol. */
export const PORT_BYTES: u32 = 4;
/** Type, code and checksum: an ICMP or ICMPv6 message shorter than this is not read. */
export const ICMP_MIN_BYTES: u32 = 4;
/** The ICMP/ICMPv6 header before the packet an error quotes. */
export const ICMP_HEADER_BYTES: u32 = 8;
