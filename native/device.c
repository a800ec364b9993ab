#include "device.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The libuv handle outlives the device's use of it: uv_close completes
 * asynchronously, so the handle is a separate allocation freed in its close
 * callback. The async cleanup hook makes a worker's teardown (or the main
 * thread's exit) stop the data path and wait for that close. */
struct poll_box {
  uv_poll_t handle;
  tun_device *dev; /* NULL once the device let go */
  napi_async_cleanup_hook_handle hook;
};

static void on_poll(uv_poll_t *handle, int status, int events);

napi_value make_errno_error(napi_env env, int err, const char *call, const char *device) {
  const char *code = strerrorname_np(err);
  char codebuf[16];
  if (!code) {
    snprintf(codebuf, sizeof codebuf, "E%d", err);
    code = codebuf;
  }
  char msg[256];
  snprintf(msg, sizeof msg, "%s on %s failed: %s (%s)", call, device && device[0] ? device : "TUN device",
           strerror(err), code);
  napi_value jcode, jmsg, error, jerrno, jcall;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
  napi_create_error(env, jcode, jmsg, &error);
  napi_create_int32(env, -err, &jerrno);
  napi_set_named_property(env, error, "errno", jerrno);
  napi_create_string_utf8(env, call, NAPI_AUTO_LENGTH, &jcall);
  napi_set_named_property(env, error, "syscall", jcall);
  return error;
}

void throw_errno(napi_env env, int err, const char *call, const char *device) {
  napi_throw(env, make_errno_error(env, err, call, device));
}

void dev_fail(tun_device *d, int err, const char *call) {
  if (d->failed_errno) return;
  d->failed_errno = err;
  d->failed_call = call;
  d->stats.read_errors++;
}

void dev_count_write(tun_device *d, int result) {
  if (result >= 0) {
    d->stats.packets_written++;
    d->stats.bytes_written += (uint64_t)result;
    return;
  }
  int err = -result;
  d->stats.write_errors++;
  if (err == EAGAIN || err == ENOBUFS) d->stats.write_drops++;
  if (err > 0 && err < ERRNO_COUNTED) d->stats.write_errno[err]++;
}

static int open_callback_scope(tun_device *d) {
  if (d->cb_scope_open) return 1;
  napi_value self, fn;
  if (napi_get_reference_value(d->env, d->self_ref, &self) != napi_ok || !self) return 0;
  if (napi_get_reference_value(d->env, d->on_batch_ref, &fn) != napi_ok || !fn) return 0;
  if (napi_open_callback_scope(d->env, self, d->async_ctx, &d->cb_scope) != napi_ok) return 0;
  d->cb_on_batch = fn;
  d->cb_scope_open = 1;
  return 1;
}

static void close_callback_scope(tun_device *d) {
  if (!d->cb_scope_open) return;
  d->cb_scope_open = 0;
  d->cb_on_batch = NULL;
  napi_close_callback_scope(d->env, d->cb_scope);
}

/* An exception thrown by a callback is the application's: it goes to
 * process 'uncaughtException' like any exception thrown from an I/O
 * callback. */
static void rethrow_pending(tun_device *d) {
  napi_value err;
  if (napi_get_and_clear_last_exception(d->env, &err) == napi_ok) napi_fatal_exception(d->env, err);
}

static unsigned hist_bucket(uint32_t n) {
  unsigned b = 31 - (unsigned)__builtin_clz(n);
  return b < BATCH_HIST_BUCKETS ? b : BATCH_HIST_BUCKETS - 1;
}

/* Recorded as the failed call when the memory moved. */
static const char MEMORY_MOVED[] =
    "WebAssembly.Memory check (the memory moved when it grew; the data path stopped before using its old address)";

/* Whether the slots are still where attach() found them. Every grow()
 * detaches the buffer attach() saw (even grow(0)); V8 grows in place when it
 * reserved the room, and then the new buffer starts at the same address and
 * the data path goes on with it. A memory that moved has freed the old
 * address: it is never used again. Cheap when nothing changed: one check
 * of the buffer last seen. */
