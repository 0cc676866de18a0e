/**
 * A snapshot: the volume as of one synch point, read-only. Its index is rebuilt by the
 * backward scan from the synch point's record over at most `workingSetSegments + 1`
 * segments (FORMAT.md §6) — summaries only — and its reads fetch block entries from primary
 * storage or the archive, verifying each block's CRC before it is served.
 *
 * Index: a BlockMap from each block written in the window to its window segment (0 the newest)
 * and raw offset, or HOLE when its newest entry is a ZERO record; its memory follows the blocks
 * the window wrote, not the volume's size.
 */
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import { firstBadBlock } from '../format/checksum.js';
import { BLOCK_CRC_SIZE, entrySeed } from '../format/record.js';
import type { VolumeConfig } from '../format/volume-config.js';
import { LruCache } from '../util/lru-cache.js';
import { scanBackward } from '../volume/backward-scan.js';
import { BlockMap, HOLE } from '../volume/block-map.js';
import type { SegmentSource } from './segment-source.js';
import type { SegmentSlot } from '../volume/segment-slot.js';
import { synchPointTime, type SynchPoint } from '../volume/synch-point.js';
import { copyCheckedEntries, corruptEntry } from '../volume/block-copy.js';

const debug = createDebug('salvo:snapshot');
/** Summaries fetched at once while opening a snapshot from the archive. */
const SUMMARY_FETCHES_MAX = 8;
/** Blocks per scatter read from a slot: two iovecs each, within the kernel's 1024 (IOV_MAX), as the live reader. */
const SCATTER_BLOCKS_MAX = 256;

export type SnapshotGeometry = Pick<VolumeConfig, 'version' | 'sizeBytes' | 'blockSizeBytes' | 'workingSetSegments'>;

export class Snapshot {
  /** CRCs of a whole-block run read from primary storage (synchronously: one buffer serves every read). */
  private readonly crcs = Buffer.allocUnsafe(SCATTER_BLOCKS_MAX * BLOCK_CRC_SIZE);

  private constructor(
    readonly point: SynchPoint,
    readonly geometry: SnapshotGeometry,
    private readonly source: SegmentSource,
    /** Segment sequences of the window, newest first. */
    readonly window: number[],
    private readonly index: BlockMap,
  ) {}

  /** Opens the volume as of `point`: its index rebuilt by the backward scan. */
  static async open(point: SynchPoint, geometry: SnapshotGeometry, source: SegmentSource): Promise<Snapshot> {
    const started = Date.now();
    const { blockSizeBytes, sizeBytes, workingSetSegments } = geometry;
    const window: number[] = [];
    for (let s = point.sequence; s >= 1 && s >= point.sequence - workingSetSegments; s--) window.push(s);
    const summaries = new Array(window.length);
    for (let i = 0; i < window.length; i += SUMMARY_FETCHES_MAX) {
      const batch = window.slice(i, i + SUMMARY_FETCHES_MAX);
      (await Promise.all(batch.map((s) => source.summary(s)))).forEach((summary, j) => (summaries[i + j] = summary));
    }
    const index = new BlockMap(sizeBytes / blockSizeBytes);
    scanBackward(
      summaries.map((summary, i) => ({ summary, endOffset: i === 0 ? point.offset : Infinity })),
      BLOCK_CRC_SIZE + blockSizeBytes,
      index,
      (s) => s,
    );
    debug('opened %s: scanned %d segments in %d ms', synchPointTime(point), window.length, Date.now() - started);
    return new Snapshot(point, geometry, source, window, index);
  }

  get name(): string {
    return synchPointTime(this.point);
  }

  get memoryBytes(): number {
    return this.index.memoryBytes;
  }

  /** True when the block reads as zeros (never written, or last written with zeros). */
  isHole(block: number): boolean {
    return !this.index.find(block) || this.index.holder === HOLE;
  }

