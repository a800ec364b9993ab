/* The identity of the calling thread's network namespace. */
#ifndef L3DSR_NETNS_H
#define L3DSR_NETNS_H

#include <stdint.h>

/* Reads the namespace's cookie (SO_NETNS_COOKIE, Linux 5.14): a number the
 * kernel gives to no other namespace until it reboots, unlike the nsfs
 * inode number, which a namespace created later may get again. Returns 0,
 * or -errno. */
int netns_cookie(uint64_t *cookie);

#endif
