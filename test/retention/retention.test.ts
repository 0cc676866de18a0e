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
import { MemoryStore } from '../../lib/archive/memory-store.js';
import type { RetentionPolicy } from '../../lib/format/retention-policy.js';
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

/** Sequences of the segments the store holds objects of. */
async function heldSegments(store: ArchiveStore): Promise<Set<number>> {
  const keys = [...(await store.list('segments/')), ...(await store.list('tails/'))];
  return new Set(keys.map((k) => ArchiveKeys.parseSegment(k) ?? ArchiveKeys.parseTail(k)!.sequence));
}

/** Forget by `policy`, then prune with neither grace nor undo time. */
async function forgetAndPrune(store: ArchiveStore, policy: RetentionPolicy, nowMs: number): Promise<void> {
  const view = await ArchiveView.open(store);
  try {
    await applyForget(view, await planForget(view, policy, { timeZone: 'UTC' }), nowMs);
    await prune(view, { graceMs: 0, undoMs: 0, now: () => nowMs, sleep: async () => undefined });
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
  await prune(view, { graceMs: 0, undoMs: 0, now: () => nowMs, sleep: async () => undefined });
  const held = await heldSegments(store);
  await undoForget(view, nowMs);
  const whole = points.filter((m) => Array.from({ length: WINDOW + 1 }, (_, i) => m.point.sequence - i).every((s) => s < 1 || held.has(s)));
  t.ok(whole.length < points.length, `after the prune, ${points.length - whole.length} points lost their windows`);
  const fresh = await ArchiveView.open(store);
  t.same(fresh.catalog.all.map((p) => p.recordSequence), whole.map((m) => m.point.recordSequence), 'an undo after the prune brings back exactly the points whose windows are whole');
  await fresh.close();
  t.same(await readBack(store, whole), [], 'and they read back as they were');
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
  const finalKeys = [...clean.objects.keys()].filter((k) => !k.startsWith('retention/')).sort();
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
    const keys = [...copy.objects.keys()].filter((k) => !k.startsWith('retention/')).sort();
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
