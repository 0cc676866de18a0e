/**
 * Opening the past (engine level, no FUSE): for working sets of several lengths and two
 * write histories (random 4 KiB, sequential 128 KiB), two synch points:
 *
 *   primary   a recent point: its window (working set + 1 segments) is on primary storage
 *   archive   an old point: every segment of its window has left primary storage, so the
 *             snapshot is served from the archive directory alone
 *
 * For each: time to open the snapshot (backward scan over the window's summaries) and to
 * the first byte, throughput of reading the whole snapshot sequentially in 128 KiB reads
 * (as FUSE asks), what that fetched from the archive (requests, compressed bytes, and those
 * bytes as a share of the window's archived objects), and restore throughput
 * (restoreSnapshot to a sparse file). The old point is also opened with 20 ms added to
 * every archive request, as a remote store would, and restored from the archive alone
 * (ArchiveView, as `salvo restore <archive>` does after losing primary storage).
 *
 * Every run opens the snapshot with a fresh SegmentSource, so nothing is served from the
 * previous run's chunk cache; the archive files are in the OS page cache, so the times are
 * salvo's own costs (requests, decompression, checks), not a disk's.
 *
 *   node dist/bench/open-past.js [--quick] [--runs N]
 */
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveKeys, type ArchiveStore } from '../lib/archive/archive-store.js';
import { ArchiveView } from '../lib/archive/archive-view.js';
import { DirectoryStore } from '../lib/archive/directory-store.js';
import { restoreSnapshot } from '../lib/archive/restore.js';
import { SegmentSource } from '../lib/volume/segment-source.js';
import { Snapshot } from '../lib/volume/snapshot.js';
import type { SynchPoint } from '../lib/volume/synch-point.js';
import type { Volume } from '../lib/volume/volume.js';
import { DelayStore } from './delay-store.js';
import { HISTORY_LABELS, createVolume, synch, untilSegment, writeHistory, type HistoryKind } from './history.js';
import { MiB, cell, ms, num, runIfMain, summarize, type Benchmark, type BenchOptions, type BenchResult, type Summary, type Table } from './common.js';

/** What a default mount (--cache 256M) gives its segment source. */
const CACHE_BYTES = 128 * MiB;
const REMOTE_DELAY_MS = 20;

interface Settings {
  sizeBytes: number;
  segmentSizeBytes: number;
  workingSets: number[];
  histories: HistoryKind[];
}

function settings(options: BenchOptions): Settings {
  return options.quick
    ? { sizeBytes: 16 * MiB, segmentSizeBytes: 1 * MiB, workingSets: [24], histories: ['rand4k'] }
    : { sizeBytes: 64 * MiB, segmentSizeBytes: 16 * MiB, workingSets: [8, 16, 32], histories: ['rand4k', 'seq128k'] };
}

interface Measured {
  openMs: number[];
  firstByteMs: number[];
  readMBps: number[];
  requests: number[];
  fetchedBytes: number[];
  restoreMBps: number[];
  remoteFirstByteMs: number[];
}

function emptyMeasured(): Measured {
  return { openMs: [], firstByteMs: [], readMBps: [], requests: [], fetchedBytes: [], restoreMBps: [], remoteFirstByteMs: [] };
}

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Opens the point with a fresh source (no cached chunks), reads it all, counts the archive traffic. */
async function openAndRead(volume: Volume, store: ArchiveStore, point: SynchPoint, m: Measured, scratch: string): Promise<void> {
  const geometry = volume.config;
  const before = { gets: store.stats.gets, bytes: store.stats.bytesGot };
  let source = new SegmentSource(store, volume.pool, volume.log, CACHE_BYTES, volume.config.volumeId);
  let started = process.hrtime.bigint();
  let snapshot = await Snapshot.open(point, geometry, source);
  m.openMs.push(elapsedMs(started));
  const buf = Buffer.allocUnsafe(128 * 1024);
  await snapshot.readInto(buf.subarray(0, 4096), 0);
  m.firstByteMs.push(elapsedMs(started));
  started = process.hrtime.bigint();
  for (let pos = 0; pos < geometry.sizeBytes; pos += buf.length) await snapshot.readInto(buf, pos);
  m.readMBps.push(geometry.sizeBytes / 1e6 / (elapsedMs(started) / 1000));
  m.requests.push(store.stats.gets - before.gets);
  m.fetchedBytes.push(store.stats.bytesGot - before.bytes);

  source = new SegmentSource(store, volume.pool, volume.log, CACHE_BYTES, volume.config.volumeId);
  snapshot = await Snapshot.open(point, geometry, source);
  const target = path.join(scratch, 'restored.img');
  started = process.hrtime.bigint();
  await restoreSnapshot(snapshot, target);
  m.restoreMBps.push(geometry.sizeBytes / 1e6 / (elapsedMs(started) / 1000));
  fs.rmSync(target);
}

