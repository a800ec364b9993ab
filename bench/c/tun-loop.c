/*
 * The C reference for bench/capacity.ts and bench/lab-tcp.ts: the daemon's
 * data path with nothing but C in it. It opens a TUN, reads every packet
 * the steering sends it, restores the VIP of an IPv4 packet whose DSCP
 * matches (destination set, RFC 1624 update of the IPv4 header checksum and
 * of the TCP/UDP checksum, or of its pseudo-header seed when the virtio-net
 * header says the checksum is still to be completed) and writes it back.
 * A yardstick for the daemon's cost, not a second implementation: IPv4
 * only, no fragments or options beyond IHL, one queue.
 *
 * Engines, as in the addon (and with its raw io_uring helpers, native/uring.c):
 *   uring      one multishot read over a provided-buffer ring of slots,
 *              SINGLE_ISSUER | DEFER_TASKRUN, writes batched per round, one
 *              io_uring_enter per round that submits and waits
 *   readwrite  blocking read() / write() per packet
 *
 * usage: tun-loop --tun NAME --engine uring|readwrite --dscp N --vip A.B.C.D
 *                 [--vnet] [--slot BYTES] [--slots N] [--batch N]
 * --vnet: IFF_VNET_HDR with checksum and TSO offloads (GSO super-packets).
 * Prints `ready NAME` once the device exists; SIGUSR1 prints `packets N`
 * (packets rewritten so far); SIGTERM or SIGINT end it after printing that.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "offload.h"
#include "tun_open.h"
#include "uring.h"

enum { REQ_READ = 1, REQ_WRITE = 2 };
#define REQ_SHIFT 32

static volatile sig_atomic_t report_wanted, stop_wanted;
static uint64_t rewritten;

static struct {
  const char *tun, *engine;
  int dscp, vnet;
  uint32_t vip, slot, slots, batch;
} opt = {.dscp = -1, .slots = 256, .batch = 64};

static void on_signal(int sig) {
  if (sig == SIGUSR1) report_wanted = 1;
  else stop_wanted = 1;
}

static void report(void) {
  printf("packets %llu\n", (unsigned long long)rewritten);
  fflush(stdout);
}

static inline uint32_t fold(uint64_t a) {
  a = (a & 0xffffffff) + (a >> 32);
  a = (a & 0xffff) + (a >> 16);
  a = (a & 0xffff) + (a >> 16);
  return (uint32_t)((a & 0xffff) + (a >> 16));
}
/* A complemented checksum field (RFC 1624, eqn. 3). */
static inline void update_checksum(uint8_t *field, uint32_t delta) {
  uint16_t hc;
  memcpy(&hc, field, 2);
  uint16_t r = (uint16_t)~fold((uint16_t)~hc + (uint64_t)delta);
  memcpy(field, &r, 2);
}
/* A pseudo-header seed (NEEDS_CSUM): a plain ones-complement sum. */
static inline void update_seed(uint8_t *field, uint32_t delta) {
  uint16_t s;
  memcpy(&s, field, 2);
  uint16_t r = (uint16_t)fold(s + (uint64_t)delta);
  memcpy(field, &r, 2);
}

/* Rewrites the packet at `p` (after the virtio-net header `h`, if any). */
static void rewrite(uint8_t *h, uint8_t *p, uint32_t len) {
  if (len < 20 || p[0] >> 4 != 4 || p[1] >> 2 != opt.dscp) return;
  uint32_t ihl = (p[0] & 15) * 4;
  if (ihl < 20 || ihl > len) return;
  uint32_t old, vip = opt.vip;
  memcpy(&old, p + 16, 4);
  if (old == vip) return;
  /* Both in network order: the ones-complement sum does not care. */
  uint32_t delta = fold((uint64_t)(uint16_t)~old + (uint16_t)~(old >> 16) + (uint16_t)vip + (uint16_t)(vip >> 16));
  int partial = h && (h[VNET_FLAGS] & VNET_F_NEEDS_CSUM);
  int first = !(((p[6] << 8) | p[7]) & 0x1fff);
  uint8_t *l4 = p + ihl;
  uint32_t l4len = len - ihl;
  if (first && p[9] == 6 && l4len >= 18) {
    (partial ? update_seed : update_checksum)(l4 + 16, delta);
  } else if (first && p[9] == 17 && l4len >= 8) {
    if (partial) update_seed(l4 + 6, delta);
    else if (l4[6] | l4[7]) update_checksum(l4 + 6, delta);
  }
  memcpy(p + 16, &vip, 4);
  update_checksum(p + 10, delta);
  rewritten++;
}

static void rewrite_frame(uint8_t *frame, uint32_t len) {
  uint32_t hdr = opt.vnet ? VNET_HDR_BYTES : 0;
  if (len < hdr) return;
  rewrite(hdr ? frame : NULL, frame + hdr, len - hdr);
}

static void signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: a blocked read or enter returns EINTR */
  sigaction(SIGUSR1, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

static int after_signal(void) {
  if (report_wanted) {
    report_wanted = 0;
    report();
  }
  return stop_wanted;
}

static int run_readwrite(int fd, uint8_t *buf) {
  for (;;) {
    if (after_signal()) return 0;
    ssize_t r = read(fd, buf, opt.slot);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      perror("read");
      return 1;
    }
    rewrite_frame(buf, (uint32_t)r);
    if (write(fd, buf, (size_t)r) < 0 && errno != EINTR && errno != EAGAIN && errno != ENOBUFS) {
      perror("write");
      return 1;
    }
  }
}

