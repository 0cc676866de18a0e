/**
 * Where a segment's summary and bytes come from: its slot on primary storage while the slot
 * still holds it, else the archive. An archived segment is one object, or — for the newest
 * segment of an archive that is current with its tails — a run of tail pieces; either way a
 * list of pieces, each covering a raw byte range, read by chunk on demand.
 *
 * A slot recycled under a reader is detected by its sequence (slots are looked up by
 * sequence at every read, and primary reads are synchronous), and the read goes to the archive.
 * Fetched chunks and archived summaries are cached within a byte bound; chunks evicted from
 * memory go on to a scratch file on disk (chunk-cache.ts, chunk-spill.ts), from which a read
 * takes only the bytes it needs. close() closes that file.
 *
 * Chunks fetched ahead of readers in order — restore's read-ahead (chunkAt), a walk's (below) —
 * stay in memory only, unless a read comes to them out of order: such readers read each chunk
 * once, and writing those to disk as they left memory only slowed restore down (BENCHMARKS.md,
 * open-past). A chunk fetched because a read needed it (a random-write history read in block
 * order comes to its chunks again and again) goes to disk.
 *
 * Reads that walk an archived piece chunk after chunk (a sequentially written history read in
 * block order) fetch the next chunks ahead of them, so that fetches overlap the reads: a remote
 * store's latency is then paid once per stream, not once per chunk. Only a walk starts it (a
 * read of chunk c right after one of chunk c - 1 of the same piece): scattered reads of a
 * random-write history would fetch chunks they may never need.
 */
import createDebug from 'debug';
import { VolumeError, isVolumeError } from '../errors.js';
import { SEGMENT_HEADER_SIZE } from '../format/segment-header.js';
import { SegmentSummary } from '../format/summary.js';
import { ARCHIVE_PROLOGUE_GUESS, prologueLength, type ArchiveObjectIndex } from '../format/archive-object.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import { ArchiveKeys, tailChain, type ArchiveStore } from '../archive/archive-store.js';
import { fetchArchiveIndex, fetchChunk } from '../archive/archive-reader.js';
import type { CompressionPool } from '../archive/compression-pool.js';
import { LruCache } from '../util/lru-cache.js';
import type { SegmentSlot } from '../volume/segment-slot.js';
import { ChunkCache } from './chunk-cache.js';
import type { SpillOptions } from './chunk-spill.js';

const debug = createDebug('salvo:snapshot');
/** Largest first request for an object's index: room for the prologue of a full segment of small writes (BENCHMARKS.md, "Figures behind the code"). */
const PROLOGUE_GUESS_MAX = 1024 * 1024;
/**
 * Chunks fetched ahead of a walk along a piece (restore's read-ahead keeps as many), and at most
 * this many such fetches at once over all walks: with a remote store's latency, 8 ahead read a
 * sequential history faster than 4, and many times faster than none (BENCHMARKS.md, open-past).
 */
const PREFETCH_CHUNKS = 8;
const PREFETCH_IN_FLIGHT_MAX = 8;
/** Chunks of the next segment fetched ahead when a walk reaches a piece's last chunk. */
const NEXT_SEGMENT_CHUNKS = 2;
/** Pieces whose last chunk read is remembered, to see a walk. */
const WALKS_TRACKED = 64;

export interface SourceOptions {
  /** The disk tier under the chunk cache (directory, bound), or false for memory alone. */
  spill?: SpillOptions | false;
  /** Chunks fetched ahead of a walk along a piece; 0 turns read-ahead off. */
  prefetchChunks?: number;
}

/** The part of the log on primary storage a source may read from. */
export interface PrimarySegments {
  slotHolding(sequence: number): SegmentSlot | undefined;
}

interface Piece {
  key: string;
  index: ArchiveObjectIndex;
}

interface ArchivedSegment {
  pieces: Piece[];
  summary: SegmentSummary;
  bytes: number;
}

export interface SourceStats {
  summariesFetched: number;
  chunksFetched: number;
  bytesFetched: number;
  /** Of the chunks fetched, those fetched ahead of reads; and reads answered from the disk spill. */
  chunksPrefetched: number;
  spillReads: number;
}

