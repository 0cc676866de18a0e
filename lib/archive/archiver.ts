/**
 * Ships the log to the archive, in log order (ARCHITECTURE.md, "Off-site within seconds"):
 * - a segment as soon as it is sealed: one object, its raw bytes cut into chunks compressed
 *   in the worker pool. It counts as archived only once the store confirmed the whole object;
 *   only then may its slot be recycled.
 * - at every synch point, the part of the current segment not yet shipped, as a small
 *   immutable tail piece, so the archive alone restores the newest synch point. Once the
 *   segment is archived whole, its tail pieces are redundant and are deleted.
 *
 * Failures are retried forever with capped exponential backoff and jitter: an archive outage
 * never loses a write, it only keeps sealed segments waiting on primary storage.
 */
import createDebug from 'debug';
import { VolumeError, isVolumeError } from '../errors.js';
import { encodeArchiveObject } from '../format/archive-object.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import type { SegmentSummary } from '../format/summary.js';
import { SEGMENT_HEADER_SIZE } from '../format/segment-header.js';
import { ArchiveKeys, tailChain, type ArchiveStore } from './archive-store.js';
import { chunksBound, sharedBuffer, type CompressionPool } from './compression-pool.js';
import { CatalogWriter } from './archive-catalog.js';
import { whatKeyHolds } from './key-holds.js';
import { troubleCause, troubleLine, type TroubleCause } from './archive-trouble.js';
import { systemClock, type Clock } from '../util/clock.js';

const debug = createDebug('salvo:archive');
/** Objects shipped in a row before the archive's catalog is brought up to date (it is also whenever the queue empties). */
const CATALOG_EVERY = 16;

/**
 * Reads a file by descriptor somewhere other than the event loop and libuv's threads: the
 * compression pool's low-priority workers (CompressionPool.readFile), where the archive reads
 * each sealed segment it ships without taking a core from the threads that serve the volume.
 */
export interface FileReader {
  readFile(fd: number, into: Buffer, position: number): Promise<number>;
}

/** A piece of the log to ship: a sealed segment whole (rawStart = the header's end), or a tail. */
export interface ArchiveItem {
  kind: 'segment' | 'tail';
  sequence: number;
  rawStart: number;
  /** Summary of exactly the records in [rawStart, summary.rawEnd). */
  summary: SegmentSummary;
  /** Reads raw bytes [position, position + into.length) of the segment from its slot into `into` (shared memory), through `reader` if it will. */
  readInto(into: Buffer, position: number, reader: FileReader): Promise<void>;
}

/** What the log needs of the archiver: somewhere to hand the pieces of the log it seals or ships. */
export interface ArchiveQueue {
  enqueue(item: ArchiveItem): void;
  readonly stats: Pick<ArchiverStats, 'lastError'>;
}

export interface ArchiverOptions {
  store: ArchiveStore;
  pool: CompressionPool;
  /** The volume's format version, written into every object's header. */
  version: number;
  volumeId: string;
  blockSizeBytes: number;
  chunkSizeBytes: number;
  /** Called once the store holds the segment whole. */
  onArchived: (sequence: number) => Promise<void> | void;
  retryDelayMsMax?: number;
  /** Seals every object with the volume's key, when the volume is encrypted. */
  cipher?: ObjectCipher | null;
  /** Times of the queue and the retries' waits and jitter (default: the system's). */
  clock?: Clock;
  /** Where the archive's trouble is told: once when a cause starts, and once (as a notice) when shipping resumes. */
  report?: (message: string, level?: 'notice') => void;
}

export interface ArchiverStats {
  segmentsArchived: number;
  tailsShipped: number;
  rawBytesArchived: number;
  storedBytesArchived: number;
  /** Raw bytes queued and not yet in the archive. */
  bytesWaiting: number;
  pendingItems: number;
  /** The last failure, while the archiver is retrying, and its cause (archive-trouble.ts). */
  lastError: string | null;
  failingCause: TroubleCause | null;
  failingSinceMs: number | null;
  /** Failed attempts to ship a piece (the put and its checks), by cause, since the archiver started. */
  failures: Record<TroubleCause, number>;
}

