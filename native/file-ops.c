/*
 * Calls Node has none for; all but readEntries are promises settled from the thread pool:
 *
 * dropCache(fd): posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED). salvo lets go of the page cache
 * behind archive objects once they are durable (lib/util/page-cache.ts says why).
 *
 * prefetch(fd, offset, length): posix_fadvise(fd, offset, length, POSIX_FADV_WILLNEED). A recycled
 * slot keeps its old segment's bytes, and a record that ends inside a page the cache no longer holds
 * makes the filesystem read that page before the write can go on: the current slot is read ahead
 * of its tail instead (lib/volume/log.ts).
 *
 * punchHole(fd, offset, length): fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ...).
 * A format 2 slot is made blank by punching its first page (lib/volume/segment-slot.ts): a
 * metadata change the filesystem's journal makes whole or not at all, where zeroing the header
 * with a write could tear and leave a damaged header in front of the old segment's records.
 * Rejects with code EOPNOTSUPP where the filesystem cannot punch holes.
 *
 * readEntries(fd, blocks, crcs, blockSize, position), synchronous like fs.readvSync: one scatter
 * read (preadv) of consecutive block entries (a u32 CRC, then blockSize bytes) at `position`,
 * each block into `blocks` back to back and each CRC into `crcs` at 4 i. Returns the bytes read,
 * fewer only at the file's end. The live volume's reads take it (lib/volume/volume.ts): the
 * iovecs built here, where a JavaScript readvSync wanted two Buffers an entry.
 *
 * releasePages(bytes): madvise(MADV_DONTNEED) over the whole pages inside a Uint8Array's memory,
 * which then reads as zeros and holds no memory until written again. The archiver keeps its
 * scratch for shared memory for life and gives its pages back whenever its queue empties
 * (lib/archive/archiver.ts): dropping the buffer instead frees nothing until every worker that
 * saw it has collected its garbage, which an idle worker never does.
 */
#define _GNU_SOURCE /* strerrorname_np, fallocate */
#include "args.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum { DROP_CACHE, PREFETCH, PUNCH_HOLE, RELEASE_PAGES } Op;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  Op op;
  int fd;
  int64_t offset;
  int64_t length;
  /* RELEASE_PAGES: the memory, and a reference that keeps its owner alive until the job completes. */
  uint8_t *data;
  napi_ref owner;
  int err;
} Job;

static void execute(napi_env env, void *data) {
  (void)env;
  Job *job = data;
  if (job->op == DROP_CACHE) {
    job->err = posix_fadvise(job->fd, 0, 0, POSIX_FADV_DONTNEED);
  } else if (job->op == PREFETCH) {
    job->err = posix_fadvise(job->fd, job->offset, job->length, POSIX_FADV_WILLNEED);
  } else if (job->op == RELEASE_PAGES) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)job->data + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)job->data + (uintptr_t)job->length) & ~(page - 1);
    job->err = end <= start || madvise((void *)start, end - start, MADV_DONTNEED) == 0 ? 0 : errno;
  } else {
    job->err = fallocate(job->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, job->offset, job->length) == 0 ? 0 : errno;
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  Job *job = data;
  napi_value result;
  if (status == napi_ok && job->err == 0) {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    int err = status == napi_ok ? job->err : ECANCELED;
    char message[160];
    if (job->op == DROP_CACHE) snprintf(message, sizeof message, "posix_fadvise(DONTNEED) of fd %d: %s", job->fd, strerror(err));
    else if (job->op == PREFETCH) snprintf(message, sizeof message, "posix_fadvise(WILLNEED) of fd %d at %lld, %lld bytes: %s", job->fd, (long long)job->offset, (long long)job->length, strerror(err));
    else if (job->op == RELEASE_PAGES) snprintf(message, sizeof message, "madvise(DONTNEED) of %lld bytes: %s", (long long)job->length, strerror(err));
    else snprintf(message, sizeof message, "fallocate(PUNCH_HOLE) of fd %d at %lld, %lld bytes: %s", job->fd, (long long)job->offset, (long long)job->length, strerror(err));
    napi_reject_deferred(env, job->deferred, errno_error(env, err, message));
  }
  if (job->owner) napi_delete_reference(env, job->owner);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value queue(napi_env env, Job *job, const char *name) {
  napi_value promise, resource;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, NULL, resource, execute, complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

static Job *new_job(napi_env env, Op op, int32_t fd) {
  Job *job = calloc(1, sizeof *job);
  if (!job) napi_throw_error(env, "ENOMEM", "out of memory");
  else job->op = op, job->fd = fd;
  return job;
}

static napi_value drop_cache(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "dropCache(fd): fd must be a file descriptor");
    return NULL;
  }
  Job *job = new_job(env, DROP_CACHE, fd);
  return job ? queue(env, job, "salvo:dropCache") : NULL;
}

