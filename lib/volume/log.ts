/**
 * The log: fixed-size segments in slots on primary storage, appended to at the current
 * segment, with the working set, copy-forward, retirement and recycling of claims 1 and 19.
 *
 * Invariants:
 * - The working set is the current segment and the active ones: at most
 *   `workingSetSegments`, except while the oldest active is being retired (one more).
 * - Every block's newest entry lies in the working set, so the volume as of any point is
 *   rebuilt from at most `workingSetSegments + 1` segments (claim 12). Retiring a segment
 *   first copies its live entries forward to the current segment; a segment holding only
 *   superseded, zero and synch entries retires without copying.
 * - Copy-forward of one segment always fits in a fresh current segment: a live run costs one
 *   record header, and every superseded block it skips frees more than that.
 * - A slot is recycled only after the archive confirmed its segment whole.
 * - Record sequences increase by one across the whole log; segment sequences by one.
 */
import assert from 'node:assert';
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import { crc32cBlocks, reseedDelta } from '../format/checksum.js';
import {
  BLOCK_CRC_SIZE,
  FLAG_COPY_FORWARD,
  RECORD_HEADER_SIZE,
  RecordType,
  encodeRecordHeader,
  encodeSynchBody,
  type SynchBody,
} from '../format/record.js';
import { SEGMENT_HEADER_SIZE, encodeSegmentHeader } from '../format/segment-header.js';
import { SegmentSummary } from '../format/summary.js';
import { minimumWorkingSet, type VolumeConfig } from '../format/volume-config.js';
import type { ArchiveItem, Archiver } from '../archive/archiver.js';
import type { BlockIndex } from './block-index.js';
import type { SegmentSlot } from './segment-slot.js';
import type { SynchPoint } from './synch-point.js';

const debug = createDebug('salvo:volume');

/** Largest WRITE record: 128 KiB requests from FUSE fit in one. */
const MAX_RECORD_BLOCKS = 256;

/** Retirement lets the event loop turn after copying this much (copyRun itself is synchronous). */
const RETIRE_YIELD_BYTES = 4 * 1024 * 1024;

/** Largest background flush step (a quarter of the segment below 32 MiB segments). */
const FLUSH_AHEAD_BYTES_MAX = 8 * 1024 * 1024;
/** Longest time between background flushes while writes come (flushAhead). */
const FLUSH_AHEAD_MS = 20;
/** How far ahead of its tail the current slot is read into the page cache (prefetchAhead). */
const PREFETCH_AHEAD_BYTES = 8 * 1024 * 1024;

/** Live entries of a segment: `count` consecutive blocks from `block`, their entries back to back at raw `offset`. */
interface LiveRun {
  block: number;
  count: number;
  offset: number;
}

export interface LogEvents {
  /** Writes are waiting for a free slot (the archive is behind); called once per stall. */
  onStall(message: string): void;
}

export class Log {
  readonly entrySize: number;
  private readonly zeroBlock: Buffer;
  /** Copy-forward's bytes pass through here, a piece at a time (copyRun). */
  private readonly copyBuffer: Buffer;
  /** The last reseedDelta copy-forward needed, by the seeds it was for. */
  private reseed = { from: 0, to: 0, delta: 0 };
  private blankWaiters: (() => void)[] = [];
  private stalledSinceMs: number | null = null;
  /** Background flushes of the current segment: every this many bytes, last at that tail. */
  private readonly flushAheadBytes: number;
  private flushAheadFrom = SEGMENT_HEADER_SIZE;
  private flushAheadAtMs = 0;
  /** The current segment's last background flush, started when it was nearly full, is under way or done. */
  private flushedNearlyFull = false;
  /** The slot prefetchAhead last read ahead in, and how far. */
  private prefetched: { slot: SegmentSlot | null; to: number } = { slot: null, to: 0 };
  /**
   * How many rolls ahead copyAhead may drain: the segments it empties early must leave the rest
   * of the working set room for every live block with the policy's headroom, or it could copy
   * the same blocks round and round.
   */
  readonly copyAheadHorizonMax: number;
  /** Segment sequence through which copyAhead left nothing live: an old entry never becomes live again. */
  private drainedThrough = 0;
  /** When the oldest write not yet queued for the archive was made, or null. */
  unshippedSinceMs: number | null = null;
  /** Bytes appended by the application and by copy-forward, for status. */
  readonly counters = { bytesWritten: 0, bytesCopiedForward: 0, bytesCopiedAhead: 0, segmentsSealed: 0, segmentsRetired: 0, segmentsRecycled: 0, writeStalls: 0, writeStalledMs: 0 };

