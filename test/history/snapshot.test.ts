/**
 * Snapshots (lib/history/snapshot.ts), property-tested: a random history with many synch points
 * over many segment cycles, then every point read back — through the volume (primary and
 * archive) and from the archive directory alone after the primary is deleted.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DirectoryStore } from '../../lib/archive/directory-store.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { restoreSnapshot } from '../../lib/history/restore.js';
import { synchPointTime } from '../../lib/volume/synch-point.js';
import { SegmentSummary } from '../../lib/format/summary.js';
import { Snapshot } from '../../lib/history/snapshot.js';
import type { SegmentSource } from '../../lib/history/segment-source.js';
import { createTempVolume, prng, SMALL_POLICY, tempDir, historyOf } from '../helpers/temp-volume.js';

const BS = 4096;
const BLOCKS = SMALL_POLICY.sizeBytes / BS;

t.test('history: every synch point reconstructs to the image it had (writes and discards), live and from the archive alone', async (t) => {
  const seed = Number(process.env.SEED ?? 42);
  const random = prng(seed);
  const archiveDir = tempDir(t, 'salvo-archive-');
  const store = new DirectoryStore(archiveDir);
  const { dir, volume } = await createTempVolume(t, { store }, { store });
  const model = Buffer.alloc(SMALL_POLICY.sizeBytes);
  const images = new Map<string, Buffer>();
  for (let step = 0; step < 1500; step++) {
    const r = random();
    if (r < 0.92) {
      const block = Math.floor(random() * BLOCKS);
      const count = Math.min(BLOCKS - block, 1 + Math.floor(random() * 6));
      const data = Buffer.alloc(count * BS, 1 + Math.floor(random() * 250));
      data.writeUInt32LE(step, 0);
      await volume.write(data, block * BS);
      data.copy(model, block * BS);
    } else if (r < 0.95) {
      // A discard, its ends mostly off block boundaries (as blkdiscard of any range sends them).
      const position = Math.floor(random() * SMALL_POLICY.sizeBytes);
      const length = Math.min(SMALL_POLICY.sizeBytes - position, 1 + Math.floor(random() * 12 * BS));
      await volume.discard(position, length);
      model.fill(0, position, position + length);
    } else {
      const point = await volume.synch({ label: `step-${step}` });
      images.set(synchPointTime(point), Buffer.from(model));
    }
  }
  t.ok(images.size > 40, `${images.size} synch points taken`);
  t.ok(volume.counters.segmentsRecycled > 10, 'most history has left primary storage');
  await volume.idle();

  let archivedPoints = 0;
  let longestScan = 0;
  let readOutside = 0;
  // What the scan reads, counted where it is read: the summaries asked of the source, and the segments read from.
  const source = historyOf(volume).source;
  const asked = new Set<number>();
  const read = new Set<number>();
  const summary = source.summary.bind(source);
  const readBytes = source.read.bind(source);
  source.summary = (s) => (asked.add(s), summary(s));
  source.read = (s, offset, length) => (read.add(s), readBytes(s, offset, length));
  for (const point of volume.catalog.all) {
    asked.clear();
    read.clear();
    const snapshot = await historyOf(volume).snapshots.open(point);
    if (![...asked].every((s) => source.onPrimary(s))) archivedPoints++;
    const image = await snapshot.read(0, SMALL_POLICY.sizeBytes);
    longestScan = Math.max(longestScan, asked.size);
    readOutside += [...read].filter((s) => !asked.has(s)).length;
    t.ok(image.equals(images.get(snapshot.name)!), `seed ${seed}: ${snapshot.name} through the volume`);
  }
  t.ok(archivedPoints > images.size / 2, `${archivedPoints} points needed the archive`);
  t.ok(longestScan <= SMALL_POLICY.workingSetSegments + 1, `the scan never reads more than working set + 1 summaries (${longestScan} at most)`);
  t.ok(longestScan > 1, 'and more than one');
  t.equal(readOutside, 0, 'nor blocks from a segment outside them');
  await volume.close();

  fs.rmSync(dir, { recursive: true, force: true });
  const view = await ArchiveView.open(new DirectoryStore(archiveDir));
  t.teardown(() => view.close());
  t.equal(view.catalog.all.length, images.size, 'the archive alone lists every synch point');
  const out = tempDir(t, 'salvo-restore-');
  for (const point of view.catalog.all) {
    const name = synchPointTime(point);
    const target = path.join(out, `${name}.img`);
    await restoreSnapshot(await view.snapshots.open(point), target);
    t.ok(fs.readFileSync(target).equals(images.get(name)!), `${name} restored from the archive alone`);
    fs.rmSync(target);
  }
});

t.test('snapshot: a window of more than 65,535 segments indexes its oldest segment right', async (t) => {
  const workingSetSegments = 70_000;
  const newest = workingSetSegments + 1;
  // Segment s writes one block: 50,000 + s below segment 50,000, else s - 50,000; the newest also rewrites block 50,002.
  const summaries = new Map<number, SegmentSummary>();
  for (let s = 1; s <= newest; s++) {
    const summary = new SegmentSummary(s, s, 64, 4200, s + 1, 2);
    summary.addExtent(s < 50_000 ? 50_000 + s : s - 50_000, 1, false, 64 + (s % 7));
    if (s === newest) summary.addExtent(50_002, 1, false, 4000);
    summaries.set(s, summary);
  }
  const source = { summary: async (s: number) => summaries.get(s)! } as unknown as SegmentSource;
  const geometry = { version: 2, sizeBytes: 100_000 * 512, blockSizeBytes: 512, workingSetSegments };
  const point = { timeMs: 0, label: null, info: {}, sequence: newest, offset: 5000, recordSequence: newest };
  const snapshot = await Snapshot.open(point, geometry, source);
  t.equal(snapshot.window.length, newest, 'the window holds W + 1 segments');
  t.same(snapshot.locate(50_001), { sequence: 1, offset: 64 + 1 }, 'the oldest segment of the window (index 70,000) is found');
  t.same(snapshot.locate(99_999), { sequence: 49_999, offset: 64 + (49_999 % 7) });
  t.same(snapshot.locate(3), { sequence: 50_003, offset: 64 + (50_003 % 7) });
  t.same(snapshot.locate(50_002), { sequence: newest, offset: 4000 }, 'a block written twice: its newer entry');
  t.equal(snapshot.locate(49_999), null, 'a block no segment wrote is a hole');
});
