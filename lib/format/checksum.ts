/**
 * CRC32C (Castagnoli), the checksum of every header, record, block, summary and chunk.
 * @node-rs/crc32 computes it with the CPU's CRC instruction (~4 GB/s here), which keeps the
 * per-block checksum off the critical path of a 4 KiB write.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/** CRC32C of `bytes`, continuing from `seed` when given (to checksum pieces as one). */
export function crc32c(bytes: Uint8Array, seed?: number): number {
  return nativeCrc32c(bytes, seed) >>> 0;
}
