/**
 * The backward scan (FORMAT.md §6): walk segment summaries from the newest entry back, and for
 * each block keep the first (that is, newest) entry met. Recovery runs it from the end of the
 * log; a snapshot runs it from its synch point. It reads summaries only, never block data.
 */
import { VolumeError } from '../errors.js';
import type { SegmentSummary } from '../format/summary.js';

export interface ScanSegment {
  summary: SegmentSummary;
  /** Entries at or past this raw offset are newer than the point scanned from, and ignored. */
  endOffset: number;
}

/**
 * Calls `visit(block, segment, offset)` once for every block that has an entry in
 * `segments` (given newest first): `segment` indexes `segments`, `offset` is the raw offset of
 * the block's entry, or -1 when its newest entry is a ZERO record.
 */
export function scanBackward(
  segments: readonly ScanSegment[],
  blocks: number,
  entrySize: number,
  visit: (block: number, segment: number, offset: number) => void,
): void {
  const seen = new Uint32Array(Math.ceil(blocks / 32));
  segments.forEach(({ summary, endOffset }, s) => {
    for (let e = summary.extentCount - 1; e >= 0; e--) {
      const offset = summary.extentOffset(e);
      if (offset >= endOffset) continue;
      const first = summary.extentBlock(e);
      const count = summary.extentBlocks(e);
      if (first + count > blocks) {
        throw VolumeError.corruptSegment(`segment ${summary.sequence}`, `entry for blocks ${first}+${count} lies past the volume's end`);
      }
      const zero = summary.extentIsZero(e);
      for (let i = 0; i < count; i++) {
        const block = first + i;
        const word = block >>> 5;
        const bit = 1 << (block & 31);
        if (seen[word]! & bit) continue;
        seen[word]! |= bit;
        visit(block, s, zero ? -1 : offset + i * entrySize);
      }
    }
  });
}
