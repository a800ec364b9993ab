// The virtio-net header a TUN opened with IFF_VNET_HDR puts before every
// packet (struct virtio_net_hdr, little-endian on this machine's kernel).

export const FLAGS: usize = 0;
export const GSO_TYPE: usize = 1;
export const HDR_LEN: usize = 2;
export const GSO_SIZE: usize = 4;
export const CSUM_START: usize = 6;
export const CSUM_OFFSET: usize = 8;

/** The smallest header (without num_buffers). */
export const MIN_HEADER: u32 = 10;

/**
 * The L4 checksum field holds the folded pseudo-header sum, not a checksum:
 * whoever sends the packet on finishes it over the data from csum_start.
 */
export const F_NEEDS_CSUM: u32 = 1;
