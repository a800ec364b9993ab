/* The N-API surface: class TunHandle { constructor(name, multiQueue,
 * options?); name; fd; mode; detail; fallbackReason; vnetHeaderBytes;
 * offloads; attach(); stats(); writePacket(); ref(); unref(); close() },
 * and netnsCookie().
 * Argument checking and conversion live here; the data path is in
 * device.c and the engines, offload probing in offload.c.
 *
 * No global mutable state: everything hangs off the JS object, so the addon
 * can be loaded in several worker threads at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "netns.h"
#include "tun_open.h"

#define CHECK(call)                                 \
  do {                                              \
    if ((call) != napi_ok) return NULL;             \
  } while (0)

static napi_value throw_type(napi_env env, const char *code, const char *msg) {
  napi_throw_type_error(env, code, msg);
  return NULL;
}
static napi_value throw_range(napi_env env, const char *code, const char *msg) {
  napi_throw_range_error(env, code, msg);
  return NULL;
}

/* The device behind `this`, and the callback's data if `data` is given. */
static tun_device *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
                          napi_value *self, void **data) {
  napi_value this_arg;
  void *p = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &this_arg, data) != napi_ok) return NULL;
  if (napi_unwrap(env, this_arg, &p) != napi_ok || !p) {
    throw_type(env, "ERR_INVALID_THIS", "not a TunHandle");
    return NULL;
  }
  if (self) *self = this_arg;
  return p;
}

static void finalize_device(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tun_device *d = data;
  dev_shutdown(d);
  free(d);
}

/* Reads `options.offload` (a boolean, default false); 0 or -1 with an exception. */
static int get_offload_option(napi_env env, size_t argc, napi_value *argv, bool *offload) {
  *offload = false;
  if (argc < 3) return 0;
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  if (t == napi_undefined || t == napi_null) return 0;
  if (t != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "options must be an object");
    return -1;
  }
  napi_value v;
  if (napi_get_named_property(env, argv[2], "offload", &v) != napi_ok) return -1;
  napi_typeof(env, v, &t);
  if (t == napi_undefined) return 0;
  if (t != napi_boolean) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "options.offload must be a boolean");
    return -1;
  }
  napi_get_value_bool(env, v, offload);
  return 0;
}

/* new TunHandle(name: string, multiQueue: boolean, options?: { offload?: boolean }) */
static napi_value js_construct(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  char name[IFNAMSIZ];
  size_t name_len = 0, copied = 0;
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[0], &t));
  if (argc < 1 || t != napi_string) return throw_type(env, "ERR_INVALID_ARG_TYPE", "name must be a string");
  /* The full UTF-8 length first: a copy into a short buffer would end
   * silently at the last whole character that fits. */
  CHECK(napi_get_value_string_utf8(env, argv[0], NULL, 0, &name_len));
  if (name_len >= IFNAMSIZ) {
    char msg[96];
    snprintf(msg, sizeof msg, "TUN device name is %zu bytes in UTF-8, and the kernel's limit is %d", name_len, IFNAMSIZ - 1);
    return throw_range(env, "ENAMETOOLONG", msg);
  }
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &copied));
  /* A NUL inside would end the name early for the kernel. */
  if (copied != name_len || memchr(name, '\0', name_len))
    return throw_range(env, "EINVAL", "TUN device name holds a NUL character");
  bool multi = false;
  if (argc >= 2) napi_get_value_bool(env, argv[1], &multi);
  bool offload = false;
  if (get_offload_option(env, argc, argv, &offload)) return NULL;

  tun_device *d = calloc(1, sizeof *d);
  if (!d) {
    throw_errno(env, ENOMEM, "TunHandle", name);
    return NULL;
  }
  d->env = env;
  d->fd = -1;
  tun_open_error oe = {0, NULL};
  int fd = tun_open(name, multi, offload ? VNET_HDR_BYTES : 0, d->name, &oe);
  if (fd < 0) {
    free(d);
    throw_errno(env, oe.err, oe.syscall, name);
    return NULL;
  }
  d->fd = fd;
  d->multi_queue = multi;
  if (offload) {
    d->vnet_hdr_bytes = VNET_HDR_BYTES;
    /* Refused checksum offload leaves a device that still carries the
     * header but hands over only complete packets: reported as no offloads. */
    offload_probe(fd, &d->offloads);
  }
  if (napi_wrap(env, self, d, finalize_device, NULL, NULL) != napi_ok) {
    close(fd);
    free(d);
    return NULL;
  }
  return self;
}

