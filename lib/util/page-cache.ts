/**
 * Letting go of the page cache behind a file (posix_fadvise DONTNEED), through salvo's own
 * native addon (native/file-ops.c): Node has no fadvise.
 *
 * Why: an archive object is written once, made durable, and is rarely read again. Left in the
 * page cache, every object takes fresh pages from the free pool, and on a VM whose balloon
 * reports free memory to the host a fresh page costs a host fault at first touch. Dropped pages
 * go back to the free lists and are the next ones taken, by slot writes among others
 * (BENCHMARKS.md, "Archive objects leave the page cache").
 */
import { native } from './native.js';

/** Loads the addon now, so that a broken build says so when the store opens, not at its first put. */
export function checkPageCacheAddon(): void {
  native();
}

/** Drops the file's clean cached pages (posix_fadvise DONTNEED), on the thread pool. Pages still dirty stay: fsync first. */
export function dropCache(fd: number): Promise<void> {
  return native().dropCache(fd);
}
