/**
 * A whole read of an archived random-write synch point through the snapshot path
 * (lib/history/segment-source.ts with its chunk spill): the image it had, each archived chunk
 * fetched about once (memory alone fetched them many times over), over a memory store and an
 * archive directory; a spill too small for the window only fetches more; a sequential walk
 * fetches ahead; and no descriptor remains after close.
 */
import fs from 'node:fs';
import t from 'tap';
import { ArchiveKeys, type ArchiveStore } from '../../lib/archive/archive-store.js';
import { DirectoryStore } from '../../lib/archive/directory-store.js';
import { SegmentSource, type SourceOptions } from '../../lib/history/segment-source.js';
import { Snapshot } from '../../lib/history/snapshot.js';
import type { SynchPoint } from '../../lib/volume/synch-point.js';
import type { Volume } from '../../lib/volume/volume.js';
import { createTempVolume, prng, tempDir, type TestTap } from '../helpers/temp-volume.js';

const BS = 4096;
const MiB = 1024 * 1024;
/** 2 MiB segments: two 1 MiB archive chunks each; a window of 5 segments, 10 chunks, more than the cache below holds. */
const POLICY = { sizeBytes: 4 * MiB, blockSizeBytes: BS, segmentSizeBytes: 2 * MiB, workingSetSegments: 4, spareSegments: 2 };
/** For walks: 4 MiB segments, four chunks each. */
const SEQUENTIAL_POLICY = { ...POLICY, sizeBytes: 8 * MiB, segmentSizeBytes: 4 * MiB };
/** The source's bound: 3/4 of it (2.25 MiB) for chunks, two of them. */
const CACHE = 3 * MiB;
const READ = 128 * 1024;

interface ArchivedPoint {
  volume: Volume;
  sizeBytes: number;
  point: SynchPoint;
  image: Buffer;
  /** Compressed bytes of the window's segment objects. */
  windowArchived: number;
}

/** A random-write (or sequential-write) history whose old point's window has left primary storage. */
async function archivedPoint(t: TestTap, kind: 'random' | 'sequential', store?: ArchiveStore): Promise<ArchivedPoint> {
  const policy = kind === 'random' ? POLICY : SEQUENTIAL_POLICY;
  const { volume } = await createTempVolume(t, { ...policy, ...(store ? { store } : {}) }, store ? { store } : {});
  const blocks = policy.sizeBytes / BS;
  const model = Buffer.alloc(policy.sizeBytes);
  const random = prng(kind === 'random' ? 5 : 6);
  let n = 0;
  const write = async (): Promise<void> => {
    const length = kind === 'random' ? BS : 32 * BS;
    const block = kind === 'random' ? Math.floor(random() * blocks) : (n * 32) % blocks;
    // Bytes that do not compress, so that chunks, not summaries, make most of what is fetched.
    const data = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i += 4) data.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
    n++;
    await volume.write(data, block * BS);
    data.copy(model, block * BS);
  };
  while (volume.internals.log.current.sequence < policy.workingSetSegments + 2) await write();
  const point = await volume.synch({ label: 'old' });
  const image = Buffer.from(model);
  const window: number[] = [];
  for (let s = point.sequence; s >= 1 && s >= point.sequence - policy.workingSetSegments; s--) window.push(s);
  for (;;) {
    await volume.idle();
    if (!window.some((s) => volume.slotHolding(s) !== undefined)) break;
    for (let i = 0; i < 200; i++) await write();
  }
  let windowArchived = 0;
  for (const s of window) windowArchived += (await volume.store.head(ArchiveKeys.segment(s))) ?? 0;
  return { volume, sizeBytes: policy.sizeBytes, point, image, windowArchived };
}

/** Reads the whole point in 128 KiB reads, in order, as FUSE does, through a fresh source. */
async function readWhole(a: ArchivedPoint, options: SourceOptions): Promise<{ image: Buffer; source: SegmentSource }> {
  const { volume } = a;
  const source = new SegmentSource(volume.store, volume.pool, volume, CACHE, volume.config.volumeId, volume.cipher, options);
  const snapshot = await Snapshot.open(a.point, volume.config, source);
  const image = Buffer.alloc(a.sizeBytes);
  for (let at = 0; at < image.length; at += READ) await snapshot.readInto(image.subarray(at, at + READ), at);
  return { image, source };
}

