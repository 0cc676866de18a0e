/*
 * What every call of salvo's addon does with N-API alike: take a Buffer's bytes, export a
 * function by name, and report a failed system call as Node reports its own. Included first
 * by each of the addon's files (for _GNU_SOURCE).
 */
#ifndef SALVO_ARGS_H
#define SALVO_ARGS_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np */
#endif
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The bytes of a Buffer argument; false when it is not one. */
static inline bool get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_buffer = false;
  return napi_is_buffer(env, value, &is_buffer) == napi_ok && is_buffer && napi_get_buffer_info(env, value, (void **)data, length) == napi_ok;
}

static inline void export_function(napi_env env, napi_value exports, const char *name, napi_callback call) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, call, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

/* The errno's name ("EBADF", "ECANCELED", ...) as Node's own fs errors carry it in `code`. */
static inline const char *errno_code(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "EIO";
}

/* An Error with `message` and the errno's name in `code`, as Node's own fs errors. */
static inline napi_value errno_error(napi_env env, int err, const char *message) {
  napi_value code, text, error;
  napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_set_named_property(env, error, "code", code);
  return error;
}

#endif
