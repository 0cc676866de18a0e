/**
 * Volumes of the sizes users have (issue #25): 1 GiB, 256 GiB, 4 TiB and 16 TiB volumes made
 * with `salvo init`'s default policy, given the same writes, side by side, through the real
 * CLI and mount:
 *
 *   1. `salvo init` (sparse, on the work directory; the archive a directory beside it), timed
 *   2. `salvo mount --daemon`, timed; VmRSS of the mount process and the live index (status)
 *   3. random 4 KiB writes spread over the whole volume (fio randwrite, --size the volume,
 *      --io_size the amount) through a `losetup --direct-io=on` loop device on
 *      <mnt>/live/volume.img, then `salvo sync --label rand` and the archive's catch-up
 *   4. the `rand` point opened through the mount (open + first 4 KiB read of
 *      /snapshots/by-label/rand.img): its window holds the random writes (a million extents
 *      with 4 GiB); the snapshot caches' bytes (status) and the mount's RSS before and after
 *   5. sequential 1 MiB writes: the same amount, in runs at spread offsets (fio
 *      zonemode=strided: one run in each 1/64th of the volume), then `salvo sync --label seq`,
 *      the catch-up; RSS and the live index again
 *   6. reads of the `seq` point through FUSE: sequential 1 MiB reads (fio, direct, on a
 *      read-only `--direct-io=on` loop device of the snapshot file) of the start of every run
 *      the sequential writes wrote; MB/s, and as a ratio to the first (smallest) size
 *   7. the `rand` point opened from the archive directory alone (a child process:
 *      ArchiveView.open, as `salvo restore`/`salvo list` do, then Snapshot.open with a fresh
 *      segment source, so its summaries are fetched again, and a first read)
 *   8. `salvo restore <archive> out.img --at seq`: data bytes written over its time
 *   9. kill -9 of the mount process (VolumeLock.owner), then `salvo mount --daemon` again, timed
 *
 * One measurement per size (a size takes minutes). A size whose default policy `salvo init`
 * refuses (the 16 TiB one while every slot file must stay open: 32,777 files here, where
 * `ulimit -n` is 20,000) gets a row with the refusal, not figures.
 *
 *   node dist/bench/big-volume.js [--quick] [--write 4G] [--read 1G] [--sizes 1G,256G,4T,16T]
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../lib/agent/control.js';
import { DirectoryStore } from '../lib/archive/directory-store.js';
import { parseSize } from '../lib/cli/units.js';
import { formatBytes } from '../lib/format/units.js';
import { ArchiveView } from '../lib/history/archive-view.js';
import { SegmentSource } from '../lib/history/segment-source.js';
import { Snapshot } from '../lib/history/snapshot.js';
import { VolumeLock } from '../lib/volume/volume-lock.js';
import {
  MiB,
  GiB,
  archiveCatchUp,
  attachLoop,
  exec,
  fuseLoopUnavailable,
  isMounted,
  isProcessAlive,
  mountExisting,
  num,
  residentBytes,
  runIfMain,
  salvo,
  waitFor,
  withCleanup,
  type BenchOptions,
  type BenchResult,
  type Benchmark,
  type SalvoMount,
  type Table,
} from './common.js';

const CHILD_FLAG = '--archive-child';
/** What a default mount (--cache 256M) gives its segment source; the child's fresh source gets the same. */
const SOURCE_CACHE_BYTES = 128 * MiB;
const IODEPTH = 16;
/** fio's seed: the same offsets (relative to the volume) and the same data for every size. */
const FIO_SEED = 2025;
/** Long steps (fio over 4 GiB of 4 KiB writes, restore) get this long. */
const STEP_TIMEOUT_MS = 3 * 3600_000;

interface Settings {
  sizes: number[];
  /** Bytes of random 4 KiB writes, and again of sequential 1 MiB writes. */
  writeBytes: number;
  /** Bytes of the snapshot read back. */
  readBytes: number;
  /** The sequential writes (and the reads) go in one run per zone: the volume cut in this many zones. */
  zones: number;
}

