/**
 * The archive's catalog in a store (FORMAT.md §3.14): reading it — the chain of catalog objects
 * from the log's start, then whatever the archive holds past its end — and keeping it, as the
 * archiver ships (CatalogWriter). A reader pays one listing of `catalog/`, one request per
 * object of the chain (a few: they merge as they grow), two listings that start after the
 * chain's end, and one request per object archived since; never a listing of the whole history.
 *
 * A catalog that is missing (an archive older than catalogs, or one whose writer has not yet
 * flushed) or damaged is no error: the reader then takes the summaries of every archived object,
 * as before catalogs, and the volume's archiver writes a new one.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import createDebug from 'debug';
import { VolumeError, isVolumeError } from '../errors.js';
import {
  LOG_ORIGIN,
  catalogKey,
  comparePositions,
  decodeCatalogBody,
  decodeCatalogObject,
  emptyCatalog,
  encodeCatalogBody,
  encodeCatalogObject,
  mergeCatalogs,
  parseCatalogKey,
  type CatalogContent,
  type LogPosition,
} from '../format/archive-catalog.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import type { SynchEntry } from '../format/summary.js';
import { fetchArchiveIndex } from './archive-reader.js';
import { SEGMENT_HEADER_SIZE } from '../format/segment-header.js';
import { ArchiveKeys, tailChain, type ArchiveStore } from './archive-store.js';
import { readRetention } from './retention-records.js';
import { compactedKeys, parseCompactedKey, rangesHold } from '../format/retention-record.js';

const debug = createDebug('salvo:catalog');
const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);
/** Objects fetched at once (catalog objects, or the summaries of objects the catalog does not cover). */
const FETCHES_MAX = 8;
/** An object is merged into the one before it once it reaches this share of its size: the chain stays a few objects long. */
const MERGE_SHARE = 1 / 4;

interface ChainLink {
  key: string;
  from: LogPosition;
  to: LogPosition;
  /** The object's size, once read or written (merges compare them). */
  bytes: number;
}

/** The catalog objects that chain from `start`: from each end, the one starting there that reaches furthest. */
export function catalogChain(keys: readonly string[], start = LOG_ORIGIN): ChainLink[] {
  const links = keys.flatMap((key) => {
    const range = parseCatalogKey(key);
    return range ? [{ key, ...range, bytes: 0 }] : [];
  });
  const chain: ChainLink[] = [];
  let end = start;
  for (;;) {
    const next = links.filter((l) => comparePositions(l.from, end) === 0).sort((a, b) => comparePositions(b.to, a.to))[0];
    if (!next) return chain;
    chain.push(next);
    end = next.to;
  }
}

/** What a reader knows of an archive: the catalog's content, grown by what lies past its end. */
export interface ArchiveContents {
  /** Everything: the catalog's content and what lies past it. */
  content: CatalogContent;
  /** What lies past the catalog's end (all of it, without a catalog). */
  after: CatalogContent;
  /** The chain read (empty when the archive has no catalog yet); keys under `catalog/` off it are stale. */
  chain: ChainLink[];
  stale: string[];
  /** Why the catalog could not be used past some point (a damaged object), or null. */
  problem: string | null;
  /** Archived objects whose summaries could not be read: their synch points are not listed. */
  damaged: { sequence: number; message: string }[];
}

async function readCatalogObject(store: ArchiveStore, link: ChainLink, volumeId: string, cipher: ObjectCipher | null): Promise<CatalogContent> {
  const bytes = await store.get(link.key);
  link.bytes = bytes.length;
  const compressed = decodeCatalogObject(bytes, link.key, volumeId, link.to, cipher);
  let body: Buffer;
  try {
    body = await gunzip(compressed);
  } catch (err) {
    throw new Error(`archive object ${link.key}: catalog body does not decompress: ${(err as Error).message}`);
  }
  return decodeCatalogBody(body, link.key, link);
}

async function inBatches<T, R>(items: readonly T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += FETCHES_MAX) out.push(...(await Promise.all(items.slice(i, i + FETCHES_MAX).map(run))));
  return out;
}

/**
 * Reads the archive's contents: the catalog chain, then the objects archived past its end (their
 * summaries fetched for their synch points). `known` continues from an earlier read (a refresh):
 * only what was archived since is fetched.
 */
