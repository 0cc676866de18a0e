/** The pieces of the log the archiver ships: a sealed segment whole, or the current segment's tail. */
import { SEGMENT_HEADER_SIZE } from '../format/segment-header.js';
import type { ArchiveItem } from '../archive/archiver.js';
import type { SegmentSlot } from './segment-slot.js';

/** A sealed segment, whole. */
export function segmentItem(slot: SegmentSlot): ArchiveItem {
  return {
    kind: 'segment',
    sequence: slot.sequence,
    rawStart: SEGMENT_HEADER_SIZE,
    summary: slot.summary!,
    readInto: async (into, position, reader) => {
      await slot.flushAsync(); // a sealed segment is flushed behind the writes (Log.roll): never archive bytes a power loss could take back
      await slot.readRangeThrough(reader, into, position);
    },
  };
}

/** The current segment's records from raw `rawStart` (the first of them `firstRecordSequence`) to its tail. */
export function tailItem(slot: SegmentSlot, rawStart: number, firstRecordSequence: number): ArchiveItem {
  return {
    kind: 'tail',
    sequence: slot.sequence,
    rawStart,
    summary: slot.summary!.sliceFrom(rawStart, firstRecordSequence),
    // On libuv's threads, not through the compression pool's low-priority workers as a sealed
    // segment is: read there while writes went on into the same slot, tails stalled the mount's
    // event loop (BENCHMARKS.md, synch-latency). Tails are small.
    readInto: async (into, position) => {
      await slot.flushAsync(); // the archive must never hold bytes that primary storage could lose
      await slot.readRangeInto(into, position);
    },
  };
}