export class SegmentSource {
  readonly stats: SourceStats = { summariesFetched: 0, chunksFetched: 0, bytesFetched: 0, chunksPrefetched: 0, spillReads: 0 };
  private readonly archived: LruCache<number, ArchivedSegment>;
  private readonly chunks: ChunkCache;
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** The last chunk read of recently read pieces, by key, least recent first. */
  private readonly lastChunkRead = new Map<string, number>();
  private prefetching = 0;
  private readonly prefetchChunks: number;
  /** Bytes of an object's first range request: the prologue length last seen. */
  private prologueGuess = ARCHIVE_PROLOGUE_GUESS;
  /** Tail pieces known for segments not archived whole, by sequence (from a listing of the archive). */
  readonly tailKeys = new Map<number, string[]>();
  /** The objects of compacted segments, by sequence (from the retention record in force). */
  private compactedKeys = new Map<number, string>();

  constructor(
    private readonly store: ArchiveStore | null,
    private readonly pool: CompressionPool,
    private readonly primary: PrimarySegments | null,
    cacheBytesMax: number,
    private readonly volumeId: string,
    private readonly cipher: ObjectCipher | null = null,
    options: SourceOptions = {},
  ) {
    this.archived = new LruCache(Math.max(1, Math.floor(cacheBytesMax / 4)));
    this.chunks = new ChunkCache(Math.max(1, cacheBytesMax - Math.floor(cacheBytesMax / 4)), options.spill === false ? { bytesMax: 0 } : options.spill);
    this.prefetchChunks = options.prefetchChunks ?? PREFETCH_CHUNKS;
  }

  /** Bytes the caches hold in memory now. */
  get cacheBytes(): number {
    return this.archived.bytes + this.chunks.bytes;
  }

  /** Bytes of chunks in the disk spill now. */
  get spillBytes(): number {
    return this.chunks.spill.bytes;
  }

  /**
   * Frees the chunk cache and closes the spill's file. The owner calls it when done; reads
   * after it still work, fetching what they need, with memory alone.
   */
  close(): void {
    this.chunks.close();
  }

  /** True when segment `sequence` is read from primary storage now. */
  onPrimary(sequence: number): boolean {
    return this.primary?.slotHolding(sequence) !== undefined;
  }

  /** The segment's summary: from its slot if on primary, else from the archive. */
  async summary(sequence: number): Promise<SegmentSummary> {
    const slot = this.primary?.slotHolding(sequence);
    if (slot?.summary) return slot.summary;
    return (await this.archivedSegment(sequence)).summary;
  }

  /**
   * The slot to read raw bytes [offset, offset + length) of segment `sequence` from now, if primary
   * storage holds them; read it before anything else runs (a slot may be recycled at the next turn).
   */
  primarySlot(sequence: number, offset: number, length: number): SegmentSlot | undefined {
    const slot = this.primary?.slotHolding(sequence);
    return slot && offset + length <= slot.tail ? slot : undefined;
  }

