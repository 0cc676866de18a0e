/** Parsing of option values shared by the commands. */
import { VolumeError } from '../../errors.js';

export function wholeNumber(text: string, what: string, minimum = 1): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < minimum) {
    throw VolumeError.badInput(`${what} '${text}' is not a whole number of at least ${minimum}`);
  }
  return value;
}
