/**
 * The engine alone (lib/volume, no FUSE): write and read throughput on a Volume, one request
 * at a time as FUSE hands them over, and recovery time (Volume.open after a crash) against
 * the number of segments in the working set.
 *
 * Writes run with the archiver working as it does in a mount (compression in its worker
 * pool, a local archive directory); the time the archive then needs to catch up is reported
 * apart, and a sustained rate that counts it. The random writes run twice: as they come, and
 * with every slot's cached pages dropped first (a volume after a reboot). A crash is simulated by copying the volume
 * directory while the volume is open (every acknowledged write is in the OS, nothing is
 * closed), then opening the copy; and again with the summary sidecars deleted (recovery
 * then scans every segment).
 *
 *   node dist/bench/engine.js [--quick] [--runs N]
 */
import fs from 'node:fs';
import path from 'node:path';
import { MemoryStore } from '../lib/archive/memory-store.js';
import { dropCache } from '../lib/util/page-cache.js';
import { openVolume } from '../lib/cli/volume-access.js';
import { slotsDirectory } from '../lib/volume/files.js';
import type { Volume } from '../lib/volume/volume.js';
import { BLOCK_BYTES, createVolume, prng, synch, untilSegment, writeHistory, type HistoryKind, type Policy } from './history.js';
import { MiB, cell, mbps, ms, num, runIfMain, summarize, type Benchmark, type BenchOptions, type BenchResult, type Table } from './common.js';

interface Settings {
  policy: Policy;
  writeBytes: Record<HistoryKind, number>;
  randomReads: number;
  recovery: { workingSets: number[]; segmentSizeBytes: number; sizeBytes: number };
}

