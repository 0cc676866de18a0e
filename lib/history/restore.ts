/**
 * Restore: write the volume as of a synch point to an image file, from primary storage and
 * the archive, or from the archive alone. Unwritten blocks stay holes (the file is sparse),
 * and nothing is written over an existing file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { VolumeError, errnoCode } from '../errors.js';
import { formatBytes } from '../format/units.js';
import type { Snapshot } from './snapshot.js';
import type { SegmentSource } from './segment-source.js';
import { syncDirectory } from '../volume/files.js';

/** Runs of blocks read at once, to hide archive latency. */
const RUNS_IN_FLIGHT = 4;

/**
 * Archived chunks fetched ahead of the reads. Runs in log order mostly share a chunk (a
 * random-write history packs ~250 runs into one), so reading runs in parallel alone keeps
 * about one fetch in flight; the read-ahead keeps this many. It stays within this many
 * chunks of the reads, so the cache never evicts a chunk before it is read.
 */
const CHUNKS_AHEAD = 8;

export interface RestorePlan {
  /** Segments of the window whose summary the backward scan read from the archive (not on primary). */
  summariesFromArchive: number;
  /** Segments of the window the restore reads data from, on primary storage / from the archive. */
  segmentsOnPrimary: number;
  segmentsFromArchive: number;
  /** Bytes of block entries read from primary storage. */
  bytesFromPrimary: number;
  /** Compressed bytes of archive chunks fetched, and the requests to fetch them. */
  bytesFromArchive: number;
  archiveRequests: number;
  /** Blocks with data, and blocks left as holes. */
  blocksWithData: number;
  holes: number;
}

/** What a restore of `snapshot` would read, without reading any block. */
export async function planRestore(snapshot: Snapshot, source: SegmentSource): Promise<RestorePlan> {
  const { sizeBytes, blockSizeBytes } = snapshot.geometry;
  const blocks = sizeBytes / blockSizeBytes;
  const entrySize = 4 + blockSizeBytes;
  const plan: RestorePlan = { summariesFromArchive: snapshot.window.filter((s) => !source.onPrimary(s)).length, segmentsOnPrimary: 0, segmentsFromArchive: 0, bytesFromPrimary: 0, bytesFromArchive: 0, archiveRequests: 0, blocksWithData: 0, holes: 0 };
  // The entries by segment, from the index: never a walk over every block of the volume.
  const offsetsBySegment = new Map<number, number[]>();
  snapshot.forEachEntry((_block, sequence, offset) => {
    let offsets = offsetsBySegment.get(sequence);
    if (!offsets) offsetsBySegment.set(sequence, (offsets = []));
    offsets.push(offset);
  });
  for (const [sequence, offsets] of offsetsBySegment) {
    plan.blocksWithData += offsets.length;
    if (source.onPrimary(sequence)) {
      plan.segmentsOnPrimary++;
      plan.bytesFromPrimary += offsets.length * entrySize;
      continue;
    }
    plan.segmentsFromArchive++;
    const chunks = new Set<string>();
    for (const { key, index } of await source.pieces(sequence)) {
      const { rawStart, rawEnd, chunkSizeBytes } = index.header;
      for (const offset of offsets) {
        if (offset + entrySize <= rawStart || offset >= rawEnd) continue;
        const firstChunk = Math.floor((Math.max(offset, rawStart) - rawStart) / chunkSizeBytes);
        const lastChunk = Math.floor((Math.min(offset + entrySize, rawEnd) - 1 - rawStart) / chunkSizeBytes);
        for (let c = firstChunk; c <= lastChunk; c++) {
          const id = `${key}#${c}`;
          if (!chunks.has(id)) plan.bytesFromArchive += index.chunks[c]!.compressedLength;
          chunks.add(id);
        }
      }
    }
    plan.archiveRequests += chunks.size;
  }
  plan.holes = blocks - plan.blocksWithData;
  return plan;
}