  constructor(
    readonly config: VolumeConfig,
    readonly slots: SegmentSlot[],
    readonly index: BlockIndex,
    public current: SegmentSlot,
    /** Record sequence of the next record. */
    private nextRecordSequence: number,
    private archiver: Archiver | null,
    private readonly events: LogEvents,
    private readonly clock: () => number,
  ) {
    this.entrySize = BLOCK_CRC_SIZE + config.blockSizeBytes;
    this.zeroBlock = Buffer.alloc(config.blockSizeBytes);
    this.copyBuffer = Buffer.allocUnsafe(MAX_RECORD_BLOCKS * this.entrySize);
    this.flushAheadBytes = Math.min(FLUSH_AHEAD_BYTES_MAX, config.segmentSizeBytes / 4);
    this.copyAheadHorizonMax = Math.max(1, config.workingSetSegments - minimumWorkingSet(config.sizeBytes, config.segmentSizeBytes, config.blockSizeBytes));
  }

  setArchiver(archiver: Archiver): void {
    this.archiver = archiver;
  }

  /** Current and active segments, oldest first. */
  workingSet(): SegmentSlot[] {
    return this.slots.filter((s) => s.state === 'current' || s.state === 'active').sort((a, b) => a.sequence - b.sequence);
  }

  /** The slot to read segment `sequence` from; none once its recycling began (the archive holds it). */
  slotHolding(sequence: number): SegmentSlot | undefined {
    return this.slots.find((s) => s.sequence === sequence && s.state !== 'recycle' && !s.recycling);
  }

  /** Record sequence of the next record: it changes with every append, so a cached read can tell it may be stale. */
  get appendStamp(): number {
    return this.nextRecordSequence;
  }

  get stalledSince(): number | null {
    return this.stalledSinceMs;
  }

  /**
   * Appends blocks [block, block + data.length / blockSize) with their new contents. Runs of
   * all-zero blocks become ZERO records (no data stored). Acknowledged when the bytes are in
   * the OS: a kill -9 afterwards loses nothing.
   */
  async appendBlocks(block: number, data: Buffer): Promise<void> {
    const count = this.blockCount(data);
    if (this.workingSetLength() > this.config.workingSetSegments) await this.retireExcess();
    for (let done = this.appendWhileRoom(block, data, 0); done < count; done = this.appendWhileRoom(block, data, done)) await this.roll();
    this.appended(data.length);
  }

  /**
   * The same, at once, when it needs neither a retirement nor a roll (the usual case): the
   * FUSE write is answered in the same turn, without a promise. False, with nothing written,
   * when it needs them; then the caller uses appendBlocks.
   */
  appendBlocksNow(block: number, data: Buffer): boolean {
    const count = this.blockCount(data);
    // Worst case: every block its own record.
    if (this.workingSetLength() > this.config.workingSetSegments || this.free() < count * (RECORD_HEADER_SIZE + this.entrySize)) return false;
    const done = this.appendWhileRoom(block, data, 0);
    assert(done === count);
    this.appended(data.length);
    return true;
  }

  private blockCount(data: Buffer): number {
    const count = data.length / this.config.blockSizeBytes;
    assert(Number.isInteger(count) && count > 0);
    return count;
  }

  /** Appends the blocks of `data` from block `from` on while the current segment has room; returns how far it got. */
  private appendWhileRoom(block: number, data: Buffer, from: number): number {
    const bs = this.config.blockSizeBytes;
    const count = data.length / bs;
    let i = from;
    while (i < count) {
      const zero = this.isZero(data, i);
      let j = i + 1;
      while (j < count && this.isZero(data, j) === zero) j++;
      const free = this.free() - RECORD_HEADER_SIZE;
      const fit = zero ? (free >= 0 ? j - i : 0) : Math.min(j - i, Math.floor(free / this.entrySize), MAX_RECORD_BLOCKS);
      if (fit <= 0) return i;
      if (zero) this.writeZeroRecord(block + i, fit);
      else this.writeBlocksRecord(block + i, data.subarray(i * bs, (i + fit) * bs), fit);
      i += fit;
    }
    return i;
  }

