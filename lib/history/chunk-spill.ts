/**
 * The disk tier under the memory cache of archived chunks: raw (decompressed, checked) chunks
 * evicted from memory are written to one scratch file, so that a later read of a few bytes of
 * them is a pread of those bytes, not a refetch and decompression of the whole chunk.
 *
 * Why: a whole read of a random-write synch point, in block order, touches every chunk of its
 * window from many reads far apart; with memory alone (a share of `mount --cache`) chunks were
 * evicted between those reads and fetched again, many times the window's archived bytes
 * (BENCHMARKS.md, open-past).
 *
 * Decisions:
 * - One file, opened and unlinked at once (it never outlives the process, nothing to clean up),
 *   closed by close(); opened only when the first chunk spills, so a source whose chunks fit in
 *   memory has no file.
 * - Synchronous pread/pwrite on the caller's thread, as the source's reads of primary slots
 *   are: a hit is a few KiB from the page cache, and with no I/O in flight a region is never
 *   rewritten under a read, so a read returns the bytes of the chunk it names or nothing.
 * - The file is a ring: chunks are appended at a cursor that wraps at the bound, and the
 *   oldest chunks whose bytes the next write covers are forgotten first. Chunks vary in length
 *   (a piece's last chunk is short), so extents are exact, not fixed slots.
 * - Bounded by `bytesMax` and by half the free space of its filesystem at open. A directory in
 *   memory (tmpfs) would turn the spill into unbounded RAM: the default directory is skipped
 *   then for /var/tmp, or the spill stays off. A directory the caller names is used as given.
 * - Any error (ENOSPC, EIO, a short read) turns the spill off for good: reads then fetch, as
 *   without it. It never fails a read.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import createDebug from 'debug';

const debug = createDebug('salvo:snapshot');

/** Default bound: a whole read of a window of a few GiB of archived data keeps each chunk once. */
export const SPILL_BYTES_DEFAULT = 4 * 1024 * 1024 * 1024;
/** statfs types of filesystems held in memory: tmpfs, ramfs. */
const IN_MEMORY_FS = new Set([0x01021994, 0x858458f6]);

export interface SpillOptions {
  /** Where the scratch file goes; default os.tmpdir() (or /var/tmp when that is in memory). */
  dir?: string;
  /** Upper bound on the file's size; default SPILL_BYTES_DEFAULT. 0 turns the spill off. */
  bytesMax?: number;
}

export interface SpillStats {
  /** Chunks written, reads served, and whether the spill has been turned off by an error. */
  chunksWritten: number;
  reads: number;
  failed: boolean;
}

interface Extent {
  offset: number;
  length: number;
}

export class ChunkSpill {
  readonly stats: SpillStats = { chunksWritten: 0, reads: 0, failed: false };
  /** Chunks held, by name (`${piece.key}#${chunk}`), in the order they were written. */
  private readonly extents = new Map<string, Extent>();
  private fd: number | null = null;
  private capacity = 0;
  private held = 0;
  private cursor = 0;
  /** Closed or failed: nothing is written or read any more. */
  private off: boolean;

  constructor(private readonly options: SpillOptions = {}) {
    this.off = (options.bytesMax ?? SPILL_BYTES_DEFAULT) <= 0;
  }

  /** Bytes of chunks held now, and the file's bound (0 before it opens). */
  get bytes(): number {
    return this.held;
  }

  get bytesMax(): number {
    return this.capacity;
  }

  /** True when the spill holds chunk `name`. */
  has(name: string): boolean {
    return this.extents.has(name);
  }