/** Writes the snapshot to `target`, which must not exist. Reports progress in bytes of data. */
export async function restoreSnapshot(
  snapshot: Snapshot,
  target: string,
  onProgress: (done: number, total: number) => void = () => undefined,
): Promise<{ bytesWritten: number }> {
  const { sizeBytes, blockSizeBytes } = snapshot.geometry;
  let fd: number;
  try {
    fd = fs.openSync(target, 'wx', 0o600);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') throw new VolumeError('EXISTS', `${target} already exists`, { hint: 'restore never overwrites a file; choose a new name' });
    throw VolumeError.badInput(`cannot create ${target}: ${(err as Error).message}`);
  }
  let complete = false;
  try {
    try {
      fs.ftruncateSync(fd, sizeBytes);
    } catch (err) {
      if (errnoCode(err) !== 'EFBIG') throw err;
      throw VolumeError.badInput(`the filesystem of ${target} cannot hold a file of ${formatBytes(sizeBytes)}`, 'restore onto xfs, btrfs or tmpfs (ext4 files stop 4 KiB short of 16 TiB)');
    }
    // Blocks go in log order, not block order: each archived chunk is then fetched once.
    const { starts, lengths } = snapshot.runsInLogOrder();
    const total = lengths.reduce((n, l) => n + l, 0) * blockSizeBytes;
    let bytesWritten = 0;
    let next = 0;
    let done = 0;
    const ahead = new ChunkReadAhead(snapshot, starts);
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < starts.length && !failed) {
        const run = next++;
        ahead.reading(run);
        const bytes = await snapshot.read(starts[run]! * blockSizeBytes, lengths[run]! * blockSizeBytes);
        bytesWritten += writeSparse(fd, bytes, starts[run]! * blockSizeBytes, blockSizeBytes);
        done += bytes.length;
        onProgress(done, total);
      }
    };
    // On a failure the other workers stop, and all settle before the descriptor is closed: a
    // worker still reading then would write through a number the next open may reuse.
    const workers = Array.from({ length: RUNS_IN_FLIGHT }, () =>
      worker().catch((err: unknown) => {
        failed = true;
        ahead.stop();
        throw err;
      }),
    );
    const settled = await Promise.allSettled([...workers, ahead.run()]);
    ahead.stop();
    const failure = settled.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
    fs.fsyncSync(fd);
    syncDirectory(path.dirname(path.resolve(target))); // the image's name survives a power cut too
    complete = true;
    return { bytesWritten };
  } finally {
    fs.closeSync(fd);
    if (!complete) fs.rmSync(target, { force: true });
  }
}

/**
 * Walks the runs ahead of the reads and fetches the chunks they will need, up to CHUNKS_AHEAD
 * at once and no further than CHUNKS_AHEAD chunks past the run being read. A failed fetch is
 * left to the read of that run, which retries it and reports the error.
 */
class ChunkReadAhead {
  /** Run index at which each chunk fetched ahead is first needed, oldest first. */
  private readonly firstRuns: number[] = [];
  private reader = 0;
  private stopped = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly snapshot: Snapshot,
    private readonly starts: Uint32Array,
  ) {}

  /** The reads have reached run `run`. */
  reading(run: number): void {
    this.reader = Math.max(this.reader, run);
    while (this.firstRuns.length > 0 && this.firstRuns[0]! < this.reader) this.firstRuns.shift();
    this.wake?.();
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  async run(): Promise<void> {
    const inFlight = new Set<Promise<unknown>>();
    let last: string | null = null;
    for (let run = 0; run < this.starts.length && !this.stopped; run++) {
      if (run < this.reader) continue; // the reads are past it already
      let chunk;
      try {
        chunk = await this.snapshot.chunkOf(this.starts[run]!);
      } catch {
        continue; // the read of that run meets the same problem and reports it
      }
      if (!chunk || chunk.name === last) continue;
      while (!this.stopped && (inFlight.size >= CHUNKS_AHEAD || this.firstRuns.length >= CHUNKS_AHEAD)) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          for (const p of inFlight) void p.then(() => resolve());
        });
        this.wake = null;
      }
      last = chunk.name;
      this.firstRuns.push(run);
      const fetching = chunk.fetch().catch(() => undefined);
      inFlight.add(fetching);
      void fetching.then(() => inFlight.delete(fetching));
    }
    await Promise.all(inFlight);
  }
}

/** Writes the non-zero blocks of `bytes` at `position`, leaving zero blocks as holes. */
function writeSparse(fd: number, bytes: Buffer, position: number, blockSizeBytes: number): number {
  const zero = Buffer.alloc(blockSizeBytes);
  let written = 0;
  let runStart = -1;
  const blocks = bytes.length / blockSizeBytes;
  for (let i = 0; i <= blocks; i++) {
    const isData = i < blocks && zero.compare(bytes, i * blockSizeBytes, (i + 1) * blockSizeBytes) !== 0;
    if (isData && runStart < 0) runStart = i;
    if (!isData && runStart >= 0) {
      const run = bytes.subarray(runStart * blockSizeBytes, i * blockSizeBytes);
      fs.writeSync(fd, run, 0, run.length, position + runStart * blockSizeBytes);
      written += run.length;
      runStart = -1;
    }
  }
  return written;
}
