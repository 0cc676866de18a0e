/*
 * What every call of salvo's addon does with N-API alike: take a Buffer's bytes, and export a
 * function by name. Included by file-ops.c and crc32c.c.
 */
#ifndef SALVO_ARGS_H
#define SALVO_ARGS_H
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

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

#endif
