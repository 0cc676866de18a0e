/**
 * The simulation (issue #27, in the manner of TigerBeetle's VOPR): the real engine runs over
 * simulated files (slot files, sidecars, catalog, lock: sim-slot-files.ts), a simulated archive
 * (sim-store.ts) and a simulated clock (sim-clock.ts), all drawn from one seed. The workload
 * writes, overwrites, zeroes and discards blocks, flushes, takes synch points, idles for
 * milliseconds or days, restarts cleanly, loses power (at any I/O call of any file, or between operations,
 * losing and tearing what was not durable), changes the archive's weather or takes it down
 * until writes wait for it, lets an archived object rot, steps the wall clock, forgets points by
 * a random retention policy, prunes and compacts (sim-retention.ts), and restores points from primary
 * storage and from the archive alone. An independent model (block stamps, not the engine's reads) says what each
 * read must return:
 * - a block holds a stamp it was written with, a durable one or newer; never bytes no write put there;
 * - every acknowledged synch point stays listed and reconstructs to the model's image, from the
 *   volume and, once the archive has taken it, from the archive alone;
 * - a read may fail (with a typed error) only when the archive returned a damaged answer to it,
 *   an archived object rotted, or it met an upload cut short the archiver has yet to replace:
 *   it never returns wrong data;
 * - an unmount's drain either empties the queue or names every point not yet off-site;
 * - no operation hangs.
 * Nothing in a run waits on the machine (files in memory, compression and gzip inline, timers on
 * the simulated clock), so a failing seed replays exactly with SEED=<n> (which also prints the last 80
 * operations, not 6); SIM_SEEDS sets how many run
 * (a longer run: `SIM_SEEDS=50000 npx tap test/faults/simulation.test.ts`).
 */
import './sim-zlib.js'; // first: before the engine's modules take zlib's functions
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { CompressionPool } from '../../lib/archive/compression-pool.js';
import { isVolumeError } from '../../lib/errors.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import type { History } from '../../lib/history/history.js';
import { restoreSnapshot } from '../../lib/history/restore.js';
import { drainArchive } from '../../lib/volume/drain.js';
import { synchPointTime, type SynchPoint } from '../../lib/volume/synch-point.js';
import { Volume } from '../../lib/volume/volume.js';
import { historyOf, prng, SMALL_POLICY, tempDir } from '../helpers/temp-volume.js';
import { figures } from './figures.js';
import { runSeeds } from './seeds.js';
import { InlinePool } from './inline-pool.js';
import { SimClock } from './sim-clock.js';
import { SimSlotFiles, SimulatedCrash, type CrashStats } from './sim-slot-files.js';
import { CALM, randomWeather, SimStore } from './sim-store.js';
import { forgetAndPrune, learnRecord, type RetentionStats } from './sim-retention.js';
import { showKept } from '../../lib/history/retention.js';
import { loadLocalRetention } from '../../lib/retention/local-record.js';

const BS = 4096;
const BLOCKS = 16;
const SIZE = BLOCKS * BS;
/** Sixteen block entries a segment: a point's segment leaves primary storage a few dozen writes later. */
const SEGMENT = 64 * 1024 + 4096;
const OPERATIONS = 80;
/** Longer than any operation takes here, by far: an operation still running then hangs. */
const HUNG_MS = 20_000;

/** Block contents are a function of (stamp, block), so any byte out of place is caught. */
function blockData(stamp: number, block: number): Buffer {
  if (stamp === 0) return Buffer.alloc(BS);
  const data = Buffer.alloc(BS, (stamp * 31 + block) & 0xff);
  data.writeUInt32LE(stamp, 0);
  data.writeUInt32LE(block, 4);
  return data;
}

/** The stamp a block's bytes carry, or null when no write put them there. */
function stampOf(data: Buffer, block: number): number | null {
  const stamp = data.equals(Buffer.alloc(BS)) ? 0 : data.readUInt32LE(0);
  return data.equals(blockData(stamp, block)) ? stamp : null;
}

