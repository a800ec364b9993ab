#include "offload.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

/* GSO types of the virtio-net header (linux/virtio_net.h); UDP_L4 is newer
 * than the uapi headers here. */
#define GSO_NONE 0
#define GSO_TCPV4 1
#define GSO_UDP 3
#define GSO_TCPV6 4
#define GSO_UDP_L4 5
#define GSO_ECN 0x80

#define IPV4_VERSION 4
#define IPV4_MIN_HEADER 20
#define IPV6_HEADER 40
#define TCP_DATA_OFFSET 12
#define TCP_MIN_HEADER 20
#define UDP_HEADER 8

static const struct {
  unsigned bits;
  const char *name;
} NAMES[OFFLOAD_NAME_MAX] = {
#define OFFLOAD_NAME(bits, name) {bits, name},
    L3DSR_OFFLOADS(OFFLOAD_NAME)
#undef OFFLOAD_NAME
};

/* Each needs checksum offload; TSO_ECN only means something with TSO. */
static const unsigned OPTIONAL_GROUPS[] = {
    OFFLOAD_TSO4,
    OFFLOAD_TSO6,
    OFFLOAD_TSO_ECN,
    OFFLOAD_USO4 | OFFLOAD_USO6,
};

static int set_offload(int fd, unsigned bits) {
  return ioctl(fd, TUNSETOFFLOAD, (unsigned long)bits) < 0 ? -errno : 0;
}

int offload_probe(int fd, unsigned *granted) {
  *granted = 0;
  int rc = set_offload(fd, OFFLOAD_CSUM);
  if (rc < 0) {
    set_offload(fd, 0);
    return rc;
  }
  unsigned have = OFFLOAD_CSUM;
  for (size_t i = 0; i < sizeof OPTIONAL_GROUPS / sizeof OPTIONAL_GROUPS[0]; i++) {
    unsigned group = OPTIONAL_GROUPS[i];
    if (group == OFFLOAD_TSO_ECN && !(have & (OFFLOAD_TSO4 | OFFLOAD_TSO6))) continue;
    if (set_offload(fd, have | group) == 0) have |= group;
  }
  /* A refused attempt leaves the previous set, but say it once more so the
   * device holds exactly what is reported. */
  rc = set_offload(fd, have);
  if (rc < 0) return rc;
  *granted = have;
  return 0;
}

size_t offload_names(unsigned granted, const char *names[OFFLOAD_NAME_MAX]) {
  size_t n = 0;
  for (size_t i = 0; i < OFFLOAD_NAME_MAX; i++)
    if (granted & NAMES[i].bits) names[n++] = NAMES[i].name;
  return n;
}

static uint16_t le16(const uint8_t *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t vnet_gso_segments(const uint8_t *frame, uint32_t len, uint32_t vnet_bytes) {
  if (vnet_bytes < VNET_HDR_BYTES || len < vnet_bytes) return 0;
  unsigned type = frame[VNET_GSO_TYPE] & ~GSO_ECN;
  uint32_t gso_size = le16(frame + VNET_GSO_SIZE);
  if (type == GSO_NONE) return 0;
  if (gso_size == 0) return 1;

  const uint8_t *ip = frame + vnet_bytes;
  uint32_t ip_len = len - vnet_bytes;
  /* Where the transport header starts: the checksum start when the kernel
   * gave one, else the fixed IP header (extension headers not walked). */
  uint32_t l4;
  if (frame[VNET_FLAGS] & VNET_F_NEEDS_CSUM)
    l4 = le16(frame + VNET_CSUM_START);
  else if (ip_len >= 1 && (ip[0] >> 4) == IPV4_VERSION)
    l4 = (uint32_t)(ip[0] & 0x0f) * 4;
  else
    l4 = IPV6_HEADER;
  if (l4 < IPV4_MIN_HEADER) l4 = IPV4_MIN_HEADER;

  uint32_t l4_header = UDP_HEADER;
  if (type == GSO_TCPV4 || type == GSO_TCPV6) {
    l4_header = TCP_MIN_HEADER;
    if (l4 + TCP_DATA_OFFSET < ip_len) l4_header = (uint32_t)(ip[l4 + TCP_DATA_OFFSET] >> 4) * 4;
  }
  if (ip_len <= l4 + l4_header) return 1;
  uint32_t payload = ip_len - l4 - l4_header;
  return (payload + gso_size - 1) / gso_size;
}
