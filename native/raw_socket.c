/* The raw socket addon (build/Release/l3dsr_raw.node): one raw IPv4 or
 * IPv6 socket of one protocol for the balancer's health checks
 * (src/lb/raw-socket.ts). It sends packets the caller built (the kernel adds
 * the IP header, with the traffic class set on the socket) and hands every
 * packet the kernel delivers to the socket to a callback. Needs CAP_NET_RAW.
 *
 *   new RawSocket(family, protocol, onPacket(buffer, source))
 *   .setTrafficClass(tos)  .send(buffer, address) -> bytes  .close()
 *
 * IPv4 packets arrive with their IP header, IPv6 ones without (as raw(7)
 * and raw(7)'s IPv6 counterpart deliver them). Everything hangs off the JS
 * object, as in the TUN addon: no global mutable state. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* Packets handed to JavaScript per wakeup: the rest wait for the next turn
 * of the loop, so a flood of TCP cannot starve it. */
#define READS_PER_WAKEUP 64
#define MAX_PACKET 65536

typedef struct raw_socket raw_socket;

/* The poll handle outlives the object until libuv has closed it. */
typedef struct {
  uv_poll_t handle;
  raw_socket *sock;
  napi_async_cleanup_hook_handle hook;
} poll_box;

struct raw_socket {
  napi_env env;
  int fd;
  int family;
  napi_ref self_ref;   /* strong while open: an open socket is not collected */
  napi_ref on_packet_ref;
  napi_async_context async_ctx;
  poll_box *box;
  unsigned char buffer[MAX_PACKET];
};

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[256];
  napi_value code, msg, error;
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_create_string_utf8(env, err == EPERM ? "EPERM" : err == EACCES ? "EACCES" : "ERR_L3DSR_RAW_SOCKET", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_value errno_value;
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
  return NULL;
}

static void on_box_closed(uv_handle_t *handle) {
  poll_box *box = handle->data;
  napi_remove_async_cleanup_hook(box->hook);
  free(box);
}

static void shutdown_socket(raw_socket *s) {
  if (s->box) {
    poll_box *box = s->box;
    s->box = NULL;
    box->sock = NULL;
    uv_poll_stop(&box->handle);
    uv_close((uv_handle_t *)&box->handle, on_box_closed);
  }
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  if (s->self_ref) napi_reference_unref(s->env, s->self_ref, NULL);
  if (s->async_ctx) {
    napi_async_destroy(s->env, s->async_ctx);
    s->async_ctx = NULL;
  }
}

static void on_env_cleanup(napi_async_cleanup_hook_handle hook, void *arg) {
  (void)hook;
  poll_box *box = arg;
  if (box->sock) shutdown_socket(box->sock);
}

static void deliver(raw_socket *s, size_t length, const struct sockaddr_storage *from) {
  napi_env env = s->env;
  char text[INET6_ADDRSTRLEN] = "";
  const void *addr = from->ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)from)->sin6_addr
                                                 : (const void *)&((const struct sockaddr_in *)from)->sin_addr;
  inet_ntop(from->ss_family, addr, text, sizeof text);
  napi_value self, fn, argv[2], result;
  if (napi_get_reference_value(env, s->self_ref, &self) != napi_ok || !self) return;
  if (napi_get_reference_value(env, s->on_packet_ref, &fn) != napi_ok || !fn) return;
  void *data;
  napi_create_buffer_copy(env, length, s->buffer, &data, &argv[0]);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &argv[1]);
  if (napi_make_callback(env, s->async_ctx, self, fn, 2, argv, &result) != napi_ok) {
    /* An exception from the callback is the application's, as from any I/O callback. */
    napi_value err;
    if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  poll_box *box = handle->data;
  raw_socket *s = box->sock;
  if (!s || status < 0 || !(events & UV_READABLE)) return;
  /* The callback may close the socket: then box->sock is NULL (box itself
   * is freed on a later turn of the loop, s by its finalizer, which never
   * runs inside a callback). */
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  for (int k = 0; k < READS_PER_WAKEUP && box->sock && s->fd >= 0; k++) {
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(s->fd, s->buffer, sizeof s->buffer, MSG_DONTWAIT, (struct sockaddr *)&from, &from_len);
    if (n < 0) break; /* EAGAIN: drained; anything else: the next wakeup tells again */
    deliver(s, (size_t)n, &from);
  }
  napi_close_handle_scope(env, scope);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  raw_socket *s = data;
  shutdown_socket(s);
  if (s->on_packet_ref) napi_delete_reference(env, s->on_packet_ref);
  if (s->self_ref) napi_delete_reference(env, s->self_ref);
  free(s);
}

