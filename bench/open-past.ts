/**
 * Opening the past (engine level, no FUSE): for working sets of several lengths and two
 * write histories (random 4 KiB, sequential 128 KiB), two synch points:
 *
 *   primary   a recent point: its window (working set + 1 segments) is on primary storage
 *   archive   an old point: every segment of its window has left primary storage, so the
 *             snapshot is served from the archive directory alone
 *   S3        the same old point with its window's objects copied to an S3 bucket (radosgw on
 *             127.0.0.1, see s3-server.ts), read from there instead of the directory
 *
 * For each: time to open the snapshot (backward scan over the window's summaries) and to
 * the first byte, throughput of reading the whole snapshot sequentially in 128 KiB reads
 * (as FUSE asks), what that fetched from the archive (requests, compressed bytes, and those
 * bytes as a share of the window's archived objects), and restore throughput
 * (restoreSnapshot to a sparse file). The old point is also opened with 20 ms added to
 * every archive request, as a remote store would, and restored from the archive alone
 * (ArchiveView, as `salvo restore <archive>` does after losing primary storage).
 *
 * Then the target of a 4 GiB window: a random-write history over 64 segments of 64 MiB, its
 * primary storage deleted, the point opened from the archive directory; what the open alone
 * fetched, against the window's bytes. Skipped by --quick, as is S3 unless S3_TEST_URL is set.
 *
 * Every run opens the snapshot with a fresh SegmentSource, so nothing is served from the
 * previous run's chunk cache (nor its disk spill: each source has its own, closed after the
 * run); the archive files are in the OS page cache, so the times are salvo's own costs
 * (requests, decompression, checks), not a disk's.
 *
 * --quick gives its sources a smaller cache (8 MiB), so that its window, like the full run's,
 * does not fit in memory. Flags after the common ones:
 *   --memory-only   sources without the disk spill and read-ahead (chunk cache in memory alone, as before them)
 *   --no-s3         no S3 rows (never starts a server)
 *   --no-large      no 4 GiB window
 *
 *   node dist/bench/open-past.js [--quick] [--runs N] [--memory-only] [--no-s3] [--no-large]
 */
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveKeys, type ArchiveStore } from '../lib/archive/archive-store.js';
import { ArchiveView } from '../lib/history/archive-view.js';
import { CompressionPool } from '../lib/archive/compression-pool.js';
import { DirectoryStore } from '../lib/archive/directory-store.js';
import { openArchiveStore } from '../lib/archive/open-store.js';
import { restoreSnapshot } from '../lib/history/restore.js';
import { SegmentSource, type SourceOptions } from '../lib/history/segment-source.js';
import { Snapshot } from '../lib/history/snapshot.js';
import type { SynchPoint } from '../lib/volume/synch-point.js';
import type { Volume } from '../lib/volume/volume.js';
import { DelayStore } from './delay-store.js';
import { HISTORY_LABELS, createVolume, synch, untilSegment, writeHistory, type HistoryKind } from './history.js';
import { benchS3, type BenchS3 } from './s3-server.js';
import {
  GiB,
  MiB,
  cell,
  ms,
  num,
  runIfMain,
  summarize,
  withCleanup,
  type Benchmark,
  type BenchOptions,
  type BenchResult,
  type Cleanup,
  type Summary,
  type Table,
} from './common.js';

/** What a default mount (--cache 256M) gives its segment source. */
const CACHE_BYTES = 128 * MiB;
/** --quick's: less than its window (25 MiB raw), as the full run's windows are more than CACHE_BYTES. */
const QUICK_CACHE_BYTES = 8 * MiB;
const REMOTE_DELAY_MS = 20;
/** A guard on a whole read from S3 (it once refetched chunks for minutes): a read stops after this long. */
const S3_READ_BUDGET_MS = 60_000;
const S3_UPLOADS_AT_ONCE = 8;

interface LargeSettings {
  sizeBytes: number;
  segmentSizeBytes: number;
  workingSet: number;
}

interface Settings {
  /** Each segment source's cache bound. */
  cacheBytes: number;
  /** How each segment source is made (--memory-only: no spill, no read-ahead). */
  source: SourceOptions;
  s3: boolean;
  sizeBytes: number;
  segmentSizeBytes: number;
  workingSets: number[];
  histories: HistoryKind[];
  /** The 4 GiB window of the target, or null. */
  large: LargeSettings | null;
}