static napi_value string_or_null(napi_env env, const char *s) {
  napi_value v;
  if (s && s[0])
    napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  else
    napi_get_null(env, &v);
  return v;
}

static napi_value name_value(napi_env env, const tun_device *d) {
  napi_value v;
  napi_create_string_utf8(env, d->name, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value fd_value(napi_env env, const tun_device *d) {
  napi_value v;
  napi_create_int32(env, d->fd, &v);
  return v;
}

static napi_value mode_value(napi_env env, const tun_device *d) {
  return string_or_null(env, d->attached && d->ops ? d->ops->name : NULL);
}

static napi_value detail_value(napi_env env, const tun_device *d) {
  return string_or_null(env, d->attached ? d->detail : NULL);
}

static napi_value fallback_reason_value(napi_env env, const tun_device *d) {
  return string_or_null(env, d->fallback_reason);
}

static napi_value vnet_header_bytes_value(napi_env env, const tun_device *d) {
  napi_value v;
  napi_create_uint32(env, d->vnet_hdr_bytes, &v);
  return v;
}

/* The granted offloads by name; null when the device was opened without. */
static napi_value offloads_value(napi_env env, const tun_device *d) {
  napi_value arr;
  if (!d->vnet_hdr_bytes) {
    napi_get_null(env, &arr);
    return arr;
  }
  const char *names[OFFLOAD_NAME_MAX];
  size_t n = offload_names(d->offloads, names);
  CHECK(napi_create_array_with_length(env, n, &arr));
  for (size_t i = 0; i < n; i++) {
    napi_value s;
    napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, (uint32_t)i, s);
  }
  return arr;
}

/* The read-only properties of a TunHandle: each is one field of the device. */
typedef struct property {
  const char *name;
  napi_value (*value)(napi_env env, const tun_device *d);
} property;

static const property PROPERTIES[] = {
    {"name", name_value},
    {"fd", fd_value},
    {"mode", mode_value},
    {"detail", detail_value},
    {"fallbackReason", fallback_reason_value},
    {"vnetHeaderBytes", vnet_header_bytes_value},
    {"offloads", offloads_value},
};
#define PROPERTY_COUNT (sizeof PROPERTIES / sizeof PROPERTIES[0])

/* The getter of every property; its data is the property. */
static napi_value js_get_property(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void *data = NULL;
  tun_device *d = unwrap(env, info, &argc, NULL, NULL, &data);
  if (!d) return NULL;
  return ((const property *)data)->value(env, d);
}

/* Reads a non-negative integer property; 0 on success, -1 with an exception. */
static int get_u32(napi_env env, napi_value obj, const char *key, uint32_t *out, int required,
                   uint32_t dflt) {
  napi_value v;
  napi_valuetype t;
  char msg[128];
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return -1;
  napi_typeof(env, v, &t);
  if (t == napi_undefined && !required) {
    *out = dflt;
    return 0;
  }
  double x;
  if (t != napi_number || napi_get_value_double(env, v, &x) != napi_ok || x < 0 || x > 4294967295.0 ||
      x != (double)(uint32_t)x) {
    snprintf(msg, sizeof msg, "%s must be an integer in 0..2^32-1", key);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return -1;
  }
  *out = (uint32_t)x;
  return 0;
}

static int get_string(napi_env env, napi_value obj, const char *key, char *out, size_t len) {
  napi_value v;
  napi_valuetype t;
  out[0] = '\0';
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return -1;
  napi_typeof(env, v, &t);
  if (t == napi_undefined) return 0;
  if (t != napi_string) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a string", key);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  size_t n;
  napi_get_value_string_utf8(env, v, out, len, &n);
  return 0;
}

static int range_inside(uint64_t off, uint64_t len, uint64_t total) {
  return off <= total && len <= total - off;
}
static int ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  return a < b + blen && b < a + alen;
}