  private appended(bytes: number): void {
    this.counters.bytesWritten += bytes;
    this.unshippedSinceMs ??= this.clock();
    this.flushAhead();
    this.prefetchAhead(this.current);
  }

  /**
   * Keeps the next PREFETCH_AHEAD_BYTES of `slot` past its tail on their way into the page
   * cache, a new half window each time the tail has used half (SegmentSlot.prefetch says why).
   */
  private prefetchAhead(slot: SegmentSlot): void {
    if (this.prefetched.slot !== slot) this.prefetched = { slot, to: slot.tail };
    if (this.prefetched.to - slot.tail > PREFETCH_AHEAD_BYTES / 2) return;
    const from = Math.max(this.prefetched.to, slot.tail);
    const to = Math.min(slot.tail + PREFETCH_AHEAD_BYTES, this.config.segmentSizeBytes);
    if (to <= from) return;
    this.prefetched.to = to;
    slot.prefetch(from, to - from).catch((err: unknown) => debug('reading %s ahead failed: %s', slot.name, (err as Error).message));
  }

  /**
   * Starts an fdatasync of the current segment in the background every `flushAheadBytes`, and
   * once more when less than an eighth of that is left before the segment fills, so that the
   * one a roll must wait for (rule 6a) finds little left to write: without it a sustained
   * writer stalled ~60 ms on every 64 MiB segment, and with the 8 MiB steps alone a roll still
   * waited 5–27 ms (writes and synch points wait behind a roll). Slower writers get one every
   * FLUSH_AHEAD_MS instead, for a synch point's fdatasync: under fio's 4 KiB random writes
   * (~65 MB/s) it found up to 4 MB to write and took 3–4 ms of the synch. A failure only
   * leaves the slot dirty; the roll's own flush reports it.
   */
  private flushAhead(): void {
    const slot = this.current;
    const nearlyFull = !this.flushedNearlyFull && this.free() < this.flushAheadBytes / 8;
    const now = performance.now();
    if (slot.tail - this.flushAheadFrom < this.flushAheadBytes && !nearlyFull && now - this.flushAheadAtMs < FLUSH_AHEAD_MS) return;
    if (nearlyFull) this.flushedNearlyFull = true;
    this.flushAheadFrom = slot.tail;
    this.flushAheadAtMs = now;
    slot.flushAsync().catch((err: unknown) => debug('background flush of %s failed: %s', slot.name, (err as Error).message));
  }

  /** Appends a SYNCH record and makes everything before it durable. */
  async appendSynch(body: SynchBody): Promise<SynchPoint> {
    // The body's length does not depend on the seed: room is found first, then it is encoded for that segment.
    const size = RECORD_HEADER_SIZE + encodeSynchBody(body, 0).length;
    assert(size < this.config.segmentSizeBytes / 2, 'synch record too large');
    if (this.workingSetLength() > this.config.workingSetSegments) await this.retireExcess();
    if (this.free() < size) await this.roll();
    const slot = this.current;
    const bodyBytes = encodeSynchBody(body, slot.entrySeed);
    const offset = slot.tail;
    const header = Buffer.allocUnsafe(RECORD_HEADER_SIZE);
    const recordSequence = this.nextRecordSequence;
    encodeRecordHeader(header, 0, { type: RecordType.Synch, flags: 0, sequence: recordSequence, block: 0, count: 0, bodyLength: bodyBytes.length });
    slot.writeRecord([header, bodyBytes], offset, offset + size);
    this.advance(slot, size);
    slot.summary!.synchs.push({ ...body, offset, recordSequence });
    await this.flushAsync();
    return { ...body, sequence: slot.sequence, offset, recordSequence };
  }