function settings(options: BenchOptions): Settings {
  const flags = new Set(options.args);
  for (const flag of flags) if (!['--memory-only', '--no-s3', '--no-large'].includes(flag)) throw new Error(`open-past: unknown option ${flag} (--memory-only, --no-s3, --no-large)`);
  const common = { source: flags.has('--memory-only') ? { spill: false as const, prefetchChunks: 0 } : {}, s3: !flags.has('--no-s3') };
  const s: Settings = options.quick
    ? { ...common, cacheBytes: QUICK_CACHE_BYTES, sizeBytes: 16 * MiB, segmentSizeBytes: 1 * MiB, workingSets: [24], histories: ['rand4k'], large: null }
    : {
        ...common,
        cacheBytes: CACHE_BYTES,
        sizeBytes: 64 * MiB,
        segmentSizeBytes: 16 * MiB,
        workingSets: [8, 16, 32],
        histories: ['rand4k', 'seq128k'],
        // Window = 63 + 1 segments of 64 MiB = 4 GiB. An open fetches a summary per window segment whatever the volume's size.
        large: { sizeBytes: 2 * GiB, segmentSizeBytes: 64 * MiB, workingSet: 63 },
      };
  if (flags.has('--no-large')) s.large = null;
  return s;
}

type Where = 'primary' | 'archive' | 's3';

interface Measured {
  openMs: number[];
  firstByteMs: number[];
  readMBps: number[];
  /** Bytes of the snapshot read (less than its size when an S3 read ran out of time). */
  readBytes: number[];
  requests: number[];
  fetchedBytes: number[];
  restoreMBps: number[];
  remoteFirstByteMs: number[];
  /** Bytes in the source's disk spill after the whole read, and reads it answered. */
  spillBytes: number[];
  spillReads: number[];
}

function emptyMeasured(): Measured {
  return { openMs: [], firstByteMs: [], readMBps: [], readBytes: [], requests: [], fetchedBytes: [], restoreMBps: [], remoteFirstByteMs: [], spillBytes: [], spillReads: [] };
}

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Opens the point with a fresh source (no cached chunks), reads it (all, or for `readBudgetMs`), counts the archive traffic. */
async function openAndRead(s: Settings, volume: Volume, store: ArchiveStore, point: SynchPoint, m: Measured, scratch: string, readBudgetMs: number): Promise<void> {
  const geometry = volume.config;
  const before = { gets: store.stats.gets, bytes: store.stats.bytesGot };
  let source = new SegmentSource(store, volume.pool, volume, s.cacheBytes, volume.config.volumeId, null, s.source);
  let started = process.hrtime.bigint();
  let snapshot = await Snapshot.open(point, geometry, source);
  m.openMs.push(elapsedMs(started));
  const buf = Buffer.allocUnsafe(128 * 1024);
  await snapshot.readInto(buf.subarray(0, 4096), 0);
  m.firstByteMs.push(elapsedMs(started));
  started = process.hrtime.bigint();
  let pos = 0;
  for (; pos < geometry.sizeBytes && elapsedMs(started) < readBudgetMs; pos += buf.length) await snapshot.readInto(buf, pos);
  m.readMBps.push(pos / 1e6 / (elapsedMs(started) / 1000));
  m.readBytes.push(pos);
  m.requests.push(store.stats.gets - before.gets);
  m.fetchedBytes.push(store.stats.bytesGot - before.bytes);
  m.spillBytes.push(source.spillBytes);
  m.spillReads.push(source.stats.spillReads);
  source.close();

  source = new SegmentSource(store, volume.pool, volume, s.cacheBytes, volume.config.volumeId, null, s.source);
  snapshot = await Snapshot.open(point, geometry, source);
  const target = path.join(scratch, 'restored.img');
  started = process.hrtime.bigint();
  try {
    await restoreSnapshot(snapshot, target);
  } finally {
    source.close();
  }
  m.restoreMBps.push(geometry.sizeBytes / 1e6 / (elapsedMs(started) / 1000));
  fs.rmSync(target);
}

