/*
 * pinThread(cpu): sched_setaffinity of the calling thread to the one CPU `cpu`; throws an Error
 * with the errno's name in `code` (EINVAL: a CPU this process may not run on).
 *
 * `salvo mount --cpu N` calls it on the event loop's thread before the FUSE mount starts, so
 * the threads the mount starts (fuse-native's and libfuse's, which read /dev/fuse and wait for
 * each answer) inherit the CPU: lib/fuse/serving-cpu.ts says why. Node offers no such call.
 */
#include "args.h"
#include <errno.h>
#include <sched.h>
#include <stdio.h>

static napi_value pin_thread(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t cpu;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &cpu) != napi_ok || cpu < 0 || cpu >= CPU_SETSIZE) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "pinThread(cpu): cpu must be a CPU number");
    return NULL;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    int err = errno;
    char message[96];
    snprintf(message, sizeof message, "sched_setaffinity to CPU %d: %s", cpu, strerror(err));
    napi_throw(env, errno_error(env, err, message));
  }
  return NULL;
}

void register_threads(napi_env env, napi_value exports) {
  export_function(env, exports, "pinThread", pin_thread);
}
