// The virtio-net header a TUN opened with IFF_VNET_HDR puts before every
// packet (struct virtio_net_hdr, little-endian on this machine's kernel).
// Its size and field offsets are generated (scripts/abi.mjs) with the
// addon's and the TypeScript's.

export {
  VNET_FLAGS as FLAGS,
  VNET_GSO_TYPE as GSO_TYPE,
  VNET_HDR_LEN as HDR_LEN,
  VNET_GSO_SIZE as GSO_SIZE,
  VNET_CSUM_START as CSUM_START,
  VNET_CSUM_OFFSET as CSUM_OFFSET,
  /**
   * The L4 checksum field holds the folded pseudo-header sum, not a checksum:
   * whoever sends the packet on finishes it over the data from csum_start.
   */
  VNET_F_NEEDS_CSUM as F_NEEDS_CSUM,
} from "./abi.generated";