function settings(options: BenchOptions): Settings {
  const s: Settings = options.quick
    ? { sizes: [64 * MiB, GiB], writeBytes: 8 * MiB, readBytes: 4 * MiB, zones: 4 }
    : { sizes: [GiB, 256 * GiB, 4 * 1024 * GiB, 16 * 1024 * GiB], writeBytes: 4 * GiB, readBytes: GiB, zones: 64 };
  const args = options.args;
  for (let i = 0; i < args.length; i++) {
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${args[i - 1]} needs a value`);
      return v;
    };
    if (args[i] === '--write') s.writeBytes = parseSize(value(), '--write');
    else if (args[i] === '--read') s.readBytes = parseSize(value(), '--read');
    else if (args[i] === '--sizes') s.sizes = value().split(',').map((v) => parseSize(v, '--sizes'));
    else throw new Error(`big-volume: unknown option ${args[i]} (--write SIZE, --read SIZE, --sizes A,B,…)`);
  }
  const perZone = s.readBytes / s.zones;
  if (perZone < MiB || perZone % MiB !== 0) throw new Error(`--read ${s.readBytes} must be a whole number of MiB per zone (${s.zones} zones)`);
  if (s.writeBytes / s.zones < perZone) throw new Error('--read must not exceed --write: the reads read what the sequential writes wrote');
  return s;
}

/** The fio runs the writes and reads make: one job, JSON report. */
async function fio(args: string[], rw: 'read' | 'write'): Promise<{ bytesPerSecond: number; iops: number; seconds: number; bytes: number }> {
  const { stdout } = await exec('fio', [...args, '--output-format=json'], { timeoutMs: STEP_TIMEOUT_MS });
  const job = (JSON.parse(stdout.slice(stdout.indexOf('{'))) as { jobs: { job_runtime: number; read: FioSide; write: FioSide }[] }).jobs[0]!;
  const side = job[rw];
  return { bytesPerSecond: side.bw_bytes, iops: side.iops, seconds: job.job_runtime / 1000, bytes: side.io_bytes };
}

interface FioSide {
  bw_bytes: number;
  iops: number;
  io_bytes: number;
}

function common(device: string, sizeBytes: number): string[] {
  return [`--filename=${device}`, '--ioengine=libaio', '--direct=1', `--iodepth=${IODEPTH}`, `--size=${sizeBytes}`, `--randseed=${FIO_SEED}`, '--group_reporting'];
}

/** Half-compressible data, new for every write (as an application's would be; zstd gets about 2×). */
const DATA = ['--refill_buffers', '--buffer_compress_percentage=50', '--buffer_compress_chunk=4k'];

function randomWriteArgs(device: string, s: Settings, sizeBytes: number): string[] {
  return ['--name=rand4k', ...common(device, sizeBytes), '--rw=randwrite', '--bs=4k', `--io_size=${s.writeBytes}`, '--norandommap', ...DATA, '--end_fsync=1'];
}

/** A zone of the volume: its length, and the bytes of each run in it. */
function zoning(s: Settings, sizeBytes: number): { range: number; run: number } {
  const range = Math.floor(sizeBytes / s.zones / MiB) * MiB;
  return { range, run: Math.min(range, Math.floor(s.writeBytes / s.zones / MiB) * MiB) };
}

function sequentialWriteArgs(device: string, s: Settings, sizeBytes: number): string[] {
  const z = zoning(s, sizeBytes);
  // One run at the start of each zone; where the amount exceeds the volume (1 GiB), fio wraps round and writes it again.
  return ['--name=seq1m', ...common(device, sizeBytes), '--rw=write', '--bs=1M', '--zonemode=strided', `--zonerange=${z.range}`, `--zonesize=${z.run}`, `--io_size=${s.writeBytes}`, ...DATA, '--end_fsync=1'];
}

function readArgs(device: string, s: Settings, sizeBytes: number): string[] {
  const z = zoning(s, sizeBytes);
  return ['--name=read1m', ...common(device, sizeBytes), '--rw=read', '--bs=1M', '--readonly', '--zonemode=strided', `--zonerange=${z.range}`, `--zonesize=${s.readBytes / s.zones}`, `--io_size=${s.readBytes}`];
}

// --- the archive alone, in a child process (a fresh heap, as `salvo restore` on another host)

interface ArchiveChildReport {
  viewOpenMs: number;
  segments: number;
  openMs: number;
  firstByteMs: number;
  window: number;
  indexBytes: number;
  rssBytes: number;
}

async function archiveChild(archive: string, label: string): Promise<ArchiveChildReport> {
  const elapsed = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
  const store = new DirectoryStore(archive);
  let started = process.hrtime.bigint();
  const view = await ArchiveView.open(store, { cacheBytesMax: 2 * SOURCE_CACHE_BYTES });
  try {
    const viewOpenMs = elapsed(started);
    const point = view.catalog.find(label);
    // A fresh source: the summaries the view's open fetched (and cached) are fetched again, as an open on its own would.
    const source = new SegmentSource(store, view.pool, null, SOURCE_CACHE_BYTES, view.config.volumeId, view.cipher);
    // The listing's knowledge of tail pieces (segments not archived whole) is part of the view's open, not of the summaries.
    for (const [sequence, keys] of view.source.tailKeys) source.tailKeys.set(sequence, [...keys]);
    started = process.hrtime.bigint();
    const snapshot = await Snapshot.open(point, view.config, source);
    const openMs = elapsed(started);
    await snapshot.read(0, 4096);
    const firstByteMs = elapsed(started);
    return { viewOpenMs, segments: view.segments.length, openMs, firstByteMs, window: snapshot.window.length, indexBytes: snapshot.memoryBytes, rssBytes: process.memoryUsage().rss };
  } finally {
    await view.close();
  }
}

function runArchiveChild(archive: string, label: string): Promise<ArchiveChildReport> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [self, CHILD_FLAG, archive, label], { maxBuffer: MiB, timeout: STEP_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`opening ${label} from the archive alone failed: ${stderr || err.message}`));
      resolve(JSON.parse(stdout) as ArchiveChildReport);
    });
  });
}

// --- one size

interface Measured {
  sizeBytes: number;
  /** Why this size has no figures (init refused). */
  refused?: string;
  segmentSizeBytes: number;
  slots: number;
  initS: number;
  mountS: number;
  rssMounted: number;
  indexMounted: number;
  randIops: number;
  seqMBps: number;
  rssAfterWrites: number;
  indexAfterWrites: number;
  indexedBlocks: number;
  openPrimaryS: number;
  snapshotCacheBytes: number;
  rssSnapshotGrowth: number;
  archive: ArchiveChildReport;
  readMBps: number;
  restoreMBps: number;
  restoreDataBytes: number;
  restoreS: number;
  recoveryS: number;
  rssRecovered: number;
  bytesCopiedForward: number;
  catchUpS: number[];
}

interface Status {
  indexBytes: number;
  indexedBlocks: number;
  cacheBytes: number;
  bytesCopiedForward: number;
  segmentSizeBytes: number;
  workingSetSegments: number;
  spareSegments: number;
}

async function status(mount: SalvoMount): Promise<Status> {
  return (await controlRequest<{ status: Status }>(mount.socket, { cmd: 'status' }, 30_000)).status;
}

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/** The one line a refused `salvo …` printed (`salvo: CODE: what — hint`). */
function salvoError(err: unknown): string {
  const text = (err as Error).message;
  return /salvo: [A-Z_]+: [^/]*/.exec(text)?.[0].trim() ?? text;
}

async function measureSize(options: BenchOptions, s: Settings, sizeBytes: number): Promise<Measured | { sizeBytes: number; refused: string }> {
  const { log } = options;
  const name = `${sizeBytes / MiB}M`;
  const base = path.join(options.workDir, name);
  const dir = path.join(base, 'volume');
  const archive = path.join(base, 'archive');
  const mountpoint = path.join(base, 'mnt');
  fs.mkdirSync(mountpoint, { recursive: true });
  return withCleanup(log, async (cleanup) => {
    cleanup.add(`rm -r ${base}`, () => fs.promises.rm(base, { recursive: true, force: true }));
    // 1. init, the default policy for the size
    let started = process.hrtime.bigint();
    try {
      await salvo(['init', dir, '--size', String(sizeBytes), '--archive', archive, '--json'], { timeoutMs: STEP_TIMEOUT_MS });
    } catch (err) {
      log(`${formatBytes(sizeBytes)}: init refused: ${(err as Error).message}`);
      return { sizeBytes, refused: salvoError(err) };
    }
    const initS = seconds(started);
    // 2. mount
    started = process.hrtime.bigint();
    let mount = await mountExisting(cleanup, dir, mountpoint, archive);
    const mountS = seconds(started);
    const mounted = await status(mount);
    const rssMounted = residentBytes(mount.pid).rss;
    const slots = mounted.workingSetSegments + mounted.spareSegments;
    log(`${formatBytes(sizeBytes)}: init ${num(initS)} s (${slots} slots of ${formatBytes(mounted.segmentSizeBytes)}), mount ${num(mountS)} s, RSS ${num(rssMounted / MiB)} MiB, index ${num(mounted.indexBytes / MiB)} MiB`);
    const catchUpS: number[] = [];

    // 3. random 4 KiB writes over the whole volume, then the `rand` point
    const live = await attachLoop(cleanup, mount.image, { directIo: true });
    const rand = await fio(randomWriteArgs(live.device, s, sizeBytes), 'write');
    log(`${formatBytes(sizeBytes)}: random 4k writes ${num(rand.iops)} IOPS over ${num(rand.seconds)} s`);
    await salvo(['sync', mountpoint, '--label', 'rand']);
    catchUpS.push(await archiveCatchUp(mount.socket));

    // 4. the `rand` point through the mount
    const before = { cache: (await status(mount)).cacheBytes, rss: residentBytes(mount.pid).rss };
    started = process.hrtime.bigint();
    const handle = await fs.promises.open(path.join(mountpoint, 'snapshots/by-label/rand.img'), 'r');
    try {
      await handle.read(Buffer.alloc(4096), 0, 4096, 0);
    } finally {
      await handle.close();
    }
    const openPrimaryS = seconds(started);
    const snapshotCacheBytes = (await status(mount)).cacheBytes - before.cache;
    const rssSnapshotGrowth = residentBytes(mount.pid).rss - before.rss;
    log(`${formatBytes(sizeBytes)}: rand point opened through the mount in ${num(openPrimaryS)} s, caches +${num(snapshotCacheBytes / MiB)} MiB, RSS +${num(rssSnapshotGrowth / MiB)} MiB`);

    // 5. sequential 1 MiB writes in runs spread over the volume, then the `seq` point
    const seq = await fio(sequentialWriteArgs(live.device, s, sizeBytes), 'write');
    log(`${formatBytes(sizeBytes)}: sequential 1M writes ${num(seq.bytesPerSecond / 1e6)} MB/s over ${num(seq.seconds)} s`);
    await salvo(['sync', mountpoint, '--label', 'seq']);
    catchUpS.push(await archiveCatchUp(mount.socket));
    await live.detach();
    const written = await status(mount);
    const rssAfterWrites = residentBytes(mount.pid).rss;

    // 6. the `seq` point read through FUSE
    const snapshotFile = fs.realpathSync(path.join(mountpoint, 'snapshots/by-label/seq.img'));
    const past = await attachLoop(cleanup, snapshotFile, { readOnly: true, directIo: true });
    const read = await fio(readArgs(past.device, s, sizeBytes), 'read');
    await past.detach();
    if (read.bytes < s.readBytes) throw new Error(`the snapshot read stopped after ${read.bytes} bytes of ${s.readBytes}`);
    log(`${formatBytes(sizeBytes)}: snapshot read ${num(read.bytesPerSecond / 1e6)} MB/s`);

    // 7. the `rand` point from the archive directory alone
    const archived = await runArchiveChild(archive, 'rand');
    log(`${formatBytes(sizeBytes)}: archive alone: view open ${num(archived.viewOpenMs / 1000)} s (${archived.segments} segments), rand point open ${num(archived.openMs / 1000)} s`);

    // 8. restore of the `seq` point from the archive
    // Onto tmpfs: ext4 files stop 4 KiB short of 16 TiB, and freeing a sparse image of millions of extents there
    // takes minutes that would run into the next size's figures.
    const roomy = path.join(base, 'restore-tmpfs');
    await fs.promises.mkdir(roomy);
    await exec('mount', ['-t', 'tmpfs', '-o', `size=${2 * s.writeBytes + GiB}`, 'salvo-bench', roomy]);
    cleanup.add(`umount ${roomy}`, () => exec('umount', [roomy]));
    const out = path.join(roomy, 'restored.img');
    const restored = JSON.parse((await salvo(['restore', archive, out, '--at', 'seq', '--json'], { timeoutMs: STEP_TIMEOUT_MS })).stdout) as { bytesWritten: number; seconds: number };
    await fs.promises.rm(out, { force: true });
    log(`${formatBytes(sizeBytes)}: restore ${formatBytes(restored.bytesWritten)} of data in ${num(restored.seconds)} s`);

    // 9. kill -9 and recovery
    const owner = VolumeLock.owner(dir);
    if (owner === null || owner !== mount.pid) throw new Error(`the volume's lock names ${owner}, the mount says ${mount.pid}`);
    process.kill(owner, 'SIGKILL');
    await waitFor('the killed mount to exit', () => !isProcessAlive(owner), 30_000);
    started = process.hrtime.bigint();
    mount = await mountExisting(cleanup, dir, mountpoint, archive);
    const recoveryS = seconds(started);
    const rssRecovered = residentBytes(mount.pid).rss;
    log(`${formatBytes(sizeBytes)}: remounted after kill -9 in ${num(recoveryS)} s, RSS ${num(rssRecovered / MiB)} MiB`);
    await mount.unmount();
    if (isMounted(mountpoint)) throw new Error(`${mountpoint} is still mounted`);
    return {
      sizeBytes,
      segmentSizeBytes: mounted.segmentSizeBytes,
      slots,
      initS,
      mountS,
      rssMounted,
      indexMounted: mounted.indexBytes,
      randIops: rand.iops,
      seqMBps: seq.bytesPerSecond / 1e6,
      rssAfterWrites,
      indexAfterWrites: written.indexBytes,
      indexedBlocks: written.indexedBlocks,
      openPrimaryS,
      snapshotCacheBytes,
      rssSnapshotGrowth,
      archive: archived,
      readMBps: read.bytesPerSecond / 1e6,
      restoreMBps: restored.bytesWritten / 1e6 / restored.seconds,
      restoreDataBytes: restored.bytesWritten,
      restoreS: restored.seconds,
      recoveryS,
      rssRecovered,
      bytesCopiedForward: written.bytesCopiedForward,
      catchUpS,
    };
  });
}

