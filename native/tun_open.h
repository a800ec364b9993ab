/* Opening a TUN queue: /dev/net/tun + TUNSETIFF (+ the virtio-net header). */
#ifndef L3DSR_TUN_OPEN_H
#define L3DSR_TUN_OPEN_H

#include <net/if.h>
#include <stddef.h>

typedef struct tun_open_error {
  int err;               /* errno */
  const char *syscall;   /* which call failed: "open", "ioctl(TUNSETIFF)" */
} tun_open_error;

/* Opens one queue of TUN device `name` (empty: the kernel picks a name) as
 * IFF_TUN|IFF_NO_PI (+IFF_MULTI_QUEUE), non-blocking and close-on-exec.
 * With `vnet_hdr_bytes` > 0 it adds IFF_VNET_HDR and sets the header size
 * (TUNSETVNETHDRSZ): every packet read or written then starts with that
 * header. IFF_VNET_HDR and the header size belong to the device, not the
 * queue, so every queue of one device must be opened alike.
 * Returns the fd and writes the kernel's name for the device to
 * `name_out` (IFNAMSIZ bytes); on failure returns -1 and fills `error`. */
int tun_open(const char *name, int multi_queue, int vnet_hdr_bytes, char name_out[IFNAMSIZ], tun_open_error *error);

#endif
