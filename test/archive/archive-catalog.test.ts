/**
 * The archive's catalog: its bytes refuse damage, the archiver keeps it as it ships, a reader
 * opens a long history in a few requests and lists exactly what the summaries list, and a
 * missing, damaged or half-merged catalog costs time, never points.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import type { ByteRange } from '../../lib/archive/archive-store.js';
import { catalogChain, readArchiveContents } from '../../lib/archive/archive-catalog.js';
import {
  catalogKey,
  decodeCatalogBody,
  decodeCatalogObject,
  encodeCatalogBody,
  encodeCatalogObject,
  mergeCatalogs,
  parseCatalogKey,
  type CatalogContent,
} from '../../lib/format/archive-catalog.js';
import { ObjectCipher } from '../../lib/format/object-cipher.js';
import { CompressionPool } from '../../lib/archive/compression-pool.js';
import { verifyArchive } from '../../lib/history/verify.js';
import { emptyCounts } from '../../lib/volume/slot-check.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { synchPointTime } from '../../lib/volume/synch-point.js';
import type { Volume } from '../../lib/volume/volume.js';
import { SMALL_POLICY, createTempVolume, writeUntilRoll } from '../helpers/temp-volume.js';

const VOLUME_ID = '0123456789abcdef0123456789abcdef';
const BS = SMALL_POLICY.blockSizeBytes;

function sample(): CatalogContent {
  return {
    from: { sequence: 0, offset: 0 },
    to: { sequence: 9, offset: 4096 },
    segments: [1, 2, 3, 5, 8],
    tails: new Map([[9, ['tails/0000000000000009-00000040-00001000.tail']]]),
    points: [{ sequence: 2, offset: 100, recordSequence: 7, timeMs: 1_795_311_000_123, label: 'before-upgrade', info: { host: 'db1' } }],
  };
}

t.test('catalog bytes: round trip, and every kind of damage refused as CORRUPT_ARCHIVE', async (t) => {
  const content = sample();
  const key = catalogKey(content.from, content.to);
  t.equal(key, 'catalog/0000000000000000.00000000-0000000000000009.00001000.cat');
  t.same(parseCatalogKey(key), { from: content.from, to: content.to });
  t.equal(parseCatalogKey('catalog/0000000000000009.00001000-0000000000000001.00000000.cat'), null, 'a range that runs backwards is no catalog key');
  const body = encodeCatalogBody(content);
  t.same(decodeCatalogBody(body, key, content), content, 'the body round-trips');
  t.throws(() => decodeCatalogBody(body, key, { from: content.from, to: { sequence: 9, offset: 4097 } }), { code: 'CORRUPT_ARCHIVE' }, 'a body under another name');
  t.throws(() => decodeCatalogBody(Buffer.from('{"from":[0,0]'), key, content), { code: 'CORRUPT_ARCHIVE' }, 'not JSON');

  for (const cipher of [null, ObjectCipher.fromKey(randomBytes(32), 'key')]) {
    const what = cipher ? 'sealed' : 'plain';
    const object = encodeCatalogObject(VOLUME_ID, content.to, body, cipher);
    t.same(decodeCatalogObject(object, key, VOLUME_ID, content.to, cipher), body, `${what}: round trip`);
    const flipped = Buffer.from(object);
    flipped[object.length - 3]! ^= 1;
    t.throws(() => decodeCatalogObject(flipped, key, VOLUME_ID, content.to, cipher), { code: 'CORRUPT_ARCHIVE', message: /checksum mismatch/ }, `${what}: a flipped bit`);
    t.throws(() => decodeCatalogObject(object.subarray(0, object.length - 1), key, VOLUME_ID, content.to, cipher), { code: 'CORRUPT_ARCHIVE', message: /truncated/ }, `${what}: truncated`);
    t.throws(() => decodeCatalogObject(object, key, 'ffffffffffffffffffffffffffffffff', content.to, cipher), { code: 'CORRUPT_ARCHIVE', message: /catalog of volume/ }, `${what}: another volume's`);
    const header = Buffer.from(object);
    header.writeUInt16LE(2, 8);
    t.throws(() => decodeCatalogObject(header, key, VOLUME_ID, content.to, cipher), { code: 'CORRUPT_ARCHIVE', message: /header checksum/ }, `${what}: a damaged header is damage, not a version`);
  }
  const sealed = encodeCatalogObject(VOLUME_ID, content.to, body, ObjectCipher.fromKey(randomBytes(32), 'key'));
  t.throws(() => decodeCatalogObject(sealed, key, VOLUME_ID, content.to, ObjectCipher.fromKey(randomBytes(32), 'other')), { code: 'CORRUPT_ARCHIVE', message: /authentication/ }, 'another key');
  t.throws(() => decodeCatalogObject(sealed, key, VOLUME_ID, { sequence: 9, offset: 8192 }, ObjectCipher.fromKey(randomBytes(32), 'x')), { code: 'CORRUPT_ARCHIVE' });
});

t.test('catalog chain: the furthest-reaching object from each end; merges drop redundant tails and doubled points', async (t) => {
  const k = (a: number, b: number, c: number, d: number) => catalogKey({ sequence: a, offset: b }, { sequence: c, offset: d });
  const keys = [k(0, 0, 4, 100), k(4, 100, 6, 64), k(4, 100, 9, 200), k(9, 200, 10, 64), k(6, 64, 12, 0), 'catalog/junk'];
  t.same(
    catalogChain(keys).map((l) => l.key),
    [k(0, 0, 4, 100), k(4, 100, 9, 200), k(9, 200, 10, 64)],
  );
  const a = sample();
  const b: CatalogContent = {
    from: a.to,
    to: { sequence: 10, offset: 64 },
    segments: [9],
    tails: new Map(),
    points: [{ ...a.points[0]! }, { sequence: 9, offset: 64, recordSequence: 9, timeMs: 1, label: null, info: {} }],
  };
  const merged = mergeCatalogs([a, b]);
  t.same(merged.segments, [1, 2, 3, 5, 8, 9]);
  t.equal(merged.tails.size, 0, 'segment 9 whole: its tails are gone');
  t.same(merged.points.map((p) => p.recordSequence), [7, 9], 'a point listed twice counts once');
  t.same([merged.from, merged.to], [a.from, b.to]);
});

/** Writes `segments` sealed segments with a synch point in each, and waits for the archive. */
async function history(volume: Volume, segments: number, label = 'p'): Promise<void> {
  let block = 0;
  for (let i = 0; i < segments; i++) {
    block = await writeUntilRoll(volume, (i % 250) + 1, block);
    await volume.synch({ label: `${label}${i}` });
  }
  await volume.idle();
}

