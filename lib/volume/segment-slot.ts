/**
 * A segment slot: one fixed-size file on primary storage (`slots/NNNN.slot`) that holds one
 * segment at a time, plus the segment's summary beside it (`NNNN.sum`) once it is sealed.
 *
 * One file per slot (rather than one big preallocated file) lets recovery find segments by
 * name and needs no allocator. Files are created sparse. Discarding a segment blanks its
 * headers and keeps the file's blocks and cached pages for the next segment (format 2): after
 * a truncate every write of the next segment allocated a block and a fresh page (BENCHMARKS.md,
 * "Slots reused in place"). Format 1 volumes still truncate: their entries' CRCs do not tell
 * one segment's from another's (FORMAT.md §3.4).
 *
 * Reads and writes are synchronous on purpose: they hit the page cache in microseconds, which
 * is cheaper than a thread-pool round trip, and they are never on files under the FUSE mount.
 * The bytes go through a SlotFile (slot-file.ts) and the sidecar through the volume's files
 * (files.ts), so tests can inject crashes below the engine.
 */
import { VolumeError, errnoCode } from '../errors.js';
import { RECORD_HEADER_SIZE, entrySeed } from '../format/record.js';
import { SEGMENT_HEADER_SIZE, decodeSegmentHeader, type SegmentHeader } from '../format/segment-header.js';
import { SegmentSummary } from '../format/summary.js';
import type { FileReader } from '../archive/archiver.js';
import { sidecarName, type VolumeFiles } from './files.js';
import type { SlotFile } from './slot-file.js';
import type { SlotRoster } from './slot-roster.js';

/**
 * What discarding a format 2 segment punches out: the page (a filesystem block here) holding the
 * segment header and the first record header. Smaller than a filesystem block, a punch would
 * zero part of a block with a write instead.
 */
const BLANK_PAGE_BYTES = 4096;

/** A record header of zeros: where a segment's records end (FORMAT.md §3.1). */
const BLANK_RECORD_HEADER = Buffer.alloc(RECORD_HEADER_SIZE);

/** Where a segment is in its life (FORMAT.md §1: current → active → inactive → recycle). */
export type SegmentState = 'recycle' | 'current' | 'active' | 'inactive';

export class SegmentSlot {
  private stateNow: SegmentState = 'recycle';
  private roster: SlotRoster | null = null;
  private sequenceNow = 0;
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

  get state(): SegmentState {
    return this.stateNow;
  }

  set state(next: SegmentState) {
    if (this.roster) {
      this.roster.counts[this.stateNow]--;
      this.roster.counts[next]++;
    }
    this.stateNow = next;
  }

  /** Sequence of the segment in the slot; 0 while the slot is blank. */
  get sequence(): number {
    return this.sequenceNow;
  }

  set sequence(next: number) {
    if (this.roster) {
      if (this.roster.bySequence.get(this.sequenceNow) === this) this.roster.bySequence.delete(this.sequenceNow);
      if (next > 0) this.roster.bySequence.set(next, this);
    }
    this.sequenceNow = next;
  }

  /** Counts this slot in `roster` from now on. */
  join(roster: SlotRoster): void {
    this.roster = roster;
    roster.counts[this.stateNow]++;
    if (this.sequenceNow > 0) roster.bySequence.set(this.sequenceNow, this);
    if (this.dirty || this.flushing) roster.unsynced.add(this);
  }

  private constructor(
    readonly index: number,
    private readonly file: SlotFile,
    /** Where the sidecar is. */
    private readonly files: VolumeFiles,
    readonly sizeBytes: number,
    /** The volume's format version. */
    readonly version: number,
  ) {}

  static open(files: VolumeFiles, index: number, sizeBytes: number, version: number): SegmentSlot {
    return new SegmentSlot(index, files.open(index), files, sizeBytes, version);
  }

  /** What the CRCs of this segment's block entries and synch bodies continue from (format/record.ts). */
  get entrySeed(): number {
    return entrySeed(this.version, this.sequence);
  }