export async function readArchiveContents(
  store: ArchiveStore,
  volumeId: string,
  cipher: ObjectCipher | null,
  options: { known?: CatalogContent; onProgress?: Progress; compacted?: ReadonlyMap<number, string> } = {},
): Promise<ArchiveContents> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readContents(store, volumeId, cipher, options.known, options.onProgress ?? (() => undefined), options.compacted ?? new Map());
    } catch (err) {
      // A catalog object deleted by a merge since the listing is the writer's progress: list again.
      if (!isVolumeError(err, 'NOT_FOUND') || attempt === 3) throw err;
    }
  }
}

type Progress = (done: number, total: number) => void;

async function readContents(
  store: ArchiveStore,
  volumeId: string,
  cipher: ObjectCipher | null,
  known: CatalogContent | undefined,
  onProgress: Progress,
  compacted: ReadonlyMap<number, string>,
): Promise<ArchiveContents> {
  let catalogued = known ?? emptyCatalog(LOG_ORIGIN);
  let chain: ChainLink[] = [];
  let stale: string[] = [];
  let problem: string | null = null;
  if (!known) {
    const keys = await store.list('catalog/');
    chain = catalogChain(keys);
    const parts: CatalogContent[] = [];
    const read = await Promise.allSettled(chain.map((link) => readCatalogObject(store, link, volumeId, cipher)));
    for (const [i, r] of read.entries()) {
      if (r.status === 'rejected') {
        if (isVolumeError(r.reason, 'NOT_FOUND') || isVolumeError(r.reason, 'ARCHIVE_UNAVAILABLE')) throw r.reason;
        problem = (r.reason as Error).message;
        chain = chain.slice(0, i);
        break;
      }
      parts.push(r.value);
    }
    if (parts.length > 0) catalogued = mergeCatalogs(parts);
    const used = new Set(chain.map((l) => l.key));
    stale = keys.filter((k) => !used.has(k));
  }
  const damaged: ArchiveContents['damaged'] = [];
  const { after, presentTails } = await archivedAfter(store, catalogued, volumeId, cipher, damaged, onProgress, compacted);
  const content = mergeCatalogs([catalogued, after]);
  keepPresentTails(content, presentTails);
  debug('%s: catalog of %d objects to %o, %d segments, %d synch points', store.location, chain.length, catalogued.to, content.segments.length, content.points.length);
  return { content, after, chain, stale, problem, damaged };
}

/**
 * What the archive holds past `content`'s end and outside it: segments archived whole since, and
 * newer tail pieces. The listings start at the oldest segment `content` knows only by its tail
 * pieces (the newest few segments), and they also say which of those pieces are still there.
 */
async function archivedAfter(
  store: ArchiveStore,
  content: CatalogContent,
  volumeId: string,
  cipher: ObjectCipher | null,
  damaged: ArchiveContents['damaged'],
  onProgress: Progress,
  compacted: ReadonlyMap<number, string>,
): Promise<{ after: CatalogContent; presentTails: Set<string> }> {
  const end = content.to;
  const whole = new Set(content.segments);
  // A segment known by its tails (or the one at the end) may have been archived whole since.
  const from = Math.min(end.sequence, ...content.tails.keys());
  const segmentKeys = (await store.list('segments/', from > 0 ? ArchiveKeys.segment(from - 1) : undefined)).filter((k) => {
    const s = ArchiveKeys.parseSegment(k);
    return s !== null && !whole.has(s);
  });
  // A compacted segment's object replaced its segment object (FORMAT.md §3.15): the retention record names it.
  for (const [s, key] of compacted) if (s >= from && !whole.has(s) && !segmentKeys.includes(ArchiveKeys.segment(s))) segmentKeys.push(key);
  const newWhole = new Set(segmentKeys.map((k) => ArchiveKeys.parseSegment(k) ?? parseCompactedKey(k)!.sequence));
  const listedTails = await store.list('tails/', ArchiveKeys.tailPrefix(from));
  const known = new Set([...content.tails.values()].flat());
  const tailKeys = listedTails.filter((k) => {
    const t = ArchiveKeys.parseTail(k);
    return t !== null && !known.has(k) && !whole.has(t.sequence) && !newWhole.has(t.sequence) && comparePositions({ sequence: t.sequence, offset: t.rawEnd }, end) > 0;
  });
  const after = emptyCatalog(end);
  const keys = [...segmentKeys, ...tailKeys];
  let done = 0;
  await inBatches(keys, async (key) => {
    const sequence = ArchiveKeys.parseSegment(key) ?? parseCompactedKey(key)?.sequence ?? ArchiveKeys.parseTail(key)!.sequence;
    try {
      const index = await fetchArchiveIndex(store, key, cipher);
      if (index.header.volumeId !== volumeId || index.header.sequence !== sequence) {
        throw VolumeError.corruptArchive(key, `holds segment ${index.header.sequence} of volume ${index.header.volumeId}, not segment ${sequence} of ${volumeId}`);
      }
      noteObject(after, key, index.header.sequence, index.header.rawEnd, index.summary.synchs);
    } catch (err) {
      // One damaged object must not hide the rest of the history.
      if (isVolumeError(err, 'ARCHIVE_UNAVAILABLE')) throw err;
      damaged.push({ sequence, message: (err as Error).message });
    }
    onProgress(++done, keys.length);
  });
  after.segments.sort((a, b) => a - b);
  return { after, presentTails: new Set(listedTails) };
}

