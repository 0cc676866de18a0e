/**
 * Crash anywhere (TigerBeetle VOPR style): a seeded random workload of writes, overwrites,
 * zero writes, flushes, synch points and idle pauses (when copy-forward runs ahead) runs on
 * the real engine over simulated slot files.
 * The machine dies at a random I/O call — or between operations — and loses any subset of
 * the writes not yet made durable, in any order, the last one torn. After each crash the
 * volume reopens and must show: every write made durable by a flush or a synch point (or a
 * newer one), no block holding data it never held, and every synch point taken before the
 * crash reconstructing to the model's image. A failing seed replays with SEED=<n>.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CompressionPool } from '../../lib/archive/compression-pool.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { Volume } from '../../lib/volume/volume.js';
import { prng, SMALL_POLICY, tempDir, historyOf } from '../helpers/temp-volume.js';
import { SimSlotFiles, SimulatedCrash, type CrashStats } from './sim-slot-files.js';
import { figures } from './figures.js';
import { runSeeds } from './seeds.js';

const BS = 4096;
const BLOCKS = 32;
const POLICY = { ...SMALL_POLICY, sizeBytes: BLOCKS * BS, segmentSizeBytes: 64 * 1024 + 4096, workingSetSegments: 6, spareSegments: 2 };

/** Block contents are a function of (stamp, block), so any byte out of place is caught. */
function blockData(stamp: number, block: number): Buffer {
  if (stamp === 0) return Buffer.alloc(BS);
  const data = Buffer.alloc(BS, (stamp * 31 + block) & 0xff);
  data.writeUInt32LE(stamp, 0);
  data.writeUInt32LE(block, 4);
  return data;
}

async function runSeed(seed: number, root: string, pool: CompressionPool, stats: CrashStats & { operations: number; crashes: number; checkedWrites: number; checkedPoints: number; copiedAhead: number }): Promise<string | null> {
  const random = prng(seed);
  const dir = path.join(root, `seed-${seed}`);
  const store = new MemoryStore();
  await Volume.create(dir, { ...POLICY, archive: store.location, store });
  let files = new SimSlotFiles(dir, POLICY.segmentSizeBytes);
  // Copy-forward runs ahead of retirement after 1 ms without writes: the idle pauses below let it, so crashes hit it too.
  const open = () => Volume.open(dir, { store, pool, files: files, onStall: () => undefined, retryDelayMsMax: 5, copyAheadIdleMs: 1 });
  let volume = await open();
  // For each block, the stamps it may hold: [durable, ...written since].
  const possible: number[][] = Array.from({ length: BLOCKS }, () => [0]);
  const images = new Map<number, Buffer>();
  const makeDurable = () => possible.forEach((p, b) => (possible[b] = [p[p.length - 1]!]));
  let stamp = 1;
  let synchsAsked = 0;
  try {
    for (let op = 0; op < 120; op++) {
      stats.operations++;
      const r = random();
      // Die at a random I/O call of this operation, now and then.
      if (random() < 0.08) files.trigger.remaining = Math.floor(random() * 6);
      const operation = async (): Promise<void> => {
        if (r < 0.75) {
          const block = Math.floor(random() * BLOCKS);
          const count = Math.min(BLOCKS - block, 1 + Math.floor(random() * 6));
          const zero = random() < 0.1;
          const stamps = Array.from({ length: count }, () => (zero ? 0 : stamp++));
          for (let i = 0; i < count; i++) possible[block + i]!.push(stamps[i]!);
          await volume.write(Buffer.concat(stamps.map((s, i) => blockData(s, block + i))), block * BS);
        } else if (r < 0.85) {
          synchsAsked++;
          const point = await volume.synch();
          makeDurable();
          images.set(point.recordSequence, volume.read(0, POLICY.sizeBytes));
        } else if (r < 0.9) {
          await volume.flush();
          makeDurable();
        } else if (r < 0.94) {
          await new Promise((resolve) => setTimeout(resolve, 3)); // idle
        } else if (r >= 0.97) {
          throw new SimulatedCrash('power lost between operations');
        }
      };
      // The machine may die in background work too (the archiver recycling a slot).
      const died = files.trigger.died.then(() => {
        throw new SimulatedCrash('power lost in background work');
      });
      try {
        await Promise.race([died, operation()]);
      } catch (err) {
        if (!(err instanceof SimulatedCrash)) throw err;
        // The machine is gone: nothing of this process's memory survives, only the disk.
        stats.crashes++;
        stats.copiedAhead += volume.counters.bytesCopiedAhead;
        await volume.internals.archiver.stop();
        files = files.crash(random, stats);
        volume = await open();
        for (let b = 0; b < BLOCKS; b++) {
          const data = volume.read(b * BS, BS);
          const found = data.readUInt32LE(0) === 0 && data.equals(Buffer.alloc(BS)) ? 0 : data.readUInt32LE(0);
          stats.checkedWrites++;
          if (!data.equals(blockData(found, b))) return `seed ${seed}: block ${b} holds bytes no write put there`;
          if (!possible[b]!.includes(found)) return `seed ${seed}: block ${b} holds stamp ${found}, expected one of ${possible[b]!.join(',')}`;
          possible[b] = [found];
        }
        // No more points than were asked for: a stale synch body in a reused slot is never one.
        if (volume.catalog.all.length > synchsAsked) return `seed ${seed}: ${volume.catalog.all.length} synch points after ${synchsAsked} synchs`;
        const catalog = new Set(volume.catalog.all.map((p) => p.recordSequence));
        for (const record of images.keys()) {
          if (!catalog.has(record)) return `seed ${seed}: synch point ${record} is gone after a crash`;
        }
        const points = volume.catalog.all.filter((p) => images.has(p.recordSequence));
        for (const point of points.filter(() => random() < 0.3).concat(points.slice(-1))) {
          stats.checkedPoints++;
          const image = await (await historyOf(volume).snapshots.open(point)).read(0, POLICY.sizeBytes);
          if (!image.equals(images.get(point.recordSequence)!)) return `seed ${seed}: synch point ${point.recordSequence} reconstructs wrong`;
        }
      }
    }
    return null;
  } finally {
    stats.copiedAhead += volume.counters.bytesCopiedAhead;
    await volume.internals.archiver.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

t.test('crash-anywhere: no durable write or synch point is lost, whatever the crash', async (t) => {
  const root = tempDir(t, 'salvo-crash-');
  const pool = new CompressionPool(1);
  t.teardown(() => pool.close());
  const stats = { pendingWrites: 0, kept: 0, torn: 0, operations: 0, crashes: 0, checkedWrites: 0, checkedPoints: 0, copiedAhead: 0 };
  const { failures, seeds, first } = await runSeeds('CRASH_SEEDS', 1000, (seed) => runSeed(seed, root, pool, stats));
  t.same(failures, [], `${seeds} seeds from ${first}`);
  if (seeds >= 100) t.ok(stats.copiedAhead > 0, 'copy-forward ran ahead of retirement in idle pauses, crashes included');
  figures(t, 'crash-anywhere', {
    'cases tried': seeds,
    'operations': stats.operations,
    'crashes injected': stats.crashes,
    'unsynced writes at crashes': stats.pendingWrites,
    'of them landed': stats.kept,
    'torn writes': stats.torn,
    'blocks checked after crashes': stats.checkedWrites,
    'synch points reconstructed': stats.checkedPoints,
    'blocks copied ahead in idle pauses': stats.copiedAhead / BS,
    'data lost': failures.length,
  });
});
