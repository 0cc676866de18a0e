/**
 * The segment source (lib/history/segment-source.ts): a segment's bytes come from its slot while
 * primary storage holds it and from the archive once the slot is recycled, the same either
 * way; archived chunks are fetched once and cached; what is nowhere, or not this volume's,
 * is an error, never data.
 */
import t from 'tap';
import { ArchiveKeys } from '../../lib/archive/archive-store.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { SEGMENT_HEADER_SIZE } from '../../lib/format/segment-header.js';
import { SegmentSource } from '../../lib/history/segment-source.js';
import type { Volume } from '../../lib/volume/volume.js';
import { createTempVolume, SMALL_POLICY, writeUntilRoll } from '../helpers/temp-volume.js';

const CACHE = 4 * 1024 * 1024;

/** A source reading `volume`'s past: from primary storage and its archive, or (primary null) from an archive alone. */
function sourceOf(volume: Volume, primary: Volume | null, store = volume.store): SegmentSource {
  return new SegmentSource(store, volume.pool, primary, CACHE, volume.config.volumeId, volume.cipher);
}

/** Segment `sequence`'s records, whole. */
async function recordsOf(source: SegmentSource, sequence: number): Promise<Buffer> {
  const summary = await source.summary(sequence);
  return source.read(sequence, SEGMENT_HEADER_SIZE, summary.rawEnd - SEGMENT_HEADER_SIZE);
}

t.test('segment-source: a segment on primary storage is read from its slot, the same bytes and summary the archive holds', async (t) => {
  const { volume } = await createTempVolume(t);
  await writeUntilRoll(volume, 1);
  await volume.synch();
  await volume.idle();
  const live = sourceOf(volume, volume);
  const archived = sourceOf(volume, null);
  t.ok(live.onPrimary(1), 'segment 1 is on primary storage');
  t.notOk(archived.onPrimary(1), 'not for a source without it');
  const fromSlot = await recordsOf(live, 1);
  t.equal(live.stats.chunksFetched + live.stats.summariesFetched, 0, 'read from the slot: nothing fetched from the archive');
  const fromArchive = await recordsOf(archived, 1);
  t.ok(archived.stats.chunksFetched >= 1, `the archived copy came in chunks (${archived.stats.chunksFetched})`);
  t.ok(fromSlot.equals(fromArchive), 'the same bytes either way');
  const [a, b] = [await live.summary(1), await archived.summary(1)];
  t.same([a.rawEnd, a.extentCount, a.nextRecordSequence], [b.rawEnd, b.extentCount, b.nextRecordSequence], 'and the same summary');
  t.same(await live.pieces(1).then((p) => p.map((x) => x.key)), [ArchiveKeys.segment(1)], 'its archived piece is the one object');
});

t.test('segment-source: once its slot is recycled, a segment is read from the archive, each chunk fetched once', async (t) => {
  const { volume } = await createTempVolume(t);
  const source = sourceOf(volume, volume);
  let next = await writeUntilRoll(volume, 1);
  await volume.idle();
  const before = await recordsOf(source, 1);
  for (let value = 2; volume.slotHolding(1); value++) {
    next = await writeUntilRoll(volume, value, next);
    await volume.idle();
  }
  t.ok(volume.counters.segmentsRecycled > 0, `slots were recycled (${volume.counters.segmentsRecycled})`);
  t.notOk(source.onPrimary(1), 'segment 1 is no longer on primary storage');
  const [after, again] = await Promise.all([recordsOf(source, 1), recordsOf(source, 1)]);
  t.ok(after.equals(before), 'it reads from the archive as it did from its slot');
  t.ok(again.equals(before), 'so does a read made at the same time');
  const fetched = source.stats.chunksFetched;
  const chunks = Math.ceil((before.length + SEGMENT_HEADER_SIZE) / volume.config.chunkSizeBytes);
  t.ok(fetched >= 1 && fetched <= chunks, `the two reads fetched each chunk once (${fetched} of ${chunks})`);
  t.equal(source.stats.summariesFetched, 1, 'and the summary once');
  t.ok((await recordsOf(source, 1)).equals(before), 'a third read');
  t.equal(source.stats.chunksFetched, fetched, 'comes from the cache');
  t.ok(source.cacheBytes > 0 && source.cacheBytes <= CACHE, `which stays in its bound (${source.cacheBytes} bytes)`);
});

t.test('segment-source: a segment nowhere, or another volume’s object under its key, is an error, never data', async (t) => {
  const { volume } = await createTempVolume(t);
  await writeUntilRoll(volume, 1);
  await volume.idle();
  await t.rejects(sourceOf(volume, null).read(7, SEGMENT_HEADER_SIZE, 4096), { code: 'NOT_FOUND', message: /segment 7 is neither on primary storage nor in archive memory:/ }, 'a segment in neither place');
  const noArchive = new SegmentSource(null, volume.pool, null, CACHE, volume.config.volumeId);
  await t.rejects(noArchive.summary(1), { code: 'NOT_FOUND', message: /segment 1 is not on primary storage and there is no archive/ }, 'a segment off primary storage without an archive');
  const copy = new MemoryStore();
  await copy.put(ArchiveKeys.segment(2), [await volume.store.get(ArchiveKeys.segment(1))]);
  await t.rejects(recordsOf(sourceOf(volume, null, copy), 2), { code: 'CORRUPT_ARCHIVE', message: /holds segment 1 of volume .*, not segment 2/ }, 'segment 1’s object under segment 2’s key');
  const foreign = new SegmentSource(volume.store, volume.pool, null, CACHE, 'f'.repeat(32));
  await t.rejects(recordsOf(foreign, 1), { code: 'CORRUPT_ARCHIVE', message: /not segment 1 of f{32}/ }, 'another volume’s segment');
});

t.test('segment-source: a segment not archived whole reads from its chain of tail pieces, up to the last that follows on', async (t) => {
  const { volume } = await createTempVolume(t);
  const BS = SMALL_POLICY.blockSizeBytes;
  for (let i = 0; i < 3; i++) {
    await volume.write(Buffer.alloc(4 * BS, 10 + i), i * 4 * BS);
    await volume.synch();
  }
  await volume.idle();
  const sequence = volume.status().segments.currentSequence;
  const tails = await volume.store.list(ArchiveKeys.tailPrefix(sequence));
  t.equal(tails.length, 3, 'each synch point shipped a tail piece');
  const live = await recordsOf(sourceOf(volume, volume), sequence);
  const source = sourceOf(volume, null);
  source.tailKeys.set(sequence, tails);
  t.ok((await recordsOf(source, sequence)).equals(live), 'the tail pieces together hold the segment’s records');
  t.same((await source.pieces(sequence)).map((p) => p.key), tails, 'read from all three');
  const broken = sourceOf(volume, null);
  broken.tailKeys.set(sequence, [tails[0]!, tails[2]!]);
  const first = ArchiveKeys.parseTail(tails[0]!)!;
  t.equal((await broken.summary(sequence)).rawEnd, first.rawEnd, 'without the middle piece, the segment ends where the first piece does');
  t.ok((await recordsOf(broken, sequence)).equals(live.subarray(0, first.rawEnd - SEGMENT_HEADER_SIZE)), 'and reads as far as that');
});
