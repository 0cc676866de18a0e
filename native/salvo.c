/*
 * salvo's native addon: what Node does not offer and no well-kept package does better.
 * Loaded by lib/util/native.ts; built by `npm ci` (the package's install script, node-gyp).
 */
#define NAPI_VERSION 8
#include <node_api.h>

void register_file_ops(napi_env env, napi_value exports);
void register_crc32c(napi_env env, napi_value exports);
void register_threads(napi_env env, napi_value exports);
void register_notify(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  register_file_ops(env, exports);
  register_crc32c(env, exports);
  register_threads(env, exports);
  register_notify(env, exports);
  return exports;
}