/** Open + first byte with every archive request delayed, as from a remote store. */
async function remoteFirstByte(volume: Volume, point: SynchPoint, m: Measured): Promise<void> {
  const source = new SegmentSource(new DelayStore(volume.store, REMOTE_DELAY_MS), volume.pool, volume.log, CACHE_BYTES, volume.config.volumeId);
  const started = process.hrtime.bigint();
  const snapshot = await Snapshot.open(point, volume.config, source);
  await snapshot.read(0, 4096);
  m.remoteFirstByteMs.push(elapsedMs(started));
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

interface CaseResult {
  workingSet: number;
  history: HistoryKind;
  rows: { where: string; onPrimary: number; window: number; m: Measured; windowStored: number; windowRaw: number }[];
  archiveOnly: { viewOpenMs: number[]; viewRequests: number; segments: number; restoreMBps: number[] };
}

async function runCase(options: BenchOptions, s: Settings, workingSet: number, history: HistoryKind): Promise<CaseResult> {
  const { log, runs } = options;
  const base = path.join(options.workDir, `${history}-${workingSet}`);
  const policy = { sizeBytes: s.sizeBytes, segmentSizeBytes: s.segmentSizeBytes, workingSetSegments: workingSet, spareSegments: 4 };
  const { volume, archive } = await createVolume(base, policy);
  const scratch = path.join(base, 'scratch');
  fs.mkdirSync(scratch);
  try {
    const state = { n: 0, seed: 3 };
    // The old point, once a whole window lies behind it.
    await writeHistory(volume, history, untilSegment(volume, workingSet + 2), state);
    const old = await synch(volume, 'old');
    // Push its window off primary storage: every slot holding one of its segments is recycled once archived.
    const window = windowOf(old, workingSet);
    await writeHistory(volume, history, untilSegment(volume, old.sequence + workingSet + 2), state);
    for (;;) {
      await volume.archiver.idle();
      if (!window.some((seq) => volume.source.onPrimary(seq))) break;
      await writeHistory(volume, history, untilSegment(volume, volume.log.current.sequence + 1), state);
    }
    // The recent point: half a segment more, then synch.
    await writeHistory(volume, history, (_w, bytes) => bytes >= s.segmentSizeBytes / 2, state);
    const recent = await synch(volume, 'recent');
    await volume.archiver.idle();
    const recentWindow = windowOf(recent, workingSet);
    log(`${history} W=${workingSet}: old point in segment ${old.sequence}, recent in ${recent.sequence}; ${volume.status().archive.segmentsArchived} segments archived`);

    const result: CaseResult = { workingSet, history, rows: [], archiveOnly: { viewOpenMs: [], viewRequests: 0, segments: 0, restoreMBps: [] } };
    for (const [where, point, win] of [['primary', recent, recentWindow], ['archive', old, window]] as const) {
      const m = emptyMeasured();
      for (let run = 0; run < runs; run++) {
        await openAndRead(volume, volume.store, point, m, scratch);
        if (where === 'archive') await remoteFirstByte(volume, point, m);
      }
      result.rows.push({
        where,
        onPrimary: win.filter((seq) => volume.source.onPrimary(seq)).length,
        window: win.length,
        m,
        windowStored: await windowArchivedBytes(volume.store, win),
        windowRaw: win.length * s.segmentSizeBytes,
      });
    }

    // The archive alone (primary storage lost): list + every summary, then restore the old point.
    for (let run = 0; run < runs; run++) {
      const store = new DirectoryStore(archive);
      let started = process.hrtime.bigint();
      const view = await ArchiveView.open(store, { cacheBytesMax: CACHE_BYTES });
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
        await view.close();
      }
    }
    return result;
  } finally {
    await volume.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

const med = (v: number[]): Summary => summarize(v);

function tables(s: Settings, results: CaseResult[]): Table[] {
  const main: Table = {
    title: `opening a snapshot: ${num(s.sizeBytes / MiB)} MiB volume, ${num(s.segmentSizeBytes / MiB)} MiB segments, window = working set + 1 segments`,
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
    ],
    rows: [],
    notes: [],
  };
  for (const r of results) {
    for (const row of r.rows) {
      const { m } = row;
      const fetched = med(m.fetchedBytes).median;
      main.rows.push([
        HISTORY_LABELS[r.history],
        String(r.workingSet),
        row.where === 'primary' ? `primary (${row.onPrimary}/${row.window} segments)` : `archive (${row.onPrimary}/${row.window} on primary)`,
        cell(med(m.openMs), ms),
        cell(med(m.firstByteMs), ms),
        row.where === 'archive' ? cell(med(m.remoteFirstByteMs), ms) : '–',
        cell(med(m.readMBps)),
        String(Math.round(med(m.requests).median)),
        num(fetched / MiB),
        row.windowStored > 0 && row.where === 'archive' ? `${((100 * fetched) / row.windowStored).toFixed(0)}% of ${num(row.windowStored / MiB)} MiB` : '–',
        cell(med(m.restoreMBps)),
      ]);
    }
  }
  main.notes!.push(
    'fetched: compressed bytes read from the archive while opening and reading the whole snapshot once; window archived: the compressed size of the window’s segment objects (raw: window × segment size).',
    'a recent point’s window reaches one segment past the working set, which has usually left primary storage already: its summary is then fetched from the archive.',
  );
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
    notes: ['ArchiveView.open fetches the summary of every archived segment to build the catalog: its time grows with the length of the history, not with the window.'],
  };
  return [main, alone];
}

export const bench: Benchmark = {
  name: 'open-past',
  title: 'Opening and reading the past',
  description:
    'Snapshot open time (backward scan), first byte, read and restore throughput for a recent point (window on primary) and an old one (window only in the archive), against working-set length, for random 4k and sequential 128k histories; archive requests and bytes fetched; the archive read alone.',
  async run(options): Promise<BenchResult> {
    const s = settings(options);
    const results: CaseResult[] = [];
    for (const history of s.histories) for (const w of s.workingSets) results.push(await runCase(options, s, w, history));
    return { tables: tables(s, results) };
  },
};

runIfMain(import.meta.url, bench);
