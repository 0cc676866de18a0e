/**
 * Compaction (FORMAT.md §3.15): a segment that kept points still need, but mostly for blocks they
 * overwrote since, is rewritten with only the records some kept point reads. The dead WRITE
 * records' bytes become zeros (offsets stay, so points, tail keys and catalogs keep their
 * meaning, and zeros compress to almost nothing) and leave the summary. A kept point's backward
 * scan reads the same segments and finds the same entries: a dead extent of block X in segment
 * s is, for every kept point whose window holds s, older than the entry that point takes for X,
 * which its scan meets first. ZERO extents stay: they carry no data, and one that is a kept
 * point's newest entry must not be passed over.
 *
 * The new objects are written and read back before the record that names them (the commit);
 * the old objects go after the grace, as a prune's do (lib/retention/prune.ts).
 */
import createDebug from 'debug';
import { VolumeError, isVolumeError } from '../errors.js';
import { fetchChunk } from '../archive/archive-reader.js';
import { BLOCK_CRC_SIZE, RECORD_HEADER_SIZE } from '../format/record.js';
import { encodeArchiveObject } from '../format/archive-object.js';
import { addToRanges, compactedKey, type RetentionState } from '../format/retention-record.js';
import { SegmentSummary } from '../format/summary.js';
import type { ArchiveView } from '../history/archive-view.js';
import { Retention, retentionFloor } from '../history/retention.js';
import { Snapshot } from '../history/snapshot.js';
import { synchPointTime, type SynchPoint } from '../volume/synch-point.js';
import { changeRetention } from '../archive/retention-records.js';
import { archiveRef } from './forget.js';

const debug = createDebug('salvo:retention');
/**
 * A segment is rewritten once at least this share of its WRITE records' bytes is dead: what any
 * segment then holds is at most 1.2 times what is live in it (issue #28's bound), and a segment
 * is not rewritten for less.
 */
export const COMPACT_DEAD_SHARE = 1 / 6;
/** Generations tried past a taken key before a run gives up (each taken one is another run's). */
const GENERATIONS_TRIED = 8;

export interface CompactResult {
  segments: number;
  /** Stored bytes of the objects replaced, and of their compacted objects. */
  bytesBefore: number;
  bytesAfter: number;
}

/** Which WRITE extents of each candidate segment some kept point reads (one flag per extent). */
async function liveExtents(view: ArchiveView, kept: readonly SynchPoint[], candidates: ReadonlySet<number>): Promise<Map<number, { summary: SegmentSummary; live: Uint8Array }>> {
  const W = view.config.workingSetSegments;
  const out = new Map<number, { summary: SegmentSummary; live: Uint8Array }>();
  for (const s of candidates) {
    const summary = await view.source.summary(s);
    out.set(s, { summary, live: new Uint8Array(summary.extentCount) });
  }
  for (const point of kept) {
    let touches = false;
    for (let s = Math.max(1, point.sequence - W); s <= point.sequence && !touches; s++) touches = candidates.has(s);
    if (!touches) continue;
    // One index at a time, not cached: memory follows one point's blocks.
    const snapshot = await Snapshot.open(point, view.config, view.source);
    snapshot.forEachEntry((_block, sequence, offset) => {
      const segment = out.get(sequence);
      if (segment) segment.live[extentAt(segment.summary, offset)] = 1;
    });
  }
  return out;
}

/** The extent whose entries hold raw offset `offset` (extents lie in log order). */
function extentAt(summary: SegmentSummary, offset: number): number {
  let low = 0;
  let high = summary.extentCount - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (summary.extentOffset(mid) <= offset) low = mid;
    else high = mid - 1;
  }
  return low;
}

/** Writes segment `s`'s compacted object of generation `gen` (or the first free one after) and reads it back; returns which, its size and the old one's. */
async function rewrite(view: ArchiveView, s: number, gen: number, summary: SegmentSummary, live: Uint8Array): Promise<{ gen: number; before: number; after: number }> {
  const [piece] = await view.source.pieces(s);
  const { header } = piece!.index;
  const raw = Buffer.alloc(header.rawEnd - header.rawStart);
  for (let c = 0; c < header.chunkCount; c++) (await fetchChunk(view.store, view.pool, piece!.key, piece!.index, c, view.cipher)).copy(raw, c * header.chunkSizeBytes);
  const entrySize = BLOCK_CRC_SIZE + header.blockSizeBytes;
  const kept = new SegmentSummary(s, summary.firstRecordSequence, summary.rawStart, summary.rawEnd, summary.nextRecordSequence, Math.max(16, summary.extentCount));
  for (let e = 0; e < summary.extentCount; e++) {
    const [block, count, zero, offset] = [summary.extentBlock(e), summary.extentBlocks(e), summary.extentIsZero(e), summary.extentOffset(e)];
    if (zero || live[e]) kept.addExtent(block, count, zero, offset);
    else raw.fill(0, offset - RECORD_HEADER_SIZE - header.rawStart, offset + count * entrySize - header.rawStart);
  }
  kept.synchs.push(...summary.synchs);
  const slices: Buffer[] = [];
  for (let at = 0; at < raw.length; at += header.chunkSizeBytes) slices.push(raw.subarray(at, Math.min(raw.length, at + header.chunkSizeBytes)));
  const compressed = await view.pool.compress(slices);
  const parts = encodeArchiveObject(
    { version: header.version, blockSizeBytes: header.blockSizeBytes, volumeId: header.volumeId, sequence: s, rawStart: header.rawStart, rawEnd: header.rawEnd, chunkSizeBytes: header.chunkSizeBytes, compacted: true },
    kept,
    compressed.map((bytes, i) => ({ bytes, rawLength: slices[i]!.length })),
    view.cipher,
  );
  const bytes = Buffer.concat(parts);
  // A key taken is another run's (cut short before its record, or racing this one, and perhaps
  // committed): never written over, the next generation instead. The record names the one in use.
  for (let next = gen; ; next++) {
    const key = compactedKey(s, next);
    try {
      await view.store.put(key, [bytes]);
    } catch (err) {
      if (isVolumeError(err, 'ARCHIVE_CONFLICT') && next < gen + GENERATIONS_TRIED) continue;
      throw err;
    }
    // Nothing may name an object the archive does not hold whole.
    if (!(await view.store.get(key)).equals(bytes)) throw VolumeError.archiveUnavailable(`compacted object ${key} reads back other than it was written`);
    return { gen: next, before: (await view.store.head(piece!.key)) ?? 0, after: bytes.length };
  }
}

