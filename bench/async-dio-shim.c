/*
 * An experiment for `fuse-io --async-dio`, never part of salvo. Preloaded (LD_PRELOAD) into a
 * FUSE server built on libfuse 2.9 (fuse-native), it adds FUSE_ASYNC_DIO to the server's INIT
 * reply. libfuse 2.9 cannot ask for it (it came with libfuse 3), and without it the kernel sends
 * the requests of one direct-I/O write (a loop device with --direct-io=on) one at a time, each
 * waiting for the reply to the one before: throughput is then 128 KiB per round trip.
 *
 * It watches read() for the kernel's INIT request (opcode 26) and writev() for the reply with
 * the same unique id, and ORs FUSE_ASYNC_DIO into fuse_init_out.flags when the kernel offered
 * it. With SALVO_ASYNC_DIO_LOG set, it appends a line per INIT to that file, so the benchmark
 * can check that every server it measured ran with it.
 *
 *   cc -shared -fPIC -O2 -o async-dio-shim.so async-dio-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#define FUSE_INIT 26
#define FUSE_ASYNC_DIO (1u << 15)

struct fuse_in_header { uint32_t len, opcode; uint64_t unique, nodeid; uint32_t uid, gid, pid, padding; };
struct fuse_out_header { uint32_t len; int32_t error; uint64_t unique; };
/* fuse_init_in and fuse_init_out both start with major, minor, max_readahead, flags. */
#define INIT_FLAGS_OFFSET 12

static uint64_t init_unique;
static uint32_t init_flags_offered;

ssize_t read(int fd, void *buf, size_t count) {
  static ssize_t (*real_read)(int, void *, size_t);
  if (!real_read) real_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
  ssize_t n = real_read(fd, buf, count);
  if (n >= (ssize_t)(sizeof(struct fuse_in_header) + INIT_FLAGS_OFFSET + 4)) {
    const struct fuse_in_header *in = buf;
    if (in->len == (uint32_t)n && in->opcode == FUSE_INIT) {
      init_unique = in->unique;
      init_flags_offered = *(const uint32_t *)((const char *)buf + sizeof *in + INIT_FLAGS_OFFSET);
    }
  }
  return n;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  static ssize_t (*real_writev)(int, const struct iovec *, int);
  if (!real_writev) real_writev = (ssize_t (*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
  if (init_unique != 0 && iovcnt >= 2 && iov[0].iov_len == sizeof(struct fuse_out_header) && iov[1].iov_len >= INIT_FLAGS_OFFSET + 4) {
    const struct fuse_out_header *out = iov[0].iov_base;
    if (out->unique == init_unique && out->error == 0) {
      uint32_t *flags = (uint32_t *)((char *)iov[1].iov_base + INIT_FLAGS_OFFSET);
      if (init_flags_offered & FUSE_ASYNC_DIO) *flags |= FUSE_ASYNC_DIO;
      const char *log = getenv("SALVO_ASYNC_DIO_LOG");
      FILE *f = log ? fopen(log, "a") : NULL;
      if (f) {
        fprintf(f, "%d %s\n", (int)getpid(), (*flags & FUSE_ASYNC_DIO) ? "on" : "not offered by the kernel");
        fclose(f);
      }
      init_unique = 0;
    }
  }
  return real_writev(fd, iov, iovcnt);
}
