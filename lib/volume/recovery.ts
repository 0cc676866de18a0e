/**
 * Opening the log on primary storage, after a clean close or a crash alike: find the
 * segments in the slots, cut the current segment at its first torn or invalid record, and
 * rebuild the live index by the backward scan over the newest `workingSetSegments + 1`
 * segments (FORMAT.md §5, §6). The segment just older than the working set is left active, so the
 * next append finishes its retirement (copy-forward is idempotent).
 */
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import { BLOCK_CRC_SIZE, RECORD_HEADER_SIZE } from '../format/record.js';
import { SEGMENT_HEADER_SIZE, encodeSegmentHeader } from '../format/segment-header.js';
import { SegmentSummary } from '../format/summary.js';
import type { VolumeConfig } from '../format/volume-config.js';
import { BlockIndex } from './block-index.js';
import { HOLE } from './block-map.js';
import { scanBackward } from './backward-scan.js';
import { scanSegment, type ScanResult } from './segment-scan.js';
import { SegmentSlot } from './segment-slot.js';
import type { VolumeFiles } from './files.js';
import { synchPointFromEntry, type SynchPoint } from './synch-point.js';

const debug = createDebug('salvo:volume');

export interface Recovered {
  slots: SegmentSlot[];
  index: BlockIndex;
  current: SegmentSlot;
  nextRecordSequence: number;
  /** Every synch point found in the segments on primary storage. */
  points: SynchPoint[];
  /** Bytes past the last valid record of the current segment that were cut, with why. */
  cut: { bytes: number; reason: string } | null;
  /** The newest segment, dropped because power was lost before its predecessor was durable: why. */
  dropped: string | null;
}

export async function recover(files: VolumeFiles, config: VolumeConfig, clock: () => number): Promise<Recovered> {
  const slotCount = config.workingSetSegments + config.spareSegments;
  const slots: SegmentSlot[] = [];
  try {
    for (let i = 0; i < slotCount; i++) slots.push(SegmentSlot.open(files, i, config.segmentSizeBytes, config.version));
    return await recoverSlots(slots, config, clock);
  } catch (err) {
    for (const slot of slots) slot.close();
    throw err;
  }
}

async function recoverSlots(slots: SegmentSlot[], config: VolumeConfig, clock: () => number): Promise<Recovered> {
  const { blockSizeBytes, workingSetSegments } = config;
  for (const slot of slots) {
    const header = readHeaderOrBlank(slot);
    if (!header) continue;
    if (header.volumeId !== config.volumeId || header.blockSizeBytes !== blockSizeBytes) {
      throw VolumeError.corruptSegment(slot.path, `belongs to volume ${header.volumeId}, not ${config.volumeId}`);
    }
    if (header.version !== config.version) {
      throw VolumeError.corruptSegment(slot.path, `is a format ${header.version} segment in a format ${config.version} volume`);
    }
    slot.sequence = header.sequence;
    slot.state = 'active';
    slot.summary = new SegmentSummary(header.sequence, header.firstRecordSequence, SEGMENT_HEADER_SIZE, SEGMENT_HEADER_SIZE, header.firstRecordSequence);
  }
  const segments = slots.filter((s) => s.sequence > 0).sort((a, b) => a.sequence - b.sequence);
  for (let i = 1; i < segments.length; i++) {
    if (segments[i]!.sequence === segments[i - 1]!.sequence) {
      throw VolumeError.corruptSegment(segments[i]!.path, `segment ${segments[i]!.sequence} is also in ${segments[i - 1]!.path}`);
    }
  }

  if (segments.length === 0) {
    // A new volume: the first segment starts the log.
    const first = slots[0]!;
    first.writeAt([encodeSegmentHeader({ version: config.version, blockSizeBytes, volumeId: config.volumeId, sequence: 1, firstRecordSequence: 1, createdAtMs: clock() })], 0);
    first.flush(); // a header is durable before any record follows it, so it never tears under one
    first.sequence = 1;
    first.state = 'current';
    first.summary = new SegmentSummary(1, 1, SEGMENT_HEADER_SIZE, SEGMENT_HEADER_SIZE, 1);
    return { slots, index: new BlockIndex(config.sizeBytes / blockSizeBytes), current: first, nextRecordSequence: 1, points: [], cut: null, dropped: null };
  }

  const scans = new Map<SegmentSlot, ScanResult>();
  const dropped = await dropNewestIfUnsealed(segments, config, scans);
  const current = segments[segments.length - 1]!;
  current.state = 'current';
  let cut: Recovered['cut'] = null;
  for (const slot of segments) {
    const isCurrent = slot === current;
    const sidecar = isCurrent ? null : slot.readSidecar();
    if (sidecar) {
      slot.summary = sidecar;
    } else {
      const scan = scans.get(slot) ?? (await scanSlot(slot, config, isCurrent ? 'stop' : 'report'));
      slot.summary = scan.summary;
      if (isCurrent) {
        // Whatever follows the last valid record (a torn write, stale bytes behind a blank
        // header) was never acknowledged as durable: cut it, so no later scan can meet it.
        slot.cutAt(scan.summary.rawEnd);
        if (scan.stoppedBy !== null) {
          cut = { bytes: config.segmentSizeBytes - scan.summary.rawEnd, reason: scan.stoppedBy };
          debug('cut the torn tail of %s: %s', slot.name, scan.stoppedBy);
        }
      } else if (scan.stoppedBy !== null) {
        debug('sealed %s ends early: %s', slot.name, scan.stoppedBy);
      }
      if (!isCurrent) slot.writeSidecar(scan.summary);
    }
    slot.tail = slot.summary.rawEnd;
  }

  const newest = current.sequence;
  const window = segments.filter((s) => s.sequence >= newest - workingSetSegments);
  const present = new Set(window.map((s) => s.sequence));
  for (let seq = newest - workingSetSegments + 1; seq <= newest; seq++) {
    if (seq >= 1 && !present.has(seq)) {
      throw new VolumeError('CORRUPT_SEGMENT', `segment ${seq} of the working set is missing from primary storage`, {
        hint: 'the volume cannot be rebuilt from this directory; restore the latest synch point from the archive with `salvo restore`',
      });
    }
  }
  for (const slot of segments) if (slot.sequence < newest - workingSetSegments) slot.state = 'inactive';

  const index = new BlockIndex(config.sizeBytes / blockSizeBytes);
  const newestFirst = [...window].reverse();
  scanBackward(
    newestFirst.map((s) => ({ summary: s.summary!, endOffset: Infinity })),
    BLOCK_CRC_SIZE + blockSizeBytes,
    index,
    (s) => newestFirst[s]!.index,
  );
  // Blocks last written with zeros read as zeros: the live index keeps only blocks with data.
  index.deleteHolder(HOLE);
  const points = segments.flatMap((s) => s.summary!.synchs.map((e) => synchPointFromEntry(s.sequence, e)));
  debug('recovered %d segments (current %d at %d bytes), %d synch points', segments.length, newest, current.tail, points.length);
  return { slots, index, current, nextRecordSequence: current.summary!.nextRecordSequence, points, cut, dropped };
}

