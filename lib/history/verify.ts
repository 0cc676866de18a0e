/**
 * Verify: read every byte salvo keeps and check every checksum — segments on primary storage
 * (the volume's own check, slot-check.ts), objects in the archive (header, summary, chunk table,
 * each chunk, then every record and block inside), that the archive's catalog lists what the
 * summaries hold, and that every synch point in the catalog can be reconstructed. Each problem
 * is reported with where it is; nothing is repaired.
 */
import { isVolumeError } from '../errors.js';
import { entrySeed } from '../format/record.js';
import { scanSegment } from '../volume/segment-scan.js';
import { countBlocks, type Problem, type VerifyCounts } from '../volume/slot-check.js';
import { synchPointTime, type SynchPoint } from '../volume/synch-point.js';
import type { SnapshotCache } from './snapshot.js';
import { fetchArchiveIndex, fetchChunk } from '../archive/archive-reader.js';
import { readArchiveContents } from '../archive/archive-catalog.js';
import { readRetention } from '../archive/retention-records.js';
import { compactedKey, compactedKeys, initialRetention, parseCompactedKey, rangesHold } from '../format/retention-record.js';
import type { ArchiveObjectIndex } from '../format/archive-object.js';
import { BLOCK_CRC_SIZE, RECORD_HEADER_SIZE, RecordType, decodeRecordHeader, decodeSynchBody } from '../format/record.js';
import { firstBadEntry } from '../format/checksum.js';
import { ArchiveKeys, type ArchiveStore } from '../archive/archive-store.js';
import type { CompressionPool } from '../archive/compression-pool.js';
import type { ObjectCipher } from '../format/object-cipher.js';

/** Checks every archived object: its index, every chunk, and every record and block in them; then the archive's catalog against them. */
export async function verifyArchive(
  store: ArchiveStore,
  pool: CompressionPool,
  cipher: ObjectCipher | null,
  volumeId: string,
  counts: VerifyCounts,
  onProgress: (done: number, total: number) => void = () => undefined,
): Promise<Problem[]> {
  const problems: Problem[] = [];
  let retention = initialRetention();
  try {
    retention = await readRetention({ store, volumeId, cipher });
  } catch (err) {
    if (!isVolumeError(err, 'CORRUPT_ARCHIVE')) throw err;
    problems.push({ where: 'retention/', segment: null, offset: null, message: err.message });
  }
  // The compacted objects the record names (FORMAT.md §3.15); one a cut run left unnamed is no reader's.
  const compacted = retention.compacted.map(([s, gen]) => compactedKey(s, gen));
  const keys = [...(await store.list('segments/')), ...(await store.list('tails/')), ...compacted];
  /** What the summaries hold: segments archived whole, and synch points by record sequence. */
  const whole = new Set<number>();
  const points = new Map<number, number>();
  for (const [n, key] of keys.entries()) {
    onProgress(n, keys.length);
    const sequence = ArchiveKeys.parseSegment(key) ?? ArchiveKeys.parseTail(key)?.sequence ?? parseCompactedKey(key)?.sequence ?? null;
    if (sequence === null) continue;
    counts.archiveObjects++;
    const problem = (offset: number | null, message: string) => problems.push({ where: key, segment: sequence, offset, message });
    let index;
    try {
      index = await fetchArchiveIndex(store, key, cipher);
    } catch (err) {
      if (!isVolumeError(err, 'CORRUPT_ARCHIVE')) throw err;
      problem(null, err.message);
      continue;
    }
    if (ArchiveKeys.parseTail(key) === null) whole.add(sequence);
    for (const synch of index.summary.synchs) points.set(synch.recordSequence, sequence);
    const { rawStart, chunkSizeBytes, blockSizeBytes } = index.header;
    const raw = Buffer.alloc(index.header.rawEnd - rawStart);
    let damaged = false;
    for (let c = 0; c < index.chunks.length; c++) {
      try {
        (await fetchChunk(store, pool, key, index, c, cipher)).copy(raw, c * chunkSizeBytes);
      } catch (err) {
        if (!isVolumeError(err, 'CORRUPT_ARCHIVE')) throw err;
        problem(rawStart + c * chunkSizeBytes, err.message);
        damaged = true;
      }
    }
    if (index.header.compacted) {
      if (!damaged) for (const bad of checkCompacted(raw, index, key)) problem(bad.offset, bad.message);
      counts.blocks += countBlocks(index.summary);
      continue;
    }
    const scan = scanSegment(raw, {
      sequence,
      firstRecordSequence: index.summary.firstRecordSequence,
      rawStart,
      blockSizeBytes,
      entrySeed: entrySeed(index.header.version, sequence),
      where: key,
      badBlock: 'report',
    });
    if (!damaged) {
      for (const bad of scan.badBlocks) problem(bad.offset, `block ${bad.block} failed its checksum`);
      if (scan.summary.rawEnd !== index.header.rawEnd || scan.summary.extentCount !== index.summary.extentCount) {
        problem(scan.summary.rawEnd, `records disagree with the object's summary${scan.stoppedBy ? `: ${scan.stoppedBy}` : ''}`);
      }
    }
    counts.blocks += countBlocks(scan.summary);
  }
  onProgress(keys.length, keys.length);
  problems.push(...(await verifyCatalog(store, cipher, volumeId, whole, points, { pruned: retention.pruned, compacted: compactedKeys(retention) })));
  return problems;
}