/* The descriptor must fit the buffer and its three regions must not
 * overlap: the kernel writes into free slots at any time. */
static int parse_layout(napi_env env, napi_value buffer, napi_value obj, int segmentation, batch_layout *l) {
  void *mem;
  size_t mem_len;
  if (napi_get_arraybuffer_info(env, buffer, &mem, &mem_len) != napi_ok) return -1;
  uint32_t slots_off, lengths_off;
  if (get_u32(env, obj, "slotBase", &l->slot_base, 1, 0) || get_u32(env, obj, "slotSize", &l->slot_size, 1, 0) ||
      get_u32(env, obj, "slotCount", &l->slot_count, 1, 0) || get_u32(env, obj, "batchMax", &l->batch_max, 1, 0) ||
      get_u32(env, obj, "slotsOffset", &slots_off, 1, 0) || get_u32(env, obj, "lengthsOffset", &lengths_off, 1, 0))
    return -1;
  const char *bad = NULL;
  uint64_t slot_bytes = (uint64_t)l->slot_size * l->slot_count;
  uint64_t desc_bytes = (uint64_t)l->batch_max * sizeof(uint32_t);
  if (l->slot_size == 0) bad = "slotSize must be > 0";
  else if (l->batch_max == 0) bad = "batchMax must be > 0";
  else if (l->slot_count < l->batch_max) bad = "slotCount must be >= batchMax";
  else if ((slots_off | lengths_off) % sizeof(uint32_t)) bad = "slotsOffset and lengthsOffset must be multiples of 4";
  else if (!range_inside(l->slot_base, slot_bytes, mem_len)) bad = "slots (slotBase + slotSize * slotCount) exceed the memory";
  else if (!range_inside(slots_off, desc_bytes, mem_len)) bad = "slots array (slotsOffset + 4 * batchMax) exceeds the memory";
  else if (!range_inside(lengths_off, desc_bytes, mem_len)) bad = "lengths array (lengthsOffset + 4 * batchMax) exceeds the memory";
  else if (ranges_overlap(slots_off, desc_bytes, lengths_off, desc_bytes)) bad = "slots and lengths arrays overlap";
  else if (ranges_overlap(l->slot_base, slot_bytes, slots_off, desc_bytes) ||
           ranges_overlap(l->slot_base, slot_bytes, lengths_off, desc_bytes))
    bad = "the packet slots overlap the slots or lengths array";
  if (bad) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", bad);
    return -1;
  }
  /* With segmentation a read can be a whole GSO super-packet. A larger one
   * than GSO_MAX_PACKET (BIG TCP) fits no slot and is counted in badLengths. */
  if (segmentation && l->slot_size < OFFLOAD_MIN_SLOT_SIZE) {
    char msg[160];
    snprintf(msg, sizeof msg,
             "slotSize must be >= %u with segmentation offload (a %u-byte GSO packet behind a %u-byte header), got %u",
             OFFLOAD_MIN_SLOT_SIZE, GSO_MAX_PACKET, VNET_HDR_BYTES, l->slot_size);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return -1;
  }
  l->mem = mem;
  l->mem_len = mem_len;
  l->slots = (uint32_t *)((uint8_t *)mem + slots_off);
  l->lengths = (uint32_t *)((uint8_t *)mem + lengths_off);
  return 0;
}

#define CHOICE_NAME(id, name) name,
static const char *const ENGINE_NAMES[] = {L3DSR_ENGINES(CHOICE_NAME)};
static const char *const READ_MODE_NAMES[] = {L3DSR_READ_MODES(CHOICE_NAME)};
#undef CHOICE_NAME

