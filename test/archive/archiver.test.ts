/**
 * The archiver (lib/archive/archiver.ts), fed items the way the log hands them over: a sealed
 * segment shipped whole after the tail pieces of it, retries timed by the injected clock while
 * the store fails, settling what a restart finds already archived, and its scratch memory.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ArchiveKeys } from '../../lib/archive/archive-store.js';
import { fetchArchiveIndex, fetchChunk } from '../../lib/archive/archive-reader.js';
import { Archiver, type ArchiveItem } from '../../lib/archive/archiver.js';
import { CompressionPool } from '../../lib/archive/compression-pool.js';
import { DirectoryStore } from '../../lib/archive/directory-store.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import type { ArchiveStore } from '../../lib/archive/archive-store.js';
import { FORMAT_VERSION, SEGMENT_HEADER_SIZE } from '../../lib/format/segment-header.js';
import { systemClock, type Clock } from '../../lib/util/clock.js';
import { buildSegment, patternBlocks, type BuiltSegment } from '../fixtures/segment-builder.js';
import { FaultyStore } from '../faults/faulty-store.js';
import { createTempVolume, tempDir, type TestTap } from '../helpers/temp-volume.js';

const BS = 4096;
const CHUNK = 64 * 1024;

/** Segment `sequence` of volume `volumeId`: 40 written blocks (several chunks), then a synch point. */
function segment(sequence: number, volumeId = 'a'.repeat(32)): BuiltSegment {
  return buildSegment({ version: FORMAT_VERSION, blockSizeBytes: BS, volumeId, sequence, firstRecordSequence: sequence * 100, createdAtMs: 1_700_000_000_000 }, [
    { type: 'write', block: 0, blocks: patternBlocks(BS, sequence * 40, 20, FORMAT_VERSION) },
    { type: 'write', block: 20, blocks: patternBlocks(BS, sequence * 40 + 20, 20, FORMAT_VERSION) },
    { type: 'synch', body: { timeMs: 1_700_000_000_000 + sequence, label: null, info: {} } },
  ]);
}

/** The segment whole, as Log.roll hands it over; or its records from `rawStart` on, as a tail. */
function itemOf(built: BuiltSegment, kind: 'segment' | 'tail' = 'segment', rawStart = SEGMENT_HEADER_SIZE): ArchiveItem {
  const summary = kind === 'segment' ? built.summary : built.summary.sliceFrom(rawStart, built.summary.firstRecordSequence + built.offsets.indexOf(rawStart));
  return {
    kind,
    sequence: built.header.sequence,
    rawStart,
    summary,
    readInto: async (into, position) => void built.bytes.copy(into, 0, position, position + into.length),
  };
}

/** A clock whose timers fire at once, remembering each wait asked of it. */
function hastyClock(): Clock & { waits: number[] } {
  const waits: number[] = [];
  return {
    ...systemClock,
    waits,
    now: () => 1_000_000 + waits.length,
    random: () => 0.5,
    after(ms, fn) {
      waits.push(ms);
      const timer = setImmediate(fn);
      return { cancel: () => clearImmediate(timer) };
    },
  };
}

function archiverFor(t: TestTap, store: ArchiveStore, options: { clock?: Clock; retryDelayMsMax?: number; volumeId?: string; report?: (message: string) => void } = {}) {
  const pool = new CompressionPool(1);
  const archived: number[] = [];
  const archiver = new Archiver({
    store,
    pool,
    version: FORMAT_VERSION,
    volumeId: options.volumeId ?? 'a'.repeat(32),
    blockSizeBytes: BS,
    chunkSizeBytes: CHUNK,
    onArchived: (sequence) => void archived.push(sequence),
    ...options,
  });
  t.teardown(async () => {
    await archiver.stop();
    await pool.close();
  });
  return { archiver, archived };
}

/** The raw bytes [rawStart, rawEnd) the archive holds under `key`, chunk by chunk. */
async function rawOf(store: ArchiveStore, key: string): Promise<Buffer> {
  const pool = new CompressionPool(1);
  try {
    const index = await fetchArchiveIndex(store, key);
    const chunks: Buffer[] = [];
    for (let i = 0; i < index.chunks.length; i++) chunks.push(await fetchChunk(store, pool, key, index, i));
    return Buffer.concat(chunks);
  } finally {
    await pool.close();
  }
}

