/**
 * The small files' durability on disk (FsVolumeFiles): which syncs a durable append or replace
 * makes, and in which order. The crash simulation models the contract; this checks that the
 * directory on disk keeps it.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { FsVolumeFiles } from '../../lib/volume/files.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { Volume } from '../../lib/volume/volume.js';
import { SMALL_POLICY, tempDir } from '../helpers/temp-volume.js';

/** Records the opens, syncs and renames `fs` sees while `run` runs, by path. */
function traced(run: () => void): string[] {
  const calls: string[] = [];
  const restore = trace(calls);
  try {
    run();
  } finally {
    restore();
  }
  return calls;
}

/** Starts recording into `calls`; returns what puts `fs` back. */
function trace(calls: string[]): () => void {
  const paths = new Map<number, string>();
  const saved = { openSync: fs.openSync, fdatasyncSync: fs.fdatasyncSync, fsyncSync: fs.fsyncSync, renameSync: fs.renameSync };
  const mutable = fs as unknown as Record<string, unknown>;
  mutable.openSync = (file: fs.PathLike, ...rest: unknown[]) => {
    const fd = (saved.openSync as (...a: unknown[]) => number)(file, ...rest);
    paths.set(fd, path.basename(String(file)));
    return fd;
  };
  mutable.fdatasyncSync = (fd: number) => {
    calls.push(`fdatasync ${paths.get(fd)}`);
    saved.fdatasyncSync(fd);
  };
  mutable.fsyncSync = (fd: number) => {
    calls.push(`fsync ${paths.get(fd)}`);
    saved.fsyncSync(fd);
  };
  mutable.renameSync = (from: fs.PathLike, to: fs.PathLike) => {
    calls.push(`rename ${path.basename(String(from))} ${path.basename(String(to))}`);
    saved.renameSync(from, to);
  };
  return () => Object.assign(mutable, saved);
}

t.test('a durable append is fdatasynced, and the directory fsynced when it created the file', async (t) => {
  const dir = tempDir(t);
  const files = new FsVolumeFiles(dir);
  t.same(traced(() => files.append('log', Buffer.from('a\n'), { durable: true })), ['fdatasync log', `fsync ${path.basename(dir)}`]);
  t.same(traced(() => files.append('log', Buffer.from('b\n'), { durable: true })), ['fdatasync log']);
  t.same(traced(() => files.append('log', Buffer.from('c\n'))), [], 'not durable: no sync');
  t.equal(files.read('log')?.toString(), 'a\nb\nc\n');
});

t.test('a durable replace syncs the new file before the rename and the directory after it', async (t) => {
  const dir = tempDir(t);
  const files = new FsVolumeFiles(dir);
  files.append('cat', Buffer.from('old\n'));
  t.same(traced(() => files.replace('cat', Buffer.from('new\n'), { durable: true })), ['fdatasync cat.tmp', 'rename cat.tmp cat', `fsync ${path.basename(dir)}`]);
  t.equal(files.read('cat')?.toString(), 'new\n');
  t.same(traced(() => files.replace('cat', Buffer.from('newer\n'))), ['rename cat.tmp cat'], 'not durable: no sync');
  t.equal(files.read('cat')?.toString(), 'newer\n');
  t.notOk(fs.existsSync(path.join(dir, 'cat.tmp')));
});

t.test('init: the slot files and volume.json are on disk, names and all, before it returns', async (t) => {
  const root = tempDir(t);
  const dir = path.join(root, 'vol');
  const calls: string[] = [];
  const restore = trace(calls);
  try {
    await Volume.create(dir, { ...SMALL_POLICY, archive: 'memory://test', store: new MemoryStore() });
  } finally {
    restore();
  }
  t.same(calls, ['fsync slots', 'fdatasync volume.json.tmp', 'rename volume.json.tmp volume.json', 'fsync vol', `fsync ${path.basename(root)}`]);
});