/**
 * For each segment known only by its tail pieces, the pieces still in the archive, and the points
 * they reach: a missing piece ends the segment there (FORMAT.md §3.9), as it does for a reader of
 * the summaries, and the points past it are not listed.
 */
function keepPresentTails(content: CatalogContent, present: Set<string>): void {
  const reach = new Map<number, number>();
  for (const [sequence, keys] of content.tails) {
    const kept = keys.filter((k) => present.has(k));
    reach.set(sequence, tailChain(kept, SEGMENT_HEADER_SIZE).end);
    if (kept.length > 0) content.tails.set(sequence, kept);
    else content.tails.delete(sequence);
  }
  content.points = content.points.filter((p) => p.offset < (reach.get(p.sequence) ?? Infinity));
}

/** Adds an archived object (a segment whole, or a tail piece) to `content`. */
function noteObject(content: CatalogContent, key: string, sequence: number, rawEnd: number, synchs: readonly SynchEntry[]): void {
  if (ArchiveKeys.parseTail(key) === null) {
    if (!content.segments.includes(sequence)) content.segments.push(sequence);
    content.tails.delete(sequence);
  } else if (!content.segments.includes(sequence)) {
    content.tails.set(sequence, [...(content.tails.get(sequence) ?? []), key]);
  }
  for (const entry of synchs) content.points.push({ ...entry, sequence });
  const end = { sequence, offset: rawEnd };
  if (comparePositions(end, content.to) > 0) content.to = end;
}

/**
 * What `content` lacks between its ends, or null. The archiver ships in log order: every segment
 * between the ends is there whole, and the tail pieces of a segment not whole reach, without a
 * gap, from where the content starts in it (its header, or `from`); pieces may overlap (a tail
 * shipped again from an earlier offset after a restart); segments a prune deleted are no gap.
 */
function gapIn(content: CatalogContent, pruned: readonly [number, number][]): string | null {
  const { from, to } = content;
  const whole = new Set(content.segments);
  for (let s = Math.max(1, from.sequence + 1); s < to.sequence; s++) if (!whole.has(s) && !rangesHold(pruned, s)) return `segment ${s}`;
  for (const [sequence, keys] of content.tails) {
    if (whole.has(sequence)) continue;
    let reach = sequence === from.sequence ? from.offset : SEGMENT_HEADER_SIZE;
    const pieces = keys.map((k) => ArchiveKeys.parseTail(k)!).sort((a, b) => a.rawStart - b.rawStart);
    for (const piece of pieces) {
      if (piece.rawStart > reach) return `the tail of segment ${sequence} from ${reach} to ${piece.rawStart}`;
      reach = Math.max(reach, piece.rawEnd);
    }
  }
  return null;
}

/**
 * Keeps the archive's catalog as the archiver ships: the objects shipped since the last flush
 * become one catalog object at the next (when the queue empties, or every few objects), which
 * merges into the one before it once it is a quarter of its size, so a reader's chain stays
 * short and each catalogued point is rewritten only a few times. Every step is a new object
 * written before the ones it replaces are deleted: a crash leaves a chain a reader can use.
 */
