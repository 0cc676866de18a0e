/**
 * Ships sealed segments to the archive, oldest first, as soon as they are sealed. Each
 * segment becomes one object (see format/archive-object.ts): its raw bytes cut into chunks,
 * each compressed in the worker pool. A segment counts as archived only once the store has
 * confirmed the whole object; only then may its slot be recycled (claim 1's order).
 *
 * Failures are retried forever with capped exponential backoff and jitter: an archive outage
 * never loses a write, it only keeps sealed segments waiting on primary storage.
 */
import createDebug from 'debug';
import { VolumeError, isVolumeError } from '../errors.js';
import { SEGMENT_HEADER_SIZE } from '../format/segment-header.js';
import { archiveObjectSize, encodeArchiveObject } from '../format/archive-object.js';
import type { SegmentSummary } from '../format/summary.js';
import { ArchiveKeys, type ArchiveStore } from './archive-store.js';
import type { CompressionPool } from './compression-pool.js';
import { fetchArchiveIndex } from './archive-reader.js';

const debug = createDebug('salvo:archive');

/** What the archiver needs to know of a sealed segment. */
export interface SealedSegment {
  sequence: number;
  summary: SegmentSummary;
  /** Reads raw bytes [position, position+length) of the segment from its slot. */
  read(position: number, length: number): Promise<Buffer>;
}

export interface ArchiverOptions {
  store: ArchiveStore;
  pool: CompressionPool;
  volumeId: string;
  blockSizeBytes: number;
  chunkSizeBytes: number;
  /** Called once the store holds the segment whole. */
  onArchived: (sequence: number) => void;
  retryDelayMsMax?: number;
}

export interface ArchiverStats {
  segmentsArchived: number;
  rawBytesArchived: number;
  storedBytesArchived: number;
  pendingSegments: number;
  /** The last failure, while the archiver is retrying. */
  lastError: string | null;
  failingSinceMs: number | null;
}

export class Archiver {
  private readonly queue: SealedSegment[] = [];
  private running: Promise<void> | null = null;
  private stopping = false;
  private wakeSleep: (() => void) | null = null;
  readonly stats: ArchiverStats = {
    segmentsArchived: 0,
    rawBytesArchived: 0,
    storedBytesArchived: 0,
    pendingSegments: 0,
    lastError: null,
    failingSinceMs: null,
  };

  constructor(private readonly options: ArchiverOptions) {}

  enqueue(segment: SealedSegment): void {
    this.queue.push(segment);
    this.queue.sort((a, b) => a.sequence - b.sequence);
    this.stats.pendingSegments = this.queue.length;
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Resolves when every queued segment is archived (or the archiver is stopped). */
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
    let failures = 0;
    while (this.queue.length > 0 && !this.stopping) {
      const segment = this.queue[0]!;
      try {
        await this.archive(segment);
        this.queue.shift();
        this.stats.pendingSegments = this.queue.length;
        this.stats.lastError = null;
        this.stats.failingSinceMs = null;
        failures = 0;
        this.options.onArchived(segment.sequence);
      } catch (err) {
        failures++;
        this.stats.lastError = (err as Error).message;
        this.stats.failingSinceMs ??= Date.now();
        const delayMs = Math.min(this.options.retryDelayMsMax ?? 30_000, 100 * 2 ** Math.min(failures, 12)) * (0.5 + Math.random() / 2);
        debug('archiving segment %d failed (%s); retry %d in %d ms', segment.sequence, (err as Error).message, failures, Math.round(delayMs));
        await this.sleep(delayMs);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async archive(segment: SealedSegment): Promise<void> {
    const { store, pool, chunkSizeBytes } = this.options;
    const key = ArchiveKeys.segment(segment.sequence);
    const rawStart = SEGMENT_HEADER_SIZE;
    const rawEnd = segment.summary.rawEnd;
    const raw = await segment.read(rawStart, rawEnd - rawStart);
    const pieces: Buffer[] = [];
    for (let at = 0; at < raw.length; at += chunkSizeBytes) pieces.push(raw.subarray(at, at + chunkSizeBytes));
    const compressed = await pool.compress(pieces);
    const parts = encodeArchiveObject(
      { blockSizeBytes: this.options.blockSizeBytes, volumeId: this.options.volumeId, sequence: segment.sequence, rawStart, rawEnd, chunkSizeBytes },
      segment.summary,
      compressed.map((bytes, i) => ({ bytes, rawLength: pieces[i]!.length })),
    );
    const size = parts.reduce((n, p) => n + p.length, 0);
    try {
      await store.put(key, parts);
    } catch (err) {
      // A conflict is our own upload when a crash came between the put and its confirmation.
      if (!isVolumeError(err, 'ARCHIVE_CONFLICT') || !(await this.isOurs(key, segment))) throw err;
    }
    const stored = await store.head(key);
    if (stored !== size && !(await this.isOurs(key, segment))) {
      throw VolumeError.archiveUnavailable(`archive object ${key} has ${stored} bytes after upload, expected ${size}`);
    }
    debug('archived segment %d: %d raw bytes as %d', segment.sequence, raw.length, size);
    this.stats.segmentsArchived++;
    this.stats.rawBytesArchived += raw.length;
    this.stats.storedBytesArchived += size;
  }

  /** True when `key` already holds this volume's copy of the segment, whole. */
  private async isOurs(key: string, segment: SealedSegment): Promise<boolean> {
    const { store, volumeId } = this.options;
    let index;
    try {
      index = await fetchArchiveIndex(store, key);
    } catch (err) {
      if (isVolumeError(err, 'CORRUPT_ARCHIVE')) return false;
      throw err;
    }
    const same =
      index.header.volumeId === volumeId &&
      index.header.sequence === segment.sequence &&
      index.header.rawEnd === segment.summary.rawEnd &&
      (await store.head(key)) === archiveObjectSize(index);
    if (!same) {
      throw new VolumeError('ARCHIVE_CONFLICT', `archive ${store.location} already holds a different ${key}`, {
        hint: 'another volume is archiving to the same place; give each volume its own archive',
      });
    }
    return true;
  }
}
