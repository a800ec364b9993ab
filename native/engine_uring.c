/* The io_uring engine. The slots are the buffers of a provided-buffer ring:
 * the kernel reads each packet straight into a free slot (multishot read,
 * or several single-shot reads with buffer select), completions are reaped
 * in batches, the callback runs, and every write of the batch goes out with
 * one io_uring_enter. A slot goes back into the buffer ring when its write
 * completes (at once when the callback dropped the packet).
 *
 * libuv learns about completions through an eventfd registered with the
 * ring, so the event loop never blocks in io_uring. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "device.h"
#include "uring.h"

/* user_data: what the request was, and for writes the slot it holds. */
enum { REQ_READ = 1, REQ_WRITE = 2, REQ_CANCEL = 3 };
#define REQ_KIND_SHIFT 32
#define REQ_SLOT_MASK 0xffffffffu

static const uint16_t BUFFER_GROUP = 0;
static const unsigned DEFAULT_READS_IN_FLIGHT = 32;
/* How long close() waits for the kernel to give back cancelled requests. */
static const unsigned CANCEL_WAIT_MS = 100;
static const unsigned CANCEL_WAIT_ROUNDS = 50;
/* io_uring_buf.bid is 16 bits wide. */
static const uint32_t MAX_SLOTS = 32768;

typedef struct uring_engine {
  uring ring;
  pbuf_ring bufs;
  int efd;
  int multishot;
  int defer_taskrun;
  /* Multishot only: no read has succeeded yet, so -EINVAL means the kernel
   * does not take the opcode for this file and single-shot reads are used. */
  int multishot_unproven;
  unsigned reads_target;
  unsigned reads_armed;
  unsigned writes_inflight;
  unsigned cancels_inflight;
  /* Buffers the kernel can still pick: published minus consumed. */
  uint32_t bufs_available;
  int bufs_dirty;
} uring_engine;

static uint64_t req(unsigned kind, uint32_t slot) {
  return ((uint64_t)kind << REQ_KIND_SHIFT) | slot;
}

static unsigned next_pow2(unsigned v) {
  unsigned p = 1;
  while (p < v) p <<= 1;
  return p;
}

static struct io_uring_sqe *get_sqe(uring_engine *e) {
  struct io_uring_sqe *sqe = uring_get_sqe(&e->ring);
  if (sqe) return sqe;
  /* SQ full: push what is prepared and retry. */
  uring_submit(&e->ring, 0);
  return uring_get_sqe(&e->ring);
}

static void recycle(tun_device *d, uring_engine *e, uint32_t slot) {
  pbuf_ring_add(&e->bufs, dev_slot_ptr(d, slot), d->layout.slot_size, (uint16_t)slot);
  e->bufs_available++;
  e->bufs_dirty = 1;
}

static void publish(uring_engine *e) {
  if (!e->bufs_dirty) return;
  pbuf_ring_publish(&e->bufs);
  e->bufs_dirty = 0;
}

static void arm_reads(tun_device *d, uring_engine *e) {
  if (d->failed_errno) return;
  /* A read with no buffer to take would only complete with -ENOBUFS. */
  unsigned target = e->reads_target;
  if (target > e->bufs_available) target = e->bufs_available;
  while (e->reads_armed < target) {
    struct io_uring_sqe *sqe = get_sqe(e);
    if (!sqe) return;
    sqe->opcode = e->multishot ? IORING_OP_READ_MULTISHOT : IORING_OP_READ;
    sqe->fd = d->fd;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUFFER_GROUP;
    /* Multishot takes its length from each buffer; single-shot reads need
     * one that fits any slot. */
    sqe->len = e->multishot ? 0 : d->layout.slot_size;
    sqe->off = e->multishot ? 0 : (uint64_t)-1;
    sqe->user_data = req(REQ_READ, 0);
    e->reads_armed++;
    d->stats.read_rearms++;
  }
}

static void switch_to_single_shot(tun_device *d, uring_engine *e, int err) {
  e->multishot = 0;
  e->reads_target = DEFAULT_READS_IN_FLIGHT;
  snprintf(d->detail, sizeof d->detail, "single-shot reads x%u%s (multishot read refused: %s)",
           e->reads_target, e->defer_taskrun ? ", defer taskrun" : "", strerrorname_np(err));
}

/* Handles one read completion; returns 1 when it added a packet to the
 * batch at position `n`. */
static int on_read_cqe(tun_device *d, uring_engine *e, const struct io_uring_cqe *cqe, uint32_t n) {
  int res = cqe->res;
  int added = 0;
  if (!(cqe->flags & IORING_CQE_F_MORE)) e->reads_armed--;
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    uint32_t slot = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    e->bufs_available--;
    if (res > 0) {
      dev_batch_set(d, n, slot, (uint32_t)res);
      e->multishot_unproven = 0;
      added = 1;
    } else {
      recycle(d, e, slot);
    }
  }
  if (res >= 0) return added;
  switch (-res) {
    case ENOBUFS:
      d->stats.buffer_ring_empty++;
      break;
    case EAGAIN:
    case EINTR:
    case ECANCELED:
      break;
    case EINVAL:
      if (e->multishot && e->multishot_unproven) {
        switch_to_single_shot(d, e, EINVAL);
        break;
      }
      /* fallthrough */
    default:
      dev_fail(d, -res, "io_uring read");
  }
  return added;
}