static int memory_intact(tun_device *d) {
  if (d->memory_moved) return 0;
  napi_env env = d->env;
  napi_value seen, memory, getter, fresh;
  bool detached = false;
  if (napi_get_reference_value(env, d->buffer_ref, &seen) == napi_ok && seen &&
      napi_is_detached_arraybuffer(env, seen, &detached) == napi_ok && !detached)
    return 1;
  void *data = NULL;
  size_t len = 0;
  bool is_ab = false;
  if (napi_get_reference_value(env, d->memory_ref, &memory) == napi_ok && memory &&
      napi_get_reference_value(env, d->buffer_getter_ref, &getter) == napi_ok && getter &&
      napi_call_function(env, memory, getter, 0, NULL, &fresh) == napi_ok &&
      napi_is_arraybuffer(env, fresh, &is_ab) == napi_ok && is_ab &&
      napi_get_arraybuffer_info(env, fresh, &data, &len) == napi_ok && data == d->layout.mem &&
      len >= d->layout.mem_len) {
    napi_ref next;
    if (napi_create_reference(env, fresh, 1, &next) == napi_ok) {
      napi_delete_reference(env, d->buffer_ref);
      d->buffer_ref = next;
    }
    return 1;
  }
  bool pending = false;
  napi_value ignored;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
  d->memory_moved = 1;
  dev_fail(d, EFAULT, MEMORY_MOVED);
  return 0;
}

int dev_dispatch(tun_device *d, uint32_t n) {
  d->stats.batches++;
  d->stats.batch_hist[hist_bucket(n)]++;
  if (!open_callback_scope(d)) {
    memset(d->layout.lengths, 0, n * sizeof(uint32_t));
    return !d->close_requested && !d->closed;
  }
  napi_value argv[1], recv;
  napi_create_uint32(d->env, n, &argv[0]);
  napi_get_undefined(d->env, &recv);
  d->in_js = 1;
  napi_status st = napi_call_function(d->env, recv, d->cb_on_batch, 1, argv, NULL);
  d->in_js = 0;
  if (st != napi_ok) {
    /* The callback did not finish: its verdicts cannot be trusted, so the
     * batch is dropped rather than written half-processed. */
    d->stats.callback_errors++;
    memset(d->layout.lengths, 0, n * sizeof(uint32_t));
    rethrow_pending(d);
  }
  /* The callback may have grown the memory: nothing is written from a slot
   * whose address moved. */
  return !d->close_requested && !d->closed && memory_intact(d);
}

uint32_t dev_out_length(tun_device *d, uint32_t i) {
  uint32_t len = d->layout.lengths[i];
  if (len == 0) {
    d->stats.skipped++;
    return 0;
  }
  if (len > d->layout.slot_size) {
    d->stats.bad_lengths++;
    return 0;
  }
  return len;
}

static void on_box_closed(uv_handle_t *handle) {
  poll_box *box = handle->data;
  napi_remove_async_cleanup_hook(box->hook);
  free(box);
}

static void release_box(tun_device *d) {
  poll_box *box = d->box;
  if (!box) return;
  d->box = NULL;
  box->dev = NULL;
  uv_poll_stop(&box->handle);
  uv_close((uv_handle_t *)&box->handle, on_box_closed);
}

static void on_env_cleanup(napi_async_cleanup_hook_handle hook, void *arg) {
  (void)hook;
  poll_box *box = arg;
  /* With dev gone the close is already under way; its callback removes
   * this hook, which is what lets the environment finish. */
  if (box->dev) dev_shutdown(box->dev);
}

static void delete_ref(napi_env env, napi_ref *ref) {
  if (*ref) {
    napi_delete_reference(env, *ref);
    *ref = NULL;
  }
}

void dev_shutdown(tun_device *d) {
  if (d->closed) return;
  d->closed = 1;
  release_box(d);
  if (d->ops && d->engine) d->ops->stop(d);
  d->engine = NULL;
  if (d->fd >= 0) close(d->fd);
  d->fd = -1;
  free(d->batch_slots);
  d->batch_slots = NULL;
  delete_ref(d->env, &d->on_batch_ref);
  delete_ref(d->env, &d->on_error_ref);
  delete_ref(d->env, &d->buffer_ref);
  delete_ref(d->env, &d->memory_ref);
  delete_ref(d->env, &d->buffer_getter_ref);
  delete_ref(d->env, &d->self_ref);
  if (d->async_ctx) {
    napi_async_destroy(d->env, d->async_ctx);
    d->async_ctx = NULL;
  }
}

/* Stops reading after a fatal error and tells JavaScript once. The device
 * stays open (counters readable) until close(). */