static void arm_read(uring *r, int fd) {
  struct io_uring_sqe *sqe = uring_get_sqe(r);
  sqe->opcode = IORING_OP_READ_MULTISHOT;
  sqe->fd = fd;
  sqe->flags = IOSQE_BUFFER_SELECT;
  sqe->buf_group = 0;
  sqe->user_data = (uint64_t)REQ_READ << REQ_SHIFT;
}

static int run_uring(int fd, uint8_t *slots) {
  uring r;
  pbuf_ring bufs;
  unsigned cq = 1;
  while (cq < 2 * opt.slots + 64) cq <<= 1;
  int rc = uring_init(&r, 256, cq, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  if (rc == 0) rc = pbuf_ring_init(&bufs, &r, opt.slots, 0);
  if (rc < 0) {
    fprintf(stderr, "io_uring setup: %s\n", strerror(-rc));
    return 1;
  }
  for (uint32_t s = 0; s < opt.slots; s++) pbuf_ring_add(&bufs, slots + (size_t)s * opt.slot, opt.slot, (uint16_t)s);
  pbuf_ring_publish(&bufs);
  arm_read(&r, fd);
  for (;;) {
    if (after_signal()) return 0;
    rc = uring_wait(&r, 1, 1000);
    if (rc < 0 && rc != -EINTR && rc != -ETIME) {
      fprintf(stderr, "io_uring_enter: %s\n", strerror(-rc));
      return 1;
    }
    struct io_uring_cqe *cqe;
    uint32_t n = 0;
    while (n < opt.batch && (cqe = uring_peek_cqe(&r))) {
      if (cqe->user_data >> REQ_SHIFT == REQ_WRITE) {
        uint32_t s = (uint32_t)cqe->user_data;
        pbuf_ring_add(&bufs, slots + (size_t)s * opt.slot, opt.slot, (uint16_t)s);
      } else {
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_read(&r, fd);
        if (cqe->flags & IORING_CQE_F_BUFFER) {
          uint32_t s = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
          uint8_t *frame = slots + (size_t)s * opt.slot;
          struct io_uring_sqe *sqe = cqe->res > 0 ? uring_get_sqe(&r) : NULL;
          if (sqe) {
            rewrite_frame(frame, (uint32_t)cqe->res);
            sqe->opcode = IORING_OP_WRITE;
            sqe->fd = fd;
            sqe->addr = (uint64_t)(uintptr_t)frame;
            sqe->len = (uint32_t)cqe->res;
            sqe->off = (uint64_t)-1;
            sqe->user_data = ((uint64_t)REQ_WRITE << REQ_SHIFT) | s;
            n++;
          } else {
            pbuf_ring_add(&bufs, frame, opt.slot, (uint16_t)s);
          }
        } else if (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -EINTR && cqe->res != -EAGAIN) {
          fprintf(stderr, "read: %s\n", strerror(-cqe->res));
          return 1;
        }
      }
      uring_cqe_seen(&r);
    }
    pbuf_ring_publish(&bufs);
  }
}

static void usage(const char *argv0) {
  fprintf(stderr, "usage: %s --tun NAME --engine uring|readwrite --dscp N --vip A.B.C.D [--vnet] [--slot BYTES] [--slots N] [--batch N]\n", argv0);
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--vnet")) { opt.vnet = 1; continue; }
    if (!v) usage(argv[0]);
    i++;
    if (!strcmp(a, "--tun")) opt.tun = v;
    else if (!strcmp(a, "--engine")) opt.engine = v;
    else if (!strcmp(a, "--dscp")) opt.dscp = atoi(v);
    else if (!strcmp(a, "--vip")) { if (inet_pton(AF_INET, v, &opt.vip) != 1) usage(argv[0]); }
    else if (!strcmp(a, "--slot")) opt.slot = (uint32_t)atol(v);
    else if (!strcmp(a, "--slots")) opt.slots = (uint32_t)atol(v);
    else if (!strcmp(a, "--batch")) opt.batch = (uint32_t)atol(v);
    else usage(argv[0]);
  }
  int uring_engine = opt.engine && !strcmp(opt.engine, "uring");
  if (!opt.tun || !opt.engine || (!uring_engine && strcmp(opt.engine, "readwrite")) || opt.dscp < 0 || opt.dscp > 63 || !opt.vip ||
      opt.slots == 0 || opt.slots > 32768 || (opt.slots & (opt.slots - 1)) || opt.batch == 0)
    usage(argv[0]);
  if (!opt.slot) opt.slot = opt.vnet ? OFFLOAD_MIN_SLOT_SIZE : 2048;

  char name[IFNAMSIZ];
  tun_open_error err;
  int fd = tun_open(opt.tun, 0, opt.vnet ? VNET_HDR_BYTES : 0, name, &err);
  if (fd < 0) {
    fprintf(stderr, "%s: %s\n", err.syscall, strerror(err.err));
    return 1;
  }
  if (opt.vnet) {
    unsigned granted;
    if (offload_probe(fd, &granted) < 0 || !(granted & OFFLOAD_TSO4)) {
      fprintf(stderr, "TUNSETOFFLOAD: no TSO4\n");
      return 1;
    }
  }
  /* tun_open leaves the fd non-blocking (the addon polls it); this loop blocks. */
  int one = 0;
  if (ioctl(fd, FIONBIO, &one) < 0) {
    perror("FIONBIO");
    return 1;
  }
  size_t bytes = (size_t)opt.slot * (uring_engine ? opt.slots : 1);
  uint8_t *slots = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (slots == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  signals();
  printf("ready %s\n", name);
  fflush(stdout);
  int status = uring_engine ? run_uring(fd, slots) : run_readwrite(fd, slots);
  report();
  return status;
}
