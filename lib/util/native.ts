/**
 * salvo's own native addon (native/, built by `npm ci` with node-gyp): posix_fadvise for the
 * page cache (page-cache.ts; the current slot read ahead of its writes, volume/log.ts), punching
 * holes and a scatter read of block entries (volume/slot-file.ts), giving shared memory's pages
 * back (archive/compression-pool.ts), a batched CRC32C (format/checksum.ts) and pinning a thread to
 * one CPU (fuse/serving-cpu.ts), and systemd's readiness notification (util/sd-notify.ts). Loaded on first use.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeAddon {
  dropCache(fd: number): Promise<void>;
  /** posix_fadvise(WILLNEED) of [offset, offset + length) on the thread pool: the kernel starts reading it into the page cache. */
  prefetch(fd: number, offset: number, length: number): Promise<void>;
  /** fallocate(PUNCH_HOLE | KEEP_SIZE) on the thread pool; rejects with code EOPNOTSUPP where the filesystem cannot. */
  punchHole(fd: number, offset: number, length: number): Promise<void>;
  /** One preadv of consecutive block entries at `position`: blocks into `blocks`, CRCs into `crcs`; the bytes read. */
  readEntries(fd: number, blocks: Uint8Array, crcs: Uint8Array, blockSize: number, position: number): number;
  /** flock(fd, LOCK_EX | LOCK_NB): true when taken, false when another open file holds it; the kernel drops it when the file closes or the process ends. */
  lockFile(fd: number): boolean;
  /** madvise(MADV_DONTNEED) over the whole pages inside `bytes`, on the thread pool: they read as zeros after. */
  releasePages(bytes: Uint8Array): Promise<void>;
  /** sched_setaffinity of the calling thread to the one CPU `cpu`; throws (code EINVAL) for a CPU this process may not run on. */
  pinThread(cpu: number): void;
  /** sd_notify(3): one datagram to $NOTIFY_SOCKET (a path, or '@' for an abstract name); false when it is unset; throws (with the errno's code) when it cannot be sent. */
  sdNotify(message: string): boolean;
  /** Absent where the CPU has no CRC32 instruction. */
  crc32cBlocks?(data: Uint8Array, blockSize: number, out: Uint8Array, outOffset: number, seed: number): void;
  /** Absent where the CPU has no CRC32 instruction. */
  firstBadEntry?(entries: Uint8Array, blockSize: number, seed: number): number;
  /** Absent where the CPU has no CRC32 instruction. */
  firstBadBlock?(blocks: Uint8Array, blockSize: number, crcs: Uint8Array, seed: number): number;
}

let addon: NativeAddon | null = null;

export function native(): NativeAddon {
  addon ??= load();
  return addon;
}

function load(): NativeAddon {
  // From lib/util (under the test runner) or dist/lib/util (compiled): the package root is the first folder up with package.json.
  let root = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(root, 'package.json'))) {
    const up = path.dirname(root);
    if (up === root) throw new Error(`salvo’s package root not found above ${fileURLToPath(import.meta.url)}`);
    root = up;
  }
  const file = path.join(root, 'build', 'Release', 'salvo_native.node');
  try {
    return createRequire(import.meta.url)(file) as NativeAddon;
  } catch (err) {
    throw new Error(`salvo’s native addon ${file} cannot be loaded (${(err as Error).message}); build it with \`npm ci\` or \`npx node-gyp rebuild\` in ${root}`, { cause: err });
  }
}