static void report_failure(tun_device *d) {
  d->failed_reported = 1;
  if (d->box) uv_poll_stop(&d->box->handle);
  if (!d->on_error_ref) return;
  napi_value fn, recv, err;
  if (napi_get_reference_value(d->env, d->on_error_ref, &fn) != napi_ok || !fn) return;
  if (!open_callback_scope(d)) return;
  err = make_errno_error(d->env, d->failed_errno, d->failed_call, d->name);
  napi_get_undefined(d->env, &recv);
  d->in_js = 1;
  napi_status st = napi_call_function(d->env, recv, fn, 1, &err, NULL);
  d->in_js = 0;
  if (st != napi_ok) rethrow_pending(d);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)events;
  poll_box *box = handle->data;
  tun_device *d = box->dev;
  if (!d || d->closed) return;
  napi_handle_scope hs;
  napi_open_handle_scope(d->env, &hs);
  d->stats.wakeups++;
  if (memory_intact(d)) d->ops->on_ready(d, status);
  if (d->memory_moved && d->engine) {
    /* Stop the kernel writing into the old address at once: the poll handle
     * first (the engine closes the fd it watches), then the engine, which
     * cancels and reaps every request. */
    release_box(d);
    d->ops->stop(d);
    d->engine = NULL;
  }
  if (d->failed_errno && !d->failed_reported && !d->close_requested && !d->closed) report_failure(d);
  if (d->close_requested) dev_shutdown(d);
  close_callback_scope(d);
  napi_close_handle_scope(d->env, hs);
}

int dev_attach(tun_device *d, const batch_layout *layout, const engine_options *opt, napi_value self,
               napi_value memory, napi_value buffer_getter, napi_value buffer, napi_value on_batch,
               napi_value on_error) {
  napi_env env = d->env;
  d->layout = *layout;
  d->batch_slots = calloc(layout->batch_max, sizeof(uint32_t));
  if (!d->batch_slots) {
    throw_errno(env, ENOMEM, "attach", d->name);
    return -1;
  }

  const engine_ops *ops = NULL;
  int poll_fd = -1;
  d->fallback_reason[0] = '\0';
  if (opt->engine != ENGINE_READWRITE) {
    char why[160];
    d->ops = &uring_engine_ops;
    poll_fd = uring_engine_ops.start(d, opt, why, sizeof why);
    if (poll_fd >= 0) {
      ops = &uring_engine_ops;
    } else if (opt->engine == ENGINE_IO_URING) {
      d->ops = NULL;
      free(d->batch_slots);
      d->batch_slots = NULL;
      napi_value e = make_errno_error(env, -poll_fd, why, d->name);
      napi_throw(env, e);
      return -1;
    } else {
      snprintf(d->fallback_reason, sizeof d->fallback_reason, "%s: %s", why, strerror(-poll_fd));
    }
  }
  if (!ops) {
    char why[160];
    d->ops = &readwrite_engine_ops;
    poll_fd = readwrite_engine_ops.start(d, opt, why, sizeof why);
    if (poll_fd < 0) {
      d->ops = NULL;
      free(d->batch_slots);
      d->batch_slots = NULL;
      throw_errno(env, -poll_fd, why, d->name);
      return -1;
    }
    ops = &readwrite_engine_ops;
  }

  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  poll_box *box = calloc(1, sizeof *box);
  int rc = box ? uv_poll_init(loop, &box->handle, poll_fd) : UV_ENOMEM;
  if (rc != 0) {
    free(box);
    ops->stop(d);
    d->engine = NULL;
    d->ops = NULL;
    free(d->batch_slots);
    d->batch_slots = NULL;
    throw_errno(env, -rc, "uv_poll_init", d->name);
    return -1;
  }
  box->handle.data = box;
  box->dev = d;
  d->box = box;
  napi_add_async_cleanup_hook(env, on_env_cleanup, box, &box->hook);

  /* While attached the device keeps its JS object (and through it the
   * memory and callbacks) alive, like any active libuv handle would. */
  napi_create_reference(env, self, 1, &d->self_ref);
  napi_create_reference(env, memory, 1, &d->memory_ref);
  napi_create_reference(env, buffer, 1, &d->buffer_ref);
  napi_create_reference(env, buffer_getter, 1, &d->buffer_getter_ref);
  napi_create_reference(env, on_batch, 1, &d->on_batch_ref);
  if (on_error) napi_create_reference(env, on_error, 1, &d->on_error_ref);
  napi_value resource_name;
  napi_create_string_utf8(env, "L3dsrTunBatch", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, self, resource_name, &d->async_ctx);

  d->attached = 1;
  uv_poll_start(&box->handle, UV_READABLE, on_poll);
  if (d->unref) uv_unref((uv_handle_t *)&box->handle);
  return 0;
}

void dev_set_ref(tun_device *d, int ref) {
  d->unref = !ref;
  if (!d->box) return;
  if (ref)
    uv_ref((uv_handle_t *)&d->box->handle);
  else
    uv_unref((uv_handle_t *)&d->box->handle);
}