  /** Where the block's entry is: segment sequence and raw offset, or null for a hole. */
  locate(block: number): { sequence: number; offset: number } | null {
    return this.isHole(block) ? null : { sequence: this.window[this.index.holder]!, offset: this.index.offset };
  }

  /** Calls `visit` for every block with data, in block order: where its entry is. */
  forEachEntry(visit: (block: number, sequence: number, offset: number) => void): void {
    this.index.forEach((block, holder, offset) => {
      if (holder !== HOLE) visit(block, this.window[holder]!, offset);
    });
  }

  /** The archived chunk that holds the block's entry (see SegmentSource.chunkAt); null for a hole or on primary. */
  async chunkOf(block: number): Promise<{ name: string; fetch: () => Promise<unknown> } | null> {
    const at = this.locate(block);
    return at ? this.source.chunkAt(at.sequence, at.offset) : null;
  }

  /**
   * The blocks with data, in the order of their entries in the log (segment, then offset),
   * with the length of each run of consecutive blocks whose entries are contiguous. Reading
   * in this order fetches each archived chunk once, whatever order the blocks were written in.
   */
  runsInLogOrder(): { starts: Uint32Array; lengths: Uint32Array } {
    const count = this.index.size;
    const blocks = new Uint32Array(count);
    const keys = new Float64Array(count);
    let filled = 0;
    this.index.forEach((block, holder, offset) => {
      if (holder === HOLE) return;
      blocks[filled] = block;
      // Older segments (higher window index) first, then by offset.
      keys[filled++] = (this.window.length - holder) * 0x1_0000_0000 + offset;
    });
    const order = new Uint32Array(filled).map((_, i) => i).sort((a, b) => keys[a]! - keys[b]!);
    const entrySize = BLOCK_CRC_SIZE + this.geometry.blockSizeBytes;
    const starts: number[] = [];
    const lengths: number[] = [];
    for (let i = 0; i < order.length; ) {
      let n = 1;
      while (i + n < order.length && n < 256 && blocks[order[i + n]!] === blocks[order[i]!]! + n && keys[order[i + n]!] === keys[order[i]!]! + n * entrySize) n++;
      starts.push(blocks[order[i]!]!);
      lengths.push(n);
      i += n;
    }
    return { starts: Uint32Array.from(starts), lengths: Uint32Array.from(lengths) };
  }

  async read(position: number, length: number): Promise<Buffer> {
    const target = Buffer.allocUnsafe(length);
    await this.readInto(target, position);
    return target;
  }

  /** Reads into `target`; CORRUPT_BLOCK or CORRUPT_ARCHIVE rather than serve a damaged block. */
  async readInto(target: Buffer, position: number): Promise<void> {
    const { blockSizeBytes: bs, sizeBytes } = this.geometry;
    if (position < 0 || position + target.length > sizeBytes) {
      throw VolumeError.badInput(`${target.length} bytes at ${position} lie past the snapshot's end (${sizeBytes} bytes)`);
    }
    const entrySize = BLOCK_CRC_SIZE + bs;
    const end = position + target.length;
    // The runs are read at once: in a random-write history each lies in another archived
    // chunk, and fetching them one after another would cost a round trip each.
    const reads: Promise<void>[] = [];
    let primaryFailure: { reason: unknown } | null = null;
    let block = Math.floor(position / bs);
    while (block * bs < end) {
      const index = this.index;
      let run = 1;
      if (!index.find(block) || index.holder === HOLE) {
        const from = Math.max(block * bs, position);
        target.fill(0, from - position, Math.min((block + 1) * bs, end) - position);
      } else {
        const s = index.holder;
        const first = index.offset;
        while ((block + run) * bs < end && index.is(block + run, s, first + run * entrySize)) run++;
        const sequence = this.window[s]!;
        // Whole blocks on primary storage go straight into the target, now, as the live reader
        // reads them: no buffer made per run. Those buffers drove the mount of a big volume (a
        // larger heap) into back-to-back full collections (BENCHMARKS.md, "Volumes of the sizes
        // users have").
        const slot = block * bs >= position && (block + run) * bs <= end ? this.source.primarySlot(sequence, first, run * entrySize) : undefined;
        if (slot) {
          try {
            this.readWholeBlocks(slot, sequence, first, block, run, target.subarray(block * bs - position, (block + run) * bs - position));
          } catch (err) {
            primaryFailure = { reason: err };
            break;
          }
        } else {
          reads.push(this.readRun(sequence, first, block, run, target, position));
        }
      }
      block += run;
    }
    // All settle before an error is reported: no fetch of this read outlives it (a caller that
    // retries after a failure starts afresh, and nothing writes into a buffer already answered).
    const failed = (await Promise.allSettled(reads)).find((r) => r.status === 'rejected');
    if (primaryFailure) throw primaryFailure.reason;
    if (failed) throw failed.reason;
  }

