#include "tun_open.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char TUN_CLONE_DEVICE[] = "/dev/net/tun";

int tun_open(const char *name, int multi_queue, int vnet_hdr_bytes, char name_out[IFNAMSIZ], tun_open_error *error) {
  if (strlen(name) >= IFNAMSIZ) {
    error->err = ENAMETOOLONG;
    error->syscall = "name check";
    return -1;
  }
  int fd = open(TUN_CLONE_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    error->err = errno;
    error->syscall = "open(/dev/net/tun)";
    return -1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (multi_queue ? IFF_MULTI_QUEUE : 0) | (vnet_hdr_bytes > 0 ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name, strlen(name));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    error->err = errno;
    error->syscall = "ioctl(TUNSETIFF)";
    close(fd);
    return -1;
  }
  if (vnet_hdr_bytes > 0 && ioctl(fd, TUNSETVNETHDRSZ, &vnet_hdr_bytes) < 0) {
    error->err = errno;
    error->syscall = "ioctl(TUNSETVNETHDRSZ)";
    close(fd);
    return -1;
  }
  memcpy(name_out, ifr.ifr_name, IFNAMSIZ);
  name_out[IFNAMSIZ - 1] = '\0';
  return fd;
}