const names = (view: ArchiveView) => view.catalog.all.map((p) => `${synchPointTime(p)} ${p.label} ${p.sequence}/${p.offset}`);

t.test('a long history opens in a few requests, and lists what the summaries list', async (t) => {
  const { volume, store } = await createTempVolume(t);
  await history(volume, 120);
  const keys = await store.list('catalog/');
  t.ok(keys.length >= 1 && keys.length <= 8, `the catalog is a few objects (${keys.length})`);

  const before = { ...store.stats };
  const view = await ArchiveView.open(store);
  const requests = store.stats.gets + store.stats.lists + store.stats.heads - before.gets - before.lists - before.heads;
  t.ok(requests <= keys.length + 6, `open took ${requests} requests for ${view.segments.length} segments`);
  t.ok(view.segments.length >= 110, `${view.segments.length} segments catalogued`);
  t.equal(view.catalog.all.length, 120, 'every point listed');

  // The summaries are the truth: without a catalog the same points come from them.
  for (const key of keys) await store.delete(key);
  const bySummaries = await ArchiveView.open(store);
  t.same(names(view), names(bySummaries), 'the catalog lists exactly what the summaries list');
  t.same(view.segments, bySummaries.segments);
  await Promise.all([view.close(), bySummaries.close()]);

  // The archiver writes it again at its next flush (its first reads what lacks a catalog).
  await history(volume, 2, 'q');
  t.ok((await store.list('catalog/')).length >= 1, 'rewritten');
  const again = await ArchiveView.open(store);
  t.equal(again.catalog.all.length, 122);
  t.equal(again.catalogProblem, null);
  await again.close();
});

t.test('a damaged catalog object costs time, never points; the next mount replaces it', async (t) => {
  const { volume, store, reopen } = await createTempVolume(t);
  await history(volume, 40);
  const whole = await ArchiveView.open(store);
  const expected = names(whole);
  await whole.close();
  const [first] = await store.list('catalog/');
  const bytes = await store.get(first!);
  bytes[bytes.length - 1]! ^= 0x40;
  await store.delete(first!);
  await store.put(first!, [bytes]);
  const view = await ArchiveView.open(store);
  t.match(view.catalogProblem, /catalog body checksum mismatch/, 'the damage is named');
  t.same(names(view), expected, 'and every point is listed from the summaries');
  t.same(view.damaged, [], 'no archived object is called damaged');
  await view.close();
  await volume.close();
  const reopened = await reopen();
  t.teardown(() => reopened.close());
  await history(reopened, 1, 'after');
  const read = await readArchiveContents(store, volume.config.volumeId, null);
  t.equal(read.problem, null, 'the next mount rewrote the catalog past the damage');
  t.equal(read.content.points.length, 41);
});

/**
 * A history of 12 segments whose catalog is gone: the next writer rebuilds it while `fault` acts on
 * the second segment (long gone from primary storage: never shipped again). Once the fault is
 * gone, every point must still be listed: the catalog left none out.
 */
async function rebuiltUnder(t: Test, store: MemoryStore, fault: { on(key: string): void; off(): void }): Promise<void> {
  const { volume, reopen } = await createTempVolume(t, {}, { store });
  await history(volume, 12);
  const before = await ArchiveView.open(store);
  const expected = names(before);
  await before.close();
  await volume.close();
  for (const key of await store.list('catalog/')) await store.delete(key);
  fault.on((await store.list('segments/'))[1]!);
  const reopened = await reopen();
  t.teardown(() => reopened.close());
  await history(reopened, 1, 'after');
  fault.off();
  const view = await ArchiveView.open(store);
  t.same(names(view).slice(0, expected.length), expected, 'every point is still listed');
  t.equal(view.catalog.all.length, expected.length + 1);
  await view.close();
}

