/**
 * Resident memory:
 *
 * 1. against volume size, engine level, one child process per size (so each starts clean):
 *    RSS after loading salvo, after Volume.open of a new volume, after one write every 512
 *    blocks (every page of the index holds a block: what a volume written all over thinly
 *    costs), and after opening one snapshot of it.
 * 2. against the number of open snapshots, in the mount process (`salvo mount --daemon`,
 *    VmRSS from /proc/<pid>/status): a history of synch points written engine-level, then
 *    snapshots opened through FUSE one by one and kept open, then all closed again.
 * 3. across bursts of writes, in the mount process: a quarter of the volume written through
 *    the live image at a time, each burst followed by the archive's catch-up; RSS after each.
 *
 *   node dist/bench/memory.js [--quick] [--runs N]
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../lib/agent/control.js';
import { parseSize } from '../lib/cli/units.js';
import { formatBytes } from '../lib/format/units.js';
import { DirectoryStore } from '../lib/archive/directory-store.js';
import { Volume } from '../lib/volume/volume.js';
import { VolumeHistory } from '../lib/history/history.js';
import { BLOCK_BYTES, dataFor } from './history.js';
import {
  GiB,
  MiB,
  archiveCatchUp,
  cell,
  fuseLoopUnavailable,
  mountExisting,
  num,
  residentBytes,
  runIfMain,
  salvoMount,
  summarize,
  withCleanup,
  type BenchOptions,
  type BenchResult,
  type Benchmark,
  type Table,
} from './common.js';

const CHILD_FLAG = '--child-size';
const TOUCH_EVERY_BLOCKS = 512;

interface ChildReport {
  blocks: number;
  indexBytes: number;
  baseline: number;
  opened: number;
  touched: number;
  synched: number;
  snapshot: number;
  snapshotIndexBytes: number;
}

/** Segment size so that the policy needs about 80 segments whatever the volume size. */
function segmentSizeFor(sizeBytes: number): number {
  return Math.min(GiB, Math.max(MiB, sizeBytes / 64));
}

/** In the child: one volume of `sizeBytes`, RSS at each stage. */
async function child(sizeBytes: number, dir: string): Promise<ChildReport> {
  const rss = () => process.memoryUsage().rss;
  dataFor(0, BLOCK_BYTES); // the 16 MiB of write data, allocated before the baseline
  globalThis.gc?.();
  const baseline = rss();
  const segmentSizeBytes = segmentSizeFor(sizeBytes);
  const store = new DirectoryStore(`${dir}-archive`);
  await Volume.create(dir, { sizeBytes, blockSizeBytes: BLOCK_BYTES, segmentSizeBytes, spareSegments: 2, archive: store.location, store });
  const volume = await Volume.open(dir, { onStall: () => undefined, store });
  try {
    globalThis.gc?.();
    const opened = rss();
    const blocks = sizeBytes / BLOCK_BYTES;
    for (let block = 0, n = 0; block < blocks; block += TOUCH_EVERY_BLOCKS, n++) await volume.write(dataFor(n, BLOCK_BYTES), block * BLOCK_BYTES);
    globalThis.gc?.();
    const touched = rss();
    // The synch point ships the current segment's tail: read whole into memory and compressed.
    const point = await volume.synch({ label: null, info: {} });
    await volume.idle();
    globalThis.gc?.();
    const synched = rss();
    const snap = await new VolumeHistory(volume).snapshots.open(point);
    await snap.read(0, BLOCK_BYTES);
    globalThis.gc?.();
    const snapshot = rss();
    return { blocks, indexBytes: volume.status().indexBytes, baseline, opened, touched, synched, snapshot, snapshotIndexBytes: snap.memoryBytes };
  } finally {
    await volume.close();
  }
}

function runChild(sizeBytes: number, dir: string): Promise<ChildReport> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', self, CHILD_FLAG, String(sizeBytes), dir], { maxBuffer: MiB, timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`memory child for ${sizeBytes} bytes failed: ${stderr || err.message}`));
      resolve(JSON.parse(stdout) as ChildReport);
    });
  });
}