static raw_socket *unwrap_open(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  raw_socket *s = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok || napi_unwrap(env, self, (void **)&s) != napi_ok) return NULL;
  if (s->fd < 0) {
    napi_throw_error(env, "ERR_L3DSR_RAW_SOCKET_CLOSED", "the raw socket is closed");
    return NULL;
  }
  return s;
}

static napi_value js_new(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  int32_t family = 0, protocol = -1;
  napi_valuetype fn_type = napi_undefined;
  if (argc == 3) {
    napi_get_value_int32(env, argv[0], &family);
    napi_get_value_int32(env, argv[1], &protocol);
    napi_typeof(env, argv[2], &fn_type);
  }
  if ((family != 4 && family != 6) || protocol < 1 || protocol > 255 || fn_type != napi_function) {
    napi_throw_type_error(env, NULL, "new RawSocket(family 4|6, protocol 1-255, onPacket)");
    return NULL;
  }
  int af = family == 4 ? AF_INET : AF_INET6;
  int fd = socket(af, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) {
    char what[64];
    snprintf(what, sizeof what, "socket(%s, SOCK_RAW, %d)", family == 4 ? "AF_INET" : "AF_INET6", protocol);
    return throw_errno(env, what, errno);
  }
  raw_socket *s = calloc(1, sizeof *s);
  poll_box *box = calloc(1, sizeof *box);
  uv_loop_t *loop = NULL;
  napi_value name;
  if (!s || !box || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init_socket(loop, &box->handle, fd) != 0) {
    close(fd);
    free(s);
    free(box);
    napi_throw_error(env, "ERR_L3DSR_RAW_SOCKET", "cannot set up polling of the raw socket");
    return NULL;
  }
  s->env = env;
  s->fd = fd;
  s->family = af;
  s->box = box;
  box->sock = s;
  box->handle.data = box;
  napi_wrap(env, self, s, finalize, NULL, &s->self_ref);
  napi_reference_ref(env, s->self_ref, NULL);
  napi_create_reference(env, argv[2], 1, &s->on_packet_ref);
  napi_create_string_utf8(env, "l3dsr:RawSocket", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &s->async_ctx);
  napi_add_async_cleanup_hook(env, on_env_cleanup, box, &box->hook);
  uv_poll_start(&box->handle, UV_READABLE, on_readable);
  return self;
}

static napi_value js_set_traffic_class(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  raw_socket *s = unwrap_open(env, info, &argc, argv);
  if (!s) return NULL;
  int32_t tos = -1;
  if (argc != 1 || napi_get_value_int32(env, argv[0], &tos) != napi_ok || tos < 0 || tos > 255) {
    napi_throw_range_error(env, NULL, "setTrafficClass(tos): an integer 0-255");
    return NULL;
  }
  int ok = s->family == AF_INET ? setsockopt(s->fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos)
                                : setsockopt(s->fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos);
  if (ok != 0) return throw_errno(env, s->family == AF_INET ? "setsockopt(IP_TOS)" : "setsockopt(IPV6_TCLASS)", errno);
  return NULL;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  raw_socket *s = unwrap_open(env, info, &argc, argv);
  if (!s) return NULL;
  void *data = NULL;
  size_t length = 0;
  char text[INET6_ADDRSTRLEN + 1];
  size_t text_len = 0;
  bool is_buffer = false;
  if (argc == 2) napi_is_buffer(env, argv[0], &is_buffer);
  if (!is_buffer || napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], text, sizeof text, &text_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "send(buffer, address)");
    return NULL;
  }
  struct sockaddr_storage to;
  memset(&to, 0, sizeof to);
  socklen_t to_len;
  int parsed;
  if (s->family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&to;
    a->sin_family = AF_INET;
    parsed = inet_pton(AF_INET, text, &a->sin_addr);
    to_len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&to;
    a->sin6_family = AF_INET6;
    parsed = inet_pton(AF_INET6, text, &a->sin6_addr);
    to_len = sizeof *a;
  }
  if (parsed != 1) {
    napi_throw_type_error(env, NULL, "send(buffer, address): not an address of the socket's family");
    return NULL;
  }
  ssize_t n = sendto(s->fd, data, length, 0, (struct sockaddr *)&to, to_len);
  if (n < 0) return throw_errno(env, "sendto", errno);
  napi_create_int64(env, n, &result);
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value self;
  raw_socket *s = NULL;
  if (napi_get_cb_info(env, info, NULL, NULL, &self, NULL) == napi_ok && napi_unwrap(env, self, (void **)&s) == napi_ok && s) {
    shutdown_socket(s);
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"setTrafficClass", NULL, js_set_traffic_class, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  napi_define_class(env, "RawSocket", NAPI_AUTO_LENGTH, js_new, NULL, sizeof props / sizeof props[0], props, &cls);
  napi_set_named_property(env, exports, "RawSocket", cls);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
