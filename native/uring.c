#include "uring.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}
static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void *arg,
                     size_t argsz) {
  return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
}

int uring_register(uring *r, unsigned opcode, void *arg, unsigned nr_args) {
  int rc = (int)syscall(__NR_io_uring_register, r->fd, opcode, arg, nr_args);
  return rc < 0 ? -errno : rc;
}

int uring_init(uring *r, unsigned sq_entries, unsigned cq_entries, unsigned setup_flags) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  /* CLAMP: a huge slot count asks for more CQ entries than the kernel's
   * maximum; the overflow list (IORING_FEAT_NODROP) covers the rest. */
  p.flags = setup_flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  p.cq_entries = cq_entries;
  int fd = sys_setup(sq_entries, &p);
  if (fd < 0) return -errno;
  r->fd = fd;
  r->setup_flags = setup_flags;
  r->features = p.features;

  /* Every kernel that has provided-buffer rings maps SQ and CQ as one
   * region (IORING_FEAT_SINGLE_MMAP, 5.4); older ones are refused here. */
  if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
    close(fd);
    r->fd = -1;
    return -ENOSYS;
  }
  size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  size_t len = sq_len > cq_len ? sq_len : cq_len;
  void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (map == MAP_FAILED) {
    int e = errno;
    close(fd);
    r->fd = -1;
    return -e;
  }
  r->sq_map = r->cq_map = map;
  r->sq_map_len = len;
  r->cq_map_len = 0; /* shared with the SQ mapping */

  size_t sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
  void *sqes = mmap(NULL, sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) {
    int e = errno;
    munmap(map, len);
    close(fd);
    r->fd = -1;
    return -e;
  }
  r->sqes = sqes;
  r->sqes_len = sqes_len;

  char *sq = map;
  r->sq_head = (unsigned *)(sq + p.sq_off.head);
  r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  r->sq_mask = *(unsigned *)(sq + p.sq_off.ring_mask);
  r->sq_entries = *(unsigned *)(sq + p.sq_off.ring_entries);
  r->sq_flags = (unsigned *)(sq + p.sq_off.flags);
  /* Slot i of the SQ always names SQE i, so the array is filled once and
   * only the tail moves afterwards. */
  unsigned *array = (unsigned *)(sq + p.sq_off.array);
  for (unsigned i = 0; i < r->sq_entries; i++) array[i] = i;
  r->sq_local_tail = *r->sq_tail;

  char *cq = map;
  r->cq_head = (unsigned *)(cq + p.cq_off.head);
  r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  r->cq_mask = *(unsigned *)(cq + p.cq_off.ring_mask);
  r->cq_entries = *(unsigned *)(cq + p.cq_off.ring_entries);
  r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  return 0;
}

void uring_destroy(uring *r) {
  if (r->sqes) munmap(r->sqes, r->sqes_len);
  if (r->sq_map) munmap(r->sq_map, r->sq_map_len);
  if (r->fd >= 0) close(r->fd);
  memset(r, 0, sizeof *r);
  r->fd = -1;
}

struct io_uring_sqe *uring_get_sqe(uring *r) {
  unsigned head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
  if (r->sq_local_tail - head >= r->sq_entries) return NULL;
  struct io_uring_sqe *sqe = &r->sqes[r->sq_local_tail & r->sq_mask];
  memset(sqe, 0, sizeof *sqe);
  r->sq_local_tail++;
  r->sq_pending++;
  return sqe;
}

int uring_submit(uring *r, int getevents) {
  unsigned n = r->sq_pending;
  if (n == 0 && !getevents) return 0;
  __atomic_store_n(r->sq_tail, r->sq_local_tail, __ATOMIC_RELEASE);
  int rc;
  do {
    rc = sys_enter(r->fd, n, 0, getevents ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return -errno;
  /* The kernel consumes SQEs in order; whatever it did not take stays
   * pending for the next call. */
  r->sq_pending = n - (unsigned)rc;
  return rc;
}

int uring_wait(uring *r, unsigned min_complete, unsigned timeout_ms) {
  struct __kernel_timespec ts = {
      .tv_sec = timeout_ms / 1000,
      .tv_nsec = (long long)(timeout_ms % 1000) * 1000000LL,
  };
  struct io_uring_getevents_arg arg;
  memset(&arg, 0, sizeof arg);
  arg.sigmask = 0;
  arg.sigmask_sz = _NSIG / 8;
  arg.ts = (uint64_t)(uintptr_t)&ts;
  unsigned n = r->sq_pending;
  __atomic_store_n(r->sq_tail, r->sq_local_tail, __ATOMIC_RELEASE);
  int rc = sys_enter(r->fd, n, min_complete, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg,
                     sizeof arg);
  if (rc < 0) return -errno;
  r->sq_pending = n - (unsigned)rc;
  return 0;
}

int uring_op_supported(uring *r, unsigned opcode) {
  const unsigned nops = 256;
  size_t len = sizeof(struct io_uring_probe) + nops * sizeof(struct io_uring_probe_op);
  struct io_uring_probe *probe = calloc(1, len);
  if (!probe) return 0;
  int ok = 0;
  if (uring_register(r, IORING_REGISTER_PROBE, probe, nops) >= 0 && opcode <= probe->last_op &&
      opcode < probe->ops_len)
    ok = (probe->ops[opcode].flags & IO_URING_OP_SUPPORTED) != 0;
  free(probe);
  return ok;
}

int pbuf_ring_init(pbuf_ring *b, uring *r, unsigned entries, uint16_t group) {
  memset(b, 0, sizeof *b);
  long page = sysconf(_SC_PAGESIZE);
  size_t len = entries * sizeof(struct io_uring_buf);
  len = (len + (size_t)page - 1) & ~((size_t)page - 1);
  void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) return -errno;
  b->ring = mem;
  b->map_len = len;
  b->entries = entries;
  b->mask = entries - 1;
  b->group = group;

  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)mem;
  reg.ring_entries = entries;
  reg.bgid = group;
  int rc = uring_register(r, IORING_REGISTER_PBUF_RING, &reg, 1);
  if (rc < 0) {
    munmap(mem, len);
    memset(b, 0, sizeof *b);
    return rc;
  }
  b->registered = 1;
  return 0;
}

void pbuf_ring_destroy(pbuf_ring *b, uring *r) {
  if (b->registered && r->fd >= 0) {
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.bgid = b->group;
    uring_register(r, IORING_UNREGISTER_PBUF_RING, &reg, 1);
  }
  if (b->ring) munmap(b->ring, b->map_len);
  memset(b, 0, sizeof *b);
}