t.test('archiver: tails at synch points, then the segment whole; onArchived once it is stored, and its tails deleted', async (t) => {
  const store = new MemoryStore();
  const { archiver, archived } = archiverFor(t, store);
  const built = segment(1);
  const [, second, synch] = built.offsets as [number, number, number];
  archiver.enqueue(itemOf(built, 'tail', SEGMENT_HEADER_SIZE));
  await archiver.idle();
  archiver.enqueue(itemOf(built, 'tail', second));
  await archiver.idle();
  t.same(await store.list('tails/'), [ArchiveKeys.tail(1, SEGMENT_HEADER_SIZE, built.summary.rawEnd), ArchiveKeys.tail(1, second, built.summary.rawEnd)].sort(), 'each tail piece is its own object, named by its raw range');
  t.same(archived, [], 'a tail does not archive its segment');
  t.ok((await rawOf(store, ArchiveKeys.tail(1, second, built.summary.rawEnd))).equals(built.bytes.subarray(second)), 'a tail piece holds the records from where it starts');
  t.ok(synch > second);

  archiver.enqueue(itemOf(built));
  t.equal(archiver.stats.pendingItems, 1, 'the sealed segment waits in the queue');
  t.equal(archiver.stats.bytesWaiting, built.summary.rawEnd - SEGMENT_HEADER_SIZE, 'its raw bytes count as waiting');
  t.same(archiver.firstPending(), { sequence: 1, rawStart: built.summary.rawEnd }, 'its tail pieces hold it all: it is off-site already, as far as they reach');
  await archiver.idle();
  t.same(archived, [1], 'onArchived was called for it');
  t.same(await store.list('segments/'), [ArchiveKeys.segment(1)], 'the segment is one object');
  t.ok((await rawOf(store, ArchiveKeys.segment(1))).equals(built.bytes.subarray(SEGMENT_HEADER_SIZE)), 'holding its records whole');
  t.same(await store.list('tails/'), [], 'its tail pieces are deleted, redundant now');
  t.match(archiver.stats, { segmentsArchived: 1, tailsShipped: 2, pendingItems: 0, bytesWaiting: 0, lastError: null }, 'the stats say so');
  t.equal(archiver.firstPending(), null, 'nothing is pending');
});

t.test('archiver: a failing store is retried with capped, jittered backoff from the clock; the segment is archived once it works', async (t) => {
  const store = new FaultyStore();
  store.failEveryPut = 1;
  const clock = hastyClock();
  const { archiver, archived } = archiverFor(t, store, { clock, retryDelayMsMax: 1000 });
  archiver.enqueue(itemOf(segment(1)));
  while (clock.waits.length < 6) await new Promise((resolve) => setImmediate(resolve));
  t.match(archiver.stats.lastError, /injected failure/, 'the last failure is reported while it retries');
  t.equal(archiver.stats.failingSinceMs, 1_000_000, 'since the first failure, by the clock');
  t.same(archived, [], 'nothing counts as archived');
  store.failEveryPut = 0;
  await archiver.idle();
  t.same(clock.waits.slice(0, 6), [150, 300, 600, 750, 750, 750], 'waits double from 200 ms with the jitter the clock gives, up to the cap');
  t.same(archived, [1], 'the segment is archived once the store works');
  t.equal(archiver.stats.lastError, null, 'and the failure is cleared');
  t.equal(archiver.stats.failingSinceMs, null);
});

t.test('archiver: settle counts a segment the archive holds whole as archived; a missing or foreign one is to be queued', async (t) => {
  const store = new MemoryStore();
  const { archiver: earlier } = archiverFor(t, store);
  earlier.enqueue(itemOf(segment(1)));
  earlier.enqueue(itemOf(segment(2), 'tail'));
  await earlier.idle();
  const { archiver, archived } = archiverFor(t, store);
  archiver.adoptTails(1, [ArchiveKeys.tail(1, SEGMENT_HEADER_SIZE, segment(1).summary.rawEnd)]);
  await store.put(ArchiveKeys.tail(1, SEGMENT_HEADER_SIZE, segment(1).summary.rawEnd), [Buffer.from('a tail piece shipped before the restart')]);
  t.equal(await archiver.settle(itemOf(segment(1))), true, 'a segment archived before a restart settles');
  t.same(archived, [1], 'as archived');
  t.same(await store.list('tails/'), [ArchiveKeys.tail(2, SEGMENT_HEADER_SIZE, segment(2).summary.rawEnd)], 'its adopted tails are deleted, others kept');
  t.equal(await archiver.settle(itemOf(segment(2))), false, 'a segment with only a tail in the archive is to be queued');
  const { archiver: other } = archiverFor(t, store, { volumeId: 'b'.repeat(32) });
  t.equal(await other.settle(itemOf(segment(1, 'b'.repeat(32)))), false, 'another volume’s segment under the same key is not settled');
  t.same(archived, [1], 'and neither counts as archived');
});

