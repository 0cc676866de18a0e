/** Copying the covered part of a block into a read's target buffer. */

/** Copies the part of `block` (which starts at volume byte `blockStart`) that `target` (starting at `position`) covers. */
export function copyBlockPart(block: Buffer, blockStart: number, target: Buffer, position: number): void {
  const from = Math.max(blockStart, position);
  const to = Math.min(blockStart + block.length, position + target.length);
  block.copy(target, from - position, from - blockStart, to - blockStart);
}