  /** Format 2: a recycled slot keeps its old segment's bytes, where format 1 cuts it to a hole. */
  private get keepsOldBytes(): boolean {
    return this.version >= 2;
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

  /** Fills `into` (shared memory) from `position` through `reader` (zeros past the file's end): the archive's read of a sealed segment. */
  async readRangeThrough(reader: FileReader, into: Buffer, position: number): Promise<void> {
    const n = await this.file.readThrough(reader, into, position);
    if (n < into.length) into.fill(0, n);
  }

  /** SlotFile.readEntries, with zeros past the file's end. */
  readEntriesAt(blocks: Buffer, crcs: Buffer, blockSize: number, position: number): void {
    const n = this.file.readEntries(blocks, crcs, blockSize, position);
    const entrySize = 4 + blockSize;
    for (let i = Math.floor(n / entrySize); i * blockSize < blocks.length; i++) {
      const read = n - i * entrySize; // of this entry: its CRC, then its block
      crcs.fill(0, 4 * i + Math.max(0, Math.min(4, read)), 4 * i + 4);
      blocks.fill(0, i * blockSize + Math.max(0, read - 4), (i + 1) * blockSize);
    }
  }

  /** Async read of a large range, in pieces, so that recovery and verify do not stall the event loop. */
  async readRange(position: number, length: number): Promise<Buffer> {
    const bytes = Buffer.allocUnsafe(length);
    await this.readRangeInto(bytes, position);
    return bytes;
  }

  /** The same into `into` (all of it; zeros past the file's end): also the archive's read of a tail. */
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

  /**
   * Writes record bytes at `position`; `recordEnd` when they end a record, else null. Where the
   * slot keeps its old segment's bytes, the write that ends a record carries a blank record header
   * behind it when the segment has room (the next record overwrites it): the records then end at
   * a blank header as format 1's hole ends them, so a scan that stops on anything else met a torn
   * write, not the slot's past.
   */
  writeRecord(parts: Buffer[], position: number, recordEnd: number | null): void {
    if (recordEnd !== null && this.keepsOldBytes && recordEnd + RECORD_HEADER_SIZE <= this.sizeBytes) parts.push(BLANK_RECORD_HEADER);
    this.writeAt(parts, position);
  }

  /**
   * Starts reading the slot's bytes in [position, position + length) into the page cache, where
   * format 2 keeps its old segment's bytes: a record ends inside a page, and a page the cache no
   * longer holds must be read from the disk before the write that ends in it can go on: in cold
   * slots (after a reboot, or pages the kernel reclaimed) random writes then waited for a disk
   * read each (BENCHMARKS.md, "Reading the current slot ahead"). Format 1's holes need no reads.
   * A hint: a failure costs only speed.
   */
  prefetch(position: number, length: number): Promise<void> {
    return this.keepsOldBytes ? this.file.prefetchAsync(position, length) : Promise.resolve();
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
    this.roster?.unsynced.add(this);
  }

  flush(): void {
    // An fdatasync in flight off the event loop is not done yet: this one covers it.
    if (!this.dirty && !this.flushing) return;
    this.file.datasync();
    this.dirty = false;
    if (!this.flushing) this.roster?.unsynced.delete(this);
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
      if (!this.dirty) {
        this.roster?.unsynced.delete(this);
        return;
      }
      this.dirty = false;
      const flushing = this.file.datasyncAsync().then(
        () => {
          this.flushing = null;
          if (!this.dirty) this.roster?.unsynced.delete(this);
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

  /**
   * Drops everything from raw `offset` on, so that no scan reads past it: the file is cut there
   * and extended again as a hole; in format 2, past the segment header, a blank record header is
   * written there instead, which keeps the file's blocks and ends every later scan. Not flushed.
   */
  cutAt(offset: number): void {
    if (this.keepsOldBytes && offset >= SEGMENT_HEADER_SIZE) {
      if (offset < this.sizeBytes) this.writeAt([BLANK_RECORD_HEADER.subarray(0, this.sizeBytes - offset)], offset);
      return;
    }
    this.file.truncate(offset);
    this.file.truncate(this.sizeBytes);
  }

  writeSidecar(summary: SegmentSummary): void {
    this.files.replace(sidecarName(this.index), summary.encode());
  }

  /** The sealed segment's summary from its sidecar, or null when the sidecar is missing or stale. */
  readSidecar(): SegmentSummary | null {
    const name = sidecarName(this.index);
    const bytes = this.files.read(name);
    if (!bytes) return null;
    try {
      const summary = SegmentSummary.decode(bytes, (what) => VolumeError.corruptSegment(this.files.path(name), what));
      return summary.sequence === this.sequence ? summary : null;
    } catch {
      return null; // a damaged sidecar is rebuilt from the segment itself
    }
  }

  /**
   * Discards the segment: the sidecar goes, and the slot becomes blank. Format 1
   * truncates the file to a hole. Format 2 punches a hole in its first page only (the segment
   * header and the first record header among it) and makes that durable; the rest keeps its
   * blocks and pages for the next segment. A hole, not zeros written: a write could tear and
   * leave a damaged header in front of the old records, which recovery must refuse, where a
   * torn fresh header in front of a blank record header counts as blank (readHeaderOrBlank).
   * The old records behind it never pass for the next segment's: their sequences are older and
   * their entries' seeds differ. Off the event loop; the slot becomes takeable only when done.
   */
  async discard(): Promise<void> {
    this.files.remove(sidecarName(this.index));
    if (this.keepsOldBytes && (await this.punchFirstPage())) {
      await this.file.datasyncAsync();
    } else {
      await this.file.truncateAsync(0);
      await this.file.truncateAsync(this.sizeBytes);
      await this.file.datasyncAsync(); // durable, like the punch: recovery may drop a segment and go on
    }
    this.state = 'recycle';
    this.sequence = 0;
    this.tail = SEGMENT_HEADER_SIZE;
    this.archived = false;
    this.summary = null;
    this.dirty = false;
    if (!this.flushing) this.roster?.unsynced.delete(this);
    this.shippedTo = SEGMENT_HEADER_SIZE;
  }

  /** False where the filesystem (or kernel) cannot punch holes: then the slot is truncated, as in format 1. */
  private async punchFirstPage(): Promise<boolean> {
    try {
      await this.file.punchHoleAsync(0, BLANK_PAGE_BYTES);
      return true;
    } catch (err) {
      if (errnoCode(err) !== 'EOPNOTSUPP' && errnoCode(err) !== 'ENOSYS') throw err;
      return false;
    }
  }

  /** Bytes of storage the slot file takes. */
  allocatedBytes(): number {
    return this.file.allocatedBytes();
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
