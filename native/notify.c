/*
 * sdNotify(message): sd_notify(3) without libsystemd. systemd's Type=notify services say they
 * are ready (and that they are stopping) in one datagram to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or an abstract name when it starts with '@'); Node has no datagram
 * sockets of that family, and linking libsystemd for one sendto is not worth a dependency.
 * Returns false when $NOTIFY_SOCKET is unset (not run by systemd); throws an Error with the
 * errno's name in `code` when the datagram cannot be sent.
 * `salvo mount` calls it from lib/util/sd-notify.ts (contrib/systemd/salvo-mount@.service).
 */
#include "args.h"
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static napi_value sd_notify_call(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char message[4096];
  size_t length = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], message, sizeof message, &length) != napi_ok || length == 0 || length >= sizeof message - 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sdNotify(message): message must be a non-empty string under 4 KiB");
    return NULL;
  }
  napi_value result;
  const char *name = getenv("NOTIFY_SOCKET");
  if (name == NULL || name[0] == '\0') {
    napi_get_boolean(env, false, &result);
    return result;
  }
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  size_t name_length = strlen(name);
  if ((name[0] != '/' && name[0] != '@') || name_length >= sizeof address.sun_path) {
    napi_throw(env, errno_error(env, EINVAL, "NOTIFY_SOCKET is neither an absolute path nor an abstract name ('@…') that fits a socket address"));
    return NULL;
  }
  memcpy(address.sun_path, name, name_length);
  if (name[0] == '@') address.sun_path[0] = '\0'; /* abstract: no terminating NUL counts */
  socklen_t address_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name_length + (name[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ssize_t sent = fd < 0 ? -1 : sendto(fd, message, length, MSG_NOSIGNAL, (struct sockaddr *)&address, address_length);
  int err = errno;
  if (fd >= 0) close(fd);
  if (sent < 0) {
    char text[160];
    snprintf(text, sizeof text, "sending to NOTIFY_SOCKET %.100s: %s", name, strerror(err));
    napi_throw(env, errno_error(env, err, text));
    return NULL;
  }
  napi_get_boolean(env, true, &result);
  return result;
}

void register_notify(napi_env env, napi_value exports) {
  export_function(env, exports, "sdNotify", sd_notify_call);
}
