/* A minimal io_uring driven by raw system calls (no liburing): the ring
 * mappings, SQE/CQE access, and a provided-buffer ring. Nothing here knows
 * about TUN devices or JavaScript. */
#ifndef L3DSR_URING_H
#define L3DSR_URING_H

#include <linux/io_uring.h>
#include <stddef.h>
#include <stdint.h>

/* The 6.1 uapi headers predate these; the kernel numbers are stable ABI. */
#ifndef IORING_OP_READ_MULTISHOT
#define IORING_OP_READ_MULTISHOT 49
#endif

typedef struct uring {
  int fd;
  unsigned setup_flags;
  unsigned features;

  void *sq_map;
  size_t sq_map_len;
  unsigned *sq_head;
  unsigned *sq_tail;
  unsigned sq_mask;
  unsigned sq_entries;
  unsigned *sq_flags;
  struct io_uring_sqe *sqes;
  size_t sqes_len;
  /* SQEs prepared since the last io_uring_enter. */
  unsigned sq_pending;
  unsigned sq_local_tail;

  void *cq_map;
  size_t cq_map_len;
  unsigned *cq_head;
  unsigned *cq_tail;
  unsigned cq_mask;
  unsigned cq_entries;
  struct io_uring_cqe *cqes;
} uring;

/* Returns 0 or -errno. On failure nothing is left open. */
int uring_init(uring *r, unsigned sq_entries, unsigned cq_entries, unsigned setup_flags);
void uring_destroy(uring *r);

/* Next free SQE, zeroed; NULL when the SQ is full (submit first). */
struct io_uring_sqe *uring_get_sqe(uring *r);

/* Submits every prepared SQE with one io_uring_enter; with `getevents` it
 * also runs deferred completion work. Returns submitted count or -errno. */
int uring_submit(uring *r, int getevents);

/* Blocks until at least `min_complete` CQEs are ready or `timeout_ms`
 * elapsed. Returns 0 or -errno (-ETIME on timeout). */
int uring_wait(uring *r, unsigned min_complete, unsigned timeout_ms);

/* Completion queue access: peek the next CQE (NULL when empty), then
 * advance past it. */
static inline struct io_uring_cqe *uring_peek_cqe(uring *r) {
  unsigned head = *r->cq_head;
  unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
  if (head == tail) return NULL;
  return &r->cqes[head & r->cq_mask];
}
static inline void uring_cqe_seen(uring *r) {
  __atomic_store_n(r->cq_head, *r->cq_head + 1, __ATOMIC_RELEASE);
}

int uring_register(uring *r, unsigned opcode, void *arg, unsigned nr_args);

/* Whether the kernel implements `opcode` (IORING_REGISTER_PROBE). */
int uring_op_supported(uring *r, unsigned opcode);

/* A provided-buffer ring (IORING_REGISTER_PBUF_RING): the kernel takes a
 * buffer from it for each read and reports the buffer id in the CQE. */
typedef struct pbuf_ring {
  struct io_uring_buf_ring *ring;
  size_t map_len;
  unsigned entries;
  unsigned mask;
  uint16_t group;
  uint16_t local_tail;
  int registered;
} pbuf_ring;

int pbuf_ring_init(pbuf_ring *b, uring *r, unsigned entries, uint16_t group);
void pbuf_ring_destroy(pbuf_ring *b, uring *r);

/* Queues a buffer; the kernel sees it only after pbuf_ring_publish. */
static inline void pbuf_ring_add(pbuf_ring *b, void *addr, uint32_t len, uint16_t bid) {
  struct io_uring_buf *buf = &b->ring->bufs[b->local_tail & b->mask];
  buf->addr = (uint64_t)(uintptr_t)addr;
  buf->len = len;
  buf->bid = bid;
  b->local_tail++;
}
static inline void pbuf_ring_publish(pbuf_ring *b) {
  __atomic_store_n(&b->ring->tail, b->local_tail, __ATOMIC_RELEASE);
}

#endif
