/**
 * The log: fixed-size segments in slots on primary storage, appended to at the current segment.
 * A full current segment is sealed (it becomes active) and the next opens in a blank slot; what
 * no longer fits the working set is retired (retirement.ts); a retired segment's slot is recycled
 * once the archive holds it, and writes wait for a blank slot while it does not (backpressure).
 *
 * Invariants:
 * - The working set is the current segment and the active ones: at most `workingSetSegments`,
 *   except while the oldest active is being retired (one more).
 * - A slot is recycled only after the archive confirmed its segment whole.
 * - Record sequences increase by one across the whole log; segment sequences by one.
 */
import assert from 'node:assert';
import createDebug from 'debug';
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
import type { ArchiveQueue } from '../archive/archiver.js';
import type { Clock } from '../util/clock.js';
import type { BlockIndex } from './block-index.js';
import { segmentItem, tailItem } from './archive-items.js';
import { Pacing } from './pacing.js';
import { Retirement } from './retirement.js';
import type { SegmentSlot } from './segment-slot.js';
import { SlotRoster } from './slot-roster.js';
import type { SynchPoint } from './synch-point.js';

const debug = createDebug('salvo:volume');

/** Largest WRITE record: 128 KiB requests from FUSE fit in one. */
const MAX_RECORD_BLOCKS = 256;
/** Largest ZERO record: its count shares a summary extent's u32 with the ZERO bit (FORMAT.md §3.6). */
const MAX_ZERO_BLOCKS = 2 ** 31 - 1;

export interface LogEvents {
  /** Writes are waiting for a free slot (the archive is behind); called once per stall. */
  onStall(message: string): void;
  /** The stall ended after `ms`: writes go on. */
  onResume?(ms: number): void;
}

export class Log {
  readonly entrySize: number;
  private readonly zeroBlock: Buffer;
  /** Copy-forward's bytes pass through here, a piece at a time (copyRecord). */
  private readonly copyBuffer: Buffer;
  /** The last reseedDelta copy-forward needed, by the seeds it was for. */
  private reseed = { from: 0, to: 0, delta: 0 };
  private readonly pacing: Pacing;
  /**
   * How many rolls ahead copyAhead may drain: the segments it empties early must leave the rest
   * of the working set room for every live block with the policy's headroom, or it could copy
   * the same blocks round and round.
   */
  readonly copyAheadHorizonMax: number;
  readonly retirement: Retirement;
  /** The slots as a whole: counts by state, the slot of each segment, the unsynced ones. */
  readonly roster: SlotRoster;
  /** When the oldest write not yet queued for the archive was made, or null. */
  unshippedSinceMs: number | null = null;
  /** Bytes appended by the application and by copy-forward, for status. */
  readonly counters = { bytesWritten: 0, blocksDiscarded: 0, bytesCopiedForward: 0, bytesCopiedAhead: 0, segmentsSealed: 0, segmentsRetired: 0, segmentsRecycled: 0, writeStalls: 0, writeStalledMs: 0 };

  constructor(
    readonly config: VolumeConfig,
    readonly slots: SegmentSlot[],
    readonly index: BlockIndex,
    public current: SegmentSlot,
    /** Record sequence of the next record. */
    private nextRecordSequence: number,
    private readonly archive: ArchiveQueue,
    private readonly events: LogEvents,
    private readonly clock: Clock,
  ) {
    this.entrySize = BLOCK_CRC_SIZE + config.blockSizeBytes;
    this.zeroBlock = Buffer.alloc(config.blockSizeBytes);
    this.copyBuffer = Buffer.allocUnsafe(MAX_RECORD_BLOCKS * this.entrySize);
    this.pacing = new Pacing(config.segmentSizeBytes, clock);
    this.copyAheadHorizonMax = Math.max(1, config.workingSetSegments - minimumWorkingSet(config.sizeBytes, config.segmentSizeBytes, config.blockSizeBytes));
    this.retirement = new Retirement(this);
    this.roster = new SlotRoster(slots, clock);
  }

  /** Current and active segments, oldest first. */
  workingSet(): SegmentSlot[] {
    return this.slots.filter((s) => s.state === 'current' || s.state === 'active').sort((a, b) => a.sequence - b.sequence);
  }

  /** The slot to read segment `sequence` from; none once its recycling began (the archive holds it). */
  slotHolding(sequence: number): SegmentSlot | undefined {
    return this.roster.holding(sequence);
  }

  /** Record sequence of the next record: it changes with every append, so a cached read can tell it may be stale. */
  get appendStamp(): number {
    return this.nextRecordSequence;
  }

  get stalledSince(): number | null {
    return this.roster.stalledSinceMs;
  }