t.test('a damaged answer while the writer reads the archive is no reason to leave points out of the catalog (found by the simulation)', async (t) => {
  // Reads of one segment's prologue come back with a flipped byte, while on.
  class Flaky extends MemoryStore {
    flaky: string | null = null;
    damagedAnswers = 0;
    override async get(key: string, range?: ByteRange): Promise<Buffer> {
      const bytes = await super.get(key, range);
      if (key !== this.flaky || range?.offset !== 0) return bytes;
      this.damagedAnswers++;
      bytes[20]! ^= 0x01;
      return bytes;
    }
  }
  const store = new Flaky();
  await rebuiltUnder(t, store, { on: (key) => (store.flaky = key), off: () => (store.flaky = null) });
  t.ok(store.damagedAnswers > 0, 'damaged answers were given');
});

t.test('a listing that lags is no reason to leave a segment out of the catalog (found by the simulation)', async (t) => {
  // Listings leave out one segment, while on: an eventually consistent store lists what it stored a moment ago only later.
  class Lagging extends MemoryStore {
    hidden: string | null = null;
    override async list(prefix: string, startAfter?: string): Promise<string[]> {
      return (await super.list(prefix, startAfter)).filter((k) => k !== this.hidden);
    }
  }
  const store = new Lagging();
  await rebuiltUnder(t, store, { on: (key) => (store.hidden = key), off: () => (store.hidden = null) });
});

t.test('a merge cut short leaves a chain a reader can use; the writer clears what is off it', async (t) => {
  const { volume, store, reopen } = await createTempVolume(t);
  await history(volume, 30);
  const keys = await store.list('catalog/');
  const chain = catalogChain(keys);
  // What a crash between a merged object's put and the deletes leaves: the parts beside the whole.
  const parts = mergeCatalogs([]);
  parts.from = chain[0]!.from;
  parts.to = { sequence: chain[0]!.from.sequence + 1, offset: 0 };
  await store.put(catalogKey(parts.from, parts.to), [encodeCatalogObject(volume.config.volumeId, parts.to, randomBytes(40), null)]);
  const view = await ArchiveView.open(store);
  t.equal(view.catalog.all.length, 30, 'the reader takes the furthest-reaching chain');
  t.equal(view.catalogProblem, null);
  await view.close();
  await volume.close();
  const reopened = await reopen();
  t.teardown(() => reopened.close());
  await history(reopened, 1, 'r');
  t.notOk((await store.list('catalog/')).includes(catalogKey(parts.from, parts.to)), 'the stray object is deleted');
});

t.test('refresh: points archived after the view opened appear, tails first, then whole', async (t) => {
  const store = new MemoryStore();
  const { volume } = await createTempVolume(t, { store }, { store });
  await history(volume, 3);
  const view = await ArchiveView.open(store);
  t.teardown(() => view.close());
  t.equal(view.catalog.all.length, 3);
  await volume.write(Buffer.alloc(BS, 9), 0);
  await volume.synch({ label: 'tail-only' });
  await volume.idle();
  await view.refresh();
  t.same(view.catalog.latest?.label, 'tail-only', 'a point in a tail piece');
  const snapshot = await view.snapshots.open(view.catalog.latest!);
  t.same(await snapshot.read(0, BS), Buffer.alloc(BS, 9), 'reads what was written');
  await history(volume, 2, 'later');
  await view.refresh();
  t.same(view.catalog.all.map((p) => p.label).slice(-3), ['tail-only', 'later0', 'later1']);
  const fresh = await ArchiveView.open(store);
  t.teardown(() => fresh.close());
  t.same(names(view), names(fresh), 'a refreshed view lists what a new one does');
});

t.test('verify holds the catalog against the summaries', async (t) => {
  const { volume, store } = await createTempVolume(t);
  await history(volume, 12);
  const pool = new CompressionPool();
  t.teardown(() => pool.close());
  const healthy = await verifyArchive(store, pool, null, volume.config.volumeId, emptyCounts());
  t.same(healthy, [], 'a healthy archive and its catalog: no problem');
  const [segment] = await store.list('segments/');
  await store.delete(segment!);
  const problems = await verifyArchive(store, pool, null, volume.config.volumeId, emptyCounts());
  t.match(problems, [{ where: 'catalog/', message: /the catalog lists segment \d+, which the archive does not hold/ }], 'a catalogued segment gone is named');
  const [first] = await store.list('catalog/');
  const bytes = await store.get(first!);
  bytes[60]! ^= 1;
  await store.delete(first!);
  await store.put(first!, [bytes]);
  t.match(await verifyArchive(store, pool, null, volume.config.volumeId, emptyCounts()), [{ where: 'catalog/', message: /catalog body checksum mismatch .*next mount rewrites it/ }], 'a damaged catalog object is named as such');
});
