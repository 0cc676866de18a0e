/**
 * Copy-ahead: once writes pause, make the copies that the next rolls' retirements would make
 * under the writes (Retirement.copyAhead), a batch a turn under the engine's mutex, so that those
 * rolls do not stall the writes that come next. It reaches as many rolls ahead as the largest of
 * the last bursts of writes made (at least one): a burst like them then retires without copying,
 * also when small bursts come between big ones. Blocks copied ahead that the next burst
 * overwrites before their segment is due were copied for nothing, so it drains no further than a
 * recent burst (the trade-off measured: BENCHMARKS.md, fuse-io notes).
 */
import createDebug from 'debug';
import type { Clock, Timer } from '../util/clock.js';
import type { Log } from './log.js';
import type { Mutex } from './mutex.js';

const debug = createDebug('salvo:volume');

/** Quiet time after the last write before copy-forward runs ahead, unless told. */
export const COPY_AHEAD_IDLE_MS = 100;
/** Copied forward a turn: a write that arrives meanwhile waits for one batch (or one roll) at most. */
const BATCH_BYTES = 1024 * 1024;
/**
 * An idle spell copies at most this many segments' worth a roll it drains ahead: when the oldest
 * segments hold mostly live blocks, the rolls that make room for their copies bring more
 * segments due, and this bounds the chase.
 */
const SEGMENTS_A_ROLL = 2;
/** An idle spell drains as far ahead as the largest of this many recent bursts rolled. */
const BURSTS_REMEMBERED = 8;

export class CopyAhead {
  /** Monotonic time of the last write, and the timer that waits for writes to pause. */
  private lastWriteMs = 0;
  private timer: Timer | null = null;
  /** The idle spell under way, if any: how many rolls ahead it drains and what it may still copy. */
  private spell: { horizon: number; budgetBytes: number } | null = null;
  /** segmentsSealed less the rolls the writes made since the last spell that finished (a spell's own rolls are not a burst's). */
  private sealedNotByBurst = 0;
  /** The rolls of the last bursts, newest last. */
  private readonly recentBurstRolls: number[] = [];
  private stopped = false;

  constructor(
    private readonly log: Log,
    private readonly mutex: Mutex,
    private readonly clock: Clock,
    private readonly idleMs = COPY_AHEAD_IDLE_MS,
  ) {}

  /** A write ended: the quiet time counts from now, and a spell under way ends. */
  wrote(): void {
    this.lastWriteMs = this.clock.monotonic();
    this.spell = null;
    if (!this.timer) this.wait(this.idleMs);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private wait(ms: number): void {
    this.timer = this.clock.after(ms, () => this.whenIdle(), { background: true });
  }

  private whenIdle(): void {
    this.timer = null;
    if (this.stopped) return;
    const quietMs = this.clock.monotonic() - this.lastWriteMs;
    if (quietMs < this.idleMs) return this.wait(this.idleMs - quietMs);
    const { log } = this;
    if (!this.spell) {
      const horizon = Math.min(Math.max(1, this.burstRolls(), ...this.recentBurstRolls), log.copyAheadHorizonMax);
      this.spell = { horizon, budgetBytes: horizon * SEGMENTS_A_ROLL * log.config.segmentSizeBytes };
    }
    const spell = this.spell;
    this.mutex
      .run(async () => {
        if (this.stopped || spell !== this.spell) return false;
        const sealed = log.counters.segmentsSealed;
        const copied = log.counters.bytesCopiedForward;
        const more = await log.retirement.copyAhead(Math.min(BATCH_BYTES, spell.budgetBytes), spell.horizon);
        this.sealedNotByBurst += log.counters.segmentsSealed - sealed;
        spell.budgetBytes -= log.counters.bytesCopiedForward - copied;
        if (more && spell.budgetBytes > 0) return true;
        this.recentBurstRolls.push(this.burstRolls());
        if (this.recentBurstRolls.length > BURSTS_REMEMBERED) this.recentBurstRolls.shift();
        this.sealedNotByBurst = log.counters.segmentsSealed;
        return false;
      })
      .then(
        (more) => {
          if (more && !this.timer) this.wait(0);
        },
        // A failing copy (a full disk) fails the next write or roll the same way; that one reports it.
        (err: unknown) => debug('copy-forward ahead of retirement failed: %s', (err as Error).message),
      );
  }

  /** Rolls the writes made since the last idle spell finished (a write ends a spell before it can). */
  private burstRolls(): number {
    return this.log.counters.segmentsSealed - this.sealedNotByBurst;
  }
}
