/*
 * dropCache(fd): a promise that posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) ran, on the
 * thread pool. Node has no fadvise; salvo uses it to let go of the page cache behind archive
 * objects once they are durable (lib/util/page-cache.ts says why).
 */
#define _GNU_SOURCE /* strerrorname_np */
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int err;
} DropCache;

static void execute(napi_env env, void *data) {
  (void)env;
  DropCache *job = data;
  job->err = posix_fadvise(job->fd, 0, 0, POSIX_FADV_DONTNEED);
}

/* The errno's name ("EBADF", "ECANCELED", ...) as Node's own fs errors carry it in `code`. */
static const char *errno_code(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "EIO";
}

static void complete(napi_env env, napi_status status, void *data) {
  DropCache *job = data;
  napi_value result;
  if (status == napi_ok && job->err == 0) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    int err = status == napi_ok ? job->err : ECANCELED;
    char message[128];
    snprintf(message, sizeof message, "posix_fadvise(DONTNEED) of fd %d: %s", job->fd, strerror(err));
    napi_value code, text;
    napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &result);
    napi_set_named_property(env, result, "code", code);
    napi_reject_deferred(env, job->deferred, result);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value drop_cache(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise, name;
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "dropCache(fd): fd must be a file descriptor");
    return NULL;
  }
  DropCache *job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, "ENOMEM", "dropCache: out of memory");
    return NULL;
  }
  job->fd = fd;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "salvo:dropCache", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

void register_page_cache(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, drop_cache, NULL, &fn);
  napi_set_named_property(env, exports, "dropCache", fn);
}