/**
 * The records a compacted object's summary names, each checked where it lies (the bytes between
 * them are zeros, not records: a scan from the start would stop at the first).
 */
function checkCompacted(raw: Buffer, index: ArchiveObjectIndex, key: string): { offset: number; message: string }[] {
  const { rawStart, blockSizeBytes, version, sequence } = index.header;
  const seed = entrySeed(version, sequence);
  const entrySize = BLOCK_CRC_SIZE + blockSizeBytes;
  const { summary } = index;
  const bad: { offset: number; message: string }[] = [];
  const record = (offset: number, type: number, what: string) => {
    try {
      const header = decodeRecordHeader(raw, offset - rawStart, `${key} at offset ${offset}`, blockSizeBytes);
      if (header?.type === type) return header;
      bad.push({ offset, message: `the summary names a ${what} record at offset ${offset}, which holds none` });
    } catch (err) {
      bad.push({ offset, message: (err as Error).message });
    }
    return null;
  };
  for (let e = 0; e < summary.extentCount; e++) {
    const zero = summary.extentIsZero(e);
    const offset = summary.extentOffset(e);
    const header = zero ? record(offset, RecordType.Zero, 'ZERO') : record(offset - RECORD_HEADER_SIZE, RecordType.Write, 'WRITE');
    if (!header || zero) continue;
    const body = raw.subarray(offset - rawStart, offset - rawStart + header.count * entrySize);
    const first = firstBadEntry(body, blockSizeBytes, seed);
    if (first >= 0) bad.push({ offset: offset + first * entrySize, message: `block ${header.block + first} failed its checksum` });
  }
  for (const synch of summary.synchs) {
    const header = record(synch.offset, RecordType.Synch, 'SYNCH');
    if (!header) continue;
    try {
      const at = synch.offset - rawStart + RECORD_HEADER_SIZE;
      decodeSynchBody(raw.subarray(at, at + header.bodyLength), `${key} at offset ${synch.offset}`, seed);
    } catch (err) {
      bad.push({ offset: synch.offset, message: (err as Error).message });
    }
  }
  return bad;
}

/**
 * The archive's catalog against what the summaries hold: a damaged catalog object, a segment or
 * a synch point it lists that no archived object holds, a point the summaries hold that it omits.
 * (A catalog that is missing is no problem: readers then take the summaries.)
 */
async function verifyCatalog(
  store: ArchiveStore,
  cipher: ObjectCipher | null,
  volumeId: string,
  whole: Set<number>,
  points: Map<number, number>,
  { pruned, compacted }: { pruned: [number, number][]; compacted: Map<number, string> },
): Promise<Problem[]> {
  const problems: Problem[] = [];
  const read = await readArchiveContents(store, volumeId, cipher, { compacted });
  const where = read.chain.length > 0 ? 'catalog/' : null;
  if (read.problem) problems.push({ where: 'catalog/', segment: null, offset: null, message: `${read.problem} (readers read the summaries past it; the volume's next mount rewrites it)` });
  if (where === null) return problems;
  // The catalog keeps listing what a prune deleted (FORMAT.md §3.15): that is no problem.
  for (const s of read.content.segments) {
    if (!whole.has(s) && !rangesHold(pruned, s)) problems.push({ where, segment: s, offset: null, message: `the catalog lists segment ${s}, which the archive does not hold` });
  }
  const listed = new Set(read.content.points.map((p) => p.recordSequence));
  for (const p of read.content.points) {
    if (!points.has(p.recordSequence) && !rangesHold(pruned, p.sequence)) problems.push({ where, segment: p.sequence, offset: p.offset, message: `the catalog lists synch point ${synchPointTime(p)}, which no archived summary holds` });
  }
  for (const [record, sequence] of points) {
    if (!listed.has(record)) problems.push({ where, segment: sequence, offset: null, message: `the catalog omits synch point ${record} of segment ${sequence}` });
  }
  return problems;
}

/** Checks that every synch point can be reconstructed (its window's summaries are all there). */
export async function verifyPoints(points: readonly SynchPoint[], snapshots: SnapshotCache, counts: VerifyCounts): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const point of points) {
    counts.synchPoints++;
    try {
      await snapshots.open(point);
    } catch (err) {
      if (!(err instanceof Error) || !('code' in err)) throw err;
      problems.push({ where: `${synchPointTime(point)}.img`, segment: point.sequence, offset: point.offset, message: `cannot be reconstructed: ${err.message}` });
    }
  }
  return problems;
}
