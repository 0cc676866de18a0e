/**
 * Pacing of the current segment behind the writes, off their path: its pages read into the
 * cache ahead of the tail, and its bytes made durable in the background, so that neither a
 * write nor a roll waits on the disk for long (the figures: BENCHMARKS.md, engine notes).
 */
import createDebug from 'debug';
import { SEGMENT_HEADER_SIZE } from '../format/segment-header.js';
import type { Clock } from '../util/clock.js';
import type { SegmentSlot } from './segment-slot.js';

const debug = createDebug('salvo:volume');

/** Largest background flush step (a quarter of the segment below 32 MiB segments). */
const FLUSH_AHEAD_BYTES_MAX = 8 * 1024 * 1024;
/** Longest time between background flushes while writes come. */
const FLUSH_AHEAD_MS = 20;
/** How far ahead of its tail the current slot is read into the page cache. */
const PREFETCH_AHEAD_BYTES = 8 * 1024 * 1024;

export class Pacing {
  /** Background flushes of the current segment: every this many bytes, last at that tail. */
  private readonly flushAheadBytes: number;
  private flushAheadFrom = SEGMENT_HEADER_SIZE;
  private flushAheadAtMs = 0;
  /** The current segment's last background flush, started when it was nearly full, is under way or done. */
  private flushedNearlyFull = false;
  /** The slot last read ahead in, and how far. */
  private prefetched: { slot: SegmentSlot | null; to: number } = { slot: null, to: 0 };

  constructor(
    private readonly segmentSizeBytes: number,
    private readonly clock: Clock,
  ) {
    this.flushAheadBytes = Math.min(FLUSH_AHEAD_BYTES_MAX, segmentSizeBytes / 4);
  }

  /** After appends to the current segment `slot`. */
  appended(slot: SegmentSlot): void {
    this.flushAhead(slot);
    this.prefetchAhead(slot);
  }

  /** A roll opened `slot` as the next current segment. */
  opened(slot: SegmentSlot): void {
    this.flushAheadFrom = SEGMENT_HEADER_SIZE;
    this.flushedNearlyFull = false;
    this.prefetchAhead(slot);
  }

  /**
   * Keeps the next PREFETCH_AHEAD_BYTES of `slot` past its tail on their way into the page
   * cache, a new half window each time the tail has used half (SegmentSlot.prefetch says why).
   */
  private prefetchAhead(slot: SegmentSlot): void {
    if (this.prefetched.slot !== slot) this.prefetched = { slot, to: slot.tail };
    if (this.prefetched.to - slot.tail > PREFETCH_AHEAD_BYTES / 2) return;
    const from = Math.max(this.prefetched.to, slot.tail);
    const to = Math.min(slot.tail + PREFETCH_AHEAD_BYTES, this.segmentSizeBytes);
    if (to <= from) return;
    this.prefetched.to = to;
    slot.prefetch(from, to - from).catch((err: unknown) => debug('reading %s ahead failed: %s', slot.name, (err as Error).message));
  }

  /**
   * Starts an fdatasync of the current segment in the background every `flushAheadBytes`, and
   * once more when less than an eighth of that is left before the segment fills, so that the one
   * a roll must wait for (FORMAT.md §4, rule 6a) finds little left to write; slower writers get
   * one every FLUSH_AHEAD_MS instead, so that a synch point's fdatasync finds little too. A
   * failure only leaves the slot dirty; the roll's own flush reports it.
   */
  private flushAhead(slot: SegmentSlot): void {
    const free = this.segmentSizeBytes - slot.tail;
    const nearlyFull = !this.flushedNearlyFull && free < this.flushAheadBytes / 8;
    const now = this.clock.monotonic();
    if (slot.tail - this.flushAheadFrom < this.flushAheadBytes && !nearlyFull && now - this.flushAheadAtMs < FLUSH_AHEAD_MS) return;
    if (nearlyFull) this.flushedNearlyFull = true;
    this.flushAheadFrom = slot.tail;
    this.flushAheadAtMs = now;
    slot.flushAsync().catch((err: unknown) => debug('background flush of %s failed: %s', slot.name, (err as Error).message));
  }
}
