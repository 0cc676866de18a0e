/**
 * The native fadvise helpers really let the kernel drop a file's pages and read a range of them
 * back (fincore counts them), and the directory store leaves no archive object in the page cache
 * once it is durable.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { DirectoryStore } from '../../lib/archive/directory-store.js';
import { native } from '../../lib/util/native.js';
import { dropCache } from '../../lib/util/page-cache.js';
import { ROOT } from '../helpers/system.js';

const MiB = 1024 * 1024;

/** Bytes of the file in the page cache. */
function residentBytes(file: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim());
}

/** A folder on a disk-backed filesystem: tmpfs pages are the file itself, and fadvise cannot drop them. */
async function scratch(t: Tap.Test): Promise<string> {
  const TMPFS_MAGIC = 0x01021994;
  const base = (await fs.statfs(os.tmpdir())).type === TMPFS_MAGIC ? ROOT : os.tmpdir();
  const dir = await fs.mkdtemp(path.join(base, 'salvo-page-cache-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** 4 MiB of random bytes in a scratch file, written and synced; the handle closes when the test ends. */
async function syncedFile(t: Tap.Test, name: string): Promise<{ file: string; handle: fs.FileHandle }> {
  const file = path.join(await scratch(t), name);
  const handle = await fs.open(file, 'w+');
  t.teardown(() => handle.close());
  await handle.write(randomBytes(4 * MiB));
  await handle.sync();
  return { file, handle };
}

t.test('page-cache: dropCache empties the cache of a synced file', async (t) => {
  const { file, handle } = await syncedFile(t, 'object');
  t.equal(residentBytes(file), 4 * MiB, 'written pages are cached');
  await dropCache(handle.fd);
  t.equal(residentBytes(file), 0, 'none left after dropCache');
  t.same(await fs.readFile(file).then((b) => b.length), 4 * MiB, 'the file itself is whole');
});

t.test('page-cache: prefetch reads the range asked for, and only it, back into the cache', async (t) => {
  const { file, handle } = await syncedFile(t, 'slot');
  await dropCache(handle.fd);
  t.equal(residentBytes(file), 0, 'nothing cached to begin with');
  await native().prefetch(handle.fd, MiB, 2 * MiB);
  // WILLNEED starts the reads; they land in the cache a moment later.
  let resident = 0;
  for (let i = 0; i < 200 && resident < 2 * MiB; i++) {
    await new Promise((r) => setTimeout(r, 10));
    resident = residentBytes(file);
  }
  t.equal(resident, 2 * MiB, 'the 2 MiB asked for are cached, nothing around them');
});

t.test('page-cache: a bad descriptor rejects with its errno code', async (t) => {
  await t.rejects(dropCache(1 << 30), { code: 'EBADF' });
  t.throws(() => dropCache(-1 as number), { code: 'ERR_INVALID_ARG_TYPE' });
  await t.rejects(native().prefetch(1 << 30, 0, 4096), { code: 'EBADF' });
  t.throws(() => native().prefetch(3, -1, 4096), { code: 'ERR_INVALID_ARG_TYPE' });
});

t.test('page-cache: the directory store leaves no object in the page cache', async (t) => {
  const dir = await scratch(t);
  const store = new DirectoryStore(dir);
  const bytes = randomBytes(3 * MiB);
  await store.put('segments/0000000000000001.seg', [bytes.subarray(0, MiB), bytes.subarray(MiB)]);
  const file = path.join(dir, 'segments', '0000000000000001.seg');
  t.equal(residentBytes(file), 0, 'the durable object holds no cached pages');
  t.same(await store.get('segments/0000000000000001.seg'), bytes, 'and reads back whole');
});