/* Reads option `key`, one of `names` (absent or empty: the first, `auto`)
 * into its index; 0, or -1 with an exception. */
static int get_choice(napi_env env, napi_value obj, const char *key, const char *const *names, size_t count,
                      const char *choices, int *out) {
  char s[32];
  if (get_string(env, obj, key, s, sizeof s)) return -1;
  *out = 0;
  if (!s[0]) return 0;
  for (size_t i = 0; i < count; i++) {
    if (!strcmp(s, names[i])) {
      *out = (int)i;
      return 0;
    }
  }
  char msg[96];
  snprintf(msg, sizeof msg, "%s must be %s", key, choices);
  napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", msg);
  return -1;
}

static int parse_options(napi_env env, napi_value obj, engine_options *o) {
  memset(o, 0, sizeof *o);
  o->defer_taskrun = -1;
  napi_valuetype t;
  napi_typeof(env, obj, &t);
  if (t == napi_undefined || t == napi_null) return 0;
  int engine_index, read_mode_index;
  if (get_choice(env, obj, "engine", ENGINE_NAMES, sizeof ENGINE_NAMES / sizeof ENGINE_NAMES[0], ENGINE_CHOICES,
                 &engine_index) ||
      get_choice(env, obj, "readMode", READ_MODE_NAMES, sizeof READ_MODE_NAMES / sizeof READ_MODE_NAMES[0],
                 READ_MODE_CHOICES, &read_mode_index))
    return -1;
  o->engine = (engine_kind)engine_index;
  o->read_mode = (read_mode)read_mode_index;
  napi_value v;
  napi_get_named_property(env, obj, "deferTaskrun", &v);
  napi_typeof(env, v, &t);
  if (t == napi_boolean) {
    bool b;
    napi_get_value_bool(env, v, &b);
    o->defer_taskrun = b ? 1 : 0;
  } else if (t != napi_undefined) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "deferTaskrun must be a boolean");
    return -1;
  }
  if (get_u32(env, obj, "readsInFlight", &o->reads_in_flight, 0, 0)) return -1;
  if (o->reads_in_flight > 1024) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "readsInFlight must be <= 1024");
    return -1;
  }
  return 0;
}

/* The buffer of `memory`, which must be a WebAssembly.Memory: JavaScript can
 * transfer or detach a plain ArrayBuffer at any time (the kernel would then
 * write into freed memory, or into whatever took its place), but not a
 * Memory's buffer; and the Memory, held by reference, stays alive. The buffer
 * is read through the prototype's own getter, so a subclass or a look-alike
 * cannot hand over anything else. NULL with an exception otherwise. */
static napi_value memory_buffer(napi_env env, napi_value memory, napi_value *getter_out) {
  napi_value global, wasm, ctor, proto, object, describe, args[2], desc, getter, buffer;
  bool is_memory = false, is_ab = false;
  if (napi_get_global(env, &global) != napi_ok || napi_get_named_property(env, global, "WebAssembly", &wasm) != napi_ok ||
      napi_get_named_property(env, wasm, "Memory", &ctor) != napi_ok)
    return NULL;
  if (napi_instanceof(env, memory, ctor, &is_memory) != napi_ok) return NULL;
  if (!is_memory) {
    napi_is_arraybuffer(env, memory, &is_ab);
    return throw_type(env, "ERR_INVALID_ARG_TYPE",
                      is_ab ? "memory must be a WebAssembly.Memory, not an ArrayBuffer: JavaScript can transfer or detach "
                              "an ArrayBuffer while the kernel writes into it"
                            : "memory must be a WebAssembly.Memory");
  }
  /* Object.getOwnPropertyDescriptor(WebAssembly.Memory.prototype, "buffer").get */
  if (napi_get_named_property(env, ctor, "prototype", &proto) != napi_ok ||
      napi_get_named_property(env, global, "Object", &object) != napi_ok ||
      napi_get_named_property(env, object, "getOwnPropertyDescriptor", &describe) != napi_ok ||
      napi_create_string_utf8(env, "buffer", NAPI_AUTO_LENGTH, &args[1]) != napi_ok)
    return NULL;
  args[0] = proto;
  if (napi_call_function(env, object, describe, 2, args, &desc) != napi_ok ||
      napi_get_named_property(env, desc, "get", &getter) != napi_ok ||
      napi_call_function(env, memory, getter, 0, NULL, &buffer) != napi_ok)
    return NULL;
  napi_is_arraybuffer(env, buffer, &is_ab);
  if (!is_ab) return throw_type(env, "ERR_INVALID_ARG_TYPE", "memory must not be a shared WebAssembly.Memory");
  *getter_out = getter;
  return buffer;
}