/* The (fd, offset, length) calls: punchHole and prefetch. */
static napi_value range_job(napi_env env, napi_callback_info info, Op op, const char *name) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int64_t offset, length;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || offset < 0 || length <= 0) {
    char message[120];
    snprintf(message, sizeof message, "%s(fd, offset, length): a file descriptor, an offset >= 0 and a length > 0", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return NULL;
  }
  Job *job = new_job(env, op, fd);
  if (!job) return NULL;
  job->offset = offset, job->length = length;
  char resource[40];
  snprintf(resource, sizeof resource, "salvo:%s", name);
  return queue(env, job, resource);
}

static napi_value punch_hole(napi_env env, napi_callback_info info) {
  return range_job(env, info, PUNCH_HOLE, "punchHole");
}

static napi_value prefetch(napi_env env, napi_callback_info info) {
  return range_job(env, info, PREFETCH, "prefetch");
}

static napi_value release_pages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_typedarray_type type;
  size_t length;
  void *data;
  bool is_typedarray = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is_typedarray) != napi_ok || !is_typedarray ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "releasePages(bytes): bytes must be a Uint8Array");
    return NULL;
  }
  Job *job = new_job(env, RELEASE_PAGES, -1);
  if (!job) return NULL;
  job->data = data, job->length = (int64_t)length;
  napi_create_reference(env, argv[0], 1, &job->owner);
  return queue(env, job, "salvo:releasePages");
}

/* The entries one preadv reads at most: two iovecs each, within the kernel's IOV_MAX (1024). */
#define ENTRIES_MAX 512

static napi_value read_entries(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd;
  uint32_t block_size;
  int64_t position;
  uint8_t *blocks, *crcs;
  size_t length, crcs_length;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || !get_bytes(env, argv[1], &blocks, &length) ||
      !get_bytes(env, argv[2], &crcs, &crcs_length) || napi_get_value_uint32(env, argv[3], &block_size) != napi_ok ||
      napi_get_value_int64(env, argv[4], &position) != napi_ok || position < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "readEntries(fd, blocks: Buffer, crcs: Buffer, blockSize: number, position >= 0)");
    return NULL;
  }
  size_t count = block_size ? length / block_size : 0;
  if (block_size == 0 || count * block_size != length || count > ENTRIES_MAX || crcs_length / 4 < count) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "readEntries: blocks is not whole blocks (at most 512), or crcs has no room for a CRC each");
    return NULL;
  }
  struct iovec iov[2 * ENTRIES_MAX];
  for (size_t i = 0; i < count; i++) {
    iov[2 * i] = (struct iovec){ crcs + 4 * i, 4 };
    iov[2 * i + 1] = (struct iovec){ blocks + i * block_size, block_size };
  }
  /* A short read goes on from where it stopped, until the end of the file. */
  size_t total = 0, first = 0, want = count * ((size_t)block_size + 4);
  while (total < want) {
    ssize_t n = preadv(fd, iov + first, (int)(2 * count - first), position + (off_t)total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      char message[160];
      snprintf(message, sizeof message, "preadv of %zu block entries at %lld: %s", count, (long long)position, strerror(err));
      napi_throw(env, errno_error(env, err, message));
      return NULL;
    }
    if (n == 0) break;
    total += (size_t)n;
    for (size_t left = (size_t)n; left > 0;) {
      size_t step = left < iov[first].iov_len ? left : iov[first].iov_len;
      iov[first].iov_base = (uint8_t *)iov[first].iov_base + step;
      iov[first].iov_len -= step;
      left -= step;
      if (iov[first].iov_len == 0) first++;
    }
  }
  napi_value result;
  napi_create_int64(env, (int64_t)total, &result);
  return result;
}

/*
 * flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another open file holds it. The
 * kernel releases it when the file is closed, or the process ends however it ends: a lock no
 * process holds is never taken for one a live process holds.
 */
static napi_value lock_file(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "lockFile(fd): fd must be a file descriptor");
    return NULL;
  }
  int rc;
  do rc = flock(fd, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EWOULDBLOCK) {
    napi_throw(env, errno_error(env, errno, "flock"));
    return NULL;
  }
  napi_value result;
  napi_get_boolean(env, rc == 0, &result);
  return result;
}

void register_file_ops(napi_env env, napi_value exports) {
  export_function(env, exports, "lockFile", lock_file);
  export_function(env, exports, "dropCache", drop_cache);
  export_function(env, exports, "punchHole", punch_hole);
  export_function(env, exports, "prefetch", prefetch);
  export_function(env, exports, "releasePages", release_pages);
  export_function(env, exports, "readEntries", read_entries);
}
