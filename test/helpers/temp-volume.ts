/** Temporary volumes for tests: a directory that is removed when the test ends. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { slotsDirectory } from '../../lib/volume/recovery.js';
import { FsSlotFiles, type SlotFile, type SlotFiles } from '../../lib/volume/slot-file.js';
import { Volume, type CreateOptions, type OpenOptions } from '../../lib/volume/volume.js';

export interface TestTap {
  teardown(fn: () => unknown): void;
}

export function tempDir(t: TestTap, name = 'salvo-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), name));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A small policy that cycles segments quickly: 64 blocks of 4 KiB, 128 KiB segments. */
export const SMALL_POLICY = {
  sizeBytes: 64 * 4096,
  blockSizeBytes: 4096,
  segmentSizeBytes: 128 * 1024,
  workingSetSegments: 6,
  spareSegments: 2,
};

export async function createTempVolume(
  t: TestTap,
  options: Partial<CreateOptions> = {},
  openOptions: OpenOptions = {},
): Promise<{ dir: string; store: MemoryStore; volume: Volume; reopen: (extra?: OpenOptions) => Promise<Volume> }> {
  const dir = path.join(tempDir(t), 'volume');
  const store = (openOptions.store as MemoryStore | undefined) ?? new MemoryStore();
  await Volume.create(dir, { ...SMALL_POLICY, archive: store.location, store, ...options });
  const reopen = (extra: OpenOptions = {}) => Volume.open(dir, { store, onStall: () => undefined, ...openOptions, ...extra });
  const volume = await reopen();
  t.teardown(() => volume.close().catch(() => undefined));
  return { dir, store, volume, reopen };
}

/** The volume's slot files, each with the methods `replace` returns in place of its own (they may call the real `file`). */
export function slotFilesWith(dir: string, replace: (file: SlotFile) => Partial<SlotFile>): SlotFiles {
  const files = new FsSlotFiles(slotsDirectory(dir));
  return {
    open(index: number): SlotFile {
      const file = files.open(index);
      return Object.assign(Object.create(file) as SlotFile, replace(file));
    },
  };
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing seed can be replayed: the benchmarks' own. */
export { prng } from '../../bench/history.js';