function settings(options: BenchOptions): Settings {
  return options.quick
    ? {
        policy: { sizeBytes: 16 * MiB, segmentSizeBytes: 1 * MiB, workingSetSegments: 24, spareSegments: 4 },
        writeBytes: { seq128k: 24 * MiB, rand4k: 8 * MiB },
        randomReads: 2000,
        recovery: { workingSets: [24], segmentSizeBytes: 1 * MiB, sizeBytes: 16 * MiB },
      }
    : {
        policy: { sizeBytes: 256 * MiB, segmentSizeBytes: 16 * MiB, workingSetSegments: 32, spareSegments: 8 },
        writeBytes: { seq128k: 512 * MiB, rand4k: 128 * MiB },
        randomReads: 100_000,
        recovery: { workingSets: [8, 32, 64], segmentSizeBytes: 16 * MiB, sizeBytes: 64 * MiB },
      };
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function throughput(options: BenchOptions, s: Settings): Promise<Table[]> {
  const { log, runs } = options;
  const base = path.join(options.workDir, 'throughput');
  const { volume } = await createVolume(base, s.policy);
  try {
    const series = () => ({ rate: [] as number[], iops: [] as number[], catchUp: [] as number[], sustained: [] as number[] });
    /** cold: rand4k into slots whose pages were dropped first. */
    const samples = { seq128k: series(), rand4k: series(), cold: series() };
    const reads = { seq: [] as number[], rand: [] as number[] };
    const state = { n: 0, seed: 11 };
    const timedWrites = async (kind: HistoryKind, into: (typeof samples)[HistoryKind], what: string): Promise<void> => {
      const started = process.hrtime.bigint();
      const { writes, bytes } = await writeHistory(volume, kind, (_w, b) => b >= s.writeBytes[kind], state);
      const t = seconds(started);
      const idleStart = process.hrtime.bigint();
      await volume.idle();
      const catchUp = seconds(idleStart);
      into.rate.push(bytes / t);
      into.iops.push(writes / t);
      into.catchUp.push(catchUp);
      into.sustained.push(bytes / (t + catchUp));
      log(`${what} ${kind}: ${mbps(bytes / t)} MB/s, ${num(writes / t)} writes/s, archive caught up in ${catchUp.toFixed(2)} s`);
    };
    // Fill the volume first, so reads read data and later writes overwrite (copy-forward comes into play).
    await writeHistory(volume, 'seq128k', (_w, bytes) => bytes >= s.policy.sizeBytes, state);
    await volume.idle();
    for (let run = 0; run < runs; run++) {
      for (const kind of ['seq128k', 'rand4k'] as HistoryKind[]) await timedWrites(kind, samples[kind], `run ${run + 1}`);
      // Reads: sequential 128 KiB over the whole volume, then random 4 KiB.
      const buf = Buffer.allocUnsafe(128 * 1024);
      let started = process.hrtime.bigint();
      for (let pos = 0; pos < s.policy.sizeBytes; pos += buf.length) volume.readInto(buf, pos);
      reads.seq.push(s.policy.sizeBytes / seconds(started));
      const small = buf.subarray(0, BLOCK_BYTES);
      const random = prng(run + 3);
      const blocks = s.policy.sizeBytes / BLOCK_BYTES;
      started = process.hrtime.bigint();
      for (let i = 0; i < s.randomReads; i++) volume.readInto(small, Math.floor(random() * blocks) * BLOCK_BYTES);
      reads.rand.push(s.randomReads / seconds(started));
      log(`run ${run + 1} reads: ${mbps(reads.seq.at(-1)!)} MB/s sequential, ${num(reads.rand.at(-1)!)} random reads/s`);
    }
    // Last, as the reads above want the slots' pages cached.
    for (let run = 0; run < runs; run++) {
      await dropSlotPages(volume);
      await timedWrites('rand4k', samples.cold, `run ${run + 1} cold`);
    }
    const quiet = await withoutArchiving(options, s);
    const st = volume.status();
    const mb = (v: number[]) => cell(summarize(v.map((x) => x / 1e6)));
    const p = s.policy;
    return [
      {
        title: `engine writes and reads: ${num(p.sizeBytes / MiB)} MiB volume, ${num(p.segmentSizeBytes / MiB)} MiB segments × ${p.workingSetSegments}, one request at a time`,
        columns: ['operation', 'MB/s', 'requests/s', 'archive catch-up after (s)', 'MB/s counting catch-up'],
        rows: [
          [`write 128k sequential (${num(s.writeBytes.seq128k / MiB)} MiB a run)`, mb(samples.seq128k.rate), cell(summarize(samples.seq128k.iops)), cell(summarize(samples.seq128k.catchUp)), mb(samples.seq128k.sustained)],
          [`write 4k random (${num(s.writeBytes.rand4k / MiB)} MiB a run)`, mb(samples.rand4k.rate), cell(summarize(samples.rand4k.iops)), cell(summarize(samples.rand4k.catchUp)), mb(samples.rand4k.sustained)],
          [`write 4k random into cold slots (every slot's pages dropped first, as after a reboot)`, mb(samples.cold.rate), cell(summarize(samples.cold.iops)), cell(summarize(samples.cold.catchUp)), mb(samples.cold.sustained)],
          [`write 128k sequential, archive unreachable (no archiving)`, mb(quiet.seq128k), cell(summarize(quiet.seq128k.map((v) => v / (128 * 1024)))), '–', '–'],
          [`write 4k random, archive unreachable (no archiving)`, mb(quiet.rand4k), cell(summarize(quiet.rand4k.map((v) => v / BLOCK_BYTES))), '–', '–'],
          ['read 128k sequential (whole volume)', mb(reads.seq), cell(summarize(reads.seq.map((v) => v / (128 * 1024)))), '–', '–'],
          [`read 4k random (${num(s.randomReads)} reads)`, mb(reads.rand.map((v) => v * BLOCK_BYTES)), cell(summarize(reads.rand)), '–', '–'],
        ],
        notes: [
          `over the whole run: ${num(st.bytesWritten / MiB)} MiB written by the application, ${num(st.bytesCopiedForward / MiB)} MiB copied forward (write amplification ${((st.bytesWritten + st.bytesCopiedForward) / st.bytesWritten).toFixed(2)}), archived ${num(st.archive.rawBytesArchived / MiB)} MiB raw as ${num(st.archive.storedBytesArchived / MiB)} MiB (ratio ${st.archive.compressionRatio?.toFixed(2) ?? '–'}).`,
          'block data is half random, half text: zstd compresses it about 2:1.',
        ],
      },
    ];
  } finally {
    await volume.close();
  }
}

/**
 * The same writes with an archive that refuses every request: nothing is compressed or
 * uploaded, sealed segments wait in spare slots (enough of them for the whole run). The
 * difference to the rows above is what archiving costs the writer on this machine.
 */
async function withoutArchiving(options: BenchOptions, s: Settings): Promise<Record<HistoryKind, number[]>> {
  const out: Record<HistoryKind, number[]> = { seq128k: [], rand4k: [] };
  const store = new MemoryStore();
  const p = s.policy;
  const segmentsNeeded = Math.ceil((p.sizeBytes + options.runs * (s.writeBytes.seq128k + s.writeBytes.rand4k) * 1.1) / p.segmentSizeBytes) + 2;
  const base = path.join(options.workDir, 'no-archive');
  const spareSegments = Math.max(p.spareSegments, segmentsNeeded);
  const { volume } = await createVolume(base, { ...p, spareSegments }, { store });
  try {
    const state = { n: 0, seed: 11 };
    // Every slot holds a segment once while the archive still works, so that the runs write into
    // recycled slots, as a volume in use does: a slot never used writes into fresh page-cache
    // pages, which costs more here than archiving does (the first-fill rows of fuse-io).
    await writeHistory(volume, 'seq128k', untilSegment(volume, p.workingSetSegments + spareSegments + 1), state);
    await volume.idle();
    // Nothing reads the archive again here; a GiB of objects left in the heap would slow every write after (GC).
    store.objects.clear();
    store.failing = true;
    await writeHistory(volume, 'seq128k', (_w, bytes) => bytes >= p.sizeBytes, state);
    for (let run = 0; run < options.runs; run++) {
      for (const kind of ['seq128k', 'rand4k'] as HistoryKind[]) {
        const started = process.hrtime.bigint();
        const { bytes } = await writeHistory(volume, kind, (_w, b) => b >= s.writeBytes[kind], state);
        out[kind].push(bytes / seconds(started));
      }
    }
    options.log(`no archiving: ${mbps(out.seq128k[0]!)} MB/s sequential, ${mbps(out.rand4k[0]!)} MB/s random`);
    return out;
  } finally {
    store.failing = false;
    await volume.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

/**
 * Drops every slot file's cached pages (posix_fadvise DONTNEED, after a flush so none is dirty),
 * as a reboot or the kernel's reclaim leaves them: the writes that follow go into slots whose old
 * bytes are on the disk only (the log reads the current one ahead of them: pacing.ts).
 */
async function dropSlotPages(volume: Volume): Promise<void> {
  await volume.flush();
  const slots = slotsDirectory(volume.dir);
  for (const name of fs.readdirSync(slots).filter((f) => f.endsWith('.slot'))) {
    const handle = await fs.promises.open(path.join(slots, name), 'r');
    try {
      await dropCache(handle.fd);
    } finally {
      await handle.close();
    }
  }
}

/** Opens `dir` and closes it again; returns the seconds Volume.open took. */
async function timedOpen(dir: string): Promise<number> {
  const started = process.hrtime.bigint();
  const opened = await openVolume(dir, { onStall: () => undefined });
  const t = seconds(started);
  await opened.close();
  return t;
}

function removeSidecars(dir: string): number {
  const slots = path.join(dir, 'slots');
  const sums = fs.readdirSync(slots).filter((f) => f.endsWith('.sum'));
  for (const f of sums) fs.rmSync(path.join(slots, f));
  return sums.length;
}

async function recovery(options: BenchOptions, s: Settings): Promise<Table> {
  const { log, runs } = options;
  const rows: string[][] = [];
  for (const workingSet of s.recovery.workingSets) {
    const base = path.join(options.workDir, `recovery-${workingSet}`);
    const policy = { sizeBytes: s.recovery.sizeBytes, segmentSizeBytes: s.recovery.segmentSizeBytes, workingSetSegments: workingSet, spareSegments: 4 };
    const { dir, volume } = await createVolume(base, policy);
    const crashed = path.join(base, 'crashed');
    let extents = 0;
    try {
      // Random 4 KiB writes (the most records per segment) until the working set is full and retiring.
      const state = { n: 0, seed: 5 };
      await writeHistory(volume, 'rand4k', untilSegment(volume, Math.ceil(workingSet / 2)), state);
      await synch(volume, 'half');
      await writeHistory(volume, 'rand4k', untilSegment(volume, workingSet + 2), state);
      await writeHistory(volume, 'rand4k', (w) => w >= 1000, state); // a partly written current segment
      for (const slot of volume.internals.log.workingSet()) extents += slot.summary?.extentCount ?? 0;
      // The crash: copy while open (every acknowledged write is in the OS; nothing was closed).
      // The archive catches up first, so no slot is recycled under the copy.
      await volume.idle();
      await fs.promises.cp(dir, crashed, { recursive: true });
      fs.rmSync(path.join(crashed, 'lock'), { force: true });
    } finally {
      await volume.close();
    }
    const withSidecars: number[] = [];
    const fullScan: number[] = [];
    for (let run = 0; run < runs; run++) {
      withSidecars.push(await timedOpen(crashed));
      removeSidecars(crashed);
      fullScan.push(await timedOpen(crashed));
    }
    log(`working set ${workingSet}: open ${(withSidecars[0]! * 1000).toFixed(0)} ms, full scan ${(fullScan[0]! * 1000).toFixed(0)} ms`);
    rows.push([
      String(workingSet),
      num((workingSet * policy.segmentSizeBytes) / MiB),
      num(extents),
      cell(summarize(withSidecars.map((t) => t * 1000)), ms),
      cell(summarize(fullScan.map((t) => t * 1000)), ms),
    ]);
    fs.rmSync(base, { recursive: true, force: true });
  }
  return {
    title: `recovery after a crash: Volume.open of a copy taken while open (${num(s.recovery.sizeBytes / MiB)} MiB volume, random 4k history, ${num(s.recovery.segmentSizeBytes / MiB)} MiB segments)`,
    columns: ['working set (segments)', 'log on primary (MiB)', 'extents in the working set', 'open (ms), sidecars present', 'open (ms), sidecars deleted: every segment scanned'],
    rows,
    notes: ['open = recover the slots (current segment scanned to its torn end), rebuild the index by the backward scan, load the catalog, list the archive; sealed segments it holds count as archived once their objects are checked (8 at a time), the rest are queued for it.'],
  };
}

export const bench: Benchmark = {
  name: 'engine',
  title: 'Engine throughput and recovery',
  description:
    'Volume.write/readInto directly (no FUSE), one request at a time, with the archiver running (and, for comparison, with an archive that refuses every request, so nothing is archived); recovery time of Volume.open after a crash against working-set length, with and without the summary sidecars.',
  async run(options): Promise<BenchResult> {
    const s = settings(options);
    const tables = await throughput(options, s);
    tables.push(await recovery(options, s));
    return { tables };
  },
};

runIfMain(import.meta.url, bench);