/**
 * A volume's id is random, and the archive's objects carry it: their sizes, and so where a cut
 * or a flipped byte falls, would differ from run to run. The simulation gives it one from the seed.
 */
function pinVolumeId(dir: string, store: SimStore, seed: number): void {
  const id = (seed >>> 0).toString(16).padStart(32, '5');
  const config = fs.readFileSync(path.join(dir, 'volume.json'), 'utf8').replace(/"volumeId": *"[0-9a-f]{32}"/, `"volumeId": "${id}"`);
  if (!config.includes(id)) throw new Error('volume.json has no volumeId to pin');
  fs.writeFileSync(path.join(dir, 'volume.json'), config);
  store.inner.objects.set('volume.json', Buffer.from(config));
}

/** What the workload did, as the engine must show it. */
class Model {
  /** For each block, the stamps it may hold: [durable, ...written since]. */
  readonly possible: number[][] = Array.from({ length: BLOCKS }, () => [0]);
  /** Every stamp each block was ever written with, for points whose image the model cannot know. */
  readonly ever: Set<number>[] = Array.from({ length: BLOCKS }, () => new Set([0]));
  /** Acknowledged synch points: record sequence → each block's stamp. */
  readonly points = new Map<number, { point: SynchPoint; stamps: number[] }>();
  synchsAsked = 0;
  private nextStamp = 1;

  write(block: number, count: number, zero: boolean): Buffer {
    const parts: Buffer[] = [];
    for (let b = block; b < block + count; b++) {
      const stamp = zero ? 0 : this.nextStamp++;
      this.possible[b]!.push(stamp);
      this.ever[b]!.add(stamp);
      parts.push(blockData(stamp, b));
    }
    return Buffer.concat(parts);
  }

  durable(): void {
    this.possible.forEach((p, b) => (this.possible[b] = [p[p.length - 1]!]));
  }

  acknowledged(point: SynchPoint): void {
    this.durable();
    this.points.set(point.recordSequence, { point, stamps: this.possible.map((p) => p[0]!) });
  }

  /** What `image` (the whole volume) breaks of the point's stamps, or of what its blocks could hold; null when nothing. */
  check(image: Buffer, stamps: number[] | null): string | null {
    for (let b = 0; b < BLOCKS; b++) {
      const found = stampOf(image.subarray(b * BS, (b + 1) * BS), b);
      if (found === null) return `block ${b} holds bytes no write put there`;
      if (stamps ? found !== stamps[b] : !this.ever[b]!.has(found)) return `block ${b} holds stamp ${found}, expected ${stamps ? stamps[b] : 'one it was written with'}`;
    }
    return null;
  }
}

interface Stats extends CrashStats, RetentionStats {
  operations: number;
  discards: number;
  crashes: number;
  restarts: number;
  pointsAcknowledged: number;
  synchsRefused: number;
  pointsReadFromVolume: number;
  pointsRestoredFromArchive: number;
  archiveOnlyPoints: number;
  readsRefusedClearly: number;
  drainsIncomplete: number;
  wallSteps: number;
  copiedAhead: number;
  writeStalls: number;
  faults: Map<string, number>;
}