export class Archiver implements ArchiveQueue {
  private readonly queue: ArchiveItem[] = [];
  private running: Promise<void> | null = null;
  private stopping = false;
  private wakeSleep: (() => void) | null = null;
  /** Tail pieces in the archive, by segment, to delete once the segment is archived whole. */
  private readonly tails = new Map<number, string[]>();
  private readonly queuedAt = new WeakMap<ArchiveItem, number>();
  private scratch: { raw: Buffer; compressed: Buffer } | null = null;
  private readonly catalog: CatalogWriter;
  readonly stats: ArchiverStats = {
    segmentsArchived: 0,
    tailsShipped: 0,
    rawBytesArchived: 0,
    storedBytesArchived: 0,
    bytesWaiting: 0,
    pendingItems: 0,
    lastError: null,
    failingCause: null,
    failingSinceMs: null,
    failures: { full: 0, denied: 0, unreachable: 0, conflict: 0, damaged: 0, failing: 0 },
  };

  private readonly clock: Clock;

  constructor(private readonly options: ArchiverOptions) {
    this.clock = options.clock ?? systemClock;
    this.catalog = new CatalogWriter(options.store, options.volumeId, options.cipher ?? null);
  }

  /** Remembers tail pieces found in the archive at open, so they are deleted in their turn. */
  adoptTails(sequence: number, keys: string[]): void {
    this.tails.set(sequence, [...(this.tails.get(sequence) ?? []), ...keys]);
  }

  enqueue(item: ArchiveItem): void {
    this.queue.push(item);
    this.queuedAt.set(item, this.clock.now());
    this.stats.pendingItems = this.queue.length;
    this.stats.bytesWaiting += item.summary.rawEnd - item.rawStart;
    this.startDraining();
  }

  /**
   * Starts the loop that ships the queue, unless it runs. An item queued after the loop's last
   * look at the queue and before it counts as ended would wait for the next enqueue: the loop
   * that ends looks once more.
   */
  private startDraining(): void {
    this.running ??= this.drain().finally(() => {
      this.running = null;
      if (this.queue.length > 0 && !this.stopping) this.startDraining();
    });
  }

  /**
   * For a segment found in the archive at open (shipped before a restart): when the archive
   * holds it whole, it counts as archived now, as if shipped, and true is returned; otherwise
   * (missing, unreadable, another writer's) false, and it is to be queued.
   */
  async settle(item: ArchiveItem): Promise<boolean> {
    try {
      if ((await this.existing(this.keyOf(item), item)) !== 'whole') return false;
    } catch (err) {
      debug('cannot tell whether segment %d is archived (%s); it is queued', item.sequence, (err as Error).message);
      return false;
    }
    await this.options.onArchived(item.sequence);
    await this.deleteTails(item.sequence);
    return true;
  }

  /** Ends a wait between retries now: someone waits for the archive (unmount), which may be back. */
  retryNow(): void {
    this.wakeSleep?.();
  }

  /**
   * Where the log stops being in the archive: the first queued item, past what tail pieces of its
   * segment hold already (a segment waiting to be archived whole is off-site as far as its tails
   * reach); null when everything queued is there.
   */
  firstPending(): { sequence: number; rawStart: number } | null {
    const first = this.queue[0];
    if (!first) return null;
    const tails = first.kind === 'segment' ? tailChain(this.tails.get(first.sequence) ?? [], SEGMENT_HEADER_SIZE).end : first.rawStart;
    return { sequence: first.sequence, rawStart: Math.max(first.rawStart, tails) };
  }

  /** When the oldest item still waiting was queued, or null. */
  get oldestPendingSinceMs(): number | null {
    return this.queue.length > 0 ? this.queuedAt.get(this.queue[0]!) ?? null : null;
  }

  /** At work: shipping, or giving its scratch memory back once the queue emptied. */
  get busy(): boolean {
    return this.running !== null;
  }