async function bySize(options: BenchOptions): Promise<Table> {
  const sizes = options.quick ? [64 * MiB] : [1 * GiB, 16 * GiB, 64 * GiB];
  const rows: string[][] = [];
  for (const size of sizes) {
    const reports: ChildReport[] = [];
    for (let run = 0; run < options.runs; run++) {
      const dir = path.join(options.workDir, `size-${size}-${run}`);
      try {
        reports.push(await runChild(size, dir));
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(`${dir}-archive`, { recursive: true, force: true });
      }
    }
    const r0 = reports[0]!;
    const mib = (pick: (r: ChildReport) => number) => cell(summarize(reports.map((r) => pick(r) / MiB)));
    options.log(`size ${formatBytes(size)}: touched ${num((r0.touched - r0.baseline) / MiB)} MiB above baseline`);
    rows.push([
      formatBytes(size),
      num(r0.blocks),
      `${num(r0.indexBytes / MiB)} MiB`,
      num(segmentSizeFor(size) / MiB),
      mib((r) => r.baseline),
      mib((r) => r.opened - r.baseline),
      mib((r) => r.touched - r.baseline),
      cell(summarize(reports.map((r) => (r.touched - r.baseline) / r.blocks))),
      mib((r) => r.synched - r.touched),
      mib((r) => r.snapshot - r.synched),
      `${num(r0.snapshotIndexBytes / MiB)} MiB`,
    ]);
  }
  return {
    title: 'resident memory against volume size (engine, one process per size)',
    columns: [
      'volume',
      'blocks',
      'live index',
      'segment (MiB)',
      'RSS after loading (MiB)',
      '+ after open (MiB)',
      '+ after writing all over (MiB)',
      'RSS above loading per block (B)',
      '+ after a synch point, archive caught up (MiB)',
      '+ one open snapshot (MiB)',
      'snapshot index',
    ],
    rows,
    notes: [
      `“writing all over”: one 4 KiB write every ${TOUCH_EVERY_BLOCKS} blocks, so every 4096-block page of the index holds one block.`,
      'segment size = volume / 64, so every policy has about 80 slots; the RSS also holds slot descriptors, the compression workers and the current segment’s summary.',
      'the synch point ships the written part of the current segment as a tail: the archiver reads it whole into shared memory, with room beside it for the compressed chunks (the worker compresses in place), and gives their pages back once its queue is empty: the peak grows with the segment size (1 GiB segments here for 64 GiB), what stays after the catch-up does not (on 2026-12-01, before the pages were given back: 9.0, 48.9 and 195 MiB for the three sizes).',
    ],
  };
}