t.test('archiver: a segment of another volume under its key fails with ARCHIVE_CONFLICT and is retried, never overwritten', async (t) => {
  const store = new MemoryStore();
  const { archiver: theirs } = archiverFor(t, store, { volumeId: 'b'.repeat(32) });
  theirs.enqueue(itemOf(segment(1, 'b'.repeat(32))));
  await theirs.idle();
  const before = await store.get(ArchiveKeys.segment(1));
  const clock = hastyClock();
  const { archiver, archived } = archiverFor(t, store, { clock });
  archiver.enqueue(itemOf(segment(1)));
  while (clock.waits.length < 2) await new Promise((resolve) => setImmediate(resolve));
  t.match(archiver.stats.lastError, /holds under segments\/0+1\.seg segment 1 of volume b{32}, not this volume's segment 1/, 'the conflict is the error reported, naming whose object it is');
  t.equal(archiver.stats.failingCause, 'conflict');
  t.same(archived, [], 'the segment is not archived');
  t.ok((await store.get(ArchiveKeys.segment(1))).equals(before), 'the other volume’s object is untouched');
});

t.test('archiver: an upload of ours cut short under its key is replaced; a damaged object of no known owner is named, not replaced', async (t) => {
  const store = new MemoryStore();
  const { archiver: first } = archiverFor(t, store);
  first.enqueue(itemOf(segment(1)));
  await first.idle();
  const whole = await store.get(ArchiveKeys.segment(1));
  store.objects.set(ArchiveKeys.segment(1), whole.subarray(0, whole.length - 100)); // a full disk stored it short
  const reports: string[] = [];
  const { archiver, archived } = archiverFor(t, store, { report: (m: string) => reports.push(m) });
  archiver.enqueue(itemOf(segment(1)));
  await archiver.idle();
  t.same(archived, [1], 'archived');
  t.ok((await store.get(ArchiveKeys.segment(1))).equals(whole), 'whole again');
  t.match(reports.join('\n'), /segments\/0+1\.seg is an upload of this volume cut short .*; it is uploaded again/, 'and the log says so');

  const damaged = Buffer.from(whole);
  damaged[3]! ^= 0xff; // the magic: nobody's object any more
  store.objects.set(ArchiveKeys.segment(2), damaged);
  const clock = hastyClock();
  const { archiver: next, archived: none } = archiverFor(t, store, { clock });
  next.enqueue(itemOf(segment(2)));
  while (clock.waits.length < 2) await new Promise((resolve) => setImmediate(resolve));
  t.equal(next.stats.failingCause, 'damaged');
  t.match(next.stats.lastError, /segments\/0+2\.seg: .*salvo cannot tell whose object it is, so it does not replace it/);
  t.same(none, [], 'not archived');
  t.ok((await store.get(ArchiveKeys.segment(2))).equals(damaged), 'and left as it was');
});

const MiB = 1 << 20;

function residentAnonBytes(): number {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('RssAnon:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

t.test('archiver: the scratch memory is given back after each burst of writes, not kept or piled up', async (t) => {
  const segmentSizeBytes = 16 * MiB;
  // A directory archive: a memory store would hold the (incompressible) archived bytes itself.
  const store = new DirectoryStore(path.join(tempDir(t), 'archive'));
  const { volume } = await createTempVolume(t, { sizeBytes: 32 * MiB, segmentSizeBytes, workingSetSegments: 8, spareSegments: 2, store }, { store });
  const data = randomBytes(2 * segmentSizeBytes);
  const resident: number[] = [];
  for (let burst = 0; burst < 6; burst++) {
    // Two segments sealed a burst, each archived through the scratch (raw + compressed: 32 MiB).
    for (let at = 0; at < data.length; at += MiB) await volume.write(data.subarray(at, at + MiB), at);
    await volume.idle();
    resident.push(residentAnonBytes());
  }
  t.ok(volume.status().archive.segmentsArchived >= 10, `segments went through the archive (${volume.status().archive.segmentsArchived})`);
  const growth = resident[resident.length - 1]! - resident[0]!;
  // Five more bursts would keep 5 × 32 MiB were each scratch dropped and left to the workers' collectors.
  t.ok(growth < 48 * MiB, `resident memory after the first burst and after the sixth: +${(growth / MiB).toFixed(1)} MiB (${resident.map((r) => (r / MiB).toFixed(0)).join(', ')} MiB)`);
});