  /** Resolves when everything queued is in the archive (or the archiver is stopped). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops after the upload in flight; what is left waits on primary for the next open. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeSleep?.();
    await this.running;
  }

  private async drain(): Promise<void> {
    // An item queued while the scratch's pages go back is shipped by the next round.
    do {
      await this.shipQueued();
      if (this.queue.length === 0) await this.updateCatalog();
      await this.releaseScratch();
    } while (this.queue.length > 0 && !this.stopping);
  }

  private async shipQueued(): Promise<void> {
    let failures = 0;
    while (this.queue.length > 0 && !this.stopping) {
      const item = this.queue[0]!;
      try {
        // A tail is redundant once its segment is queued whole behind it.
        const redundant = item.kind === 'tail' && this.queue.some((q) => q.kind === 'segment' && q.sequence === item.sequence);
        if (!redundant) {
          await this.ship(item);
          this.catalog.noteShipped(this.keyOf(item), item.sequence, item.summary.rawEnd, item.summary.synchs);
        }
        this.queue.shift();
        this.stats.pendingItems = this.queue.length;
        this.stats.bytesWaiting -= item.summary.rawEnd - item.rawStart;
        if (this.stats.failingSinceMs !== null) {
          this.options.report?.(`archive ${this.options.store.location}: shipping again after ${Math.round((this.clock.now() - this.stats.failingSinceMs) / 1000)} s of failures`, 'notice');
        }
        this.stats.lastError = null;
        this.stats.failingCause = null;
        this.stats.failingSinceMs = null;
        failures = 0;
        if (item.kind === 'segment') {
          await this.options.onArchived(item.sequence);
          await this.deleteTails(item.sequence);
        }
        if (this.catalog.pendingObjects >= CATALOG_EVERY) await this.updateCatalog();
      } catch (err) {
        failures++;
        const cause = troubleCause(err);
        // Once per cause, not once per retry: a long outage is one line in the log, not thousands.
        if (cause !== this.stats.failingCause) this.options.report?.(troubleLine(this.options.store.location, cause, (err as Error).message));
        this.stats.lastError = (err as Error).message;
        this.stats.failingCause = cause;
        this.stats.failingSinceMs ??= this.clock.now();
        this.stats.failures[cause]++;
        const delayMs = Math.min(this.options.retryDelayMsMax ?? 30_000, 100 * 2 ** Math.min(failures, 12)) * (0.5 + this.clock.random() / 2);
        debug('archiving %s %d failed (%s); retry %d in %d ms', item.kind, item.sequence, (err as Error).message, failures, Math.round(delayMs));
        await this.sleep(delayMs);
      }
    }
  }

  /**
   * Brings the archive's catalog up to date. A failure costs readers time, never data (the
   * summaries stay the truth), so it is only logged; the next update catches up.
   */
  private async updateCatalog(): Promise<void> {
    try {
      await this.catalog.flush();
    } catch (err) {
      debug('updating the archive catalog failed (%s); readers fall back to the summaries past its end', (err as Error).message);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.clock.after(ms, resolve);
      this.wakeSleep = () => {
        timer.cancel();
        resolve();
      };
    });
  }

  /**
   * Shared memory for one item's raw bytes and its compressed chunks, kept for the archiver's
   * life and reused from item to item: fresh buffers for every segment cost page faults, and V8
   * garbage collections driven by that much external memory. Its pages go back to the OS whenever
   * the queue empties (releaseScratch); dropped instead, it would stay resident (releasePages
   * says why) and the mount would grow with every burst of writes (BENCHMARKS.md, "Archiver
   * scratch memory").
   */
  private async scratchFor(rawLength: number): Promise<{ raw: Buffer; compressed: Buffer }> {
    const bound = chunksBound(rawLength, this.options.chunkSizeBytes);
    let scratch = this.scratch;
    if (!scratch || scratch.raw.length < rawLength || scratch.compressed.length < bound) {
      await this.releaseScratch();
      scratch = this.scratch = { raw: sharedBuffer(Math.max(rawLength, scratch?.raw.length ?? 0)), compressed: sharedBuffer(Math.max(bound, scratch?.compressed.length ?? 0)) };
    }
    return { raw: scratch.raw.subarray(0, rawLength), compressed: scratch.compressed };
  }

  /** Gives the scratch's pages back; it keeps its place for the next item. Nothing is lost if that fails. */
  private async releaseScratch(): Promise<void> {
    if (!this.scratch) return;
    try {
      const { pool } = this.options;
      await Promise.all([pool.releasePages(this.scratch.raw), pool.releasePages(this.scratch.compressed)]);
    } catch (err) {
      debug('giving back the archive scratch memory failed: %s', (err as Error).message);
    }
  }

  private keyOf(item: ArchiveItem): string {
    return item.kind === 'segment' ? ArchiveKeys.segment(item.sequence) : ArchiveKeys.tail(item.sequence, item.rawStart, item.summary.rawEnd);
  }

  private async ship(item: ArchiveItem): Promise<void> {
    const { store, pool, chunkSizeBytes } = this.options;
    const key = this.keyOf(item);
    const { rawStart } = item;
    const rawEnd = item.summary.rawEnd;
    if (item.kind === 'segment') {
      const before = await this.existing(key, item);
      if (before === 'whole') return debug('segment %d was already archived', item.sequence);
      if (before === 'partial') await this.replacePartial(key);
    }
    const rawLength = rawEnd - rawStart;
    const { raw, compressed } = await this.scratchFor(rawLength);
    await item.readInto(raw, rawStart, pool);
    const { lengths, crcs } = await pool.compressChunks(raw, chunkSizeBytes, compressed);
    let at = 0;
    const chunks = lengths.map((length, i) => {
      const chunk = { bytes: compressed.subarray(at, at + length), rawLength: Math.min(chunkSizeBytes, rawLength - i * chunkSizeBytes), crc: crcs[i]! };
      at += length;
      return chunk;
    });
    // The parts point into the scratch memory: they are consumed before the next item reuses it.
    const parts = encodeArchiveObject(
      { version: this.options.version, blockSizeBytes: this.options.blockSizeBytes, volumeId: this.options.volumeId, sequence: item.sequence, rawStart, rawEnd, chunkSizeBytes },
      item.summary,
      chunks,
      this.options.cipher ?? null,
    );
    const size = parts.reduce((n, p) => n + p.length, 0);
    try {
      await store.put(key, parts);
    } catch (err) {
      // A conflict is our own upload when a crash came between the put and its confirmation.
      if (!isVolumeError(err, 'ARCHIVE_CONFLICT')) throw err;
      const there = await this.existing(key, item);
      if (there !== 'whole') {
        // Cut short (or gone since): put afresh now, not after a retry's wait, which an unmount's
        // drain would count as the archive failing.
        if (there === 'partial') await this.replacePartial(key);
        await store.put(key, parts);
      }
    }
    // Durable before recycle: the store must show the whole object.
    const stored = await store.head(key);
    if (stored !== size && (await this.existing(key, item)) !== 'whole') {
      await this.replacePartial(key);
      throw VolumeError.archiveUnavailable(`archive object ${key} had ${stored} bytes after upload, expected ${size}`);
    }
    if (item.kind === 'tail') {
      this.adoptTails(item.sequence, [key]);
      this.stats.tailsShipped++;
    } else {
      this.stats.segmentsArchived++;
    }
    this.stats.rawBytesArchived += rawLength;
    this.stats.storedBytesArchived += size;
    debug('archived %s: %d raw bytes as %d', key, rawLength, size);
  }

  private async deleteTails(sequence: number): Promise<void> {
    for (const key of this.tails.get(sequence) ?? []) {
      try {
        await this.options.store.delete(key);
      } catch (err) {
        debug('deleting redundant %s failed: %s', key, (err as Error).message);
      }
    }
    this.tails.delete(sequence);
  }

  /** What the archive holds under `key` already (key-holds.ts). */
  private existing(key: string, item: ArchiveItem): Promise<'whole' | 'partial' | null> {
    const { store, volumeId, cipher } = this.options;
    return whatKeyHolds(store, key, { volumeId, sequence: item.sequence, rawStart: item.rawStart, rawEnd: item.summary.rawEnd }, cipher ?? null);
  }

  /** Deletes an upload of ours that was cut short, so that it can be made again. */
  private async replacePartial(key: string): Promise<void> {
    this.options.report?.(`archive ${this.options.store.location}: ${key} is an upload of this volume cut short (a crash or a full disk); it is uploaded again`);
    await this.options.store.delete(key);
  }
}
