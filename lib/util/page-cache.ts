/**
 * Letting go of the page cache behind a file (posix_fadvise DONTNEED), through salvo's own
 * small native addon (native/page-cache.c, built by `npm ci`): Node has no fadvise.
 *
 * Why: an archive object is written once, made durable, and is rarely read again. Left in the
 * page cache, every object takes fresh pages from the free pool, and nothing gives pages back
 * at that rate. On a VM whose balloon reports free memory to the host (this project's CI
 * machines), a fresh page costs a host fault at first touch: with archive objects cached,
 * sustained sequential writes through the mount ran at 295–412 MB/s; with them dropped once
 * durable, 483–485 (bench/fuse-io --profile seqwrite --dio --perf). Dropped pages go back to
 * the free lists and are the next ones taken, by slot writes among others.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

interface PageCacheAddon {
  dropCache(fd: number): Promise<void>;
}

let addon: PageCacheAddon | null = null;

/** Loads the addon now, so that a broken build says so when the store opens, not at its first put. */
export function checkPageCacheAddon(): void {
  addon ??= loadAddon();
}

/** Drops the file's clean cached pages (posix_fadvise DONTNEED), on the thread pool. Pages still dirty stay: fsync first. */
export function dropCache(fd: number): Promise<void> {
  addon ??= loadAddon();
  return addon.dropCache(fd);
}

function loadAddon(): PageCacheAddon {
  // From lib/util (under the test runner) or dist/lib/util (compiled): the package root is the first folder up with package.json.
  let root = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(root, 'package.json'))) {
    const up = path.dirname(root);
    if (up === root) throw new Error('page-cache: salvo’s package root not found above ' + fileURLToPath(import.meta.url));
    root = up;
  }
  const file = path.join(root, 'build', 'Release', 'page_cache.node');
  try {
    return createRequire(import.meta.url)(file) as PageCacheAddon;
  } catch (err) {
    throw new Error(`salvo’s native addon ${file} cannot be loaded (${(err as Error).message}); build it with \`npm ci\` or \`npx node-gyp rebuild\` in ${root}`, { cause: err });
  }
}
