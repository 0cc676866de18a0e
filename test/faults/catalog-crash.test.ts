/**
 * Power cut between synch points (issue #26): once a point is acknowledged, the machine dies at
 * a random moment before the next one is (at an I/O call of the writes, the archiving, the
 * recycling, the next synch point, or between two operations), losing or tearing whatever was
 * not made durable, the small files' appends and renames included (sim-slot-files.ts). After
 * recovery every acknowledged point must still be listed, and reconstruct. The working set is
 * small, so that many points have their segments only in the archive: those are known from
 * `catalog.jsonl` alone, which recovery does not rebuild from the archive.
 * A failing seed replays with SEED=<n>; CATALOG_CRASH_SEEDS sets how many.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CompressionPool } from '../../lib/archive/compression-pool.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import type { SynchPoint } from '../../lib/volume/synch-point.js';
import { Volume } from '../../lib/volume/volume.js';
import { historyOf, prng, SMALL_POLICY, tempDir } from '../helpers/temp-volume.js';
import { figures } from './figures.js';
import { runSeeds } from './seeds.js';
import { SimSlotFiles, SimulatedCrash, type CrashStats } from './sim-slot-files.js';

const BS = 4096;
const BLOCKS = 8;
/** Three segments of 16 blocks in the working set: a point's segment leaves primary a few dozen block writes later. */
const POLICY = { ...SMALL_POLICY, sizeBytes: BLOCKS * BS, segmentSizeBytes: 64 * 1024 + 4096, workingSetSegments: 3, spareSegments: 1 };

interface Stats extends CrashStats {
  points: number;
  crashes: number;
  pointsChecked: number;
  archiveOnly: number;
  reconstructed: number;
}

async function runSeed(seed: number, root: string, pool: CompressionPool, stats: Stats): Promise<string | null> {
  const random = prng(seed);
  const dir = path.join(root, `seed-${seed}`);
  const store = new MemoryStore();
  await Volume.create(dir, { ...POLICY, archive: store.location, store });
  let files = new SimSlotFiles(dir, POLICY.segmentSizeBytes);
  const open = () => Volume.open(dir, { store, pool, files, onStall: () => undefined, onWarning: () => undefined, retryDelayMsMax: 5, copyAheadIdleMs: 1 });
  let volume = await open();
  // Every point acknowledged so far, with the image it holds.
  const acknowledged = new Map<number, { point: SynchPoint; image: Buffer }>();
  let stamp = 1;
  try {
    for (let op = 0; op < 150; op++) {
      const r = random();
      // Only once a point is acknowledged: at one of the next few I/O calls, or between operations.
      const armed = acknowledged.size > 0;
      if (armed && random() < 0.1) files.trigger.remaining = Math.floor(random() * 12);
      const operation = async (): Promise<void> => {
        if (armed && random() < 0.03) throw new SimulatedCrash('power lost between operations');
        if (r < 0.7) {
          const block = Math.floor(random() * BLOCKS);
          const count = Math.min(BLOCKS - block, 1 + Math.floor(random() * BLOCKS));
          const data = Buffer.alloc(count * BS);
          for (let i = 0; i < count; i++) data.fill(stamp++ & 0xff, i * BS, (i + 1) * BS);
          await volume.write(data, block * BS);
        } else if (r < 0.85) {
          // Idle: the archiver ships, confirms and recycles the slots of segments out of the working set.
          await (random() < 0.5 ? volume.idle() : new Promise((resolve) => setTimeout(resolve, 2)));
        } else {
          const point = await volume.synch();
          // Acknowledged: from here on it must survive any crash.
          acknowledged.set(point.recordSequence, { point, image: volume.read(0, POLICY.sizeBytes) });
          stats.points++;
        }
      };
      const died = files.trigger.died.then(() => {
        throw new SimulatedCrash('power lost in background work');
      });
      try {
        await Promise.race([died, operation()]);
      } catch (err) {
        if (!(err instanceof SimulatedCrash)) throw err;
        stats.crashes++;
        await volume.internals.archiver.stop();
        files = files.crash(random, stats);
        volume = await open();
        const listed = new Set(volume.catalog.all.map((p) => p.recordSequence));
        for (const [record, { point, image }] of acknowledged) {
          stats.pointsChecked++;
          const archiveOnly = volume.slotHolding(point.sequence) === undefined;
          if (archiveOnly) stats.archiveOnly++;
          if (!listed.has(record)) return `seed ${seed}: acknowledged synch point ${record} (segment ${point.sequence}${archiveOnly ? ', in the archive only' : ''}) is not listed after a crash`;
          // Listed is not enough: the point must open, from the archive if need be.
          if (archiveOnly && random() < 0.2) {
            stats.reconstructed++;
            const read = await (await historyOf(volume).snapshots.open(point)).read(0, POLICY.sizeBytes);
            if (!read.equals(image)) return `seed ${seed}: synch point ${record} (in the archive only) reconstructs wrong`;
          }
        }
      }
    }
    return null;
  } finally {
    await volume.internals.archiver.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

t.test('catalog crash: every acknowledged synch point is listed after a power cut, archived ones included', async (t) => {
  const root = tempDir(t, 'salvo-catalog-crash-');
  const pool = new CompressionPool(1);
  t.teardown(() => pool.close());
  const stats: Stats = { pendingWrites: 0, kept: 0, torn: 0, points: 0, crashes: 0, pointsChecked: 0, archiveOnly: 0, reconstructed: 0 };
  const { failures, seeds, first } = await runSeeds('CATALOG_CRASH_SEEDS', 200, (seed) => runSeed(seed, root, pool, stats));
  t.same(failures, [], `${seeds} seeds from ${first}`);
  // The test means something only if points in the archive alone were checked after crashes.
  if (seeds >= 50) t.ok(stats.archiveOnly > 0, 'points whose segments are in the archive only were checked after crashes');
  figures(t, 'catalog-crash', {
    'cases tried': seeds,
    'synch points acknowledged': stats.points,
    'crashes injected': stats.crashes,
    'points checked after crashes': stats.pointsChecked,
    'of them in the archive only': stats.archiveOnly,
    'archived points reconstructed': stats.reconstructed,
    'points lost': failures.length,
  });
});