  /**
   * Appends blocks [block, block + data.length / blockSize) with their new contents. Runs of
   * all-zero blocks become ZERO records (no data stored). Acknowledged when the bytes are in
   * the OS: a kill -9 afterwards loses nothing.
   */
  async appendBlocks(block: number, data: Buffer): Promise<void> {
    const count = this.blockCount(data);
    if (this.roster.workingSetLength() > this.config.workingSetSegments) await this.retirement.retireExcess();
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
    if (this.roster.workingSetLength() > this.config.workingSetSegments || this.free() < count * (RECORD_HEADER_SIZE + this.entrySize)) return false;
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

  /**
   * A discard of blocks [block, block + count): each run of them that holds data becomes a
   * ZERO record, in log order with writes and synch points, and leaves the live index, so
   * copy-forward and the archive never carry those blocks again. Blocks that read as zeros
   * already get nothing: a repeated fstrim writes nothing. Returns the blocks freed; the
   * caller makes the records durable.
   */
  async discardBlocks(block: number, count: number): Promise<number> {
    const runs = this.index.dataRuns(block, block + count);
    if (runs.length === 0) return 0;
    if (this.roster.workingSetLength() > this.config.workingSetSegments) await this.retirement.retireExcess();
    let freed = 0;
    for (const [first, blocks] of runs) {
      for (let done = 0; done < blocks; ) {
        if (this.free() < RECORD_HEADER_SIZE) await this.roll();
        const piece = Math.min(blocks - done, MAX_ZERO_BLOCKS);
        this.writeZeroRecord(first + done, piece);
        done += piece;
      }
      freed += blocks;
    }
    this.appended(0);
    this.counters.blocksDiscarded += freed;
    return freed;
  }

  private appended(bytes: number): void {
    this.counters.bytesWritten += bytes;
    this.unshippedSinceMs ??= this.clock.now();
    this.pacing.appended(this.current);
  }

  /** Appends a SYNCH record and makes everything before it durable. */
  /** Appends a SYNCH record; `check` runs just before it is placed, and may refuse the point by throwing. */
  async appendSynch(body: SynchBody, check?: () => void): Promise<SynchPoint> {
    // The body's length does not depend on the seed: room is found first, then it is encoded for that segment.
    const size = RECORD_HEADER_SIZE + encodeSynchBody(body, 0).length;
    assert(size < this.config.segmentSizeBytes / 2, 'synch record too large');
    if (this.roster.workingSetLength() > this.config.workingSetSegments) await this.retirement.retireExcess();
    if (this.free() < size) await this.roll();
    check?.();
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
   * archive alone restores everything up to now (ARCHITECTURE.md: off-site within seconds).
   */
  shipTail(): void {
    const slot = this.current;
    if (slot.tail <= slot.shippedTo) return;
    const rawStart = slot.shippedTo;
    const firstRecordSequence = rawStart === SEGMENT_HEADER_SIZE ? slot.summary!.firstRecordSequence : slot.shippedRecordSequence;
    this.archive.enqueue(tailItem(slot, rawStart, firstRecordSequence));
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
    this.roster.flush();
  }

  /** The same, off the event loop. */
  async flushAsync(): Promise<void> {
    await this.roster.flushAsync();
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

  /** Whole blocks one more WRITE record can hold in the current segment (none: it must roll). */
  blocksThatFit(): number {
    return Math.min(Math.floor((this.free() - RECORD_HEADER_SIZE) / this.entrySize), MAX_RECORD_BLOCKS);
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
   * Seals the current segment (it becomes active), opens the next current segment in a blank
   * slot, and retires what no longer fits the working set. Writes go on into the new segment
   * while the sealed one is made durable behind them (sealBehind), rather than wait for that
   * fdatasync (BENCHMARKS.md, "Sealing behind the writes"). Order for power loss (FORMAT.md §4, 6a):
   * the new header is durable before any record follows it; a flush covers every slot, so the
   * sealed segment is durable before any flush or synch point is acknowledged; the archive
   * reads it only after its own fdatasync; and a roll waits for the segment the previous one
   * sealed, so only the newest segment can follow one that is not whole, which recovery drops
   * (nothing in it was promised).
   */
  async roll(): Promise<void> {
    // In effect the segment the previous roll sealed (retried if its flush failed): only unsynced slots are asked.
    await this.roster.flushAsync(this.current);
    const slot = await this.roster.takeBlank(
      () => {
        const waiting = this.slots.filter((s) => !s.archived && s.state !== 'current').length;
        this.events.onStall(`writes stalled: every segment slot is in use and ${waiting} sealed segments wait for the archive (${this.archive.stats.lastError ?? 'the archive is behind'})`);
      },
      (ms) => {
        debug('writes resume after %d ms', ms);
        this.counters.writeStalls++;
        this.counters.writeStalledMs += ms;
        this.events.onResume?.(ms);
      },
    );
    // Its first window is read while the header's fdatasync runs.
    this.pacing.opened(slot);
    const sealed = this.current;
    const sequence = sealed.sequence + 1;
    slot.writeAt(
      [encodeSegmentHeader({ version: this.config.version, blockSizeBytes: this.config.blockSizeBytes, volumeId: this.config.volumeId, sequence, firstRecordSequence: this.nextRecordSequence, createdAtMs: this.clock.now() })],
      0,
    );
    await slot.flushAsync();
    slot.state = 'current';
    slot.sequence = sequence;
    slot.tail = SEGMENT_HEADER_SIZE;
    slot.summary = new SegmentSummary(sequence, this.nextRecordSequence, SEGMENT_HEADER_SIZE, SEGMENT_HEADER_SIZE, this.nextRecordSequence);
    slot.shippedTo = SEGMENT_HEADER_SIZE;
    this.current = slot;
    sealed.state = 'active';
    this.counters.segmentsSealed++;
    this.archive.enqueue(segmentItem(sealed));
    this.unshippedSinceMs = null; // the sealed segment's writes now wait in the archive queue
    this.sealBehind(sealed);
    await this.retirement.retireExcess();
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

  /**
   * Writes one COPY_FORWARD record for blocks [block, block + count) whose entries lie back to
   * back at raw `offset` of `from` (rule 4): blocks copied verbatim, CRCs moved to this segment's
   * seed without reading the blocks (reseedDelta), so a bad entry stays bad. They pass through a reused
   * buffer, read and written synchronously: page-cache hits, cheaper than a trip through the
   * thread pool, and the caller holds the mutex, so no write waits on them twice. A run lies in
   * one record, and salvo writes none longer than the buffer; a longer one (the format allows
   * it) passes in pieces.
   */
  copyRecord(from: SegmentSlot, block: number, count: number, offset: number): void {
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

  /** Discards an inactive segment the archive holds, making its slot blank for a next segment. */
  async recycle(slot: SegmentSlot): Promise<void> {
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
    this.roster.released();
  }
}
