/* Offloads of a TUN opened with IFF_VNET_HDR: which ones the kernel grants
 * (TUNSETOFFLOAD, probed flag by flag), and what the virtio-net header in
 * front of each packet says about GSO. Nothing here knows about JavaScript
 * or the engines. */
#ifndef L3DSR_OFFLOAD_H
#define L3DSR_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>

/* The virtio-net header (VNET_HDR_BYTES, the VNET_* field offsets) is
 * in the generated ABI header, shared with the core and the TypeScript. It
 * is the legacy header, in the host's byte order (little-endian here); the
 * TUN keeps it that way unless TUNSETVNETBE/LE says otherwise. */
#include "abi.generated.h"

/* Offload bits as TUNSETOFFLOAD takes them (linux/if_tun.h). The 6.1 uapi
 * headers here predate USO (kernel 6.2). */
#define OFFLOAD_CSUM 0x01u
#define OFFLOAD_TSO4 0x02u
#define OFFLOAD_TSO6 0x04u
#define OFFLOAD_TSO_ECN 0x08u
#define OFFLOAD_USO4 0x20u
#define OFFLOAD_USO6 0x40u
/* With any of these granted a read can carry a GSO super-packet. */
#define OFFLOAD_SEGMENTATION (OFFLOAD_TSO4 | OFFLOAD_TSO6 | OFFLOAD_USO4 | OFFLOAD_USO6)

/* Most names offload_names() can return (their list: L3DSR_OFFLOADS). */
#define OFFLOAD_NAME_MAX OFFLOAD_COUNT

/* Asks for checksum offload, then adds TSO4, TSO6, TSO_ECN and USO4+USO6
 * one at a time, keeping each the kernel accepts (it refuses unknown bits
 * with EINVAL and changes nothing then; USO4 and USO6 only come together).
 * Leaves the device with exactly `*granted` set. Returns 0, or -errno when
 * not even checksum offload is accepted (then *granted is 0). */
int offload_probe(int fd, unsigned *granted);

/* Names of the granted bits, in a fixed order ("csum", "tso4", "tso6",
 * "tso_ecn", "uso4", "uso6"); returns how many were written. */
size_t offload_names(unsigned granted, const char *names[OFFLOAD_NAME_MAX]);

/* For a packet as read from the TUN (header + L3 packet, `len` bytes in
 * all): 0 when it is not a GSO super-packet, else the number of segments
 * the kernel would cut it into (at least 1). */
uint32_t vnet_gso_segments(const uint8_t *frame, uint32_t len, uint32_t vnet_bytes);

#endif