/** Open + first byte with every archive request delayed, as from a remote store. */
async function remoteFirstByte(s: Settings, volume: Volume, point: SynchPoint, m: Measured): Promise<void> {
  const source = new SegmentSource(new DelayStore(volume.store, REMOTE_DELAY_MS), volume.pool, volume, s.cacheBytes, volume.config.volumeId, null, s.source);
  const started = process.hrtime.bigint();
  const snapshot = await Snapshot.open(point, volume.config, source);
  await snapshot.read(0, 4096);
  m.remoteFirstByteMs.push(elapsedMs(started));
  source.close();
}

async function windowArchivedBytes(store: ArchiveStore, window: number[]): Promise<number> {
  let total = 0;
  for (const sequence of window) total += (await store.head(ArchiveKeys.segment(sequence))) ?? 0;
  return total;
}

function windowOf(point: SynchPoint, workingSet: number): number[] {
  const window: number[] = [];
  for (let s = point.sequence; s >= 1 && s >= point.sequence - workingSet; s--) window.push(s);
  return window;
}

/** Copies the window's segment objects, as archived, from one store to another. */
async function copyWindow(from: ArchiveStore, to: ArchiveStore, window: number[]): Promise<void> {
  const keys = window.map((sequence) => ArchiveKeys.segment(sequence));
  for (let i = 0; i < keys.length; i += S3_UPLOADS_AT_ONCE) {
    await Promise.all(keys.slice(i, i + S3_UPLOADS_AT_ONCE).map(async (key) => to.put(key, [await from.get(key)])));
  }
}

interface CaseRow {
  where: Where;
  onPrimary: number;
  window: number;
  m: Measured;
  windowStored: number;
}

interface CaseResult {
  workingSet: number;
  history: HistoryKind;
  rows: CaseRow[];
  archiveOnly: { viewOpenMs: number[]; viewRequests: number; segments: number; restoreMBps: number[] };
}

