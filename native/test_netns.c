/* Test-only addon: moves the calling thread into a network namespace, so a
 * test can open TUN devices and dgram sockets inside the namespace it
 * created without a child process. Threads and child processes created
 * afterwards inherit it. Not used by the daemon. */
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static napi_value throw_sys(napi_env env, const char *call, const char *what, int err) {
  char msg[320];
  snprintf(msg, sizeof msg, "%s(%s): %s", call, what, strerror(err));
  napi_throw_error(env, strerrorname_np(err), msg);
  return NULL;
}

/* enter(path: string): number — joins the namespace at `path`
 * (/run/netns/NAME) and returns an fd for the one left, for restore(). */
static napi_value js_enter(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  char path[256];
  size_t len;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "path must be a string");
    return NULL;
  }
  int old = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (old < 0) return throw_sys(env, "open", "/proc/thread-self/ns/net", errno);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    close(old);
    return throw_sys(env, fd < 0 ? "open" : "setns", path, e);
  }
  close(fd);
  napi_create_int32(env, old, &result);
  return result;
}

/* restore(fd: number): void — goes back to the namespace enter() left. */
static napi_value js_restore(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fd must be a number from enter()");
    return NULL;
  }
  int rc = setns(fd, CLONE_NEWNET);
  int e = errno;
  close(fd);
  if (rc < 0) return throw_sys(env, "setns", "saved namespace", e);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "enter", NAPI_AUTO_LENGTH, js_enter, NULL, &fn);
  napi_set_named_property(env, exports, "enter", fn);
  napi_create_function(env, "restore", NAPI_AUTO_LENGTH, js_restore, NULL, &fn);
  napi_set_named_property(env, exports, "restore", fn);
  return exports;
}
