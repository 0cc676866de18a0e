/**
 * Every reading of time, every timer and every random choice the engine and the archiver make goes
 * through a Clock, so that a simulation can give its own and replay a run from a seed. The
 * system clock is the default everywhere.
 */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Wall time in ms since the epoch: synch point times, segment headers, status. */
  now(): number;
  /** A monotonic time in ms: quiet times and pacing, which must not jump with the wall clock. */
  monotonic(): number;
  /**
   * Calls `fn` once after `ms`. A background timer (work done while idle) does not keep the
   * process alive; others do, as a wait someone awaits must.
   */
  after(ms: number, fn: () => void, options?: { background?: boolean }): Timer;
  /** A uniform number in [0, 1): retry jitter. */
  random(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  after(ms, fn, options) {
    const timer = setTimeout(fn, ms);
    if (options?.background) timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
  random: () => Math.random(),
};
