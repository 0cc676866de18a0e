/**
 * The live index: for each block of the volume, where its newest entry is in the log.
 * Two Uint32Arrays, 8 bytes a block: the slot holding the entry (plus one; 0 = the block was
 * never written or was last written with zeros, and reads as zeros) and the entry's byte
 * offset in that slot (its CRC; the block's bytes follow).
 */
import assert from 'node:assert';

export class BlockIndex {
  private readonly slots: Uint32Array;
  private readonly offsets: Uint32Array;

  constructor(readonly blocks: number) {
    this.slots = new Uint32Array(blocks);
    this.offsets = new Uint32Array(blocks);
  }

  /** Slot of the block's newest entry, or -1 when it reads as zeros. */
  slotOf(block: number): number {
    return this.slots[block]! - 1;
  }

  offsetOf(block: number): number {
    return this.offsets[block]!;
  }

  set(block: number, slot: number, offset: number): void {
    assert(block < this.blocks && slot >= 0);
    this.slots[block] = slot + 1;
    this.offsets[block] = offset;
  }

  clear(block: number): void {
    this.slots[block] = 0;
    this.offsets[block] = 0;
  }

  /** True when the block's newest entry is exactly (slot, offset): that entry is live. */
  points(block: number, slot: number, offset: number): boolean {
    return this.slots[block] === slot + 1 && this.offsets[block] === offset;
  }

  get memoryBytes(): number {
    return this.slots.byteLength + this.offsets.byteLength;
  }
}
