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

  /** True when the block's newest entry is exactly (slot, offset): that entry is live. */
  points(block: number, slot: number, offset: number): boolean {
    return this.is(block, slot, offset);
  }
}
