/**
 * The live index: for each block of the volume, the slot and raw offset of its newest entry in
 * the log (its CRC; the block's bytes follow). A block that is not in it was never written or
 * was last written with zeros, and reads as zeros. A BlockMap whose holders are slot indexes.
 */
import { BlockMap } from './block-map.js';

export class BlockIndex extends BlockMap {
  /** Slot of the block's newest entry, or -1 when it reads as zeros. */
  slotOf(block: number): number {
    return this.find(block) ? this.holder : -1;
  }

  /** Raw offset of the block's newest entry (meaningful only when slotOf is not -1). */
  offsetOf(block: number): number {
    return this.find(block) ? this.offset : 0;
  }

  clear(block: number): void {
    this.delete(block);
  }

  /** The runs of blocks in [from, end) that hold data, as [first, count], in block order: what a discard of the range frees. */
  dataRuns(from: number, end: number): [number, number][] {
    const runs: [number, number][] = [];
    this.forEach((block) => {
      const last = runs[runs.length - 1];
      if (last && last[0] + last[1] === block) last[1]++;
      else runs.push([block, 1]);
    }, from, end);
    return runs;
  }

  /** True when the block's newest entry is exactly (slot, offset): that entry is live. */
  points(block: number, slot: number, offset: number): boolean {
    return this.is(block, slot, offset);
  }
}