static void on_write_cqe(tun_device *d, uring_engine *e, const struct io_uring_cqe *cqe) {
  e->writes_inflight--;
  dev_count_write(d, cqe->res);
  recycle(d, e, (uint32_t)(cqe->user_data & REQ_SLOT_MASK));
}

/* Queues the writes of a dispatched batch; dropped packets' slots go
 * straight back to the buffer ring. */
static void queue_writes(tun_device *d, uring_engine *e, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    uint32_t slot = d->batch_slots[i];
    uint32_t len = dev_out_length(d, i);
    struct io_uring_sqe *sqe = len ? get_sqe(e) : NULL;
    if (!sqe) {
      if (len) dev_count_write(d, -EBUSY);
      recycle(d, e, slot);
      continue;
    }
    sqe->opcode = IORING_OP_WRITE;
    sqe->fd = d->fd;
    sqe->addr = (uint64_t)(uintptr_t)dev_slot_ptr(d, slot);
    sqe->len = len;
    sqe->off = (uint64_t)-1;
    sqe->user_data = req(REQ_WRITE, slot);
    e->writes_inflight++;
  }
}

static void drain_eventfd(int efd) {
  uint64_t count;
  /* Not a semaphore: one read takes the whole count and leaves it at zero,
   * so a second read could only fail with EAGAIN, one system call for
   * nothing on every wake-up. */
  ssize_t ignored = read(efd, &count, sizeof count);
  (void)ignored; /* EAGAIN: a kick already taken; the ring is reaped anyway */
}

/* Makes the eventfd readable again so libuv calls back on its next turn. */
static void kick_eventfd(int efd) {
  uint64_t one = 1;
  ssize_t ignored = write(efd, &one, sizeof one);
  (void)ignored; /* can only fail if the counter would overflow: then it is readable anyway */
}

static void uring_on_ready(tun_device *d, int status) {
  uring_engine *e = d->engine;
  if (status < 0) {
    dev_fail(d, -status, "poll(io_uring eventfd)");
    return;
  }
  drain_eventfd(e->efd);
  const uint32_t batch_max = d->layout.batch_max;
  for (int round = 0;; round++) {
    publish(e);
    /* One enter per round: submits the previous batch's writes and any
     * re-armed reads, and (DEFER_TASKRUN) runs the completion work that
     * fills the CQ. */
    int rc = uring_submit(&e->ring, e->defer_taskrun);
    if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR) {
      dev_fail(d, -rc, "io_uring_enter");
      return;
    }
    uint32_t n = 0;
    unsigned reaped = 0;
    struct io_uring_cqe *cqe;
    while (n < batch_max && (cqe = uring_peek_cqe(&e->ring))) {
      reaped++;
      switch (cqe->user_data >> REQ_KIND_SHIFT) {
        case REQ_READ:
          n += (uint32_t)on_read_cqe(d, e, cqe, n);
          break;
        case REQ_WRITE:
          on_write_cqe(d, e, cqe);
          break;
        case REQ_CANCEL:
          e->cancels_inflight--;
          break;
      }
      uring_cqe_seen(&e->ring);
    }
    if (n > 0) {
      if (!dev_dispatch(d, n)) return;
      queue_writes(d, e, n);
    }
    publish(e);
    arm_reads(d, e);
    if (reaped == 0 && e->ring.sq_pending == 0) return;
    if (d->failed_errno) {
      uring_submit(&e->ring, 0);
      return;
    }
    if (round + 1 >= MAX_BATCHES_PER_WAKEUP) {
      uring_submit(&e->ring, 0);
      /* Yield to the event loop but come back: the eventfd is our only
       * wakeup, so poke it ourselves. */
      kick_eventfd(e->efd);
      return;
    }
  }
}

/* Reaps without dispatching: used while closing. */
static void reap_discard(tun_device *d, uring_engine *e) {
  struct io_uring_cqe *cqe;
  while ((cqe = uring_peek_cqe(&e->ring))) {
    switch (cqe->user_data >> REQ_KIND_SHIFT) {
      case REQ_READ:
        if (!(cqe->flags & IORING_CQE_F_MORE)) e->reads_armed--;
        if (cqe->res > 0) d->stats.discarded_on_close++;
        break;
      case REQ_WRITE:
        e->writes_inflight--;
        dev_count_write(d, cqe->res);
        break;
      case REQ_CANCEL:
        e->cancels_inflight--;
        break;
    }
    uring_cqe_seen(&e->ring);
  }
}