  /** A run of whole blocks from a slot: one scatter read a piece puts the blocks in `into` and their CRCs aside, then checks them. */
  private readWholeBlocks(slot: SegmentSlot, sequence: number, first: number, block: number, run: number, into: Buffer): void {
    const bs = this.geometry.blockSizeBytes;
    const entrySize = BLOCK_CRC_SIZE + bs;
    const seed = entrySeed(this.geometry.version, sequence);
    for (let done = 0; done < run; done += SCATTER_BLOCKS_MAX) {
      const n = Math.min(SCATTER_BLOCKS_MAX, run - done);
      const blocks = n === run ? into : into.subarray(done * bs, (done + n) * bs);
      slot.readEntriesAt(blocks, this.crcs, bs, first + done * entrySize);
      const bad = firstBadBlock(blocks, bs, this.crcs, seed);
      if (bad >= 0) throw corruptEntry({ where: `segment ${sequence}`, offset: first, block, seed }, done + bad, bs);
    }
  }

  /** Blocks [block, block + run) from their entries at `first` in segment `sequence`, checked, into `target`. */
  private async readRun(sequence: number, first: number, block: number, run: number, target: Buffer, position: number): Promise<void> {
    const bs = this.geometry.blockSizeBytes;
    const bytes = await this.source.read(sequence, first, run * (BLOCK_CRC_SIZE + bs));
    copyCheckedEntries(bytes, { where: `segment ${sequence}`, offset: first, block, seed: entrySeed(this.geometry.version, sequence) }, bs, target, position);
  }
}

/**
 * Open snapshots, kept within a memory bound and rebuilt on demand; two readers of the same
 * point share one rebuild.
 */
export class SnapshotCache {
  /** Opens answered by an index in memory, and those that rebuilt one (or waited for its rebuild). */
  readonly stats = { hits: 0, misses: 0 };
  private readonly cache: LruCache<number, Snapshot>;
  private readonly building = new Map<number, Promise<Snapshot>>();

  constructor(
    private readonly geometry: SnapshotGeometry,
    private readonly source: SegmentSource,
    bytesMax: number,
  ) {
    this.cache = new LruCache(bytesMax, true);
  }

  get bytes(): number {
    return this.cache.bytes;
  }

  open(point: SynchPoint): Promise<Snapshot> {
    const cached = this.cache.get(point.recordSequence);
    if (cached) {
      this.stats.hits++;
      return Promise.resolve(cached);
    }
    this.stats.misses++;
    let pending = this.building.get(point.recordSequence);
    if (!pending) {
      pending = Snapshot.open(point, this.geometry, this.source)
        .then((snapshot) => {
          this.cache.set(point.recordSequence, snapshot, snapshot.memoryBytes);
          return snapshot;
        })
        .finally(() => this.building.delete(point.recordSequence));
      this.building.set(point.recordSequence, pending);
    }
    return pending;
  }
}
