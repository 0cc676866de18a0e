/**
 * The volume's own check for `salvo verify`: every record and block of the segments its slots
 * hold, read back and checked against their CRCs. Problems are reported with where they are;
 * nothing is repaired.
 */
import { SEGMENT_HEADER_SIZE } from '../format/segment-header.js';
import type { SegmentSummary } from '../format/summary.js';
import { scanSegment } from './segment-scan.js';
import type { SegmentSlot } from './segment-slot.js';

export interface Problem {
  /** A slot file, an archive key, or a snapshot name. */
  where: string;
  segment: number | null;
  offset: number | null;
  message: string;
}

export interface VerifyCounts {
  segmentsOnPrimary: number;
  archiveObjects: number;
  blocks: number;
  synchPoints: number;
}

export function emptyCounts(): VerifyCounts {
  return { segmentsOnPrimary: 0, archiveObjects: 0, blocks: 0, synchPoints: 0 };
}

/** Checks every record and block of the segments in `slots`. */
export async function checkSlots(slots: readonly SegmentSlot[], blockSizeBytes: number, counts: VerifyCounts): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const slot of slots) {
    if (slot.sequence === 0 || !slot.summary) continue;
    counts.segmentsOnPrimary++;
    const raw = await slot.readRange(SEGMENT_HEADER_SIZE, slot.tail - SEGMENT_HEADER_SIZE);
    const scan = scanSegment(raw, {
      sequence: slot.sequence,
      firstRecordSequence: slot.summary.firstRecordSequence,
      rawStart: SEGMENT_HEADER_SIZE,
      blockSizeBytes,
      entrySeed: slot.entrySeed,
      where: slot.path,
      badBlock: 'report',
    });
    for (const bad of scan.badBlocks) {
      problems.push({ where: slot.path, segment: slot.sequence, offset: bad.offset, message: `block ${bad.block} failed its checksum` });
    }
    if (scan.summary.rawEnd < slot.tail) {
      problems.push({ where: slot.path, segment: slot.sequence, offset: scan.summary.rawEnd, message: scan.stoppedBy ?? 'records end early' });
    }
    counts.blocks += countBlocks(scan.summary);
  }
  return problems;
}

/** Blocks with data in a summary (ZERO extents hold none). */
export function countBlocks(summary: Pick<SegmentSummary, 'extentCount' | 'extentIsZero' | 'extentBlocks'>): number {
  let blocks = 0;
  for (let e = 0; e < summary.extentCount; e++) if (!summary.extentIsZero(e)) blocks += summary.extentBlocks(e);
  return blocks;
}