export class CatalogWriter {
  private chain: ChainLink[] = [];
  private pending: CatalogContent | null = null;
  /** Segments pruned (FORMAT.md §3.15), as of the last read of the archive. */
  private pruned: [number, number][] = [];

  constructor(
    private readonly store: ArchiveStore,
    private readonly volumeId: string,
    private readonly cipher: ObjectCipher | null,
  ) {}

  /** Notes an object the store now holds whole. Before the first flush, the flush finds it by listing. */
  noteShipped(key: string, sequence: number, rawEnd: number, synchs: readonly SynchEntry[]): void {
    if (this.pending) noteObject(this.pending, key, sequence, rawEnd, synchs);
  }

  /** Objects noted and not yet catalogued. */
  get pendingObjects(): number {
    return this.pending ? this.pending.segments.length + [...this.pending.tails.values()].reduce((n, k) => n + k.length, 0) : 0;
  }

  /**
   * Writes what was shipped since the last flush (the first reads the catalog and catalogues what
   * it lacks). After a failure the next flush starts over from the archive: what this writer
   * believed of the chain may no longer hold (an object damaged, a merge half done).
   */
  async flush(): Promise<void> {
    try {
      await this.bringUpToDate();
    } catch (err) {
      this.pending = null;
      throw err;
    }
  }

  private async bringUpToDate(): Promise<void> {
    if (!this.pending) {
      const retention = await readRetention({ store: this.store, volumeId: this.volumeId, cipher: this.cipher });
      this.pruned = retention.pruned;
      const read = await readArchiveContents(this.store, this.volumeId, this.cipher, { compacted: compactedKeys(retention) });
      if (read.problem) debug('rewriting the catalog past a damaged object: %s', read.problem);
      // A catalog written past an object whose summary did not read (a damaged answer, or rot)
      // would hide its points from every reader for good: the summaries past the chain stay the truth.
      const [damaged] = read.damaged;
      if (damaged) throw new VolumeError('CORRUPT_ARCHIVE', `the catalog is not extended past segment ${damaged.sequence}: ${damaged.message}`);
      this.chain = read.chain;
      // What the chain does not cover is this flush's object (all of it, for an archive without one).
      this.pending = read.after;
      for (const key of read.stale) await this.deleteQuietly(key);
    }
    if (comparePositions(this.pending.to, this.pending.from) <= 0) return;
    // A listing that lagged (a store that lists what it stored a moment ago only later) would make
    // a catalog that skips an object for good: the next flush lists again instead.
    const gap = gapIn(this.pending, this.pruned);
    if (gap) {
      this.pending = null;
      throw VolumeError.archiveUnavailable(`the catalog is not extended: ${gap} is missing from the listing of ${this.store.location}`);
    }
    const written = await this.write(this.pending);
    this.chain.push(written);
    this.pending = emptyCatalog(written.to);
    while (this.chain.length >= 2) {
      const last = this.chain[this.chain.length - 1]!;
      const before = this.chain[this.chain.length - 2]!;
      if (last.bytes < before.bytes * MERGE_SHARE) break;
      const merged = await this.write(mergeCatalogs(await Promise.all([before, last].map((l) => readCatalogObject(this.store, l, this.volumeId, this.cipher)))));
      this.chain.splice(-2, 2, merged);
      await this.deleteQuietly(before.key);
      await this.deleteQuietly(last.key);
    }
  }

  private async write(content: CatalogContent): Promise<ChainLink> {
    const key = catalogKey(content.from, content.to);
    const bytes = encodeCatalogObject(this.volumeId, content.to, await gzip(encodeCatalogBody(content)), this.cipher);
    try {
      await this.store.put(key, [bytes]);
    } catch (err) {
      if (!isVolumeError(err, 'ARCHIVE_CONFLICT')) throw err;
      // Left by a run that stopped before it chained it (or damaged): this one replaces it.
      await this.store.delete(key);
      await this.store.put(key, [bytes]);
    }
    debug('wrote %s: %d segments, %d points, %d bytes', key, content.segments.length, content.points.length, bytes.length);
    return { key, from: content.from, to: content.to, bytes: bytes.length };
  }

  private async deleteQuietly(key: string): Promise<void> {
    await this.store.delete(key).catch((err) => debug('deleting %s failed: %s', key, (err as Error).message));
  }
}
