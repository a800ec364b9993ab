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