  /**
   * Keeps `raw`, the whole chunk `name`, forgetting the oldest chunks it overwrites. False when
   * it could not (off, or longer than the file): the chunk is then simply not kept.
   */
  put(name: string, raw: Buffer): boolean {
    if (this.off || !this.open() || raw.length > this.capacity) return false;
    this.forget(name);
    if (this.cursor + raw.length > this.capacity) {
      // Wrap. The chunks still at or past the cursor are the oldest (the last lap's end): the
      // ring's order is kept by dropping them, and the gap they leave is less than one chunk.
      for (const [oldest, e] of this.extents) {
        if (e.offset < this.cursor) break;
        this.forget(oldest);
      }
      this.cursor = 0;
    }
    const end = this.cursor + raw.length;
    for (const [oldest, e] of this.extents) {
      if (e.offset >= end || e.offset + e.length <= this.cursor) break;
      this.forget(oldest);
    }
    try {
      for (let done = 0; done < raw.length; ) done += fs.writeSync(this.fd!, raw, done, raw.length - done, this.cursor + done);
    } catch (err) {
      this.fail(`writing ${name}`, err);
      return false;
    }
    this.extents.set(name, { offset: this.cursor, length: raw.length });
    this.held += raw.length;
    this.cursor = end;
    this.stats.chunksWritten++;
    return true;
  }

  /**
   * Bytes [within, within + length) of chunk `name` into `target` at `at`; false when the spill
   * does not hold them (the caller fetches the chunk).
   */
  readInto(name: string, within: number, length: number, target: Buffer, at: number): boolean {
    const e = this.extents.get(name);
    if (!e || this.fd === null || within < 0 || within + length > e.length) return false;
    try {
      let done = 0;
      while (done < length) {
        const n = fs.readSync(this.fd, target, at + done, length - done, e.offset + within + done);
        if (n === 0) throw new Error(`short read: ${done} of ${length} bytes`);
        done += n;
      }
    } catch (err) {
      this.fail(`reading ${name}`, err);
      return false;
    }
    this.stats.reads++;
    return true;
  }

  /** Closes (and so frees) the file; the spill keeps nothing from then on. Idempotent. */
  close(): void {
    this.off = true;
    this.extents.clear();
    this.held = 0;
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fs.closeSync(fd);
    } catch (err) {
      debug('chunk spill: closing: %s', (err as Error).message);
    }
  }

  private forget(name: string): void {
    const e = this.extents.get(name);
    if (!e) return;
    this.extents.delete(name);
    this.held -= e.length;
  }

  private fail(what: string, err: unknown): void {
    this.stats.failed = true;
    debug('chunk spill off: %s: %s', what, (err as Error).message);
    this.close();
  }

  /** Opens the file on first use; false (and off) when no place will take it. */
  private open(): boolean {
    if (this.fd !== null) return true;
    const dirs = this.options.dir !== undefined ? [this.options.dir] : [os.tmpdir(), '/var/tmp'];
    for (const dir of dirs) {
      let free: number;
      try {
        const s = fs.statfsSync(dir);
        if (this.options.dir === undefined && IN_MEMORY_FS.has(s.type)) {
          debug('chunk spill: %s is in memory, not used', dir);
          continue;
        }
        free = s.bavail * s.bsize;
      } catch (err) {
        debug('chunk spill: %s: %s', dir, (err as Error).message);
        continue;
      }
      const file = path.join(dir, `.salvo-chunks-${process.pid}-${randomBytes(6).toString('hex')}`);
      let fd: number;
      try {
        fd = fs.openSync(file, 'wx+', 0o600);
      } catch (err) {
        debug('chunk spill: %s: %s', file, (err as Error).message);
        continue;
      }
      try {
        fs.unlinkSync(file);
      } catch (err) {
        // A file that cannot be unlinked would outlive the process: not used.
        fs.closeSync(fd);
        debug('chunk spill: %s: %s', file, (err as Error).message);
        continue;
      }
      this.fd = fd;
      this.capacity = Math.min(this.options.bytesMax ?? SPILL_BYTES_DEFAULT, Math.floor(free / 2));
      debug('chunk spill: up to %d bytes in %s (unlinked)', this.capacity, dir);
      return true;
    }
    this.off = true;
    debug('chunk spill off: no directory for it');
    return false;
  }
}