static void free_engine(uring_engine *e) {
  pbuf_ring_destroy(&e->bufs, &e->ring);
  uring_destroy(&e->ring);
  if (e->efd >= 0) close(e->efd);
  free(e);
}

/* The kernel may still read into the slots until every read request has
 * completed, and the slots are JavaScript memory that can be freed after
 * close(): so cancel everything and wait until it is all accounted for. */
static void uring_stop(tun_device *d) {
  uring_engine *e = d->engine;
  d->engine = NULL;
  if (!e) return;
  reap_discard(d, e);
  if (e->reads_armed > 0 || e->writes_inflight > 0) {
    struct io_uring_sqe *sqe = get_sqe(e);
    if (sqe) {
      sqe->opcode = IORING_OP_ASYNC_CANCEL;
      sqe->fd = d->fd;
      sqe->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
      sqe->user_data = req(REQ_CANCEL, 0);
      e->cancels_inflight++;
    }
  }
  for (unsigned i = 0; i < CANCEL_WAIT_ROUNDS; i++) {
    if (e->reads_armed == 0 && e->writes_inflight == 0 && e->cancels_inflight == 0) break;
    uring_wait(&e->ring, 1, CANCEL_WAIT_MS);
    reap_discard(d, e);
  }
  free_engine(e);
}

static int fail_start(uring_engine *e, int rc, const char *what, char *why, size_t why_len) {
  snprintf(why, why_len, "%s", what);
  free_engine(e);
  return rc;
}

static int uring_start(tun_device *d, const engine_options *opt, char *why, size_t why_len) {
  if (d->layout.slot_count > MAX_SLOTS) {
    snprintf(why, why_len, "io_uring buffer ring (more than %u slots)", MAX_SLOTS);
    return -EINVAL;
  }
  uring_engine *e = calloc(1, sizeof *e);
  if (!e) {
    snprintf(why, why_len, "io_uring engine allocation");
    return -ENOMEM;
  }
  e->efd = -1;
  e->ring.fd = -1;

  unsigned reads = opt->reads_in_flight ? opt->reads_in_flight : DEFAULT_READS_IN_FLIGHT;
  unsigned sq_entries = next_pow2(d->layout.batch_max + reads + 8);
  if (sq_entries < 64) sq_entries = 64;
  /* Every outstanding completion holds a slot, so the CQ cannot overflow. */
  unsigned cq_entries = next_pow2(2 * d->layout.slot_count + reads + 64);

  int rc = -EINVAL;
  e->defer_taskrun = 0;
  if (opt->defer_taskrun != 0) {
    rc = uring_init(&e->ring, sq_entries, cq_entries, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
    if (rc == 0) e->defer_taskrun = 1;
    else if (opt->defer_taskrun > 0) return fail_start(e, rc, "io_uring_setup(DEFER_TASKRUN)", why, why_len);
  }
  if (!e->defer_taskrun) rc = uring_init(&e->ring, sq_entries, cq_entries, 0);
  if (rc < 0) return fail_start(e, rc, "io_uring_setup", why, why_len);

  int have_multishot = uring_op_supported(&e->ring, IORING_OP_READ_MULTISHOT);
  if (opt->read_mode == READ_MODE_MULTISHOT && !have_multishot)
    return fail_start(e, -EOPNOTSUPP, "io_uring multishot read (kernel < 6.7)", why, why_len);
  e->multishot = opt->read_mode != READ_MODE_SINGLE && have_multishot;
  e->multishot_unproven = e->multishot && opt->read_mode == READ_MODE_AUTO;
  e->reads_target = e->multishot ? 1 : reads;

  rc = pbuf_ring_init(&e->bufs, &e->ring, next_pow2(d->layout.slot_count), BUFFER_GROUP);
  if (rc < 0) return fail_start(e, rc, "io_uring_register(PBUF_RING)", why, why_len);
  for (uint32_t s = 0; s < d->layout.slot_count; s++) recycle(d, e, s);
  publish(e);

  e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e->efd < 0) return fail_start(e, -errno, "eventfd", why, why_len);
  rc = uring_register(&e->ring, IORING_REGISTER_EVENTFD, &e->efd, 1);
  if (rc < 0) return fail_start(e, rc, "io_uring_register(EVENTFD)", why, why_len);

  d->engine = e;
  arm_reads(d, e);
  rc = uring_submit(&e->ring, 0);
  if (rc < 0) {
    d->engine = NULL;
    return fail_start(e, rc, "io_uring_enter", why, why_len);
  }
  if (e->multishot)
    snprintf(d->detail, sizeof d->detail, "multishot read%s", e->defer_taskrun ? ", defer taskrun" : "");
  else
    snprintf(d->detail, sizeof d->detail, "single-shot reads x%u%s", e->reads_target,
             e->defer_taskrun ? ", defer taskrun" : "");
  return e->efd;
}

const engine_ops uring_engine_ops = {
    .name = ENGINE_IO_URING_NAME,
    .start = uring_start,
    .on_ready = uring_on_ready,
    .stop = uring_stop,
};
