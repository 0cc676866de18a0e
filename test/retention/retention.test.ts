/**
 * Forget and prune on an archive alone, against models: the points that show are exactly those
 * an independent reference of the policy keeps; every kept point reads back byte for byte after a
 * prune; no deleted segment was in a kept point's window, and every segment below the newest
 * window that none needed is gone (checked by brute force over the small model); an undo brings
 * back what a prune left whole; and a prune cut at every request leaves an archive where every
 * kept point restores, which a re-run finishes.
 */
import t from 'tap';
import { VolumeError } from '../../lib/errors.js';
import type { ArchiveStore, ByteRange } from '../../lib/archive/archive-store.js';
import { ArchiveKeys } from '../../lib/archive/archive-store.js';
import { CompressionPool } from '../../lib/archive/compression-pool.js';
import { fetchArchiveIndex, fetchChunk } from '../../lib/archive/archive-reader.js';
import { encodeArchiveObject } from '../../lib/format/archive-object.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import type { RetentionPolicy } from '../../lib/format/retention-policy.js';
import { parseCompactedKey } from '../../lib/format/retention-record.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { verifyArchive } from '../../lib/history/verify.js';
import { applyForget, planForget, undoForget } from '../../lib/retention/forget.js';
import { prune } from '../../lib/retention/prune.js';
import { unneededSegments } from '../../lib/history/retention.js';
import { emptyCounts } from '../../lib/volume/slot-check.js';
import { prng } from '../helpers/temp-volume.js';
import { WINDOW, buildHistory, copyStore, readBack, type ModelPoint } from './history-model.js';
import { referenceKeep } from './reference-policy.js';

const HOUR = 3_600_000;

function randomPolicy(random: () => number): RetentionPolicy {
  const policy: RetentionPolicy = {};
  if (random() < 0.3) policy.withinMs = (1 + Math.floor(random() * 48)) * HOUR;
  if (random() < 0.4) policy.last = 1 + Math.floor(random() * 4);
  if (random() < 0.4) policy.daily = 1 + Math.floor(random() * 5);
  if (random() < 0.3) policy.weekly = 1 + Math.floor(random() * 3);
  if (random() < 0.2) policy.hourly = 1 + Math.floor(random() * 6);
  return Object.keys(policy).length > 0 ? policy : { last: 2 };
}

/** Sequences of the segments the store holds objects of (compacted ones included). */
async function heldSegments(store: ArchiveStore): Promise<Set<number>> {
  const keys = [...(await store.list('segments/')), ...(await store.list('tails/')), ...(await store.list('compacted/'))];
  return new Set(keys.map((k) => ArchiveKeys.parseSegment(k) ?? parseCompactedKey(k)?.sequence ?? ArchiveKeys.parseTail(k)!.sequence));
}

/** Forget by `policy`, then prune with neither grace nor undo time. */
async function forgetAndPrune(store: ArchiveStore, policy: RetentionPolicy, nowMs: number): Promise<void> {
  const view = await ArchiveView.open(store);
  try {
    await applyForget(view, await planForget(view, policy, { timeZone: 'UTC' }), nowMs);
    await prune(view, { graceMs: 0, undoMs: 0, compact: true, now: () => nowMs, sleep: async () => undefined });
  } finally {
    await view.close();
  }
}

const inWindow = (s: number, p: ModelPoint) => s >= Math.max(1, p.point.sequence - WINDOW) && s <= p.point.sequence;

