/**
 * What waits behind the engine's lock while writes wait for a blank slot: a write stalled for the
 * archive holds the lock as long as the archive takes, and a flush or a synch point queued behind
 * it would wait as long. They learn of the stall and answer without the lock (a flush: every
 * acknowledged write is in a slot already) or refuse (a synch point, once the archive is failing).
 */
import type { Clock } from '../util/clock.js';
import type { Log } from './log.js';

/** While writes wait for a blank slot, what waits behind them asks this often whether to answer now. */
const LOOK_EVERY_MS = 1000;

/**
 * `locked` (a task behind the engine's lock), unless writes wait for a blank slot first: then what
 * `stalled` gives, asked again every second of the wait until it gives something (null: not yet).
 */
export function untilStalled<T>(log: Log, clock: Clock, locked: Promise<T>, stalled: () => Promise<T> | null): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let forget: () => void = () => {};
    const end = (): boolean => {
      if (settled) return false;
      settled = true;
      forget();
      return true;
    };
    const settle = (result: Promise<T>) =>
      result.then(
        (value) => end() && resolve(value),
        (err: unknown) => end() && reject(err),
      );
    const look = (): void => {
      if (settled) return;
      if (log.stalledSince === null) {
        forget = log.roster.whenStalled(look);
        return;
      }
      const instead = stalled();
      if (instead) void settle(instead);
      else clock.after(LOOK_EVERY_MS, look, { background: true });
    };
    void settle(locked);
    forget = log.roster.whenStalled(look);
  });
}