/**
 * Compacts the segments below the floor (retentionFloor) that kept points need and whose dead share is at
 * least COMPACT_DEAD_SHARE, then commits them in the next record (with the forgotten points whose
 * data they cut as lost, and their old objects pending deletion). `kept` are the points counted as
 * kept (prune's: shown, or forgotten within the undo time).
 */
export async function compact(view: ArchiveView, kept: readonly SynchPoint[], nowMs: number): Promise<{ state: RetentionState; result: CompactResult }> {
  const W = view.config.workingSetSegments;
  const retention = view.retention;
  const held = view.held;
  // Below the floor, the segments a prune leaves are those some kept window holds: the candidates.
  const floor = retentionFloor(held, W);
  const inKeptWindow = (s: number) => kept.some((p) => s >= p.sequence - W && s <= p.sequence);
  const candidates = new Set([...held.whole].filter((s) => s < floor && !retention.isPruned(s) && inKeptWindow(s)));
  const result: CompactResult = { segments: 0, bytesBefore: 0, bytesAfter: 0 };
  if (candidates.size === 0 || kept.length === 0) return { state: retention.state, result };
  const live = await liveExtents(view, kept, candidates);
  const entrySize = BLOCK_CRC_SIZE + view.config.blockSizeBytes;
  const done: [number, number][] = [];
  for (const [s, { summary, live: flags }] of live) {
    let dead = 0;
    let all = 0;
    for (let e = 0; e < summary.extentCount; e++) {
      if (summary.extentIsZero(e)) continue;
      const bytes = RECORD_HEADER_SIZE + summary.extentBlocks(e) * entrySize;
      all += bytes;
      if (!flags[e]) dead += bytes;
    }
    if (all === 0 || dead / all < COMPACT_DEAD_SHARE) continue;
    const { gen, before, after } = await rewrite(view, s, (retention.compacted.get(s) ?? 0) + 1, summary, flags);
    done.push([s, gen]);
    result.segments++;
    result.bytesBefore += before;
    result.bytesAfter += after;
    debug('compacted segment %d (generation %d): %d of %d bytes of records dead, %d → %d bytes stored', s, gen, dead, all, before, after);
  }
  if (done.length === 0) return { state: retention.state, result };
  const keptRecords = new Set(kept.map((p) => p.recordSequence));
  const everything = view.catalog.everything;
  const state = await changeRetention(
    archiveRef(view),
    (current) => {
      const compacted = new Map(current.compacted);
      for (const [s, gen] of done) compacted.set(s, gen);
      const cut = new Retention({ ...current, compacted: [...compacted].sort((a, b) => a[0] - b[0]) }, W);
      // A forgotten point whose window was rewritten without counting it lost its data. One that
      // shows (an undo since this run read the record) would read a rewritten window: no commit.
      const rewritten = everything.filter((p) => !keptRecords.has(p.recordSequence) && !cut.lostWindow(p) && done.some(([s]) => s >= p.sequence - W && s <= p.sequence));
      const shown = rewritten.find((p) => !cut.isForgotten(p));
      if (shown) throw new VolumeError('COMMAND_FAILED', `the retention record changed while compacting: point ${synchPointTime(shown)} shows again`, { hint: 'run the prune again' });
      const lost = new Set([...current.lost, ...rewritten.map((p) => p.recordSequence)]);
      const forgotten = current.forgotten.map((b) => ({ ...b, points: b.points.filter((r) => !lost.has(r)) })).filter((b) => b.points.length > 0);
      const replaced = addToRanges([], done.map(([s]) => s)).map(([first, last]) => ({ first, last, sinceMs: nowMs, kind: 'replaced' as const }));
      return { ...current, compacted: cut.state.compacted, lost: [...lost].sort((a, b) => a - b), forgotten, pending: [...current.pending, ...replaced] };
    },
    nowMs,
  );
  view.adoptRetention(state);
  return { state, result };
}