t.test('retention: the kept set is the policy’s, kept points read back, pruned segments were needed by none', async (t) => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const random = prng(seed * 7919);
    const { store, points } = await buildHistory(t, seed, 60);
    const policy = randomPolicy(random);
    const expected = referenceKeep(points.map((m) => m.point), policy);
    const kept = points.filter((m) => expected.has(m.point.recordSequence));
    const before = await heldSegments(store);
    const nowMs = points[points.length - 1]!.point.timeMs + HOUR;
    await forgetAndPrune(store, policy, nowMs);

    const view = await ArchiveView.open(store);
    t.same(view.catalog.all.map((p) => p.recordSequence), kept.map((m) => m.point.recordSequence), `seed ${seed} ${JSON.stringify(policy)}: a fresh view shows exactly the kept points`);
    await view.close();
    const after = await heldSegments(store);
    const deleted = [...before].filter((s) => !after.has(s));
    const newest = points[points.length - 1]!.point.sequence;
    const wrongly = deleted.filter((s) => s >= newest - WINDOW || kept.some((m) => inWindow(s, m)));
    t.same(wrongly, [], `seed ${seed}: no deleted segment was in a kept point's window or the newest's`);
    const missed = [...after].filter((s) => s < newest - WINDOW && !kept.some((m) => inWindow(s, m)));
    t.same(missed, [], `seed ${seed}: every segment no kept point needs is gone (${deleted.length} of ${before.size} deleted)`);
    t.same(await readBack(store, kept), [], `seed ${seed}: all ${kept.length} kept points read back as they were`);

    const pool = new CompressionPool();
    const problems = await verifyArchive(store, pool, null, (await ArchiveView.descriptor(store)).volumeId, emptyCounts());
    await pool.close();
    t.same(problems, [], `seed ${seed}: verify finds nothing wrong with the pruned archive`);
  }
});

t.test('retention: an undo brings back every forgotten point until a prune deletes its segments', async (t) => {
  const { store, points } = await buildHistory(t, 21, 50);
  const nowMs = points[points.length - 1]!.point.timeMs;
  const view = await ArchiveView.open(store);
  t.teardown(() => view.close());
  await applyForget(view, await planForget(view, { last: 3 }, { timeZone: 'UTC' }), nowMs);
  t.equal(view.catalog.all.length, 3 + points.filter((m) => m.point.label !== null && m !== points.at(-1) && points.indexOf(m) < points.length - 3).length, 'forgotten: the last 3 and the labelled show');
  const { restored } = await undoForget(view, nowMs);
  t.ok(restored > 0, `undo brought back ${restored} points`);
  t.same(await readBack(store, points), [], 'before a prune, every point is back and reads as it was');

  await applyForget(view, await planForget(view, { last: 3 }, { timeZone: 'UTC' }), nowMs);
  await prune(view, { graceMs: 0, undoMs: 0, compact: true, now: () => nowMs, sleep: async () => undefined });
  const held = await heldSegments(store);
  const compacted = new Set((await store.list('compacted/')).map((k) => parseCompactedKey(k)!.sequence));
  t.ok(compacted.size > 0, `the prune compacted ${compacted.size} segments`);
  await undoForget(view, nowMs);
  // Back: the kept points, and the forgotten ones whose window is whole and was not rewritten without them.
  const kept = new Set(points.slice(-3).map((m) => m.point.recordSequence));
  const windowOf = (m: ModelPoint) => Array.from({ length: WINDOW + 1 }, (_, i) => m.point.sequence - i).filter((s) => s >= 1);
  const back = points.filter((m) => kept.has(m.point.recordSequence) || m.point.label !== null || windowOf(m).every((s) => held.has(s) && !compacted.has(s)));
  t.ok(back.length < points.length, `after the prune, ${points.length - back.length} points are gone for good`);
  const fresh = await ArchiveView.open(store);
  t.same(fresh.catalog.all.map((p) => p.recordSequence), back.map((m) => m.point.recordSequence), 'an undo after the prune brings back exactly the kept points and those whose windows are whole and not rewritten');
  await fresh.close();
  t.same(await readBack(store, back), [], 'and they read back as they were');
});

/** A store that fails every request from the `cutAt`-th on, as a machine that lost power there. */
class CutStore implements ArchiveStore {
  private requests = 0;
  constructor(
    readonly inner: MemoryStore,
    private readonly cutAt: number,
  ) {}
  get location() {
    return this.inner.location;
  }
  get stats() {
    return this.inner.stats;
  }
  get count() {
    return this.requests;
  }
  private cut(what: string): void {
    if (++this.requests >= this.cutAt) throw VolumeError.archiveUnavailable(`${what}: cut`);
  }
  async put(key: string, parts: readonly Buffer[]) {
    this.cut(`put ${key}`);
    return this.inner.put(key, parts);
  }
  async get(key: string, range?: ByteRange) {
    this.cut(`get ${key}`);
    return this.inner.get(key, range);
  }
  async head(key: string) {
    this.cut(`head ${key}`);
    return this.inner.head(key);
  }
  async list(prefix: string, startAfter?: string) {
    this.cut(`list ${prefix}`);
    return this.inner.list(prefix, startAfter);
  }
  async delete(key: string) {
    this.cut(`delete ${key}`);
    return this.inner.delete(key);
  }
  async close() {}
}

