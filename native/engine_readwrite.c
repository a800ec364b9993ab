/* The portable engine: libuv polls the non-blocking TUN fd, packets are
 * read() into slots until EAGAIN or a full batch, and each packet the
 * callback kept is written back with its own write(). Every slot is free
 * again when the callback returns, so batch entry i always uses slot i. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "device.h"

static int rw_start(tun_device *d, const engine_options *opt, char *why, size_t why_len) {
  (void)opt;
  snprintf(why, why_len, "readwrite");
  snprintf(d->detail, sizeof d->detail, "read()/write() per packet");
  d->engine = d; /* no state of its own */
  return d->fd;
}

/* libuv reports POLLERR as UV_EBADF; a read tells the real reason
 * (EBADFD once the device is deleted). */
static int error_after_poll_failure(tun_device *d, int status) {
  ssize_t r = read(d->fd, dev_slot_ptr(d, 0), d->layout.slot_size);
  if (r < 0 && errno != EAGAIN && errno != EINTR) return errno;
  return -status;
}

static void rw_on_ready(tun_device *d, int status) {
  if (status < 0) {
    dev_fail(d, error_after_poll_failure(d, status), "poll");
    return;
  }
  const uint32_t batch_max = d->layout.batch_max;
  for (int round = 0; round < MAX_BATCHES_PER_WAKEUP; round++) {
    uint32_t n = 0;
    int drained = 0;
    while (n < batch_max) {
      ssize_t r = read(d->fd, dev_slot_ptr(d, n), d->layout.slot_size);
      if (r > 0) {
        dev_batch_set(d, n, n, (uint32_t)r);
        n++;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno != EAGAIN) dev_fail(d, errno, "read");
      /* r == 0 does not happen on a TUN fd; treat it like "nothing more". */
      drained = 1;
      break;
    }
    if (n > 0) {
      if (!dev_dispatch(d, n)) return;
      for (uint32_t i = 0; i < n; i++) {
        uint32_t len = dev_out_length(d, i);
        if (len == 0) continue;
        ssize_t w;
        do {
          w = write(d->fd, dev_slot_ptr(d, d->batch_slots[i]), len);
        } while (w < 0 && errno == EINTR);
        dev_count_write(d, w < 0 ? -errno : (int)w);
      }
    }
    if (drained || d->failed_errno) return;
  }
  /* Still readable: libuv's level-triggered poll calls back next turn. */
}

static void rw_stop(tun_device *d) {
  d->engine = NULL;
}

const engine_ops readwrite_engine_ops = {
    .name = ENGINE_READWRITE_NAME,
    .start = rw_start,
    .on_ready = rw_on_ready,
    .stop = rw_stop,
};
