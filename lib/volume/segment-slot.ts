/**
 * A segment slot: one fixed-size file on primary storage (`slots/NNNN.slot`) that holds one
 * segment at a time, plus the segment's summary beside it (`NNNN.sum`) once it is sealed.
 *
 * One file per slot (rather than one big preallocated file) makes discarding a segment a
 * truncate that really returns its space to the filesystem, lets recovery find segments by
 * name, and needs no allocator. Files are sparse: a slot takes only what was written.
 *
 * Reads and writes are synchronous on purpose: they hit the page cache in microseconds, which
 * is cheaper than a thread-pool round trip, and they are never on files under the FUSE mount.
 * The bytes go through a SlotFile (slot-file.ts), so tests can inject crashes below the engine.
 */
import fs from 'node:fs';
import { VolumeError, errnoCode } from '../errors.js';
import { SEGMENT_HEADER_SIZE, decodeSegmentHeader, type SegmentHeader } from '../format/segment-header.js';
import { SegmentSummary } from '../format/summary.js';
import type { SlotFile, SlotFiles } from './slot-file.js';

/** Where a segment is in its life (claims 1, 9, 13–15). */
export type SegmentState = 'recycle' | 'current' | 'active' | 'inactive';

export class SegmentSlot {
  state: SegmentState = 'recycle';
  /** Sequence of the segment in the slot; 0 while the slot is blank. */
  sequence = 0;
  /** Next append position (current), or the end of the records (sealed). */
  tail = SEGMENT_HEADER_SIZE;
  /** The archive holds this segment whole; the slot may be recycled once inactive. */
  archived = false;
  /** Entries in memory for the current segment; loaded from the sidecar on demand when sealed. */
  summary: SegmentSummary | null = null;
  /** Written since the last fdatasync. */
  dirty = false;
  /** The fdatasync under way on the thread pool, if any. */
  private flushing: Promise<void> | null = null;
  /** Being discarded (the flush before it is under way). */
  recycling = false;
  /** The current segment's bytes before this raw offset are in the archive as tail pieces. */
  shippedTo = SEGMENT_HEADER_SIZE;
  /** Record sequence of the first record at `shippedTo`. */
  shippedRecordSequence = 0;

  private constructor(
    readonly index: number,
    private readonly file: SlotFile,
    readonly sizeBytes: number,
  ) {}

  static open(files: SlotFiles, index: number, sizeBytes: number): SegmentSlot {
    return new SegmentSlot(index, files.open(index), sizeBytes);
  }

  get path(): string {
    return this.file.path;
  }

  get name(): string {
    return `slot ${this.index} (segment ${this.sequence})`;
  }

  readHeader(): SegmentHeader | null {
    const bytes = Buffer.alloc(SEGMENT_HEADER_SIZE);
    this.readAt(bytes, 0, SEGMENT_HEADER_SIZE, 0);
    return decodeSegmentHeader(bytes, this.path);
  }

  /** Reads exactly `length` bytes at `position` (zeros past the file's end). */
  readAt(into: Buffer, intoOffset: number, length: number, position: number): void {
    let done = 0;
    while (done < length) {
      const n = this.file.read(into, intoOffset + done, length - done, position + done);
      if (n === 0) {
        into.fill(0, intoOffset + done, intoOffset + length);
        return;
      }
      done += n;
    }
  }

  /** Reads `parts` in turn from `position` in one scatter read (zeros past the file's end). */
  readvAt(parts: Buffer[], position: number): void {
    let n = this.file.readv(parts, position);
    for (const part of parts) {
      if (n < part.length) part.fill(0, Math.max(0, n));
      n -= part.length;
    }
  }

  /** Async read of a large range, in pieces, so that recovery, verify and the archiver do not stall the event loop. */
  async readRange(position: number, length: number): Promise<Buffer> {
    const bytes = Buffer.allocUnsafe(length);
    await this.readRangeInto(bytes, position);
    return bytes;
  }

