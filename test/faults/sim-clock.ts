/**
 * The simulation's clock: time is a number the simulation moves, not the machine's. Timers wait
 * in a queue by deadline; whenever the process has nothing else to do (no promise left to
 * settle), the earliest fires and time jumps to its deadline. So retries of 30 s and idle waits
 * cost nothing, and, with nothing else asynchronous in the run (files in memory, compression
 * inline), the order of events is a function of the seed: a failing seed replays exactly.
 * The wall clock can be stepped back or forward, as NTP does.
 */
import type { Clock, Timer } from '../../lib/util/clock.js';

interface Pending {
  deadline: number;
  order: number;
  fn: () => void;
}

export class SimClock implements Clock {
  private elapsedMs = 0;
  private wallStepMs = 0;
  private readonly timers: Pending[] = [];
  private order = 0;
  private pumping = false;

  constructor(
    private readonly rand: () => number,
    private readonly startMs = Date.UTC(2026, 0, 1),
  ) {}

  /** Whole milliseconds, as Date.now() gives them. */
  now(): number {
    return Math.floor(this.startMs + this.elapsedMs + this.wallStepMs);
  }

  monotonic(): number {
    return this.elapsedMs;
  }

  /** Time passes (the workload pausing). */
  advance(ms: number): void {
    this.elapsedMs += ms;
  }

  /** The wall clock is set, by `ms` either way; monotonic time does not move. */
  stepWall(ms: number): void {
    this.wallStepMs += ms;
  }

  /** Resolves once `ms` of simulated time have passed, the timers due before then fired in order. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  /** Background or not, a timer here fires when its turn comes: the simulation decides when the process ends. */
  after(ms: number, fn: () => void): Timer {
    const timer: Pending = { deadline: this.elapsedMs + ms, order: this.order++, fn };
    this.timers.push(timer);
    this.pump();
    return {
      cancel: () => {
        const at = this.timers.indexOf(timer);
        if (at >= 0) this.timers.splice(at, 1);
      },
    };
  }

  random(): number {
    return this.rand();
  }

  /** Drops every timer: the process they belonged to is gone. */
  clear(): void {
    this.timers.length = 0;
  }

  // setImmediate runs once every settled promise's callbacks have run: the process is idle but for timers.
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(() => {
      this.pumping = false;
      if (this.timers.length === 0) return;
      let next = 0;
      for (let i = 1; i < this.timers.length; i++) {
        const [a, b] = [this.timers[i]!, this.timers[next]!];
        if (a.deadline < b.deadline || (a.deadline === b.deadline && a.order < b.order)) next = i;
      }
      const [timer] = this.timers.splice(next, 1);
      this.elapsedMs = Math.max(this.elapsedMs, timer!.deadline);
      if (this.timers.length > 0) this.pump();
      timer!.fn();
    });
  }
}