async function runSeed(seed: number, root: string, pool: CompressionPool, stats: Stats): Promise<string | null> {
  const random = prng(seed);
  const clock = new SimClock(prng(seed + 1_000_003));
  const store = new SimStore(prng(seed + 2_000_003), clock);
  const dir = path.join(root, `seed-${seed}`);
  const policy = { ...SMALL_POLICY, sizeBytes: SIZE, segmentSizeBytes: SEGMENT, workingSetSegments: random() < 0.5 ? 3 : 6, spareSegments: random() < 0.5 ? 1 : 2 };
  await Volume.create(dir, { ...policy, archive: store.location, store }, new Date(clock.now()));
  pinVolumeId(dir, store, seed);
  let files = new SimSlotFiles(dir, SEGMENT);
  // As the CLI opens a volume and its history (cli/volume-access.ts, target.ts): forgotten points stay hidden, compacted segments are read from their objects.
  const open = async () => {
    const opened = await Volume.open(dir, { store, pool, files, clock, onStall: () => undefined, onWarning: () => undefined });
    showKept(opened.catalog, loadLocalRetention(files), opened.config.workingSetSegments, historyOf(opened).source);
    return opened;
  };
  let volume = await open();
  const model = new Model();
  const trail: string[] = [];
  /** A retention record rotted: readers then go by the one before it, and points whose objects went since fail to read. */
  let retentionRotted = false;
  const fail = (what: string) => `seed ${seed}: ${what} (after ${trail.slice(process.env.SEED ? -80 : -6).join(', ')})`;

  /** Reads `point` through `history` and checks it; a failure only for a damaged answer, a rotten object or an upload cut short. */
  const checkPoint = async (history: History, point: SynchPoint, how: 'read' | 'restore', drained = false): Promise<string | null> => {
    const faultsBefore = store.readFaults;
    let image: Buffer;
    try {
      const snapshot = await history.snapshots.open(point);
      if (how === 'read') image = await snapshot.read(0, SIZE);
      else {
        const target = path.join(root, `restore-${seed}.img`);
        try {
          await restoreSnapshot(snapshot, target);
          image = fs.readFileSync(target);
        } finally {
          fs.rmSync(target, { force: true });
        }
      }
    } catch (err) {
      // Or an upload cut short that the archiver has yet to replace: not once the drain says all is there.
      const cutShort = !drained && [...store.cut].some((key) => (err as Error).message.includes(key));
      // Or the retention record in force read damaged (rotten, or a damaged answer), and the one before it shows points whose objects went since.
      const olderRecord = retentionRotted || (history instanceof ArchiveView && history.retentionProblem !== null);
      const excused =
        ((store.readFaults > faultsBefore || store.rotten || cutShort) && (isVolumeError(err, 'CORRUPT_ARCHIVE') || isVolumeError(err, 'ARCHIVE_UNAVAILABLE'))) ||
        (olderRecord && isVolumeError(err, 'NOT_FOUND'));
      if (!excused) return `point ${point.recordSequence}: ${(err as Error).message}`;
      stats.readsRefusedClearly++;
      return null;
    }
    const problem = model.check(image, model.points.get(point.recordSequence)?.stamps ?? null);
    return problem && `point ${point.recordSequence} (${how}): ${problem}`;
  };

  /** After a crash or a restart: the live blocks, the listing, and a sample of points. */
  const checkRecovered = async (): Promise<string | null> => {
    const image = volume.read(0, SIZE);
    for (let b = 0; b < BLOCKS; b++) {
      const found = stampOf(image.subarray(b * BS, (b + 1) * BS), b);
      if (found === null) return `block ${b} holds bytes no write put there`;
      if (!model.possible[b]!.includes(found)) return `block ${b} holds stamp ${found}, expected one of ${model.possible[b]!.join(',')}`;
      model.possible[b] = [found];
    }
    // No more points than were asked for: a stale synch body in a reused slot is never one.
    if (volume.catalog.all.length > model.synchsAsked) return `${volume.catalog.all.length} synch points after ${model.synchsAsked} synchs`;
    const listed = new Set(volume.catalog.all.map((p) => p.recordSequence));
    for (const [record, { point }] of model.points) {
      if (!listed.has(record)) return `acknowledged synch point ${record} (segment ${point.sequence}${volume.slotHolding(point.sequence) ? '' : ', archive only'}) is gone`;
    }
    for (const point of volume.catalog.all.filter(() => random() < 0.2)) {
      stats.pointsReadFromVolume++;
      if (!volume.slotHolding(point.sequence)) stats.archiveOnlyPoints++;
      const problem = await checkPoint(historyOf(volume), point, 'read');
      if (problem) return problem;
    }
    return null;
  };

  /** Unmount's drain, then the archive alone: what it lists is right, and it lists every point the drain did not name. */
  const checkArchive = async (calm: boolean): Promise<string | null> => {
    const weather = store.weather;
    if (calm) {
      store.weather = CALM;
      store.outage = 0;
    }
    try {
      const report = await drainArchive(volume, 600_000);
      if (calm && !report.drained) return `the drain in calm weather did not finish: ${report.reason}`;
      if (!report.drained) stats.drainsIncomplete++;
      const notOffSite = new Set(report.pointsNotOffSite.map((p) => p.time));
      store.weather = { ...store.weather, staleList: 0, readFails: 0 };
      const outage = store.outage;
      store.outage = 0; // the listing is read whole: what it leaves out is judged below
      const faultsBefore = store.readFaults;
      const view = await ArchiveView.open(store, { pool });
      try {
        // A point may be missing only where the view says an object was damaged: for a damaged
        // answer, a rotten object, or an upload cut short that the archiver has yet to replace.
        const cutShort = !report.drained && view.damaged.some((d) => [...store.cut].some((key) => d.message.includes(key)));
        const excused = view.damaged.length > 0 && (store.readFaults > faultsBefore || store.rotten || cutShort);
        const listed = new Set(view.catalog.all.map((p) => p.recordSequence));
        for (const [record, { point }] of model.points) {
          if (listed.has(record) || notOffSite.has(synchPointTime(point))) continue;
          if (!excused) return `acknowledged synch point ${record} is neither in the archive nor named by the drain${view.damaged.length > 0 ? ` (damaged: ${view.damaged.map((d) => d.message).join('; ')})` : ''}`;
          stats.readsRefusedClearly++;
        }
        if (view.catalog.all.length > model.synchsAsked) return `the archive lists ${view.catalog.all.length} points after ${model.synchsAsked} synchs`;
        store.weather = weather;
        store.outage = outage;
        for (const point of view.catalog.all.filter(() => random() < (calm ? 0.5 : 0.2))) {
          stats.pointsRestoredFromArchive++;
          const problem = await checkPoint(view, point, random() < 0.3 ? 'restore' : 'read', report.drained);
          if (problem) return `from the archive alone: ${problem}`;
        }
      } finally {
        await view.close();
      }
      return null;
    } finally {
      store.weather = weather;
    }
  };

  const operation = async (r: number): Promise<string | null> => {
    if (r < 0.5) {
      const block = Math.floor(random() * BLOCKS);
      const count = Math.min(BLOCKS - block, 1 + Math.floor(random() * 6));
      if (random() < 0.1) {
        // A discard: the blocks read as zeros from here on, like a write of zeros (durable sooner, which the model does not count on).
        trail.push(`discard ${block}+${count}`);
        stats.discards++;
        model.write(block, count, true);
        await volume.discard(block * BS, count * BS);
        return null;
      }
      trail.push(`write ${block}+${count}`);
      await volume.write(model.write(block, count, random() < 0.1), block * BS);
    } else if (r < 0.6) {
      trail.push('synch');
      model.synchsAsked++;
      let point: SynchPoint;
      try {
        point = await volume.synch(random() < 0.3 ? { label: `p${model.synchsAsked}` } : {});
      } catch (err) {
        // Its own roll waited for a failing archive: refused, and never placed later.
        if (!isVolumeError(err, 'ARCHIVE_UNAVAILABLE') || !/no synch point while writes wait/.test(err.message)) throw err;
        trail.push('synch refused');
        stats.synchsRefused++;
        return null;
      }
      model.acknowledged(point);
      stats.pointsAcknowledged++;
    } else if (r < 0.64) {
      trail.push('flush');
      await volume.flush();
      model.durable();
    } else if (r < 0.7) {
      const ms = random() < 0.2 ? Math.floor(random() * 3 * 86_400_000) : Math.floor(random() * 500);
      trail.push(`idle ${ms} ms`);
      await clock.sleep(ms);
    } else if (r < 0.75) {
      if (random() < 0.2) {
        // An outage of a few dozen requests: the spare slots fill and writes wait for it to end.
        store.outage = 10 + Math.floor(random() * 60);
        trail.push(`outage of ${store.outage} requests`);
        return null;
      }
      store.weather = random() < 0.4 ? CALM : randomWeather(random);
      trail.push(`weather ${JSON.stringify(Object.fromEntries(Object.entries(store.weather).filter(([, p]) => p > 0)))}`);
    } else if (r < 0.78) {
      trail.push('restart');
      stats.restarts++;
      stats.copiedAhead += volume.counters.bytesCopiedAhead;
      stats.writeStalls += volume.counters.writeStalls;
      await volume.close();
      volume = await open();
      return checkRecovered();
    } else if (r < 0.8) {
      trail.push('power cut');
      throw new SimulatedCrash('power lost between operations');
    } else if (r < 0.86) {
      const block = Math.floor(random() * BLOCKS);
      trail.push(`read ${block}`);
      const found = stampOf(volume.read(block * BS, BS), block);
      const expected = model.possible[block]![model.possible[block]!.length - 1];
      if (found !== expected) return `live block ${block} reads stamp ${found}, expected ${expected}`;
    } else if (r < 0.905) {
      return forgetAndPrune({ random, store, pool, clock, volume, files, points: model.points, trail }, stats);
    } else if (r < 0.92) {
      const point = volume.catalog.all[Math.floor(random() * volume.catalog.all.length)];
      if (!point) return null;
      trail.push(`restore ${point.recordSequence} from the volume`);
      stats.pointsReadFromVolume++;
      if (!volume.slotHolding(point.sequence)) stats.archiveOnlyPoints++;
      return checkPoint(historyOf(volume), point, random() < 0.3 ? 'restore' : 'read');
    } else if (r < 0.96) {
      const calm = random() < 0.5;
      trail.push(`drain and read the archive alone${calm ? ' (calm)' : ''}`);
      return checkArchive(calm);
    } else if (r < 0.97) {
      const key = store.rot();
      trail.push(`rot ${key}`);
      if (key?.startsWith('retention/')) retentionRotted = true;
    } else {
      const ms = Math.floor((random() - 0.6) * 7_200_000);
      trail.push(`wall clock ${ms > 0 ? '+' : ''}${ms} ms`);
      stats.wallSteps++;
      clock.stepWall(ms);
    }
    return null;
  };

  try {
    for (let op = 0; op < OPERATIONS; op++) {
      stats.operations++;
      clock.advance(Math.floor(random() * 50));
      // Die at one of the next few I/O calls, now and then: in this operation or in background work.
      if (random() < 0.06) files.trigger.remaining = Math.floor(random() * 8);
      const died = files.trigger.died.then(() => {
        throw new SimulatedCrash('power lost in background work');
      });
      let hung!: NodeJS.Timeout;
      const watchdog = new Promise<never>((_, reject) => (hung = setTimeout(() => reject(new Error(`${trail[trail.length - 1]} hung for ${HUNG_MS / 1000} s`)), HUNG_MS)));
      try {
        const problem = await Promise.race([died, watchdog, operation(random())]);
        if (problem) return fail(problem);
      } catch (err) {
        if (!(err instanceof SimulatedCrash)) return fail(process.env.SEED ? String((err as Error).stack) : (err as Error).message);
        // The machine is gone: nothing of this process's memory survives, only the disk and the archive.
        stats.crashes++;
        stats.copiedAhead += volume.counters.bytesCopiedAhead;
        stats.writeStalls += volume.counters.writeStalls;
        await volume.internals.archiver.stop();
        clock.clear(); // the old process's timers die with it
        files = files.crash(random, stats);
        volume = await open();
        // A retention run the cut stopped may have hidden points in the archive's record.
        const problem = (await learnRecord({ store, volume, files, points: model.points })) ?? (await checkRecovered());
        if (problem) return fail(`after a power cut: ${problem}`);
      } finally {
        clearTimeout(hung);
      }
    }
    // The end of the story: the archive takes everything, and alone restores every point.
    trail.push('final drain');
    files.trigger.remaining = Infinity;
    const problem = await checkArchive(true);
    return problem && fail(problem);
  } finally {
    for (const [kind, n] of store.injected) stats.faults.set(kind, (stats.faults.get(kind) ?? 0) + n);
    stats.copiedAhead += volume.counters.bytesCopiedAhead;
    stats.writeStalls += volume.counters.writeStalls;
    await volume.internals.archiver.stop();
    clock.clear(); // nothing of this seed runs into the next: each replays alone as in a run
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

t.test('simulation: no acknowledged write or synch point is lost, and no read is wrong, whatever the faults', async (t) => {
  const root = tempDir(t, 'salvo-sim-');
  const pool = new InlinePool();
  const stats: Stats = {
    pendingWrites: 0, kept: 0, torn: 0, operations: 0, discards: 0, crashes: 0, restarts: 0, pointsAcknowledged: 0, synchsRefused: 0, pointsReadFromVolume: 0,
    pointsRestoredFromArchive: 0, archiveOnlyPoints: 0, readsRefusedClearly: 0, drainsIncomplete: 0, wallSteps: 0, copiedAhead: 0, writeStalls: 0, faults: new Map(),
    retentionRuns: 0, retentionFailed: 0, pointsForgotten: 0, segmentsPruned: 0, segmentsCompacted: 0,
  };
  const { failures, seeds, first } = await runSeeds('SIM_SEEDS', 2000, (seed) => runSeed(seed, root, pool, stats));
  t.same(failures, [], `${seeds} seeds from ${first}`);
  // The run means something only if it reached what it is for.
  if (seeds >= 100) {
    t.ok(stats.archiveOnlyPoints > 0, 'points whose segments are in the archive only were read after crashes and restarts');
    t.ok(stats.copiedAhead > 0, 'copy-forward ran ahead of retirement in idle time, crashes included');
    t.ok(stats.writeStalls > 0, 'outages filled the spare slots: writes waited for the archive');
    t.ok(stats.readsRefusedClearly > 0 && stats.pointsRestoredFromArchive > 0, 'reads from the archive alone were checked, damaged answers among them');
    t.ok(stats.pointsForgotten > 0 && stats.segmentsPruned > 0 && stats.segmentsCompacted > 0 && stats.retentionFailed > 0, 'retention forgot points, pruned and compacted segments, and failed under faults');
  }
  figures(t, 'simulation', {
    'cases tried': seeds,
    'operations': stats.operations,
    'discards': stats.discards,
    'power cuts': stats.crashes,
    'clean restarts': stats.restarts,
    'unsynced writes at power cuts': stats.pendingWrites,
    'of them landed': stats.kept,
    'torn writes': stats.torn,
    'synch points acknowledged': stats.pointsAcknowledged,
    'refused behind writes waiting for a failing archive': stats.synchsRefused,
    'points read from the volume': stats.pointsReadFromVolume,
    'of them from the archive': stats.archiveOnlyPoints,
    'points restored from the archive alone': stats.pointsRestoredFromArchive,
    'reads refused for a damaged answer': stats.readsRefusedClearly,
    'drains that named what stayed on primary': stats.drainsIncomplete,
    'wall clock steps': stats.wallSteps,
    'forget and prune runs': stats.retentionRuns,
    'of them failed under faults': stats.retentionFailed,
    'points forgotten': stats.pointsForgotten,
    'segments pruned': stats.segmentsPruned,
    'segments compacted': stats.segmentsCompacted,
    'blocks copied ahead in idle time': stats.copiedAhead / BS,
    'writes that waited for the archive': stats.writeStalls,
    ...Object.fromEntries([...stats.faults].map(([kind, n]) => [`archive faults: ${kind}`, n])),
    'data lost': failures.length,
  });
});