  /** Raw bytes [offset, offset + length) of segment `sequence`. */
  async read(sequence: number, offset: number, length: number): Promise<Buffer> {
    const slot = this.primarySlot(sequence, offset, length);
    if (slot) {
      const bytes = Buffer.allocUnsafe(length);
      slot.readAt(bytes, 0, length, offset);
      return bytes;
    }
    const segment = await this.archivedSegment(sequence);
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const piece = segment.pieces.find((p) => at >= p.index.header.rawStart && at < p.index.header.rawEnd);
      if (!piece) throw new VolumeError('NOT_FOUND', `segment ${sequence}: bytes at ${at} are in no archived object`);
      const { rawStart, chunkSizeBytes } = piece.index.header;
      const chunk = Math.floor((at - rawStart) / chunkSizeBytes);
      const within = at - rawStart - chunk * chunkSizeBytes;
      const n = Math.min(length - done, piece.index.chunks[chunk]!.rawLength - within);
      const name = `${piece.key}#${chunk}`;
      const inOrder = this.walk(piece, chunk);
      const tier = this.chunks.readInto(name, within, n, out, done);
      if (tier === 'spill') this.stats.spillReads++;
      else if (tier === null) {
        const raw = await this.chunk(piece, chunk);
        raw.copy(out, done, within, within + n);
      }
      if (!inOrder) this.chunks.keepOnDisk(name);
      done += n;
    }
    return out;
  }

  /**
   * The archived chunk holding raw byte `offset` of segment `sequence`: its name and a fetch
   * into the cache; null for a segment on primary storage. Restore uses it to fetch several
   * chunks ahead of its reads.
   */
  async chunkAt(sequence: number, offset: number): Promise<{ name: string; fetch: () => Promise<unknown> } | null> {
    if (this.primary?.slotHolding(sequence)) return null;
    const segment = await this.archivedSegment(sequence);
    const piece = segment.pieces.find((p) => offset >= p.index.header.rawStart && offset < p.index.header.rawEnd);
    if (!piece) return null;
    const chunk = Math.floor((offset - piece.index.header.rawStart) / piece.index.header.chunkSizeBytes);
    const name = `${piece.key}#${chunk}`;
    // Held in either tier already: nothing to fetch (a read takes it from there).
    return { name, fetch: async () => (this.chunks.has(name) ? undefined : this.chunk(piece, chunk, 'restore')) };
  }

  /** Reads compacted segments from these objects from now on (a retention record's, FORMAT.md §3.15). */
  useCompacted(keys: Map<number, string>): void {
    for (const [s, key] of keys) if (this.compactedKeys.get(s) !== key) this.forget(s);
    this.compactedKeys = keys;
  }

  /** Drops what is cached of an archived segment that has grown (new tail pieces, or archived whole since). */
  forget(sequence: number): void {
    this.archived.delete(sequence);
  }

  /** The archived pieces of a segment, in raw order (for restore's dry run and verify). */
  async pieces(sequence: number): Promise<{ key: string; index: ArchiveObjectIndex }[]> {
    return (await this.archivedSegment(sequence)).pieces;
  }

  private once<T>(key: string, make: () => Promise<T>): Promise<T> {
    const pending = this.inFlight.get(key) as Promise<T> | undefined;
    if (pending) return pending;
    const promise = make().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return promise;
  }

  private async archivedSegment(sequence: number): Promise<ArchivedSegment> {
    const cached = this.archived.get(sequence);
    if (cached) return cached;
    if (!this.store) throw new VolumeError('NOT_FOUND', `segment ${sequence} is not on primary storage and there is no archive`);
    const store = this.store;
    return this.once(`segment:${sequence}`, async () => {
      let pieces: Piece[];
      try {
        const key = this.compactedKeys.get(sequence) ?? ArchiveKeys.segment(sequence);
        pieces = [{ key, index: await this.fetchIndex(store, key) }];
      } catch (err) {
        const tails = this.tailKeys.get(sequence);
        if (!isVolumeError(err, 'NOT_FOUND') || !tails) {
          if (isVolumeError(err, 'NOT_FOUND')) {
            throw new VolumeError('NOT_FOUND', `segment ${sequence} is neither on primary storage nor in archive ${store.location}`, {
              hint: 'run `salvo verify` on the archive',
            });
          }
          throw err;
        }
        const chain = tailChain(tails, SEGMENT_HEADER_SIZE).keys;
        pieces = await Promise.all(chain.map(async (key) => ({ key, index: await this.fetchIndex(store, key) })));
      }
      for (const { key, index } of pieces) {
        // A foreign object, or one stored under another name, must not pass for this one.
        if (index.header.volumeId !== this.volumeId || index.header.sequence !== sequence) {
          throw VolumeError.corruptArchive(key, `holds segment ${index.header.sequence} of volume ${index.header.volumeId}, not segment ${sequence} of ${this.volumeId}`);
        }
      }
      this.stats.summariesFetched += pieces.length;
      const summary = mergeSummaries(sequence, pieces);
      const bytes = summary.memoryBytes + pieces.length * 1024;
      const segment = { pieces, summary, bytes };
      this.archived.set(sequence, segment, bytes);
      debug('segment %d: %d archived pieces, %d extents', sequence, pieces.length, summary.extentCount);
      return segment;
    });
  }

  /** An object's index in one request when its prologue is no longer than the last one seen. */
  private async fetchIndex(store: ArchiveStore, key: string): Promise<ArchiveObjectIndex> {
    const index = await fetchArchiveIndex(store, key, this.cipher, this.prologueGuess);
    this.prologueGuess = Math.min(PROLOGUE_GUESS_MAX, Math.max(ARCHIVE_PROLOGUE_GUESS, prologueLength(index.header)));
    return index;
  }

  /** Chunk `chunk` of `piece`, fetched unless memory holds it: for a read that needs it, ahead of a walk, or ahead of restore. */
  private async chunk(piece: Piece, chunk: number, why: 'read' | 'walk' | 'restore' = 'read'): Promise<Buffer> {
    const cacheKey = `${piece.key}#${chunk}`;
    const cached = this.chunks.get(cacheKey);
    if (cached) return cached;
    return this.once(cacheKey, async () => {
      const raw = await fetchChunk(this.store!, this.pool, piece.key, piece.index, chunk, this.cipher);
      this.stats.chunksFetched++;
      if (why === 'walk') this.stats.chunksPrefetched++;
      this.stats.bytesFetched += piece.index.chunks[chunk]!.compressedLength;
      this.chunks.set(cacheKey, raw, why === 'read');
      return raw;
    });
  }

  /**
   * Notes a read of `chunk` of `piece`; when it follows a read of the chunk before, fetches the
   * next ones ahead. True when the read is in order: the first of this piece, or of the chunk
   * last read in it or one beside it (parallel reads in log order step back and forth across a
   * chunk's edge).
   */
  private walk(piece: Piece, chunk: number): boolean {
    const last = this.lastChunkRead.get(piece.key);
    if (last === chunk) return true;
    this.lastChunkRead.delete(piece.key);
    this.lastChunkRead.set(piece.key, chunk);
    if (this.lastChunkRead.size > WALKS_TRACKED) this.lastChunkRead.delete(this.lastChunkRead.keys().next().value!);
    if (last !== chunk - 1) return last === undefined || last === chunk + 1;
    const end = Math.min(piece.index.chunks.length, chunk + 1 + this.prefetchChunks);
    for (let c = chunk + 1; c < end; c++) this.fetchAhead(piece, c);
    // A walk that reaches the piece's last chunk goes on into the next segment (a file written in
    // one go lies across segments in log order), when that segment's pieces are known already:
    // its first chunks now, and the rest once a read comes to its first (it counts as the walk's
    // next step), as the next segment may hold nothing this read wants.
    const next = chunk === piece.index.chunks.length - 1 ? this.archived.get(piece.index.header.sequence + 1)?.pieces[0] : undefined;
    if (next && !this.lastChunkRead.has(next.key)) this.lastChunkRead.set(next.key, -1);
    for (let c = 0; next && c < Math.min(NEXT_SEGMENT_CHUNKS, this.prefetchChunks, next.index.chunks.length); c++) this.fetchAhead(next, c);
    return true;
  }

  /** Starts fetching chunk `c` of `piece` ahead of the reads, within the bound on such fetches. */
  private fetchAhead(piece: Piece, c: number): void {
    const name = `${piece.key}#${c}`;
    if (this.prefetching >= PREFETCH_IN_FLIGHT_MAX || this.chunks.has(name) || this.inFlight.has(name)) return;
    this.prefetching++;
    // A failed fetch ahead is forgotten: the read that needs the chunk fetches it again and reports the error.
    this.chunk(piece, c, 'walk')
      .catch((err: unknown) => debug('fetch ahead of %s: %s', name, (err as Error).message))
      .finally(() => this.prefetching--);
  }
}

