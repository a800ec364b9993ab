// struct virtio_net_hdr (linux/virtio_net.h), as a TUN with IFF_VNET_HDR
// puts it before each packet: little-endian fields, without num_buffers.
// Its layout is the one scripts/abi.mjs generates for the core, the addon
// and the TUN device alike.
import {
  VNET_CSUM_OFFSET, VNET_CSUM_START, VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_GSO_SIZE, VNET_GSO_TYPE, VNET_HDR_LEN, VNET_HEADER_BYTES,
} from '../../src/tun/abi.generated.js';

export { VNET_F_NEEDS_CSUM };
export const VNET = {
  FLAGS: VNET_FLAGS, GSO_TYPE: VNET_GSO_TYPE, HDR_LEN: VNET_HDR_LEN, GSO_SIZE: VNET_GSO_SIZE,
  CSUM_START: VNET_CSUM_START, CSUM_OFFSET: VNET_CSUM_OFFSET, SIZE: VNET_HEADER_BYTES,
} as const;
/** VIRTIO_NET_HDR_F_DATA_VALID: the core leaves such packets alone (only NEEDS_CSUM has a seed to move). */
export const VNET_F_DATA_VALID = 2;
export const VNET_GSO = { NONE: 0, TCPV4: 1, TCPV6: 4, UDP_L4: 5 } as const;

export interface VnetFields {
  flags: number;
  gsoType?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart: number;
  csumOffset: number;
}

export function vnetHeader(f: VnetFields): Uint8Array {
  const b = new Uint8Array(VNET.SIZE);
  const v = new DataView(b.buffer);
  b[VNET.FLAGS] = f.flags;
  b[VNET.GSO_TYPE] = f.gsoType ?? VNET_GSO.NONE;
  v.setUint16(VNET.HDR_LEN, (f.hdrLen ?? 0) & 0xffff, true);
  v.setUint16(VNET.GSO_SIZE, (f.gsoSize ?? 0) & 0xffff, true);
  v.setUint16(VNET.CSUM_START, f.csumStart & 0xffff, true);
  v.setUint16(VNET.CSUM_OFFSET, f.csumOffset & 0xffff, true);
  return b;
}

export function readVnet(h: Uint8Array): Required<VnetFields> {
  const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
  return {
    flags: h[VNET.FLAGS], gsoType: h[VNET.GSO_TYPE], hdrLen: v.getUint16(VNET.HDR_LEN, true), gsoSize: v.getUint16(VNET.GSO_SIZE, true),
    csumStart: v.getUint16(VNET.CSUM_START, true), csumOffset: v.getUint16(VNET.CSUM_OFFSET, true),
  };
}
