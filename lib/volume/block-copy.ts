/** Copying checked blocks into a read's target buffer: the live volume and snapshots alike. */
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import { firstBadEntry } from '../format/checksum.js';
import { BLOCK_CRC_SIZE } from '../format/record.js';

const debug = createDebug('salvo:volume');

/** Where a run of block entries (each a CRC32C, then the block) was read: the first at raw `offset`, for blocks from `block` on. */
export interface EntryRun {
  where: string;
  offset: number;
  block: number;
  /** The segment's entry seed (format/record.ts entrySeed). */
  seed: number;
}

/** CORRUPT_BLOCK for entry `i` of the run, logged (the read refuses it; the log says where). */
export function corruptEntry(run: EntryRun, i: number, blockSizeBytes: number): VolumeError {
  const err = VolumeError.corruptBlock(`${run.where} at offset ${run.offset + i * (BLOCK_CRC_SIZE + blockSizeBytes)}`, run.block + i);
  debug('%s', err.message);
  return err;
}

/** Copies the blocks of `entries` into `target` (which starts at volume byte `position`) once every one matched its CRC. */
export function copyCheckedEntries(entries: Buffer, run: EntryRun, blockSizeBytes: number, target: Buffer, position: number): void {
  const entrySize = BLOCK_CRC_SIZE + blockSizeBytes;
  const bad = firstBadEntry(entries, blockSizeBytes, run.seed);
  if (bad >= 0) throw corruptEntry(run, bad, blockSizeBytes);
  for (let i = 0; i * entrySize < entries.length; i++) {
    copyBlockPart(entries.subarray(i * entrySize + BLOCK_CRC_SIZE, (i + 1) * entrySize), (run.block + i) * blockSizeBytes, target, position);
  }
}

/** Copies the part of `block` (which starts at volume byte `blockStart`) that `target` (starting at `position`) covers. */
export function copyBlockPart(block: Buffer, blockStart: number, target: Buffer, position: number): void {
  const from = Math.max(blockStart, position);
  const to = Math.min(blockStart + block.length, position + target.length);
  block.copy(target, from - position, from - blockStart, to - blockStart);
}