  /**
   * Queues the current segment's records not yet in the archive as a tail piece, so the
   * archive alone restores everything up to now (BRIEF: off-site within seconds).
   */
  shipTail(): void {
    const slot = this.current;
    if (!this.archiver || slot.tail <= slot.shippedTo) return;
    const rawStart = slot.shippedTo;
    const firstRecordSequence = rawStart === SEGMENT_HEADER_SIZE ? slot.summary!.firstRecordSequence : slot.shippedRecordSequence;
    this.archiver.enqueue({
      kind: 'tail',
      sequence: slot.sequence,
      rawStart,
      summary: slot.summary!.sliceFrom(rawStart, firstRecordSequence),
      // On libuv's threads, not through the pool's low-priority workers as a sealed segment is:
      // read there while writes went on into the same slot, tails stalled the mount's event loop
      // up to 45 ms (bench synch-latency: status requests under fio's random writes p99 33 ms
      // against 4.8). Tails are small.
      readInto: async (into, position) => {
        await slot.flushAsync(); // the archive must never hold bytes that primary storage could lose
        await slot.readRangeInto(into, position);
      },
    });
    slot.shippedTo = slot.tail;
    slot.shippedRecordSequence = this.nextRecordSequence;
    this.unshippedSinceMs = null;
  }

  /** Raw bytes of the current segment not yet queued for the archive. */
  get unshippedBytes(): number {
    return this.current.tail - this.current.shippedTo;
  }

  /** fdatasync every slot written since the last flush (a segment sealed by the last roll among them). */
  flush(): void {
    for (const slot of this.slots) slot.flush();
  }

  /** The same, off the event loop. */
  async flushAsync(): Promise<void> {
    await Promise.all(this.slots.map((slot) => slot.flushAsync()));
  }

  /** The archive confirmed segment `sequence` whole: an inactive slot holding it is recycled now. */
  async markArchived(sequence: number): Promise<void> {
    const slot = this.slotHolding(sequence);
    if (!slot) return;
    slot.archived = true;
    if (slot.state === 'inactive') await this.recycle(slot);
  }

  private isZero(data: Buffer, i: number): boolean {
    const bs = this.config.blockSizeBytes;
    return this.zeroBlock.compare(data, i * bs, (i + 1) * bs) === 0;
  }

  private free(): number {
    return this.config.segmentSizeBytes - this.current.tail;
  }

  private workingSetLength(): number {
    let n = 0;
    for (const s of this.slots) if (s.state === 'current' || s.state === 'active') n++;
    return n;
  }

  private writeBlocksRecord(block: number, data: Buffer, count: number): void {
    const bs = this.config.blockSizeBytes;
    const slot = this.current;
    const offset = slot.tail;
    const head = Buffer.allocUnsafe(RECORD_HEADER_SIZE + count * BLOCK_CRC_SIZE);
    encodeRecordHeader(head, 0, {
      type: RecordType.Write,
      flags: 0,
      sequence: this.nextRecordSequence,
      block,
      count,
      bodyLength: count * this.entrySize,
    });
    crc32cBlocks(data, bs, head, RECORD_HEADER_SIZE, slot.entrySeed);
    const parts: Buffer[] = [head.subarray(0, RECORD_HEADER_SIZE)];
    for (let i = 0; i < count; i++) {
      const at = RECORD_HEADER_SIZE + i * BLOCK_CRC_SIZE;
      parts.push(head.subarray(at, at + BLOCK_CRC_SIZE), data.subarray(i * bs, (i + 1) * bs));
    }
    slot.writeRecord(parts, offset, offset + RECORD_HEADER_SIZE + count * this.entrySize);
    this.commitWrite(slot, block, count, offset);
  }

  private commitWrite(slot: SegmentSlot, block: number, count: number, offset: number): void {
    const first = offset + RECORD_HEADER_SIZE;
    slot.summary!.addExtent(block, count, false, first);
    for (let i = 0; i < count; i++) this.index.set(block + i, slot.index, first + i * this.entrySize);
    this.advance(slot, RECORD_HEADER_SIZE + count * this.entrySize);
  }

  private writeZeroRecord(block: number, count: number): void {
    const slot = this.current;
    const offset = slot.tail;
    const head = Buffer.allocUnsafe(RECORD_HEADER_SIZE);
    encodeRecordHeader(head, 0, { type: RecordType.Zero, flags: 0, sequence: this.nextRecordSequence, block, count, bodyLength: 0 });
    slot.writeRecord([head], offset, offset + RECORD_HEADER_SIZE);
    slot.summary!.addExtent(block, count, true, offset);
    for (let i = 0; i < count; i++) this.index.clear(block + i);
    this.advance(slot, RECORD_HEADER_SIZE);
  }

