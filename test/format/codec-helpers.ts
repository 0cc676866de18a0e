/**
 * Helpers shared by the codec unit tests: flipping every bit a checksum covers, and telling
 * a proper CORRUPT_* rejection from anything else.
 */
import { VolumeError, type VolumeErrorCode } from '../../lib/errors.js';
import { crc32c } from '../../lib/format/checksum.js';

/** How `fn` ended: 'ok', or the error's code (VolumeError) or class name (anything else). */
export function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof VolumeError) return err.code;
    return err instanceof Error ? err.constructor.name : typeof err;
  }
}

/**
 * Flips each bit of `bytes[from, to)` in turn and decodes the result. Returns the flips that
 * were not rejected with `code` (empty when the checksum catches every one).
 */
export function bitFlipEscapes(bytes: Buffer, from: number, to: number, decode: (flipped: Buffer) => unknown, code: VolumeErrorCode): string[] {
  const escapes: string[] = [];
  for (let at = from; at < to; at++) {
    for (let bit = 0; bit < 8; bit++) {
      const flipped = Buffer.from(bytes);
      flipped[at]! ^= 1 << bit;
      const result = outcome(() => decode(flipped));
      if (result !== code) escapes.push(`byte ${at} bit ${bit}: ${result}`);
    }
  }
  return escapes;
}

/** Decodes every prefix of `bytes` shorter than `upTo`; returns those not rejected with `code`. */
export function truncationEscapes(bytes: Buffer, upTo: number, decode: (prefix: Buffer) => unknown, code: VolumeErrorCode): string[] {
  const escapes: string[] = [];
  for (let length = 0; length < upTo; length++) {
    const result = outcome(() => decode(Buffer.from(bytes.subarray(0, length))));
    if (result !== code) escapes.push(`${length} bytes: ${result}`);
  }
  return escapes;
}

/** Rewrites the CRC32C at `at` over `bytes[from, at)`, as a writer of those fields would. */
export function resealed(bytes: Buffer, from: number, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt32LE(crc32c(copy.subarray(from, at)), at);
  return copy;
}