function spillFds(dir: string): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/.salvo-chunks-`);
    } catch {
      return false;
    }
  }).length;
}

for (const where of ['memory store', 'archive directory'] as const) {
  t.test(`segment-source spill: a whole read of an archived random-write point fetches each chunk about once (${where})`, async (t) => {
    const a = await archivedPoint(t, 'random', where === 'archive directory' ? new DirectoryStore(tempDir(t, 'salvo-archive-')) : undefined);
    const dir = tempDir(t, 'salvo-spill-');
    const before = a.volume.store.stats.bytesGot;
    const spilled = await readWhole(a, { spill: { dir } });
    const fetched = a.volume.store.stats.bytesGot - before;
    t.ok(spilled.image.equals(a.image), 'the image the point had');
    t.ok(spilled.source.stats.spillReads > 0, `reads came back from the spill (${spilled.source.stats.spillReads}, ${spilled.source.spillBytes} bytes held)`);
    t.ok(fetched <= 1.5 * a.windowArchived, `fetched ${fetched} bytes, ≤ 1.5 × the window's ${a.windowArchived} archived`);
    t.ok(spilled.source.cacheBytes <= CACHE, `memory within its bound (${spilled.source.cacheBytes} bytes)`);
    t.equal(spillFds(dir), 1, 'the spill has one file open');
    spilled.source.close();
    t.equal(spillFds(dir), 0, 'none after close');
    t.same(fs.readdirSync(dir), [], 'and none left in its directory');

    const memoryOnly = await readWhole(a, { spill: false, prefetchChunks: 0 });
    t.ok(memoryOnly.image.equals(a.image), 'memory alone reads the same image');
    t.ok(
      memoryOnly.source.stats.chunksFetched > 3 * spilled.source.stats.chunksFetched,
      `but fetches chunks over and over (${memoryOnly.source.stats.chunksFetched} against ${spilled.source.stats.chunksFetched})`,
    );
    memoryOnly.source.close();
  });
}

t.test('segment-source spill: a spill too small for the window, or one that fails, only fetches more; reads after close still work', async (t) => {
  const a = await archivedPoint(t, 'random');
  const dir = tempDir(t, 'salvo-spill-');
  const roomy = await readWhole(a, { spill: { dir } });
  // Room for one chunk of the window's ten: chunks go round the ring many times over.
  const tight = await readWhole(a, { spill: { dir, bytesMax: 1.5 * MiB } });
  t.ok(tight.image.equals(a.image), 'the image the point had');
  t.ok(tight.source.spillBytes <= 1.5 * MiB, `the spill within its bound (${tight.source.spillBytes} bytes)`);
  t.ok(tight.source.stats.chunksFetched > roomy.source.stats.chunksFetched, `more fetches (${tight.source.stats.chunksFetched} against ${roomy.source.stats.chunksFetched}), no failure`);
  // Twice more through the same source: laps of the ring, the same bytes.
  const snapshot = await Snapshot.open(a.point, a.volume.config, tight.source);
  for (let lap = 0; lap < 2; lap++) t.ok((await snapshot.read(0, POLICY.sizeBytes)).equals(a.image), `lap ${lap + 2}: the same image`);

  const writeSync = fs.writeSync;
  let failed = 0;
  fs.writeSync = ((...args: Parameters<typeof fs.writeSync>) => {
    if (failed++ < 3) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return writeSync(...args);
  }) as typeof fs.writeSync;
  let full: Awaited<ReturnType<typeof readWhole>>;
  try {
    full = await readWhole(a, { spill: { dir } });
  } finally {
    fs.writeSync = writeSync;
  }
  t.ok(full.image.equals(a.image), 'a disk that fills up: the same image');
  t.equal(full.source.spillBytes, 0, 'from memory and fetches alone');

  roomy.source.close();
  const closed = await Snapshot.open(a.point, a.volume.config, roomy.source);
  t.ok((await closed.read(0, POLICY.sizeBytes)).equals(a.image), 'a closed source still reads, fetching');
  tight.source.close();
  full.source.close();
  t.equal(spillFds(dir), 0, 'no descriptor left');
});

t.test('segment-source spill: a walk along a piece fetches the next chunks ahead; scattered reads do not', async (t) => {
  const seq = await archivedPoint(t, 'sequential');
  const walked = await readWhole(seq, {});
  t.ok(walked.image.equals(seq.image), 'the image the point had');
  t.ok(walked.source.stats.chunksPrefetched > 0, `chunks fetched ahead (${walked.source.stats.chunksPrefetched} of ${walked.source.stats.chunksFetched})`);
  walked.source.close();

  const none = await readWhole(seq, { prefetchChunks: 0 });
  t.equal(none.source.stats.chunksPrefetched, 0, 'none with prefetchChunks 0');
  // Segments of four chunks here: a walk's read-ahead past the chunks a read wants (at a piece's
  // end, into the next segment) is a large share of so few; with real segments (64 chunks) it is small.
  t.ok(walked.source.stats.chunksFetched <= 2 * none.source.stats.chunksFetched, `and fetching ahead at most doubled the chunks fetched (${walked.source.stats.chunksFetched} against ${none.source.stats.chunksFetched})`);
  none.source.close();

  // One block read from an archived random-write point: the chunks it needs, nothing ahead.
  const rand = await archivedPoint(t, 'random');
  const source = new SegmentSource(rand.volume.store, rand.volume.pool, rand.volume, CACHE, rand.volume.config.volumeId, rand.volume.cipher);
  t.teardown(() => source.close());
  const snapshot = await Snapshot.open(rand.point, rand.volume.config, source);
  t.ok((await snapshot.read(40 * BS, BS)).equals(rand.image.subarray(40 * BS, 41 * BS)), 'one block');
  t.equal(source.stats.chunksFetched, 1, 'one chunk fetched');
});