// --- the table

function table(s: Settings, results: (Measured | { sizeBytes: number; refused: string })[]): Table {
  const measured = results.filter((r): r is Measured => !('refused' in r) || r.refused === undefined);
  const reference = measured[0];
  const mib = (bytes: number) => num(bytes / MiB);
  const rows = results.map((r) => {
    if ('refused' in r && r.refused !== undefined) return [formatBytes(r.sizeBytes), 'refused', ...new Array(15).fill('–')];
    const m = r as Measured;
    return [
      formatBytes(m.sizeBytes),
      `${m.slots} × ${formatBytes(m.segmentSizeBytes)}`,
      num(m.initS),
      num(m.mountS),
      mib(m.rssMounted),
      num(m.randIops),
      num(m.seqMBps),
      mib(m.rssAfterWrites),
      `${mib(m.indexMounted)} → ${mib(m.indexAfterWrites)}`,
      num(m.openPrimaryS),
      `${num(m.archive.openMs / 1000)} (+ ${num(m.archive.viewOpenMs / 1000)})`,
      `${mib(m.snapshotCacheBytes)} / ${mib(m.archive.indexBytes)}`,
      mib(m.rssSnapshotGrowth),
      num(m.readMBps),
      reference ? `${(m.readMBps / reference.readMBps).toFixed(2)}×` : '–',
      num(m.restoreMBps),
      num(m.recoveryS),
    ];
  });
  const refusals = results.filter((r): r is { sizeBytes: number; refused: string } => 'refused' in r && r.refused !== undefined).map((r) => `${formatBytes(r.sizeBytes)}: \`salvo init\` refused the default policy: “${r.refused}”.`);
  const z = (size: number) => zoning(s, size);
  return {
    title: `the same writes on volumes of every size: ${formatBytes(s.writeBytes)} of random 4 KiB writes, then ${formatBytes(s.writeBytes)} of sequential 1 MiB writes, default policies`,
    columns: [
      'volume',
      'slots (default policy)',
      'init (s)',
      'mount (s)',
      'RSS mounted (MiB)',
      'rand 4k write (IOPS)',
      'seq 1M write (MB/s)',
      'RSS after writes (MiB)',
      'live index (MiB): mounted → after writes',
      'open rand point, mount (s)',
      'open rand point, archive alone (s) (+ archive open)',
      'snapshot memory (MiB): mount caches / index',
      'RSS + snapshot open (MiB)',
      'snapshot read (MB/s)',
      `read vs ${reference ? formatBytes(reference.sizeBytes) : 'first'}`,
      'restore (MB/s of data)',
      'recovery after kill -9 (s)',
    ],
    rows,
    notes: [
      ...refusals,
      'every step through the CLI and the mount, as users do: `salvo init <dir> --size S --archive <dir>` with the default policy (the slots column: working set + 8 spare, each a sparse slot file; the volume and the archive directory on the same local disk), `salvo mount --daemon`, fio (libaio, direct=1, iodepth 16) on a `losetup --direct-io=on` loop device of `<mnt>/live/volume.img`, `salvo sync --label`, then the wait until the archive has caught up (control socket) before anything is measured.',
      `writes: fio randwrite 4k with --size the whole volume and --io_size ${formatBytes(s.writeBytes)} (norandommap: ${num(s.writeBytes / 4096)} writes at uniformly random offsets, a few land twice), then sequential 1M writes of ${formatBytes(s.writeBytes)} in one run at the start of each 1/${s.zones}th of the volume (fio zonemode=strided: runs of ${results.map((r) => `${formatBytes(z(r.sizeBytes).run)}`).filter((v, i, a) => a.indexOf(v) === i).join(' or ')}; where the runs cover the whole volume, fio goes round it again). Same seed, same half-compressible data (refill_buffers, buffer_compress_percentage=50) for every size; each job ends with an fsync.`,
      'RSS: VmRSS of the mount process (/proc/<pid>/status) just after `salvo mount` returned, and after both write phases and the archive’s catch-up. Live index: `indexBytes` of `salvo status` (the sparse block map).',
      'open rand point, mount: open() of `<mnt>/snapshots/by-label/rand.img` and its first 4 KiB read, just after the `rand` point (its window holds the random writes; on the smallest volume, whose working set is only about 4 GiB, some of its summaries already come from the archive). Archive alone: a separate process opens the archive directory (`ArchiveView.open`: one listing and every segment’s summary, as `salvo restore`/`salvo list` do; in brackets) and then opens the same point with a fresh segment source (its window’s summaries fetched from the archive again) and reads 4 KiB.',
      'snapshot memory: what the mount’s snapshot and chunk caches grew by when the point opened (`cacheBytes` of status), and the index of the same point as the archive-alone process built it (`Snapshot.memoryBytes`); RSS + snapshot open: the mount’s VmRSS growth over the open.',
      `snapshot read: fio sequential 1M reads (direct, iodepth 16) of the \`seq\` point through a read-only \`--direct-io=on\` loop device on its snapshot file, so every request reaches the FUSE server: ${formatBytes(s.readBytes / s.zones)} at the start of each of the ${s.zones} runs the sequential writes wrote (${formatBytes(s.readBytes)}, the same reads on every size, at offsets scaled to it). The ratio compares each size with the first one of the same run.`,
      'restore: `salvo restore <archive dir> out.img --at seq --json` (the archive alone, a sparse image of the volume’s size, onto a tmpfs: ext4 files stop 4 KiB short of 16 TiB), the data bytes it wrote over the seconds it reports; the image is deleted afterwards.',
      'recovery: kill -9 of the mount process (pid from the volume’s lock), then `salvo mount --daemon` on the same (dead) mountpoint, timed until it serves again: recovery (backward scan of the working set), the archive’s reconciliation, the FUSE mount, and the CLI’s own start (compare the mount column).',
      ...measured.map(
        (m) =>
          `${formatBytes(m.sizeBytes)}: ${num(m.indexedBlocks)} blocks indexed after the writes; copied forward ${formatBytes(m.bytesCopiedForward)}; archive caught up ${m.catchUpS.map((c) => num(c)).join(' s and ')} s after each phase; rand point's window ${m.archive.window} segments, archive listing found ${m.archive.segments} segments, archive-alone process RSS ${num(m.archive.rssBytes / MiB)} MiB; restore wrote ${formatBytes(m.restoreDataBytes)} in ${num(m.restoreS)} s; RSS after recovery ${num(m.rssRecovered / MiB)} MiB.`,
      ),
      'one measurement per size (each size takes minutes), on a shared 2-core VM where other benchmarks may run at the same time: read differences under ~15–20% as noise.',
    ],
  };
}

export const bench: Benchmark = {
  name: 'big-volume',
  title: 'Volumes of the sizes users have',
  description:
    'The same writes (random 4 KiB, then sequential 1 MiB, spread over the whole volume) on 1 GiB, 256 GiB, 4 TiB and 16 TiB volumes with `salvo init`’s default policy, side by side, through the CLI, the mount and loop devices: init and mount time, the mount’s RSS and live index before and after the writes, the open of a point whose window holds the random writes through the mount and from the archive directory alone (time and memory), snapshot read MB/s through FUSE and its ratio to the smallest volume, restore MB/s, and the remount after kill -9.',
  async run(options): Promise<BenchResult> {
    const unavailable = await fuseLoopUnavailable();
    if (unavailable) return { tables: [], skipped: unavailable };
    const s = settings(options);
    const results: (Measured | { sizeBytes: number; refused: string })[] = [];
    for (const size of s.sizes) results.push(await measureSize(options, s, size));
    return { tables: [table(s, results)] };
  },
};

runIfMain(import.meta.url, bench, { flag: CHILD_FLAG, run: (args) => archiveChild(args[0]!, args[1]!) });