/** One summary for a segment from its pieces, which must cover its raw bytes from the header on without gaps. */
function mergeSummaries(sequence: number, pieces: Piece[]): SegmentSummary {
  pieces.sort((a, b) => a.index.header.rawStart - b.index.header.rawStart);
  if (pieces.length === 1) return pieces[0]!.index.summary;
  const first = pieces[0]!.index.summary;
  const merged = new SegmentSummary(sequence, first.firstRecordSequence, SEGMENT_HEADER_SIZE, SEGMENT_HEADER_SIZE, first.firstRecordSequence);
  for (const { key, index } of pieces) {
    const s = index.summary;
    if (s.rawStart !== merged.rawEnd || s.firstRecordSequence !== merged.nextRecordSequence) {
      // A missing or torn tail ends the segment here: points before it still restore.
      debug('segment %d: archived pieces stop at %d (%s does not follow on)', sequence, merged.rawEnd, key);
      break;
    }
    for (let e = 0; e < s.extentCount; e++) merged.addExtent(s.extentBlock(e), s.extentBlocks(e), s.extentIsZero(e), s.extentOffset(e));
    merged.synchs.push(...s.synchs);
    merged.rawEnd = s.rawEnd;
    merged.nextRecordSequence = s.nextRecordSequence;
  }
  return merged;
}
