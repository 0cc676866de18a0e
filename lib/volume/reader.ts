/**
 * Reads of the live volume: each block looked up in the index and read from its entry in the
 * log, checked against its CRC before it is served; blocks never written (or last written as
 * zeros) read as zeros. Synchronous: the slots are local files in the page cache, never files
 * under the FUSE mount (ARCHITECTURE.md, the read path).
 */
import { firstBadBlock } from '../format/checksum.js';
import { BLOCK_CRC_SIZE } from '../format/record.js';
import { copyCheckedEntries, corruptEntry } from './block-copy.js';
import type { BlockIndex } from './block-index.js';
import type { SegmentSlot } from './segment-slot.js';

/** Blocks per scatter read: two iovecs each, within the kernel's 1024 (IOV_MAX). */
const SCATTER_BLOCKS_MAX = 256;

export class LiveReader {
  private scratch = Buffer.alloc(0);
  /** CRCs of a whole-block run, as stored: read beside the blocks themselves. */
  private readonly crcs = Buffer.allocUnsafe(SCATTER_BLOCKS_MAX * BLOCK_CRC_SIZE);

  constructor(
    private readonly blockSizeBytes: number,
    private readonly index: BlockIndex,
    private readonly slots: readonly SegmentSlot[],
  ) {}

  /** Reads `target.length` bytes at `position` into `target`. CORRUPT_BLOCK if a block fails its checksum. */
  readInto(target: Buffer, position: number): void {
    const bs = this.blockSizeBytes;
    const entrySize = BLOCK_CRC_SIZE + bs;
    const index = this.index;
    const end = position + target.length;
    let block = Math.floor(position / bs);
    while (block * bs < end) {
      // Contiguous entries of consecutive blocks in one slot are read with one pread.
      let run = 1;
      if (index.find(block)) {
        const slot = index.holder;
        const first = index.offset;
        while ((block + run) * bs < end && index.is(block + run, slot, first + run * entrySize)) run++;
        const holder = this.slots[slot]!;
        if (block * bs >= position && (block + run) * bs <= end) this.readWholeBlocks(holder, first, block, run, target.subarray(block * bs - position, (block + run) * bs - position));
        else this.readPartialBlocks(holder, first, block, run, target, position);
      } else {
        const from = Math.max(block * bs, position);
        target.fill(0, from - position, Math.min((block + 1) * bs, end) - position);
      }
      block += run;
    }
  }

  /**
   * A run of whole blocks: one scatter read puts each block straight into `into` and its CRC
   * beside the others, so the bytes are copied once (page cache → caller), then checked, in two
   * calls into the addon whatever the run's length: each Buffer made or call made on a request's
   * way counts (BENCHMARKS.md, fuse-io notes).
   */
  private readWholeBlocks(holder: SegmentSlot, first: number, block: number, run: number, into: Buffer): void {
    const bs = this.blockSizeBytes;
    const entrySize = BLOCK_CRC_SIZE + bs;
    for (let done = 0; done < run; done += SCATTER_BLOCKS_MAX) {
      const n = Math.min(SCATTER_BLOCKS_MAX, run - done);
      const blocks = n === run ? into : into.subarray(done * bs, (done + n) * bs);
      holder.readEntriesAt(blocks, this.crcs, bs, first + done * entrySize);
      const bad = firstBadBlock(blocks, bs, this.crcs, holder.entrySeed);
      if (bad >= 0) throw corruptEntry({ where: holder.name, offset: first, block, seed: holder.entrySeed }, done + bad, bs);
    }
  }

  /** A run that starts or ends inside a block: whole entries into the scratch buffer, then the covered parts. */
  private readPartialBlocks(holder: SegmentSlot, first: number, block: number, run: number, target: Buffer, position: number): void {
    const entrySize = BLOCK_CRC_SIZE + this.blockSizeBytes;
    if (this.scratch.length < run * entrySize) this.scratch = Buffer.allocUnsafe(Math.max(run, 256) * entrySize);
    holder.readAt(this.scratch, 0, run * entrySize, first);
    copyCheckedEntries(this.scratch.subarray(0, run * entrySize), { where: holder.name, offset: first, block, seed: holder.entrySeed }, this.blockSizeBytes, target, position);
  }
}
