/**
 * CRC32C (Castagnoli), the checksum of every header, record, block, summary and chunk.
 * @node-rs/crc32 computes it with the CPU's CRC instruction, which keeps the per-block checksum
 * off the critical path of a 4 KiB write (BENCHMARKS.md, "CRC32C").
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { native } from '../util/native.js';

/** CRC32C of `bytes`, continuing from `seed` when given (to checksum pieces as one). */
export function crc32c(bytes: Uint8Array, seed?: number): number {
  return nativeCrc32c(bytes, seed) >>> 0;
}

/**
 * The CRC32C of each `blockSize`-byte block of `data` continuing from `seed` (the segment's entry
 * seed, §3.4 of FORMAT.md), as u32 little-endian at `out[outOffset + 4 i]`: the block entries of a
 * WRITE record. One call into salvo's addon for a whole request, three CRC streams at a time
 * (native/crc32c.c), several times faster than a call a block. The write path and the live
 * volume's whole-block reads use it; its test holds it equal to crc32c() on every length and
 * alignment, and the format-v1 fixtures, written with standard CRCs, are read through it.
 */
export function crc32cBlocks(data: Buffer, blockSize: number, out: Buffer, outOffset: number, seed: number): void {
  (native().crc32cBlocks ?? crc32cEachBlock)(data, blockSize, out, outOffset, seed);
}

/** The same, a call a block: where the CPU has no CRC instruction for the addon (the tests hold the two equal). */
export function crc32cEachBlock(data: Buffer, blockSize: number, out: Buffer, outOffset: number, seed: number): void {
  for (let i = 0; i * blockSize < data.length; i++) out.writeUInt32LE(crc32c(data.subarray(i * blockSize, (i + 1) * blockSize), seed), outOffset + 4 * i);
}

/**
 * The index of the first block entry of `entries` (entries back to back, each a u32 LE CRC32C and
 * then `blockSize` bytes: a WRITE record's body) whose block does not match its CRC from `seed`, or -1. One
 * call into the addon for a run of entries (snapshot reads, segment scans), three CRC streams at
 * a time, against a call a block.
 */
export function firstBadEntry(entries: Buffer, blockSize: number, seed: number): number {
  return (native().firstBadEntry ?? firstBadEntryEach)(entries, blockSize, seed);
}

/** The same, a call a block (where the CPU has no CRC instruction for the addon; the tests hold the two equal). */
export function firstBadEntryEach(entries: Buffer, blockSize: number, seed: number): number {
  const entrySize = 4 + blockSize;
  if (blockSize <= 0 || entries.length % entrySize !== 0) throw new RangeError('firstBadEntry: entries is not whole entries of a CRC and a block');
  for (let i = 0; i * entrySize < entries.length; i++) {
    const at = i * entrySize;
    if (crc32c(entries.subarray(at + 4, at + entrySize), seed) !== entries.readUInt32LE(at)) return i;
  }
  return -1;
}

/**
 * The index of the first of `blocks` (blocks back to back) that does not match its CRC from
 * `seed`, stored apart as u32 LE at `crcs[4 i]` (a scatter read of entries: SlotFile.readEntries),
 * or -1. One call into the addon for the run, as firstBadEntry.
 */
export function firstBadBlock(blocks: Buffer, blockSize: number, crcs: Buffer, seed: number): number {
  return (native().firstBadBlock ?? firstBadBlockEach)(blocks, blockSize, crcs, seed);
}

/** The same, a call a block (where the CPU has no CRC instruction for the addon; the tests hold the two equal). */
export function firstBadBlockEach(blocks: Buffer, blockSize: number, crcs: Buffer, seed: number): number {
  if (blockSize <= 0 || blocks.length % blockSize !== 0 || crcs.length < (blocks.length / blockSize) * 4) throw new RangeError('firstBadBlock: blocks is not whole blocks, or crcs holds fewer CRCs than blocks');
  for (let i = 0; i * blockSize < blocks.length; i++) {
    if (crc32c(blocks.subarray(i * blockSize, (i + 1) * blockSize), seed) !== crcs.readUInt32LE(4 * i)) return i;
  }
  return -1;
}

/**
 * What turns a CRC32C of `length` bytes continued from seed `from` into the CRC of the same bytes
 * from seed `to`: XOR it in. The difference does not depend on the bytes (a CRC is linear in its
 * starting state), so copy-forward moves an entry to a segment with another seed without
 * reading its block, and an entry that was bad stays bad.
 */
export function reseedDelta(length: number, from: number, to: number): number {
  const zeros = Buffer.alloc(length);
  return (crc32c(zeros, from) ^ crc32c(zeros, to)) >>> 0;
}
