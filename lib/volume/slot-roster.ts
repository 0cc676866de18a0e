/**
 * The volume's slots as a whole, kept up to date by each slot as it changes (SegmentSlot.join):
 * how many are in each state, which segment each holds, which may hold writes not yet durable,
 * and the wait for a blank one. Every write asks for the working set's length, every read of the
 * past for the slot of a segment, every flush for the slots to sync: none of them walks every slot
 * (a 16 TiB volume has tens of thousands).
 */
import type { Clock } from '../util/clock.js';
import type { SegmentSlot, SegmentState } from './segment-slot.js';

export class SlotRoster {
  readonly counts: Record<SegmentState, number> = { recycle: 0, current: 0, active: 0, inactive: 0 };
  /** The slot holding each segment. */
  readonly bySequence = new Map<number, SegmentSlot>();
  /** Slots written since their last fdatasync completed (or with one in flight). */
  readonly unsynced = new Set<SegmentSlot>();
  /** Since when a roll has waited for a blank slot (the archive is behind), or null. */
  stalledSinceMs: number | null = null;
  private abandoned: Error | null = null;
  private waiters: (() => void)[] = [];
  private readonly stallListeners = new Set<() => void>();

  constructor(
    private readonly slots: readonly SegmentSlot[],
    private readonly clock: Clock,
  ) {
    for (const slot of slots) slot.join(this);
  }

  /** The current segment and the active ones. */
  workingSetLength(): number {
    return this.counts.current + this.counts.active;
  }

  /** A blank slot is at hand: a roll now would not wait for the archive. */
  hasBlankSlot(): boolean {
    return this.counts.recycle > 0;
  }

  /** The slot to read segment `sequence` from; none once its recycling began. */
  holding(sequence: number): SegmentSlot | undefined {
    const slot = this.bySequence.get(sequence);
    return slot && slot.state !== 'recycle' && !slot.recycling ? slot : undefined;
  }

  /** fdatasync every slot written since its last one. */
  flush(): void {
    for (const slot of [...this.unsynced]) slot.flush();
  }

  /** The same off the event loop, but for `except`. */
  async flushAsync(except?: SegmentSlot): Promise<void> {
    await Promise.all([...this.unsynced].filter((slot) => slot !== except).map((slot) => slot.flushAsync()));
  }

  /** A slot became blank: a roll waiting for one goes on. */
  released(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /**
   * Ends every wait for a blank slot with `err`, and any later one: the volume closes, and a
   * write that waits for an archive that does not come back must not hold the close (and the
   * engine's lock) with it. Such a write was never acknowledged; it fails.
   */
  abandon(err: Error): void {
    this.abandoned = err;
    this.released();
  }

  /**
   * Calls `listener` once a roll waits for a blank slot (at once if one waits now); returns the
   * function that forgets it. What waits behind the engine's lock learns so that it would wait
   * as long as the archive takes (Volume.flush, Volume.synch).
   */
  whenStalled(listener: () => void): () => void {
    if (this.stalledSinceMs !== null) {
      listener();
      return () => undefined;
    }
    this.stallListeners.add(listener);
    return () => this.stallListeners.delete(listener);
  }

  /**
   * A blank slot for the next current segment, waiting (backpressure) while there is none:
   * `stalled` is told when a wait begins, `resumed` how long it lasted.
   */
  async takeBlank(stalled: () => void, resumed: (ms: number) => void): Promise<SegmentSlot> {
    for (;;) {
      const slot = this.slots.find((s) => s.state === 'recycle');
      if (slot) {
        if (this.stalledSinceMs !== null) {
          resumed(this.clock.now() - this.stalledSinceMs);
          this.stalledSinceMs = null;
        }
        return slot;
      }
      if (this.abandoned) throw this.abandoned;
      if (this.stalledSinceMs === null) {
        this.stalledSinceMs = this.clock.now();
        stalled();
        const listeners = [...this.stallListeners];
        this.stallListeners.clear();
        for (const listener of listeners) listener();
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}
