/**
 * A small volume's history for the retention tests: random writes between synch points spread
 * over weeks (the clock is the test's), drained to a memory archive, with each point's image kept
 * as the model of what it must read back as. The volume directory is gone afterwards: the
 * archive alone holds the history, as retention works on it.
 */
import fs from 'node:fs';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import type { ArchiveStore } from '../../lib/archive/archive-store.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { systemClock, type Clock } from '../../lib/util/clock.js';
import type { SynchPoint } from '../../lib/volume/synch-point.js';
import { SMALL_POLICY, createTempVolume, prng, type TestTap } from '../helpers/temp-volume.js';

export const WINDOW = SMALL_POLICY.workingSetSegments;
const BS = SMALL_POLICY.blockSizeBytes;
const BLOCKS = SMALL_POLICY.sizeBytes / BS;
const HOUR = 3_600_000;

export interface ModelPoint {
  point: SynchPoint;
  image: Buffer;
}

export interface History {
  store: MemoryStore;
  points: ModelPoint[];
}

/**
 * `count` points, 1 to 30 hours apart from 2026-01-01, some labelled, 2 to 40 block writes before
 * each; blocks of one repeated byte and a counter, or with `incompressible`, random bytes.
 */
export async function buildHistory(t: TestTap, seed: number, count: number, options: { incompressible?: boolean } = {}): Promise<History> {
  const random = prng(seed);
  let nowMs = Date.parse('2026-01-01T00:00:00Z');
  const clock: Clock = { ...systemClock, now: () => nowMs };
  const store = new MemoryStore();
  const { dir, volume } = await createTempVolume(t, { store }, { store, clock });
  const model = Buffer.alloc(SMALL_POLICY.sizeBytes);
  const points: ModelPoint[] = [];
  let stamp = 0;
  for (let i = 0; i < count; i++) {
    const writes = 2 + Math.floor(random() * 39);
    for (let w = 0; w < writes; w++) {
      const block = Math.floor(random() * BLOCKS);
      const data = options.incompressible ? Buffer.from(Uint32Array.from({ length: BS / 4 }, () => Math.floor(random() * 2 ** 32)).buffer) : Buffer.alloc(BS, 1 + (stamp % 250));
      data.writeUInt32LE(++stamp, 0);
      await volume.write(data, block * BS);
      data.copy(model, block * BS);
    }
    nowMs += (1 + Math.floor(random() * 30)) * HOUR;
    const point = await volume.synch({ label: random() < 0.08 ? `tag-${i}` : null });
    points.push({ point, image: Buffer.from(model) });
  }
  await volume.idle();
  await volume.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { store, points };
}

export function copyStore(store: MemoryStore): MemoryStore {
  const copy = new MemoryStore(store.location);
  for (const [key, bytes] of store.objects) copy.objects.set(key, bytes);
  return copy;
}

/** Problems reading the points back from a fresh view of `store`: each must equal its image. */
export async function readBack(store: ArchiveStore, points: readonly ModelPoint[]): Promise<string[]> {
  const view = await ArchiveView.open(store);
  const problems: string[] = [];
  try {
    const shown = new Map(view.catalog.all.map((p) => [p.recordSequence, p]));
    for (const { point, image } of points) {
      const p = shown.get(point.recordSequence);
      if (!p) {
        problems.push(`point ${point.recordSequence} does not show`);
        continue;
      }
      try {
        const read = await (await view.snapshots.open(p)).read(0, image.length);
        if (!read.equals(image)) problems.push(`point ${point.recordSequence} reads back other than it was`);
      } catch (err) {
        problems.push(`point ${point.recordSequence}: ${(err as Error).message}`);
      }
    }
  } finally {
    await view.close();
  }
  return problems;
}