async function byOpenSnapshots(options: BenchOptions): Promise<Table> {
  const quick = options.quick;
  const sizeBytes = quick ? 64 * MiB : 4 * GiB;
  const points = quick ? 4 : 64;
  const steps = quick ? [0, 1, 4] : [0, 1, 2, 4, 8, 16, 32, 64];
  const dir = path.join(options.workDir, 'volume');
  const archive = path.join(options.workDir, 'archive');
  const mountpoint = path.join(options.workDir, 'mnt');
  const segmentSizeBytes = segmentSizeFor(sizeBytes);
  // The history, engine level: each round writes one block in every 1024 and takes a synch point.
  const store = new DirectoryStore(archive);
  await Volume.create(dir, { sizeBytes, blockSizeBytes: BLOCK_BYTES, segmentSizeBytes, spareSegments: 4, archive, store });
  const volume = await Volume.open(dir, { onStall: () => undefined, store });
  const blocks = sizeBytes / BLOCK_BYTES;
  try {
    for (let round = 0, n = 0; round < points; round++) {
      for (let block = round % 1024; block < blocks; block += 1024, n++) await volume.write(dataFor(n, BLOCK_BYTES), block * BLOCK_BYTES);
      await volume.synch({ label: null, info: { round: String(round) } });
    }
    await volume.idle();
  } finally {
    await volume.close();
  }
  return withCleanup(options.log, async (cleanup) => {
    const mount = await mountExisting(cleanup, dir, mountpoint, archive);
    const names = (await fs.promises.readdir(path.join(mountpoint, 'snapshots'))).filter((n) => /^\d{4}-.*Z\.img$/.test(n)).sort();
    const handles: fs.promises.FileHandle[] = [];
    cleanup.add('close snapshot files', () => Promise.all(handles.splice(0).map((h) => h.close())));
    const rows: string[][] = [];
    const cacheBytes = async () =>
      (await controlRequest<{ status: { cacheBytes: number } }>(mount.socket, { cmd: 'status' })).status.cacheBytes;
    const buf = Buffer.alloc(BLOCK_BYTES);
    let pass = 0;
    /** Reads 4 KiB from every open snapshot at a place not read before (so the page cache cannot answer). */
    const rereadAll = async () => {
      pass++;
      const started = process.hrtime.bigint();
      for (const h of handles) await h.read(buf, 0, BLOCK_BYTES, pass * 64 * BLOCK_BYTES);
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    const row = async (label: string, opened: number) => {
      const reread = opened > 0 ? await rereadAll() : NaN;
      const { rss, hwm } = residentBytes(mount.pid);
      rows.push([label, String(opened), num(rss / MiB), num(hwm / MiB), num((await cacheBytes()) / MiB), opened > 0 ? num(reread / opened) : '–']);
    };
    for (const step of steps) {
      while (handles.length < step) {
        const handle = await fs.promises.open(path.join(mountpoint, 'snapshots', names[handles.length]!), 'r');
        handles.push(handle);
        await handle.read(buf, 0, BLOCK_BYTES, 0); // the first read: the snapshot is open and its index built
      }
      await row('open and read', step);
    }
    await Promise.all(handles.splice(0).map((h) => h.close()));
    await row('all closed again', 0);
    return {
      title: `mount process RSS against open snapshots: ${formatBytes(sizeBytes)} volume, ${points} synch points, ${blocks} blocks`,
      columns: ['snapshots', 'open', 'VmRSS (MiB)', 'VmHWM (MiB)', 'snapshot + chunk caches (MiB, from status)', 'then a 4 KiB read from each open one (ms per read)'],
      rows,
      notes: [
        `each synch point follows a round of writes to one block in every 1024, so every 4096-block page of every snapshot’s index holds blocks; the cache bound is the mount’s default (--cache 256M).`,
        'an open snapshot file holds only its synch point: its index lives in the mount’s cache, so memory stays within the bound however many are open, and a read of one whose index was evicted rebuilds it (the last column: reads round-robin over all open snapshots).',
      ],
    };
  });
}

async function byWriteBursts(options: BenchOptions): Promise<Table> {
  const quick = options.quick;
  const sizeBytes = quick ? 128 * MiB : GiB;
  const segmentSize = quick ? '8M' : '64M'; // 64M: `salvo init`'s default
  const bursts = quick ? 3 : 8;
  const burstBytes = sizeBytes / 4;
  return withCleanup(options.log, async (cleanup) => {
    const base = path.join(options.workDir, 'bursts');
    const mount = await salvoMount(cleanup, base, { size: String(sizeBytes), segmentSize, segments: 40 });
    const handle = await fs.promises.open(mount.image, 'r+');
    cleanup.add('close the live image', () => handle.close());
    const chunk = randomBytes(MiB);
    const rows: string[][] = [];
    const row = (label: string, written: number, catchUpSeconds: number | null) => {
      const { rss, hwm } = residentBytes(mount.pid);
      rows.push([label, num(written / MiB), num(rss / MiB), num(hwm / MiB), catchUpSeconds === null ? '–' : num(catchUpSeconds)]);
    };
    row('mounted', 0, null);
    for (let burst = 0; burst < bursts; burst++) {
      const start = (burst * burstBytes) % sizeBytes;
      for (let at = 0; at < burstBytes; at += MiB) await handle.write(chunk, 0, MiB, start + at);
      await handle.sync();
      const caughtUp = await archiveCatchUp(mount.socket);
      row(`after burst ${burst + 1}`, (burst + 1) * burstBytes, caughtUp);
    }
    return {
      title: `mount process RSS across bursts of writes: ${formatBytes(sizeBytes)} volume, ${formatBytes(parseSize(segmentSize, 'segment size'))} segments, ${formatBytes(burstBytes)} a burst`,
      columns: ['when', 'written (MiB)', 'VmRSS after the archive caught up (MiB)', 'VmHWM (MiB)', 'archive catch-up (s)'],
      rows,
      notes: [
        'each burst: 1 MiB writes through <mnt>/live/volume.img, an fsync, then the wait until the archiver has nothing queued and is at rest (control socket) before RSS is read.',
        'while it works the archiver holds a segment’s raw bytes and room for their compressed chunks in shared memory (VmHWM); it keeps that memory for the next burst but gives its pages back once its queue is empty, so RSS returns to its resting size.',
      ],
    };
  });
}

export const bench: Benchmark = {
  name: 'memory',
  title: 'Resident memory',
  description: 'RSS against volume size (index bytes per block) at engine level, and RSS of the mount process against the number of open snapshots and across bursts of writes.',
  async run(options): Promise<BenchResult> {
    const tables = [await bySize(options)];
    const unavailable = await fuseLoopUnavailable();
    if (unavailable) return { tables, notes: [`open snapshots through the mount skipped: ${unavailable}`] };
    tables.push(await byOpenSnapshots(options));
    tables.push(await byWriteBursts(options));
    return { tables };
  },
};

runIfMain(import.meta.url, bench, { flag: CHILD_FLAG, run: (args) => child(Number(args[0]), args[1]!) });