/**
 * A roll makes the sealed segment durable behind the next segment's first records (Log.roll),
 * so after a power loss the newest segment may follow one that never became whole: its records
 * then stop short of the newest one's first record sequence. Nothing in the newest segment was
 * acknowledged as durable (every flush and synch point covers the sealed segment too), so it is
 * discarded and the sealed segment becomes current again, to be cut like any torn tail.
 * A sidecar is written only once its segment is durable, so a segment with one is whole.
 * `scans` gets the sealed segment's scan (stopping at the first bad record, as the current
 * segment's does), which recovery then uses. Returns why the newest was dropped, or null.
 */
async function dropNewestIfUnsealed(segments: SegmentSlot[], config: VolumeConfig, scans: Map<SegmentSlot, ScanResult>): Promise<string | null> {
  const newest = segments[segments.length - 1]!;
  const sealed = segments[segments.length - 2];
  if (!sealed || sealed.sequence !== newest.sequence - 1 || sealed.readSidecar()) return null;
  const scan = await scanSlot(sealed, config, 'stop');
  scans.set(sealed, scan);
  const expected = newest.summary!.firstRecordSequence;
  if (scan.summary.nextRecordSequence === expected) return null;
  const why = `segment ${sealed.sequence} ends before record ${expected}, where segment ${newest.sequence} begins (${scan.stoppedBy ?? 'its last records are missing'}); power was lost before it was durable`;
  debug('dropping segment %d: %s', newest.sequence, why);
  await newest.discard();
  segments.pop();
  return why;
}

/** The first read of a segment scanned at recovery; it grows fourfold while records go on. */
const SCAN_READ_BYTES = 4 * 1024 * 1024;

/**
 * Scans the slot's records from the start, reading only as far as they go: in format 2 the rest
 * of a slot holds an older segment's bytes (format 1's holes read for free), and the current
 * segment is seldom full.
 */
async function scanSlot(slot: SegmentSlot, config: VolumeConfig, badBlock: 'stop' | 'report'): Promise<ScanResult> {
  const all = config.segmentSizeBytes - SEGMENT_HEADER_SIZE;
  for (let length = Math.min(SCAN_READ_BYTES, all); ; length = Math.min(length * 4, all)) {
    const scan = scanSegment(await slot.readRange(SEGMENT_HEADER_SIZE, length), {
      sequence: slot.sequence,
      firstRecordSequence: slot.summary!.firstRecordSequence,
      rawStart: SEGMENT_HEADER_SIZE,
      blockSizeBytes: config.blockSizeBytes,
      entrySeed: slot.entrySeed,
      where: slot.path,
      badBlock,
    });
    if (!scan.exhausted || length === all) return scan;
  }
}

/** The slot's header; a header torn while a fresh segment was being opened counts as blank. */
function readHeaderOrBlank(slot: SegmentSlot) {
  try {
    return slot.readHeader();
  } catch (err) {
    const next = Buffer.alloc(RECORD_HEADER_SIZE);
    slot.readAt(next, 0, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE);
    if (next.every((b) => b === 0)) {
      debug('%s: header torn before any record was written; treating the slot as blank', slot.path);
      slot.cutAt(0);
      return null;
    }
    throw err;
  }
}
