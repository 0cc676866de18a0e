/** Temporary volumes for tests: a directory that is removed when the test ends. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { VolumeHistory } from '../../lib/history/history.js';
import { FsVolumeFiles, type VolumeFiles } from '../../lib/volume/files.js';
import type { SlotFile } from '../../lib/volume/slot-file.js';
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

/** Volume.open's options, where the store defaults to the one the volume was made with. */
export type TestOpenOptions = Partial<OpenOptions>;

export async function createTempVolume(
  t: TestTap,
  options: Partial<CreateOptions> = {},
  openOptions: TestOpenOptions = {},
): Promise<{ dir: string; store: MemoryStore; volume: Volume; reopen: (extra?: TestOpenOptions) => Promise<Volume> }> {
  const dir = path.join(tempDir(t), 'volume');
  const store = (openOptions.store as MemoryStore | undefined) ?? new MemoryStore();
  await Volume.create(dir, { ...SMALL_POLICY, archive: store.location, store, ...options });
  const cipher = options.encryption?.cipher;
  const reopen = (extra: TestOpenOptions = {}) => Volume.open(dir, { store, cipher, onStall: () => undefined, ...openOptions, ...extra });
  const volume = await reopen();
  t.teardown(() => volume.close().catch(() => undefined));
  return { dir, store, volume, reopen };
}

/** The volume's files, each slot file with the methods `replace` returns in place of its own (they may call the real `file`). */
export function slotFilesWith(dir: string, replace: (file: SlotFile) => Partial<SlotFile>): VolumeFiles {
  const files = new FsVolumeFiles(dir);
  return Object.assign(Object.create(files) as VolumeFiles, {
    open(index: number): SlotFile {
      const file = files.open(index);
      return Object.assign(Object.create(file) as SlotFile, replace(file));
    },
  });
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing seed can be replayed: the benchmarks' own. */
export { prng } from '../../bench/history.js';

const histories = new WeakMap<Volume, VolumeHistory>();

/** The history a mount of `volume` serves: one per volume, as the mount holds one (`cacheBytesMax` counts at the first call). */
export function historyOf(volume: Volume, cacheBytesMax?: number): VolumeHistory {
  let history = histories.get(volume);
  if (!history) histories.set(volume, (history = new VolumeHistory(volume, cacheBytesMax)));
  return history;
}

/** Fails instead of hanging when `work` waits for what the test holds back. */
export function within<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish`)), 5000)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** One-block writes of `value` over blocks from `from` on, until the current segment is sealed; returns the next block. */
export async function writeUntilRoll(volume: Volume, value: number, from = 0): Promise<number> {
  const bs = SMALL_POLICY.blockSizeBytes;
  const blocks = SMALL_POLICY.sizeBytes / bs;
  const sealed = volume.counters.segmentsSealed;
  let block = from;
  while (volume.counters.segmentsSealed === sealed) {
    await within(volume.write(Buffer.alloc(bs, value), (block % blocks) * bs), 'a write');
    block++;
  }
  return block;
}
