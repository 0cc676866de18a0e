/**
 * The contract of ArchiveStore (lib/archive/archive-store.ts), as one suite that every store
 * must pass: memory, directory and S3 run the same tests (see archive-stores.test.ts).
 * Each test gets a fresh, empty store from `makeStore` and cleans it up when it ends, so a
 * store's tests can share a bucket without seeing each other's keys.
 */
import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import { ArchiveKeys, type ArchiveStore } from '../../lib/archive/archive-store.js';

export interface StoreUnderTest {
  store: ArchiveStore;
  /** Removes what the test stored and closes the store. */
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;

export function archiveStoreConformance(t: Test, name: string, makeStore: () => Promise<StoreUnderTest>): void {
  const subject = `archive-store(${name})`;

  const open = async (t: Test): Promise<ArchiveStore> => {
    const { store, cleanup } = await makeStore();
    t.teardown(cleanup);
    return store;
  };

  t.test(`${subject}: put then get returns the whole object, and head its size`, async (t) => {
    const store = await open(t);
    const bytes = randomBytes(1000);
    await store.put('volume.json', [bytes]);
    t.same(await store.get('volume.json'), bytes);
    t.equal(await store.head('volume.json'), 1000);

    await store.put('empty', [Buffer.alloc(0)]);
    t.same(await store.get('empty'), Buffer.alloc(0));
    t.equal(await store.head('empty'), 0);
  });

  t.test(`${subject}: get by range returns those bytes, clipped to the end`, async (t) => {
    const store = await open(t);
    const bytes = randomBytes(100);
    await store.put('object', [bytes]);
    t.same(await store.get('object', { offset: 0, length: 1 }), bytes.subarray(0, 1), 'first byte');
    t.same(await store.get('object', { offset: 10, length: 20 }), bytes.subarray(10, 30), 'inside');
    t.same(await store.get('object', { offset: 99, length: 1 }), bytes.subarray(99), 'last byte');
    t.same(await store.get('object', { offset: 90, length: 50 }), bytes.subarray(90), 'clipped at the end');
    t.same(await store.get('object', { offset: 0, length: 1000 }), bytes, 'longer than the object');
    t.same(await store.get('object', { offset: 40, length: 0 }), Buffer.alloc(0), 'empty range');
  });

  t.test(`${subject}: a range starting at or past the end returns an empty buffer`, async (t) => {
    const store = await open(t);
    await store.put('object', [randomBytes(100)]);
    t.same(await store.get('object', { offset: 100, length: 10 }), Buffer.alloc(0), 'at the end');
    t.same(await store.get('object', { offset: 5000, length: 10 }), Buffer.alloc(0), 'past the end');
    await store.put('empty', [Buffer.alloc(0)]);
    t.same(await store.get('empty', { offset: 0, length: 10 }), Buffer.alloc(0), 'any range of an empty object');
  });

  t.test(`${subject}: head of a missing key is null`, async (t) => {
    const store = await open(t);
    t.equal(await store.head('volume.json'), null);
    t.equal(await store.head(ArchiveKeys.segment(1)), null);
  });

  t.test(`${subject}: get of a missing key fails with NOT_FOUND`, async (t) => {
    const store = await open(t);
    await t.rejects(store.get('volume.json'), { name: 'VolumeError', code: 'NOT_FOUND' });
    await t.rejects(store.get(ArchiveKeys.segment(7), { offset: 0, length: 10 }), { code: 'NOT_FOUND' });
    await t.rejects(store.get(ArchiveKeys.segment(7), { offset: 0, length: 0 }), { code: 'NOT_FOUND' });
  });

  t.test(`${subject}: put never overwrites, and leaves the old object as it was`, async (t) => {
    const store = await open(t);
    const first = Buffer.from('first volume');
    await store.put('volume.json', [first]);
    await t.rejects(store.put('volume.json', [Buffer.from('second volume, longer')]), {
      name: 'VolumeError',
      code: 'ARCHIVE_CONFLICT',
    });
    await t.rejects(store.put('volume.json', [first]), { code: 'ARCHIVE_CONFLICT' }, 'even with the same bytes');
    t.same(await store.get('volume.json'), first);
    t.equal(await store.head('volume.json'), first.length);
  });

  t.test(`${subject}: put of several parts stores their concatenation`, async (t) => {
    const store = await open(t);
    const parts = [randomBytes(17), Buffer.alloc(0), randomBytes(4096), Buffer.from('tail')];
    await store.put(ArchiveKeys.segment(3), parts);
    const whole = Buffer.concat(parts);
    t.same(await store.get(ArchiveKeys.segment(3)), whole);
    t.equal(await store.head(ArchiveKeys.segment(3)), whole.length);
    t.same(await store.get(ArchiveKeys.segment(3), { offset: 10, length: 20 }), whole.subarray(10, 30), 'a range across parts');
  });

  t.test(`${subject}: list returns every key under the prefix, sorted`, async (t) => {
    const store = await open(t);
    const segments = [ArchiveKeys.segment(0x10), ArchiveKeys.segment(2), ArchiveKeys.segment(1), ArchiveKeys.segment(0xa)];
    const tails = ['tails/0000000000000002-00000200.tail', 'tails/0000000000000002-00000100.tail'];
    const others = ['volume.json', 'segments-old', 'deep/a/b/c'];
    for (const key of [...segments, ...tails, ...others]) await store.put(key, [Buffer.from(key)]);

    t.strictSame(await store.list('segments/'), [...segments].sort(), 'nested keys under a folder');
    t.equal((await store.list('segments/'))[0], 'segments/0000000000000001.seg', 'in log order');
    t.strictSame(await store.list('tails/'), [...tails].sort());
    t.strictSame(await store.list('segments'), [...segments, 'segments-old'].sort(), 'a prefix need not end in /');
    t.strictSame(await store.list('deep/'), ['deep/a/b/c']);
    t.strictSame(await store.list('deep/a/b/'), ['deep/a/b/c'], 'a prefix several folders deep');
    t.strictSame(await store.list('deep/a/b/c'), ['deep/a/b/c'], 'a prefix that is a key');
    t.strictSame(await store.list(''), [...segments, ...tails, ...others].sort(), 'everything');
    t.strictSame(await store.list('nothing/'), []);
    const sorted = [...segments].sort();
    t.strictSame(await store.list('segments/', sorted[0]), sorted.slice(1), 'startAfter: only the keys after it');
    t.strictSame(await store.list('segments/', 'segments/'), sorted, 'startAfter before every key');
    t.strictSame(await store.list('segments/', sorted[sorted.length - 1]), [], 'startAfter the last key');
    t.strictSame(await store.list('', 'tails/'), [...tails, ...others].filter((k) => k > 'tails/').sort(), 'startAfter across folders');
  });

  t.test(`${subject}: delete removes a key, and deleting a missing key is not an error`, async (t) => {
    const store = await open(t);
    await store.put(ArchiveKeys.segment(1), [Buffer.from('one')]);
    await store.put(ArchiveKeys.segment(2), [Buffer.from('two')]);
    await store.delete(ArchiveKeys.segment(1));
    t.equal(await store.head(ArchiveKeys.segment(1)), null);
    await t.rejects(store.get(ArchiveKeys.segment(1)), { code: 'NOT_FOUND' });
    t.strictSame(await store.list('segments/'), [ArchiveKeys.segment(2)]);
    await store.delete(ArchiveKeys.segment(1));
    await store.delete('never/existed');
    await store.put(ArchiveKeys.segment(1), [Buffer.from('again')]);
    t.same(await store.get(ArchiveKeys.segment(1)), Buffer.from('again'), 'a deleted key can be put again');
  });

  t.test(`${subject}: a large object round trips whole and by range`, async (t) => {
    const store = await open(t);
    // 12 MiB in uneven parts: big enough for an S3 store set to upload it in 5 MiB parts.
    const parts = [randomBytes(5 * MiB + 3), randomBytes(1), randomBytes(7 * MiB - 4)];
    const whole = Buffer.concat(parts);
    const key = ArchiveKeys.segment(0xb16);
    await store.put(key, parts);
    t.equal(await store.head(key), 12 * MiB);
    t.ok((await store.get(key)).equals(whole), 'whole object');
    const across = { offset: 5 * MiB - 100, length: 200 };
    t.ok((await store.get(key, across)).equals(whole.subarray(across.offset, across.offset + across.length)), 'across 5 MiB');
    t.ok((await store.get(key, { offset: 12 * MiB - 10, length: MiB })).equals(whole.subarray(-10)), 'clipped tail');

    await t.rejects(store.put(key, [randomBytes(12 * MiB)]), { code: 'ARCHIVE_CONFLICT' }, 'never overwrites');
    t.ok((await store.get(key)).equals(whole), 'old object unchanged');
  });

  t.test(`${subject}: stats count requests and bytes`, async (t) => {
    const store = await open(t);
    const before = { ...store.stats };
    await store.put('a', [Buffer.alloc(10), Buffer.alloc(5)]);
    await t.rejects(store.put('a', [Buffer.alloc(3)]));
    await store.get('a');
    await store.get('a', { offset: 5, length: 4 });
    await store.head('a');
    await store.list('');
    await store.delete('a');
    const after = store.stats;
    t.strictSame(
      {
        puts: after.puts - before.puts,
        gets: after.gets - before.gets,
        heads: after.heads - before.heads,
        lists: after.lists - before.lists,
        deletes: after.deletes - before.deletes,
        bytesPut: after.bytesPut - before.bytesPut,
        bytesGot: after.bytesGot - before.bytesGot,
      },
      { puts: 2, gets: 2, heads: 1, lists: 1, deletes: 1, bytesPut: 15, bytesGot: 19 },
    );
  });
}
