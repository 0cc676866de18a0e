/**
 * Human sizes (`64M`, `20G`, `4096`) and durations (`30s`, `5m`) as the CLI accepts them.
 * Binary units: K = 1024. Anything else is BAD_INPUT with a line saying what is accepted.
 */
import { VolumeError } from '../errors.js';

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `12`, `64K`, `64M`, `1.5G`, `2T` (optionally followed by `iB`/`B`) into bytes. */
export function parseSize(text: string, what = 'size'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  if (!match) {
    throw VolumeError.badInput(`${what} '${text}' is not a size`, 'write a number with an optional unit: 4096, 64K, 64M, 20G, 1T');
  }
  const bytes = Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw VolumeError.badInput(`${what} '${text}' is not a positive whole number of bytes`);
  }
  return bytes;
}

/** Parses `500ms`, `30s`, `5m`, `1h`, `1d` into milliseconds; a bare number means seconds. */
export function parseDuration(text: string, what = 'interval'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) {
    throw VolumeError.badInput(`${what} '${text}' is not a duration`, 'write a number with a unit: 500ms, 30s, 5m, 1h, 1d');
  }
  const ms = Number(match[1]) * DURATION_UNITS[match[2] ?? 's']!;
  // Timers wait at most 2^31 - 1 ms (about 24 days); longer ones would fire at once.
  if (!(ms >= 1) || ms > 2 ** 31 - 1) throw VolumeError.badInput(`${what} '${text}' must be from 1 ms to 24 days`);
  return Math.round(ms);
}
