/*
 * Slidebank's page-cache read: a positional read that succeeds only when the
 * bytes are already in the kernel's page cache (preadv2 with RWF_NOWAIT,
 * Linux 4.14 and later), done on the calling thread.
 *
 * A stored tile is a few tens of kilobytes, usually cached: copying it costs a
 * few microseconds, while an asynchronous read costs a hand-over to libuv's
 * thread pool and back, and waits behind the decoding queued there. When the
 * bytes are not cached (or the file system cannot tell), the call returns
 * undefined at once without touching the disk, and the caller reads the usual
 * asynchronous way.
 *
 * One N-API function: readCached(fd, position, length) -> Buffer | undefined.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <sys/uio.h>

/* Larger reads are copied off the main thread anyway. */
#define MAX_LENGTH (4 * 1024 * 1024)
/* JavaScript's largest exact integer: positions past it cannot be asked for. */
#define MAX_POSITION 9007199254740991LL

static napi_value undefined(napi_env env) {
  napi_value value;
  napi_get_undefined(env, &value);
  return value;
}

static napi_value read_cached(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, length;
  int64_t position;
  if (argc != 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &position) != napi_ok ||
      napi_get_value_int32(env, argv[2], &length) != napi_ok || fd < 0 || position < 0 || position > MAX_POSITION || length < 1 ||
      length > MAX_LENGTH) {
    napi_throw_type_error(env, NULL, "readCached(fd, position, length): a descriptor, a position of 0 or more and a length of 1 to 4 MiB");
    return NULL;
  }
#ifdef RWF_NOWAIT
  void *bytes;
  napi_value buffer;
  if (napi_create_buffer(env, (size_t)length, &bytes, &buffer) != napi_ok) return undefined(env);
  size_t done = 0;
  while (done < (size_t)length) {
    struct iovec part = {(char *)bytes + done, (size_t)length - done};
    ssize_t n = preadv2(fd, &part, 1, (off_t)(position + (int64_t)done), RWF_NOWAIT);
    if (n < 0 && errno == EINTR) continue;
    /* Not cached (EAGAIN), not supported here (EOPNOTSUPP, ENOSYS), past the end, or any other refusal: the caller reads. */
    if (n <= 0) return undefined(env);
    done += (size_t)n;
  }
  return buffer;
#else
  (void)fd;
  return undefined(env);
#endif
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "readCached", NAPI_AUTO_LENGTH, read_cached, NULL, &fn);
  napi_set_named_property(env, exports, "readCached", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
