/* One open TUN queue and its data path: the batch descriptor in the caller's
 * memory, the counters, the libuv readiness handle, and the engine
 * (io_uring or read/write) that moves packets. Engines only see this
 * header; the N-API surface lives in addon.c. */
#ifndef L3DSR_DEVICE_H
#define L3DSR_DEVICE_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <net/if.h>
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "abi.generated.h"
#include "offload.h"

/* Batches handled in one wakeup before yielding to the event loop, so a
 * flood cannot starve timers and other handles. */
#define MAX_BATCHES_PER_WAKEUP 64

/* Histogram bucket k counts batches of size [2^k, 2^(k+1)). */
#define BATCH_HIST_BUCKETS 17
/* errno values counted individually (Linux errnos are < 134). */
#define ERRNO_COUNTED 134

/* Engines and read modes, named as the options name them (abi.generated.h);
 * the first of each, `auto`, is 0. */
#define ENUM_CONSTANT(id, name) id,
typedef enum engine_kind { L3DSR_ENGINES(ENUM_CONSTANT) } engine_kind;
typedef enum read_mode { L3DSR_READ_MODES(ENUM_CONSTANT) } read_mode;
#undef ENUM_CONSTANT

typedef struct engine_options {
  engine_kind engine;
  read_mode read_mode;
  /* -1: use IORING_SETUP_DEFER_TASKRUN when the kernel accepts it. */
  int defer_taskrun;
  /* Single-shot reads kept in flight (0: default). */
  unsigned reads_in_flight;
} engine_options;

/* Where the batch lives in the caller's memory (validated at attach). */
typedef struct batch_layout {
  uint8_t *mem;
  size_t mem_len;
  uint32_t slot_base;
  uint32_t slot_size;
  uint32_t slot_count;
  uint32_t batch_max;
  uint32_t *slots;   /* entry i: slot index */
  uint32_t *lengths; /* entry i: packet length in, length to write out */
} batch_layout;

/* The counters stats() reports: one uint64_t per L3DSR_TUN_COUNTERS entry
 * (abi.generated.h, which says what each counts), then the two arrays. */
typedef struct tun_stats {
#define COUNTER_FIELD(field, key) uint64_t field;
  L3DSR_TUN_COUNTERS(COUNTER_FIELD)
#undef COUNTER_FIELD
  uint64_t batch_hist[BATCH_HIST_BUCKETS];
  uint64_t write_errno[ERRNO_COUNTED]; /* failed writes by errno */
} tun_stats;

typedef struct tun_device tun_device;

typedef struct engine_ops {
  const char *name; /* as `mode` reports it: ENGINE_*_NAME */
  /* Allocates the engine and returns the fd libuv should poll, or -errno
   * with a human reason in `why`. Leaves nothing allocated on failure. */
  int (*start)(tun_device *d, const engine_options *opt, char *why, size_t why_len);
  /* The polled fd is readable (status < 0: libuv reported an error). */
  void (*on_ready)(tun_device *d, int status);
  /* Cancels and reaps whatever is in flight and frees the engine. Never
   * calls JavaScript. */
  void (*stop)(tun_device *d);
} engine_ops;

extern const engine_ops uring_engine_ops;
extern const engine_ops readwrite_engine_ops;

typedef struct poll_box poll_box;

struct tun_device {
  napi_env env;
  int fd;
  char name[IFNAMSIZ];
  int multi_queue;
  /* 0, or the virtio-net header in front of every packet (IFF_VNET_HDR). */
  uint32_t vnet_hdr_bytes;
  /* TUNSETOFFLOAD bits the kernel accepted (OFFLOAD_*). */
  unsigned offloads;

  const engine_ops *ops;
  void *engine;
  char detail[96];
  char fallback_reason[192];

  batch_layout layout;
  /* The addon's own copy of the slot indices of the current batch: the
   * shared descriptor is writable by JavaScript and is not trusted when
   * slots are recycled. */
  uint32_t *batch_slots;
  tun_stats stats;

  napi_ref self_ref;
  /* The WebAssembly.Memory the slots live in, the buffer of it that was last
   * checked, and WebAssembly.Memory.prototype's own `buffer` getter. */
  napi_ref memory_ref;
  napi_ref buffer_ref;
  napi_ref buffer_getter_ref;
  /* The memory moved (it grew and could not grow in place): the slots'
   * address is no longer ours, and the data path has stopped. */
  int memory_moved;
  napi_ref on_batch_ref;
  napi_ref on_error_ref;
  napi_async_context async_ctx;
  poll_box *box;
  int unref;

  int attached;
  int closed;
  int in_js;
  int close_requested;

  /* The first fatal data-path error, reported once through onError. */
  int failed_errno;
  const char *failed_call;
  int failed_reported;

  /* Open for the duration of one libuv callback. */
  napi_callback_scope cb_scope;
  int cb_scope_open;
  napi_value cb_on_batch;
};

static inline uint8_t *dev_slot_ptr(const tun_device *d, uint32_t slot) {
  return d->layout.mem + d->layout.slot_base + (size_t)slot * d->layout.slot_size;
}

/* Puts packet `i` of the forming batch in place. */
static inline void dev_batch_set(tun_device *d, uint32_t i, uint32_t slot, uint32_t len) {
  d->batch_slots[i] = slot;
  d->layout.slots[i] = slot;
  d->layout.lengths[i] = len;
  d->stats.packets_read++;
  d->stats.bytes_read += len;
  /* A read longer than its slot (the kernel reports the full length of
   * what did not fit) is refused later as a bad length; not parsed here. */
  if (d->vnet_hdr_bytes && len <= d->layout.slot_size) {
    uint32_t segments = vnet_gso_segments(dev_slot_ptr(d, slot), len, d->vnet_hdr_bytes);
    if (segments) {
      d->stats.gso_packets++;
      d->stats.gso_segments += segments;
    }
  }
}

/* Hands entries 0..n-1 to onBatch. Returns 1 when the engine should write
 * the batch back and go on, 0 when the device is closing or failed: the
 * engine must then return without touching the batch. */
int dev_dispatch(tun_device *d, uint32_t n);

/* Length to write for entry i after the callback (0: do not write). */
uint32_t dev_out_length(tun_device *d, uint32_t i);

/* Records a fatal data-path error; reported after the engine returns. */
void dev_fail(tun_device *d, int err, const char *call);

void dev_count_write(tun_device *d, int result);

/* Stops the data path, releases the engine, the fd and every reference.
 * Idempotent, no JavaScript is called. */
void dev_shutdown(tun_device *d);

/* Attaches the data path to the slots in `memory` (a WebAssembly.Memory
 * whose current buffer, read through `buffer_getter`, is `buffer`); returns
 * 0 or throws (pending exception). */
int dev_attach(tun_device *d, const batch_layout *layout, const engine_options *opt, napi_value self,
               napi_value memory, napi_value buffer_getter, napi_value buffer, napi_value on_batch,
               napi_value on_error);

void dev_set_ref(tun_device *d, int ref);

/* Error helpers: `code` is the errno name (EPERM, EBADFD...). */
napi_value make_errno_error(napi_env env, int err, const char *call, const char *device);
void throw_errno(napi_env env, int err, const char *call, const char *device);

#endif
