#include "netns.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int netns_cookie(uint64_t *cookie) {
  /* Any socket tells the cookie of the namespace it was created in. */
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  socklen_t len = sizeof *cookie;
  int rc = getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len);
  int err = errno;
  close(fd);
  return rc < 0 ? -err : 0;
}