t.test('retention: forget and prune cut at every request leave every kept point whole, and a re-run finishes', async (t) => {
  const { store, points } = await buildHistory(t, 31, 40);
  const policy: RetentionPolicy = { daily: 3, last: 2 };
  const expected = referenceKeep(points.map((m) => m.point), policy);
  const kept = points.filter((m) => expected.has(m.point.recordSequence));
  const nowMs = points[points.length - 1]!.point.timeMs;
  const clean = copyStore(store);
  const counting = new CutStore(clean, Infinity);
  await forgetAndPrune(counting, policy, nowMs);
  // The objects a run ends with; a compacted object's generation aside (a re-run after a cut takes the next one).
  const objectsOf = (store: MemoryStore) => [...store.objects.keys()].filter((k) => !k.startsWith('retention/')).map((k) => k.replace(/-[0-9a-f]{8}\.seg$/, '.seg')).sort();
  const finalKeys = objectsOf(clean);
  t.ok(counting.count > 10, `a clean run makes ${counting.count} requests`);
  for (let cutAt = 1; cutAt <= counting.count; cutAt++) {
    const copy = copyStore(store);
    await forgetAndPrune(new CutStore(copy, cutAt), policy, nowMs).then(
      () => t.fail(`cut at request ${cutAt}: the run did not notice`),
      (err: unknown) => t.match((err as Error).message, /cut/, `cut at request ${cutAt}: the run fails with the store's error`),
    );
    const problems = await readBack(copy, kept);
    if (problems.length > 0) t.same(problems, [], `cut at request ${cutAt}: every kept point still reads back`);
    await forgetAndPrune(copy, policy, nowMs);
    const keys = objectsOf(copy);
    if (keys.join() !== finalKeys.join()) t.same(keys, finalKeys, `cut at request ${cutAt}: a re-run ends where a clean run does`);
  }
  t.same(await readBack(clean, kept), [], 'after the clean run, every kept point reads back');
});

t.test('retention: a prune keeps the window of the first segment the archive lacks whole (uploads finish out of order)', async (t) => {
  const whole = new Set(Array.from({ length: 20 }, (_, i) => i + 1).filter((s) => s !== 15));
  const held = { whole, pieces: [21], isPruned: (s: number) => s <= 2 };
  const newest = { recordSequence: 100, sequence: 21 };
  // Segment 15 is still on its way: a point in it, on primary only, needs 12..15 (W = 3).
  t.same(unneededSegments([newest], held, 3), [3, 4, 5, 6, 7, 8, 9, 10, 11], 'nothing from 15 − W on, nor what is already pruned');
  t.same(unneededSegments([newest, { recordSequence: 50, sequence: 8 }], held, 3), [3, 4, 9, 10, 11], 'nor a kept point’s window');
  t.same(unneededSegments([], held, 3), [], 'without a kept point, nothing');
});

