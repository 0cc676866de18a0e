/**
 * A bounded pool of open file descriptors, the least recently used closed first when it needs
 * room. A 16 TiB volume has 20,000–33,000 slot files, more than a process may often hold open
 * (`ulimit -n`), so a slot file holds a descriptor only while it is in use: the number of slot
 * files then does not depend on the limit of open files.
 *
 * A descriptor handed to an operation on the thread pool is pinned until that operation ends:
 * closing it under the operation would let the number be reused by the next open, and the
 * operation read or write another file. A pinned descriptor is never evicted; closing a file
 * whose descriptor is pinned happens when the last pin is released. Synchronous users take the
 * descriptor and use it before anything else runs, so they need no pin.
 *
 * Closing a descriptor loses no write (Linux): dirty pages belong to the file, not to the
 * descriptor, and an fdatasync on a descriptor opened later flushes every dirty page of the
 * file (checked: BENCHMARKS.md, "Figures behind the code", "A closed descriptor loses no write"). A
 * writeback error no descriptor has seen yet is reported to that later fsync too (errseq,
 * Linux ≥ 4.16), so an error is not lost with the descriptor either.
 */
import assert from 'node:assert';
import fs from 'node:fs';
import { errnoCode } from '../errors.js';

/** How the pool opens and closes files; tests give their own to count and to fail. */
export interface DescriptorSystem {
  open(path: string): number;
  close(fd: number): void;
}

const readWrite: DescriptorSystem = {
  open: (path) => fs.openSync(path, 'r+'),
  close: (fd) => fs.closeSync(fd),
};

/** One file the pool opens on demand. */
export class PooledFile {
  /** The open descriptor, or -1 while it has none. */
  fd = -1;
  /** Operations in flight on `fd`. */
  pins = 0;
  closed = false;

  constructor(readonly path: string) {}
}

export class DescriptorPool {
  /** The files holding a descriptor, least recently used first (Map keeps insertion order). */
  private readonly open = new Map<PooledFile, true>();
  /** The file last moved to the end of `open` (the most recently used), or null. */
  private newest: PooledFile | null = null;

  constructor(
    /** Descriptors the pool keeps open at most, unless more are pinned at once. */
    readonly capacity: number,
    private readonly system: DescriptorSystem = readWrite,
  ) {
    assert(Number.isInteger(capacity) && capacity >= 1);
  }

  /** Descriptors open now. */
  get size(): number {
    return this.open.size;
  }

  /** Opens `path` now (so that a missing file fails here), for later use through `take` and `pin`. */
  add(path: string): PooledFile {
    const file = new PooledFile(path);
    this.take(file);
    return file;
  }

  /**
   * The file's descriptor, opened if it has none (closing the least recently used idle one when
   * the pool is full), for use before anything else runs. Throws what open throws: EMFILE or
   * ENFILE only once no idle descriptor is left to close.
   */
  take(file: PooledFile): number {
    assert(!file.closed, `${file.path} was closed`);
    if (file.fd >= 0) {
      // Reads of one slot follow one another: moving the newest file to the end again would only
      // churn the Map, which costs most with the thousands of files a big volume keeps open
      // (BENCHMARKS.md, "Volumes of the sizes users have").
      if (this.newest !== file) {
        this.open.delete(file);
        this.open.set(file, true);
        this.newest = file;
      }
      return file.fd;
    }
    // With every descriptor pinned the pool goes over its capacity, and comes back as they are unpinned.
    while (this.open.size >= this.capacity && this.evictOne());
    for (;;) {
      try {
        file.fd = this.system.open(file.path);
        break;
      } catch (err) {
        const code = errnoCode(err);
        // The process or the system is out of descriptors (others than the pool's hold them): make room and retry.
        if ((code !== 'EMFILE' && code !== 'ENFILE') || !this.evictOne()) throw err;
      }
    }
    this.open.set(file, true);
    this.newest = file;
    return file.fd;
  }

  /** `take`, keeping the descriptor open until `unpin`: for an operation that runs off the event loop. */
  pin(file: PooledFile): number {
    const fd = this.take(file);
    file.pins++;
    return fd;
  }

  unpin(file: PooledFile): void {
    assert(file.pins > 0);
    file.pins--;
    if (file.pins > 0) return;
    if (file.closed) this.closeFd(file);
    else if (this.open.size > this.capacity) this.evictOne();
  }

  /** Closes the file for good: now, or when its last operation in flight ends. */
  close(file: PooledFile): void {
    if (file.closed) return;
    file.closed = true;
    if (file.pins === 0) this.closeFd(file);
  }

  /** Closes the least recently used descriptor that no operation holds; false when every one is pinned. */
  private evictOne(): boolean {
    for (const file of this.open.keys()) {
      if (file.pins > 0) continue;
      this.closeFd(file);
      return true;
    }
    return false;
  }

  private closeFd(file: PooledFile): void {
    if (file.fd < 0) return;
    this.open.delete(file);
    if (this.newest === file) this.newest = null;
    const fd = file.fd;
    file.fd = -1;
    this.system.close(fd);
  }
}