/* attach(memory: WebAssembly.Memory, layout, options, onBatch(n), onError(err)) */
static napi_value js_attach(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  tun_device *d = unwrap(env, info, &argc, argv, &self, NULL);
  if (!d) return NULL;
  if (d->closed) {
    throw_errno(env, EBADF, "attach", d->name);
    return NULL;
  }
  if (d->attached) return throw_type(env, "ERR_INVALID_STATE", "TUN device is already attached");
  if (argc < 4) return throw_type(env, "ERR_MISSING_ARGS", "attach(memory, layout, options, onBatch, onError?)");
  napi_valuetype t;
  napi_typeof(env, argv[3], &t);
  if (t != napi_function) return throw_type(env, "ERR_INVALID_ARG_TYPE", "onBatch must be a function");
  napi_value on_error = NULL;
  if (argc >= 5) {
    napi_typeof(env, argv[4], &t);
    if (t == napi_function) on_error = argv[4];
    else if (t != napi_undefined && t != napi_null)
      return throw_type(env, "ERR_INVALID_ARG_TYPE", "onError must be a function");
  }
  batch_layout layout;
  engine_options opt;
  memset(&layout, 0, sizeof layout);
  int segmentation = (d->offloads & OFFLOAD_SEGMENTATION) != 0;
  napi_value getter = NULL, buffer = memory_buffer(env, argv[0], &getter);
  if (!buffer) return NULL;
  if (parse_layout(env, buffer, argv[1], segmentation, &layout) || parse_options(env, argv[2], &opt)) return NULL;
  if (dev_attach(d, &layout, &opt, self, argv[0], getter, buffer, argv[3], on_error)) return NULL;
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_device *d = unwrap(env, info, &argc, NULL, NULL, NULL);
  if (!d) return NULL;
  /* Inside onBatch/onError the engine is on the stack: finish when the
   * callback returns (the batch is then not written). */
  if (d->in_js)
    d->close_requested = 1;
  else
    dev_shutdown(d);
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

static void set_number(napi_env env, napi_value obj, const char *key, uint64_t v) {
  napi_value x;
  napi_create_double(env, (double)v, &x);
  napi_set_named_property(env, obj, key, x);
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  tun_device *d = unwrap(env, info, &argc, NULL, NULL, NULL);
  if (!d) return NULL;
  const tun_stats *s = &d->stats;
  napi_value o, hist, errs;
  CHECK(napi_create_object(env, &o));
#define SET_COUNTER(field, key) set_number(env, o, key, s->field);
  L3DSR_TUN_COUNTERS(SET_COUNTER)
#undef SET_COUNTER
  CHECK(napi_create_array_with_length(env, BATCH_HIST_BUCKETS, &hist));
  for (uint32_t i = 0; i < BATCH_HIST_BUCKETS; i++) {
    napi_value x;
    napi_create_double(env, (double)s->batch_hist[i], &x);
    napi_set_element(env, hist, i, x);
  }
  napi_set_named_property(env, o, "batchSizeLog2", hist);
  CHECK(napi_create_object(env, &errs));
  for (int e = 1; e < ERRNO_COUNTED; e++) {
    if (!s->write_errno[e]) continue;
    const char *name = strerrorname_np(e);
    char buf[16];
    if (!name) {
      snprintf(buf, sizeof buf, "E%d", e);
      name = buf;
    }
    set_number(env, errs, name, s->write_errno[e]);
  }
  napi_set_named_property(env, o, "writeErrorsByCode", errs);
  return o;
}

/* writePacket(bytes: Uint8Array): number — one synchronous write(). */
static napi_value js_write_packet(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  tun_device *d = unwrap(env, info, &argc, argv, NULL, NULL);
  if (!d) return NULL;
  if (d->fd < 0) {
    throw_errno(env, EBADF, "write", d->name);
    return NULL;
  }
  bool is_ta = false;
  if (argc >= 1) napi_is_typedarray(env, argv[0], &is_ta);
  if (!is_ta) return throw_type(env, "ERR_INVALID_ARG_TYPE", "packet must be a Uint8Array");
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value ab;
  CHECK(napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset));
  if (type != napi_uint8_array) return throw_type(env, "ERR_INVALID_ARG_TYPE", "packet must be a Uint8Array");
  ssize_t w;
  do {
    w = write(d->fd, data, length);
  } while (w < 0 && errno == EINTR);
  if (w < 0) {
    throw_errno(env, errno, "write", d->name);
    return NULL;
  }
  napi_value v;
  napi_create_double(env, (double)w, &v);
  return v;
}