t.test('retention: after compaction the archive holds about what the kept points need', async (t) => {
  const { store, points } = await buildHistory(t, 51, 80, { incompressible: true });
  const policy: RetentionPolicy = { daily: 7, last: 2 };
  const expected = referenceKeep(points.map((m) => m.point), policy);
  const kept = points.filter((m) => expected.has(m.point.recordSequence) || m.point.label !== null);
  const dataBytes = async () => {
    let bytes = 0;
    for (const prefix of ['segments/', 'tails/', 'compacted/']) for (const key of await store.list(prefix)) bytes += store.objects.get(key)!.length;
    return bytes;
  };
  // What the kept points need: each distinct block version any of them holds, once.
  const BS = 4096;
  const versions = new Set<string>();
  for (const { image } of kept) for (let b = 0; b < image.length / BS; b++) if (image.readUInt32LE(b * BS) !== 0) versions.add(`${b}:${image.readUInt32LE(b * BS)}`);
  const needed = versions.size * BS;
  // The newest window is never compacted: every point to come may need all of it.
  const newest = points[points.length - 1]!.point.sequence;
  const before = await dataBytes();
  await forgetAndPrune(store, policy, points[points.length - 1]!.point.timeMs);
  const after = await dataBytes();
  let floorBytes = 0;
  for (const [key, bytes] of store.objects) {
    const s = ArchiveKeys.parseSegment(key) ?? parseCompactedKey(key)?.sequence ?? ArchiveKeys.parseTail(key)?.sequence;
    if (s !== undefined && s !== null && s >= newest - WINDOW) floorBytes += bytes.length;
  }
  t.ok(after < before, `compaction and prune freed ${before - after} of ${before} bytes`);
  t.ok(after - floorBytes <= 1.2 * needed, `below the newest window the archive holds ${after - floorBytes} bytes for the ${needed} the ${kept.length} kept points need (${((after - floorBytes) / needed).toFixed(2)}x; the newest window ${floorBytes} more)`);
  t.same(await readBack(store, kept), [], 'every kept point reads back as it was');
  // Without the archive's catalog, readers take the summaries, the compacted objects' among them.
  const withoutCatalog = copyStore(store);
  for (const key of await withoutCatalog.list('catalog/')) withoutCatalog.objects.delete(key);
  t.same(await readBack(withoutCatalog, kept), [], 'and so they do from the summaries alone, the catalog gone');

  const volumeId = (await ArchiveView.descriptor(store)).volumeId;
  const pool = new CompressionPool();
  t.teardown(() => pool.close());
  t.same(await verifyArchive(store, pool, null, volumeId, emptyCounts()), [], 'verify checks the compacted objects record by record, and finds nothing wrong');
  // A live block altered inside a compacted object whose chunks and table are otherwise right: only its record's CRC tells.
  const indexes = await Promise.all((await store.list('compacted/')).map(async (key) => ({ key, index: await fetchArchiveIndex(store, key) })));
  t.ok(indexes.some(({ index }) => index.summary.extentCount === 0), 'a segment kept points read nothing from is compacted to its summary alone (their scans read it)');
  const { key, index } = indexes.find(({ index }) => Array.from({ length: index.summary.extentCount }, (_, e) => e).some((e) => !index.summary.extentIsZero(e)))!;
  const { header, summary } = index;
  const raw = Buffer.concat(await Promise.all(index.chunks.map((_, c) => fetchChunk(store, pool, key, index, c))));
  const write = Array.from({ length: summary.extentCount }, (_, e) => e).find((e) => !summary.extentIsZero(e))!;
  raw[summary.extentOffset(write) - header.rawStart + 100]! ^= 1;
  const slices = Array.from({ length: index.chunks.length }, (_, c) => raw.subarray(c * header.chunkSizeBytes, (c + 1) * header.chunkSizeBytes));
  const compressed = await pool.compress(slices);
  store.objects.set(key, Buffer.concat(encodeArchiveObject({ ...header, compacted: true }, summary, compressed.map((bytes, i) => ({ bytes, rawLength: slices[i]!.length })))));
  const problems = await verifyArchive(store, pool, null, volumeId, emptyCounts());
  t.match(problems, [{ where: key, message: /block \d+ failed its checksum/ }], 'verify finds the altered block of a compacted object');
});

t.test('retention: a compaction does not commit past an undo made meanwhile', async (t) => {
  const { store, points } = await buildHistory(t, 61, 50);
  const nowMs = points[points.length - 1]!.point.timeMs;
  const first = await ArchiveView.open(store);
  await applyForget(first, await planForget(first, { last: 2 }, { timeZone: 'UTC' }), nowMs);
  await first.close();
  // Another run undoes the forget just as this one puts its first compacted object.
  let undone = false;
  const racing: MemoryStore = Object.assign(Object.create(store) as MemoryStore, {
    async put(key: string, parts: readonly Buffer[]) {
      await store.put(key, parts);
      if (undone || !key.startsWith('compacted/')) return;
      undone = true;
      const other = await ArchiveView.open(store);
      await undoForget(other, nowMs);
      await other.close();
    },
  });
  const view = await ArchiveView.open(racing);
  await t.rejects(prune(view, { graceMs: 0, undoMs: 0, compact: true, now: () => nowMs, sleep: async () => undefined }), /the retention record changed while compacting/);
  await view.close();
  t.ok(undone, 'the undo ran in the middle of the compaction');
  const fresh = await ArchiveView.open(store);
  const shown = new Set(fresh.catalog.all.map((p) => p.recordSequence));
  await fresh.close();
  t.ok(shown.size > 2, `${shown.size} points show after the undo`);
  t.same(await readBack(store, points.filter((m) => shown.has(m.point.recordSequence))), [], 'and every one of them reads back as it was');
});