  private advance(slot: SegmentSlot, bytes: number): void {
    slot.tail += bytes;
    this.nextRecordSequence++;
    slot.summary!.rawEnd = slot.tail;
    slot.summary!.nextRecordSequence = this.nextRecordSequence;
  }

  /**
   * Seals the current segment (claim 1: it becomes active), opens the next current segment in
   * a blank slot, and retires what no longer fits the working set. Writes go on into the new
   * segment while the sealed one is made durable behind them (sealBehind): waiting for that
   * fdatasync stalled every write 2–30 ms a segment. Order for power loss (FORMAT.md §4, 6a):
   * the new header is durable before any record follows it; a flush covers every slot, so the
   * sealed segment is durable before any flush or synch point is acknowledged; the archive
   * reads it only after its own fdatasync; and a roll waits for the segment the previous one
   * sealed, so only the newest segment can follow one that is not whole, which recovery drops
   * (nothing in it was promised).
   */
  async roll(): Promise<void> {
    // Clean slots return at once: in effect, the segment the previous roll sealed (retried if its flush failed).
    await Promise.all(this.slots.filter((s) => s !== this.current).map((s) => s.flushAsync()));
    const slot = await this.takeBlankSlot();
    // Its first window is read while the header's fdatasync runs.
    this.prefetchAhead(slot);
    const sealed = this.current;
    const sequence = sealed.sequence + 1;
    slot.writeAt(
      [encodeSegmentHeader({ version: this.config.version, blockSizeBytes: this.config.blockSizeBytes, volumeId: this.config.volumeId, sequence, firstRecordSequence: this.nextRecordSequence, createdAtMs: this.clock() })],
      0,
    );
    await slot.flushAsync();
    slot.state = 'current';
    slot.sequence = sequence;
    slot.tail = SEGMENT_HEADER_SIZE;
    slot.summary = new SegmentSummary(sequence, this.nextRecordSequence, SEGMENT_HEADER_SIZE, SEGMENT_HEADER_SIZE, this.nextRecordSequence);
    slot.shippedTo = SEGMENT_HEADER_SIZE;
    this.current = slot;
    this.flushAheadFrom = SEGMENT_HEADER_SIZE;
    this.flushedNearlyFull = false;
    sealed.state = 'active';
    this.counters.segmentsSealed++;
    this.archiver?.enqueue(segmentItem(sealed));
    this.unshippedSinceMs = null; // the sealed segment's writes now wait in the archive queue
    this.sealBehind(sealed);
    await this.retireExcess();
  }

  /**
   * Makes the sealed segment durable off the write path, then writes its sidecar: recovery
   * trusts a segment with a sidecar to be whole. A failed flush leaves the slot dirty for the
   * next flush, roll or archive read, which try again and report it.
   */
  private sealBehind(slot: SegmentSlot): void {
    const sequence = slot.sequence;
    slot.flushAsync().then(
      () => {
        if (slot.sequence !== sequence || slot.recycling) return; // archived and recycled meanwhile
        try {
          slot.writeSidecar(slot.summary!);
        } catch (err) {
          // The sidecar only speeds up recovery, which rebuilds it from the segment.
          debug('writing the summary of %s failed: %s', slot.name, (err as Error).message);
        }
        debug('sealed %s at %d bytes', slot.name, slot.tail);
      },
      (err: unknown) => debug('flushing sealed %s failed: %s', slot.name, (err as Error).message),
    );
  }

  /** Retires the oldest active segments until the working set is back to its length. */
  async retireExcess(): Promise<void> {
    while (this.workingSetLength() > this.config.workingSetSegments) {
      const oldest = this.workingSet()[0]!;
      assert(oldest !== this.current);
      await this.retire(oldest);
    }
  }