  /** The same into `into` (all of it; zeros past the file's end). */
  async readRangeInto(into: Buffer, position: number): Promise<void> {
    const pieceBytes = 4 * 1024 * 1024;
    for (let done = 0; done < into.length; ) {
      const want = Math.min(pieceBytes, into.length - done);
      const n = await this.file.readAsync(into, done, want, position + done);
      if (n === 0) {
        into.fill(0, done);
        return;
      }
      done += n;
    }
  }

  /** Writes `parts` at `position`; NO_SPACE when the disk is full (nothing is acknowledged then). */
  writeAt(parts: Buffer[], position: number): void {
    const length = parts.reduce((n, p) => n + p.length, 0);
    let written: number;
    try {
      written = this.file.write(parts, position);
    } catch (err) {
      throw errnoCode(err) === 'ENOSPC' || errnoCode(err) === 'EDQUOT' ? noSpace(this.path, err) : err;
    }
    if (written !== length) throw noSpace(this.path, undefined);
    this.dirty = true;
  }

  flush(): void {
    // An fdatasync in flight off the event loop is not done yet: this one covers it.
    if (!this.dirty && !this.flushing) return;
    this.file.datasync();
    this.dirty = false;
  }

  /**
   * fdatasync off the event loop; writes made while it runs leave the slot dirty for the next
   * flush. Resolves only when every write made before the call is durable, also when another
   * caller's fdatasync is already in flight (it is awaited, then the slot flushed again if dirty).
   */
  async flushAsync(): Promise<void> {
    for (;;) {
      if (this.flushing) {
        await this.flushing;
        continue;
      }
      if (!this.dirty) return;
      this.dirty = false;
      const flushing = this.file.datasyncAsync().then(
        () => {
          this.flushing = null;
        },
        (err: unknown) => {
          this.flushing = null;
          this.dirty = true;
          throw err;
        },
      );
      this.flushing = flushing;
      await flushing;
      return;
    }
  }

  /** Drops everything from `offset` on: the file is cut there and extended again as a hole. */
  cutAt(offset: number): void {
    this.file.truncate(offset);
    this.file.truncate(this.sizeBytes);
  }

  private get sidecarPath(): string {
    return this.path.replace(/\.slot$/, '.sum');
  }

  writeSidecar(summary: SegmentSummary): void {
    const temporary = `${this.sidecarPath}.tmp`;
    fs.writeFileSync(temporary, summary.encode(), { mode: 0o600 });
    fs.renameSync(temporary, this.sidecarPath);
  }

  /** The sealed segment's summary from its sidecar, or null when the sidecar is missing or stale. */
  readSidecar(): SegmentSummary | null {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(this.sidecarPath);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw err;
    }
    try {
      const summary = SegmentSummary.decode(bytes, (what) => VolumeError.corruptSegment(this.sidecarPath, what));
      return summary.sequence === this.sequence ? summary : null;
    } catch {
      return null; // a damaged sidecar is rebuilt from the segment itself
    }
  }

  /**
   * Discards the segment: the file becomes a blank hole and the sidecar goes (claim 15). Off
   * the event loop (freeing a full slot's extents takes tens of milliseconds); the slot becomes
   * blank, and so takeable, only when it is done.
   */
  async discard(): Promise<void> {
    await fs.promises.rm(this.sidecarPath, { force: true });
    await this.file.truncateAsync(0);
    await this.file.truncateAsync(this.sizeBytes);
    this.state = 'recycle';
    this.sequence = 0;
    this.tail = SEGMENT_HEADER_SIZE;
    this.archived = false;
    this.summary = null;
    this.dirty = false;
    this.shippedTo = SEGMENT_HEADER_SIZE;
  }

  close(): void {
    this.file.close();
  }
}

function noSpace(file: string, cause: unknown): VolumeError {
  return new VolumeError('NO_SPACE', `primary storage is full writing ${file}`, {
    cause,
    hint: 'free space on the volume directory’s filesystem; writes resume once there is room, reads keep working',
  });
}