static napi_value set_ref(napi_env env, napi_callback_info info, int ref) {
  size_t argc = 0;
  tun_device *d = unwrap(env, info, &argc, NULL, NULL, NULL);
  if (!d) return NULL;
  dev_set_ref(d, ref);
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}
static napi_value js_ref(napi_env env, napi_callback_info info) { return set_ref(env, info, 1); }
static napi_value js_unref(napi_env env, napi_callback_info info) { return set_ref(env, info, 0); }

/* netnsCookie(): bigint — the cookie of the caller's network namespace. */
static napi_value js_netns_cookie(napi_env env, napi_callback_info info) {
  (void)info;
  uint64_t cookie;
  int rc = netns_cookie(&cookie);
  if (rc < 0) {
    throw_errno(env, -rc, "getsockopt(SO_NETNS_COOKIE)", "the network namespace");
    return NULL;
  }
  napi_value v;
  CHECK(napi_create_bigint_uint64(env, cookie, &v));
  return v;
}

NAPI_MODULE_INIT() {
  static const napi_property_descriptor methods[] = {
      {"attach", NULL, js_attach, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"writePacket", NULL, js_write_packet, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, js_ref, NULL, NULL, NULL, napi_default, NULL},
      {"unref", NULL, js_unref, NULL, NULL, NULL, napi_default, NULL},
  };
  enum { METHOD_COUNT = sizeof methods / sizeof methods[0] };
  napi_property_descriptor props[PROPERTY_COUNT + METHOD_COUNT];
  for (size_t i = 0; i < PROPERTY_COUNT; i++) {
    props[i] = (napi_property_descriptor){PROPERTIES[i].name, NULL, NULL, js_get_property, NULL, NULL,
                                          napi_default, (void *)&PROPERTIES[i]};
  }
  memcpy(props + PROPERTY_COUNT, methods, sizeof methods);
  napi_value cls;
  if (napi_define_class(env, "TunHandle", NAPI_AUTO_LENGTH, js_construct, NULL, sizeof props / sizeof props[0],
                        props, &cls) != napi_ok)
    return NULL;
  if (napi_set_named_property(env, exports, "TunHandle", cls) != napi_ok) return NULL;
  napi_value cookie_fn;
  if (napi_create_function(env, "netnsCookie", NAPI_AUTO_LENGTH, js_netns_cookie, NULL, &cookie_fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "netnsCookie", cookie_fn) != napi_ok) return NULL;
  return exports;
}