async function runCase(options: BenchOptions, s: Settings, workingSet: number, history: HistoryKind, s3: BenchS3 | null): Promise<CaseResult> {
  const { log, runs } = options;
  const base = path.join(options.workDir, `${history}-${workingSet}`);
  const policy = { sizeBytes: s.sizeBytes, segmentSizeBytes: s.segmentSizeBytes, workingSetSegments: workingSet, spareSegments: 4 };
  const { volume, archive } = await createVolume(base, policy);
  const scratch = path.join(base, 'scratch');
  fs.mkdirSync(scratch);
  let s3Store: ArchiveStore | null = null;
  try {
    const state = { n: 0, seed: 3 };
    // The old point, once a whole window lies behind it.
    await writeHistory(volume, history, untilSegment(volume, workingSet + 2), state);
    const old = await synch(volume, 'old');
    // Push its window off primary storage: every slot holding one of its segments is recycled once archived.
    const window = windowOf(old, workingSet);
    await writeHistory(volume, history, untilSegment(volume, old.sequence + workingSet + 2), state);
    for (;;) {
      await volume.idle();
      if (!window.some((seq) => volume.slotHolding(seq) !== undefined)) break;
      await writeHistory(volume, history, untilSegment(volume, volume.internals.log.current.sequence + 1), state);
    }
    // The recent point: half a segment more, then synch.
    await writeHistory(volume, history, (_w, bytes) => bytes >= s.segmentSizeBytes / 2, state);
    const recent = await synch(volume, 'recent');
    await volume.idle();
    const recentWindow = windowOf(recent, workingSet);
    log(`${history} W=${workingSet}: old point in segment ${old.sequence}, recent in ${recent.sequence}; ${volume.status().archive.segmentsArchived} segments archived`);
    if (s3) {
      // The old window as an s3:// archive holds it: the same objects, read with the same source.
      s3Store = await openArchiveStore(`${s3.url}/${history}-${workingSet}`, { endpoint: s3.env.AWS_ENDPOINT_URL });
      const copied = process.hrtime.bigint();
      await copyWindow(volume.store, s3Store, window);
      log(`${history} W=${workingSet}: old window copied to ${s3Store.location} in ${num(elapsedMs(copied))} ms`);
    }

    const result: CaseResult = { workingSet, history, rows: [], archiveOnly: { viewOpenMs: [], viewRequests: 0, segments: 0, restoreMBps: [] } };
    const rows: [Where, SynchPoint, number[], ArchiveStore][] = [
      ['primary', recent, recentWindow, volume.store],
      ['archive', old, window, volume.store],
    ];
    if (s3Store) rows.push(['s3', old, window, s3Store]);
    for (const [where, point, win, store] of rows) {
      const m = emptyMeasured();
      for (let run = 0; run < runs; run++) {
        await openAndRead(s, volume, store, point, m, scratch, where === 's3' ? S3_READ_BUDGET_MS : Infinity);
        if (where === 'archive') await remoteFirstByte(s, volume, point, m);
      }
      result.rows.push({
        where,
        onPrimary: win.filter((seq) => volume.slotHolding(seq) !== undefined).length,
        window: win.length,
        m,
        windowStored: await windowArchivedBytes(volume.store, win),
      });
    }

    // The archive alone (primary storage lost): list + every summary, then restore the old point.
    for (let run = 0; run < runs; run++) {
      const store = new DirectoryStore(archive);
      let started = process.hrtime.bigint();
      const view = await ArchiveView.open(store, { cacheBytesMax: s.cacheBytes });
      result.archiveOnly.viewOpenMs.push(elapsedMs(started));
      result.archiveOnly.viewRequests = store.stats.gets + store.stats.lists;
      result.archiveOnly.segments = view.segments.length;
      try {
        const point = view.catalog.all.find((p) => p.recordSequence === old.recordSequence)!;
        const snapshot = await view.snapshots.open(point);
        const target = path.join(scratch, 'from-archive.img');
        started = process.hrtime.bigint();
        await restoreSnapshot(snapshot, target);
        result.archiveOnly.restoreMBps.push(s.sizeBytes / 1e6 / (elapsedMs(started) / 1000));
        fs.rmSync(target);
      } finally {
        view.source.close();
        await view.close();
      }
    }
    return result;
  } finally {
    if (s3Store) {
      // A shared test server keeps its buckets: leave nothing behind there.
      const store = s3Store;
      const keys = await store.list('');
      for (let i = 0; i < keys.length; i += S3_UPLOADS_AT_ONCE) await Promise.all(keys.slice(i, i + S3_UPLOADS_AT_ONCE).map((key) => store.delete(key)));
      await store.close();
    }
    await volume.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

interface LargeResult {
  settings: LargeSettings;
  window: number;
  openMs: number[];
  firstByteMs: number[];
  /** Requests and bytes of the open alone (the backward scan over the window's summaries). */
  openRequests: number[];
  openBytes: number[];
  windowStored: number;
  buildSeconds: number;
}

/**
 * The target's case: a 4 GiB window of random 4k writes (one extent a block: the largest
 * summaries a window can have), opened after its primary storage is deleted, so every byte
 * comes from the archive directory.
 */
async function runLarge(options: BenchOptions, l: LargeSettings): Promise<LargeResult> {
  const { log, runs } = options;
  const base = path.join(options.workDir, 'large');
  const built = process.hrtime.bigint();
  const { volume, dir, archive } = await createVolume(base, { sizeBytes: l.sizeBytes, segmentSizeBytes: l.segmentSizeBytes, workingSetSegments: l.workingSet, spareSegments: 4 });
  try {
    const state = { n: 0, seed: 5 };
    await writeHistory(volume, 'rand4k', untilSegment(volume, l.workingSet + 2), state);
    const point = await synch(volume, 'old');
    // Sealing the point's segment archives it whole, so the window is segment objects only (no tail pieces).
    await writeHistory(volume, 'rand4k', untilSegment(volume, point.sequence + 1), state);
    await volume.idle();
    const config = volume.config;
    await volume.close();
    fs.rmSync(dir, { recursive: true, force: true });
    const buildSeconds = elapsedMs(built) / 1000;
    const window = windowOf(point, l.workingSet);
    log(`4 GiB window: point in segment ${point.sequence}, built in ${num(buildSeconds)} s; primary storage deleted`);

    const store = new DirectoryStore(archive);
    const pool = new CompressionPool();
    try {
      const result: LargeResult = { settings: l, window: window.length, openMs: [], firstByteMs: [], openRequests: [], openBytes: [], windowStored: 0, buildSeconds };
      for (let run = 0; run < runs; run++) {
        const source = new SegmentSource(store, pool, null, CACHE_BYTES, config.volumeId, null, { spill: false });
        const before = { gets: store.stats.gets, bytes: store.stats.bytesGot };
        const started = process.hrtime.bigint();
        const snapshot = await Snapshot.open(point, config, source);
        result.openMs.push(elapsedMs(started));
        result.openRequests.push(store.stats.gets - before.gets);
        result.openBytes.push(store.stats.bytesGot - before.bytes);
        await snapshot.read(0, 4096);
        result.firstByteMs.push(elapsedMs(started));
        source.close();
      }
      result.windowStored = await windowArchivedBytes(store, window);
      return result;
    } finally {
      await pool.close();
      await store.close();
    }
  } finally {
    await volume.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

const med = (v: number[]): Summary => summarize(v);

const WHERE_LABELS: Record<Where, string> = { primary: 'primary', archive: 'archive dir', s3: 'S3' };

function tables(s: Settings, results: CaseResult[], large: LargeResult | null): Table[] {
  const main: Table = {
    title: `opening a snapshot: ${num(s.sizeBytes / MiB)} MiB volume, ${num(s.segmentSizeBytes / MiB)} MiB segments, window = working set + 1 segments, cache ${num(s.cacheBytes / MiB)} MiB${s.source.spill === false ? ', memory only (no spill, no read-ahead)' : ''}`,
    columns: [
      'history',
      'working set',
      'window is on',
      'open (ms)',
      'first byte (ms)',
      `first byte at ${REMOTE_DELAY_MS} ms/request (ms)`,
      'read all, 128k reads (MB/s)',
      'archive requests',
      'fetched (MiB)',
      'fetched / window archived',
      'restore (MB/s)',
      'read / restore',
      'spilled to disk (MiB)',
    ],
    rows: [],
    notes: [],
  };
  for (const r of results) {
    for (const row of r.rows) {
      const { m } = row;
      const fetched = med(m.fetchedBytes).median;
      const readWhole = m.readBytes.every((b) => b >= s.sizeBytes);
      main.rows.push([
        HISTORY_LABELS[r.history],
        String(r.workingSet),
        row.where === 'primary' ? `primary (${row.onPrimary}/${row.window} segments)` : `${WHERE_LABELS[row.where]} (${row.onPrimary}/${row.window} on primary)`,
        cell(med(m.openMs), ms),
        cell(med(m.firstByteMs), ms),
        row.where === 'archive' ? cell(med(m.remoteFirstByteMs), ms) : '–',
        readWhole ? cell(med(m.readMBps)) : `${cell(med(m.readMBps))}, first ${num(med(m.readBytes).median / MiB)} MiB`,
        String(Math.round(med(m.requests).median)),
        num(fetched / MiB),
        row.windowStored > 0 && row.where !== 'primary' && readWhole ? `${((100 * fetched) / row.windowStored).toFixed(0)}% of ${num(row.windowStored / MiB)} MiB` : '–',
        cell(med(m.restoreMBps)),
        readWhole ? (med(m.readMBps).median / med(m.restoreMBps).median).toFixed(2) : '–',
        m.spillBytes.some((b) => b > 0) ? `${num(med(m.spillBytes).median / MiB)} (${Math.round(med(m.spillReads).median)} reads)` : '–',
      ]);
    }
  }
  main.notes!.push(
    'fetched: compressed bytes read from the archive while opening and reading the whole snapshot once; window archived: the compressed size of the window’s segment objects (raw: window × segment size).',
    'read / restore: the whole read’s MB/s over restore’s, for the same point; spilled to disk: raw chunks the read’s source had moved from memory to its scratch file by the end of the read, and the reads that file answered.',
    'a recent point’s window reaches one segment past the working set, which has usually left primary storage already: its summary is then fetched from the archive.',
  );
  if (results.some((r) => r.rows.some((row) => row.where === 's3'))) {
    main.notes!.push(
      'this process has the AWS SDK loaded for its S3 rows, as a mount with an S3 archive has (a mount with a directory archive does not load it); its large heap makes the full GCs that fetched chunks set off dearer, so the archive-directory rows read slower than such a mount would.',
    );
  }
  if (results.some((r) => r.rows.some((row) => row.where === 's3'))) {
    main.notes!.push(
      `S3: the old window’s objects in a bucket of radosgw on 127.0.0.1 (no network latency: the ${REMOTE_DELAY_MS} ms column models that), read through the same code as the directory. Its reads stop after ${S3_READ_BUDGET_MS / 1000} s (“first N MiB”: how far they got, when they do not finish); requests and fetched then count that part only.`,
    );
  }
  const alone: Table = {
    title: 'the archive alone (primary storage lost): ArchiveView.open, then restore of the old point',
    columns: ['history', 'working set', 'segments in the archive', 'view open: list + every summary (ms)', 'requests', 'restore (MB/s)'],
    rows: results.map((r) => [
      HISTORY_LABELS[r.history],
      String(r.workingSet),
      String(r.archiveOnly.segments),
      cell(med(r.archiveOnly.viewOpenMs), ms),
      String(r.archiveOnly.viewRequests),
      cell(med(r.archiveOnly.restoreMBps)),
    ]),
    notes: ['ArchiveView.open reads the archive’s catalog and the summaries of what was archived past it (the archive-open benchmark measures it against the length of the history).'],
  };
  if (!large) return [main, alone];
  const l = large.settings;
  const windowRaw = large.window * l.segmentSizeBytes;
  const fetched = med(large.openBytes).median;
  const openMs = med(large.openMs);
  const share = (100 * fetched) / windowRaw;
  const target: Table = {
    title: `a ${num(windowRaw / GiB)} GiB window from the archive directory: ${num(l.sizeBytes / GiB)} GiB volume, ${num(l.segmentSizeBytes / MiB)} MiB segments, working set ${l.workingSet}, random 4k writes`,
    columns: ['window', 'open (ms)', 'first byte (ms)', 'requests (open)', 'fetched by the open (MiB)', 'of the window’s bytes', 'of the window archived', 'target: < 2% and < 1 s'],
    rows: [
      [
        `${large.window} × ${num(l.segmentSizeBytes / MiB)} MiB = ${num(windowRaw / MiB)} MiB (${num(large.windowStored / MiB)} MiB archived)`,
        cell(openMs, ms),
        cell(med(large.firstByteMs), ms),
        String(Math.round(med(large.openRequests).median)),
        num(fetched / MiB),
        `${share.toFixed(2)}%`,
        `${((100 * fetched) / large.windowStored).toFixed(2)}%`,
        share < 2 && openMs.median < 1000 ? 'met' : 'missed',
      ],
    ],
    notes: [
      `built in ${num(large.buildSeconds)} s (writes + archiving); primary storage was deleted before opening, so every request went to the archive directory; each open used a fresh source (no cached summaries).`,
      'fetched by the open: header, summary and chunk table of each window segment, no block data; random 4k writes give one extent per block, the largest summaries a window can have.',
    ],
  };
  return [main, alone, target];
}

/** The S3 server for the S3 rows, with its credentials in the environment (S3Store reads them there) until cleanup. */
async function s3ForBench(options: BenchOptions, cleanup: Cleanup): Promise<BenchS3 | { skipped: string }> {
  if (options.args.includes('--no-s3')) return { skipped: '--no-s3' };
  if (options.quick && !process.env.S3_TEST_URL) return { skipped: 'a --quick run uses S3 only when S3_TEST_URL names a running server' };
  const s3 = await benchS3(cleanup, 'open-past', options.log);
  if ('skipped' in s3) return s3;
  const saved = Object.fromEntries(Object.keys(s3.env).map((key) => [key, process.env[key]]));
  Object.assign(process.env, s3.env);
  cleanup.add('restore the AWS_* environment', () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });
  return s3;
}

export const bench: Benchmark = {
  name: 'open-past',
  title: 'Opening and reading the past',
  description:
    'Snapshot open time (backward scan), first byte, read and restore throughput for a recent point (window on primary) and an old one (window only in the archive directory, then only on S3), against working-set length, for random 4k and sequential 128k histories; archive requests and bytes fetched; the archive read alone; and the open of a 4 GiB window from the archive directory against its target.',
  async run(options): Promise<BenchResult> {
    const s = settings(options);
    const large = s.large ? await runLarge(options, s.large) : null;
    return withCleanup(options.log, async (cleanup) => {
      const s3 = await s3ForBench(options, cleanup);
      const results: CaseResult[] = [];
      for (const history of s.histories) for (const w of s.workingSets) results.push(await runCase(options, s, w, history, 'skipped' in s3 ? null : s3));
      return { tables: tables(s, results, large), notes: 'skipped' in s3 ? [`no S3 rows: ${s3.skipped}`] : [] };
    });
  },
};

runIfMain(import.meta.url, bench);
