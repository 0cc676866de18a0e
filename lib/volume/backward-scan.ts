/**
 * The backward scan (FORMAT.md §6): walk segment summaries from the newest entry back, and for
 * each block keep the first (that is, newest) entry met. Recovery runs it from the end of the
 * log; a snapshot runs it from its synch point. It reads summaries only, never block data.
 */
import { VolumeError } from '../errors.js';
import type { SegmentSummary } from '../format/summary.js';
import { HOLE, type BlockMap } from './block-map.js';

export interface ScanSegment {
  summary: SegmentSummary;
  /** Entries at or past this raw offset are newer than the point scanned from, and ignored. */
  endOffset: number;
}

/**
 * Sets in `into`, for every block that has an entry in `segments` (given newest first), the
 * newest entry: holder `holderOf(i)` for the i-th segment and the raw offset of the block's
 * entry, or holder HOLE when its newest entry is a ZERO record. Blocks already in `into` count
 * as seen. The map is the only memory the scan takes: it follows the blocks written.
 */
export function scanBackward(segments: readonly ScanSegment[], entrySize: number, into: BlockMap, holderOf: (segment: number) => number): void {
  segments.forEach(({ summary, endOffset }, s) => {
    const holder = holderOf(s);
    for (let e = summary.extentCount - 1; e >= 0; e--) {
      const offset = summary.extentOffset(e);
      if (offset >= endOffset) continue;
      const first = summary.extentBlock(e);
      const count = summary.extentBlocks(e);
      if (first + count > into.blocks) {
        throw VolumeError.corruptSegment(`segment ${summary.sequence}`, `entry for blocks ${first}+${count} lies past the volume's end`);
      }
      if (summary.extentIsZero(e)) {
        for (let i = 0; i < count; i++) into.setIfAbsent(first + i, HOLE, 0);
      } else {
        for (let i = 0; i < count; i++) into.setIfAbsent(first + i, holder, offset + i * entrySize);
      }
    }
  });
}