  /** Copies the segment's live entries forward, then makes it inactive (claims 1, 13). */
  private async retire(slot: SegmentSlot): Promise<void> {
    // Retirement runs inside a write or a roll, under the engine's mutex: no write can
    // supersede a run while it is copied. Each live run becomes one record, as long as the
    // run, so the copy never takes more record headers than the segment had (it fits a fresh
    // current segment). Only the live runs are read: after random writes they are a few
    // percent of the segment, and a segment of superseded, zero and synch entries reads nothing.
    let copied = 0;
    let sinceYield = 0;
    for (const run of this.liveRuns(slot)) {
      this.copyRun(slot, run.block, run.count, run.offset);
      copied += run.count;
      sinceYield += run.count * this.entrySize;
      // Reads of the live volume need no mutex: let them in between runs of a dense segment.
      if (sinceYield >= RETIRE_YIELD_BYTES) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    slot.state = 'inactive';
    this.counters.segmentsRetired++;
    debug('retired %s: %d live blocks copied forward', slot.name, copied);
    if (slot.archived) await this.recycle(slot);
  }

  /**
   * Writes one COPY_FORWARD record for blocks [block, block + count) whose entries lie back to
   * back at raw `offset` of `from` (rule 4): blocks copied verbatim, CRCs moved to this segment's
   * seed without reading the blocks (reseedDelta), so a bad entry stays bad. They pass through a reused
   * buffer, read and written synchronously: page-cache hits, cheaper than a trip through the
   * thread pool, and the caller holds the mutex, so no write waits on them twice. A run lies in
   * one record, and salvo writes none longer than the buffer; a longer one (the format allows
   * it) passes in pieces.
   */
  private copyRun(from: SegmentSlot, block: number, count: number, offset: number): void {
    const slot = this.current;
    const at = slot.tail;
    const bodyLength = count * this.entrySize;
    assert(this.free() >= RECORD_HEADER_SIZE + bodyLength, 'copy-forward overflowed the current segment');
    const head = Buffer.allocUnsafe(RECORD_HEADER_SIZE);
    encodeRecordHeader(head, 0, { type: RecordType.Write, flags: FLAG_COPY_FORWARD, sequence: this.nextRecordSequence, block, count, bodyLength });
    const delta = this.reseedDelta(from.entrySeed, slot.entrySeed);
    for (let done = 0; done < bodyLength; ) {
      // Whole entries a piece (the buffer holds a whole number of them).
      const piece = this.copyBuffer.subarray(0, Math.min(this.copyBuffer.length, bodyLength - done));
      from.readAt(piece, 0, piece.length, offset + done);
      if (delta !== 0) for (let at = 0; at < piece.length; at += this.entrySize) piece.writeUInt32LE((piece.readUInt32LE(at) ^ delta) >>> 0, at);
      // The header goes with the first piece: one write a run when it fits the buffer (a lone block after random writes).
      const parts = done === 0 ? [head, piece] : [piece];
      const position = done === 0 ? at : at + RECORD_HEADER_SIZE + done;
      done += piece.length;
      slot.writeRecord(parts, position, done === bodyLength ? at + RECORD_HEADER_SIZE + bodyLength : null);
    }
    this.commitWrite(slot, block, count, at);
    this.counters.bytesCopiedForward += count * this.config.blockSizeBytes;
  }

  private reseedDelta(from: number, to: number): number {
    if (this.reseed.from !== from || this.reseed.to !== to) this.reseed = { from, to, delta: reseedDelta(this.config.blockSizeBytes, from, to) };
    return this.reseed.delta;
  }

  /** The segment's entries the index still points to, as runs of consecutive blocks with contiguous entries. */
  private liveRuns(slot: SegmentSlot): LiveRun[] {
    const runs: LiveRun[] = [];
    for (let e = 0; e < slot.summary!.extentCount; e++) runs.push(...this.liveRunsOfExtent(slot, e));
    return runs;
  }

  private liveRunsOfExtent(slot: SegmentSlot, e: number): LiveRun[] {
    const summary = slot.summary!;
    if (summary.extentIsZero(e)) return [];
    const runs: LiveRun[] = [];
    const block = summary.extentBlock(e);
    const blocks = summary.extentBlocks(e);
    const first = summary.extentOffset(e);
    let runStart = -1;
    for (let i = 0; i <= blocks; i++) {
      const live = i < blocks && this.index.points(block + i, slot.index, first + i * this.entrySize);
      if (live && runStart < 0) runStart = i;
      if (!live && runStart >= 0) {
        runs.push({ block: block + runStart, count: i - runStart, offset: first + runStart * this.entrySize });
        runStart = -1;
      }
    }
    return runs;
  }

  /**
   * Copy-forward ahead of time. With the working set full, each roll must retire the oldest
   * active segment and copy its live blocks first, under the engine's mutex: writes stall for
   * as long as that copy takes (~40 ms for a 64 MiB segment of live blocks, one roll after
   * another when a burst comes round to cold data). Called while the volume is idle, this makes
   * up to `budgetBytes` of the copies that the next `horizon` rolls would make, so those rolls
   * retire without copying. They are the records retirement would write (rule 4): each follows
   * every record before it, and a block superseded meanwhile is simply no longer live. When the
   * current segment fills it rolls, as a write would, but only onto a blank slot at hand: a roll
   * that must wait for the archive is left to the writes. Returns true when more is left.
   */
  async copyAhead(budgetBytes: number, horizon: number): Promise<boolean> {
    assert(horizon >= 1 && horizon <= this.copyAheadHorizonMax);
    const workingSet = this.workingSet();
    // The next `horizon` rolls retire this many of the oldest (fewer while the working set fills).
    const due = Math.min(workingSet.length + horizon - this.config.workingSetSegments, workingSet.length - 1);
    // Each call walks the segments not yet drained from the oldest: what earlier calls copied is no longer
    // live, so it is skipped (an index lookup a block, far less than the copy of one batch).
    let copied = 0;
    for (const slot of workingSet.slice(0, Math.max(0, due))) {
      if (slot.sequence <= this.drainedThrough) continue;
      for (const run of this.liveRuns(slot)) {
        for (let done = 0; done < run.count; ) {
          if (copied >= budgetBytes) return true;
          const fit = Math.min(run.count - done, Math.floor((this.free() - RECORD_HEADER_SIZE) / this.entrySize), MAX_RECORD_BLOCKS);
          if (fit <= 0) {
            if (!this.slots.some((s) => s.state === 'recycle')) return false;
            await this.roll();
            return true;
          }
          this.copyRun(slot, run.block + done, fit, run.offset + done * this.entrySize);
          this.counters.bytesCopiedAhead += fit * this.config.blockSizeBytes;
          done += fit;
          copied += fit * this.entrySize;
        }
      }
      this.drainedThrough = slot.sequence;
    }
    return false;
  }

  private async recycle(slot: SegmentSlot): Promise<void> {
    if (slot.recycling) return; // retirement and the archive's confirmation may both ask
    slot.recycling = true;
    const name = slot.name;
    try {
      // Copies made by copy-forward must be durable before the only other copy goes.
      await this.flushAsync();
      await slot.discard();
    } finally {
      slot.recycling = false;
    }
    this.counters.segmentsRecycled++;
    debug('recycled %s', name);
    for (const wake of this.blankWaiters.splice(0)) wake();
  }

  /** A blank slot for the next current segment; waits (backpressure) while the archive is behind. */
  private async takeBlankSlot(): Promise<SegmentSlot> {
    for (;;) {
      const slot = this.slots.find((s) => s.state === 'recycle');
      if (slot) {
        if (this.stalledSinceMs !== null) {
          const ms = this.clock() - this.stalledSinceMs;
          debug('writes resume after %d ms', ms);
          this.counters.writeStalls++;
          this.counters.writeStalledMs += ms;
          this.stalledSinceMs = null;
        }
        return slot;
      }
      if (this.stalledSinceMs === null) {
        this.stalledSinceMs = this.clock();
        const waiting = this.slots.filter((s) => !s.archived && s.state !== 'current').length;
        const cause = this.archiver?.stats.lastError ?? 'the archive is behind';
        this.events.onStall(`writes stalled: every segment slot is in use and ${waiting} sealed segments wait for the archive (${cause})`);
      }
      if (!this.archiver) throw new VolumeError('NO_SPACE', 'no free segment slot and no archive to drain to');
      await new Promise<void>((resolve) => this.blankWaiters.push(resolve));
    }
  }
}

/** The archive's work item for a sealed segment: the whole of it. */
export function segmentItem(slot: SegmentSlot): ArchiveItem {
  return {
    kind: 'segment',
    sequence: slot.sequence,
    rawStart: SEGMENT_HEADER_SIZE,
    summary: slot.summary!,
    readInto: async (into, position, reader) => {
      await slot.flushAsync(); // a sealed segment is flushed behind the writes (Log.roll): never archive bytes a power loss could take back
      await slot.readRangeThrough(reader, into, position);
    },
  };
}
