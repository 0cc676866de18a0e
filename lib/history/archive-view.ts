/**
 * An archive on its own: enough to list every synch point and restore any of them when
 * primary storage is lost. The descriptor (`volume.json`) says how to read it; the archive's
 * catalog (lib/archive/archive-catalog.ts) lists its segments and synch points, and the
 * summaries of what was archived past the catalog's end complete it.
 */
import createDebug from 'debug';
import { VolumeError, isVolumeError } from '../errors.js';
import { decodeVolumeConfig, type VolumeConfig } from '../format/volume-config.js';
import type { CatalogContent } from '../format/archive-catalog.js';
import { compactedKeys, type RetentionState } from '../format/retention-record.js';
import { Catalog, synchPointFromEntry } from '../volume/synch-point.js';
import { SegmentSource } from './segment-source.js';
import { SnapshotCache } from './snapshot.js';
import { cipherFor, type ObjectCipher } from '../format/object-cipher.js';
import { ArchiveKeys, type ArchiveStore } from '../archive/archive-store.js';
import { readArchiveContents } from '../archive/archive-catalog.js';
import { CompressionPool } from '../archive/compression-pool.js';
import type { History } from './history.js';
import { Retention, type HeldSegments } from './retention.js';
import { readRecordForReading } from '../archive/retention-records.js';

const debug = createDebug('salvo:archive');

export class ArchiveView implements History {
  readonly snapshots: SnapshotCache;
  /** Objects whose summaries could not be read: their synch points are missing from the catalog. */
  readonly damaged: { sequence: number; message: string }[] = [];
  /** Why the archive's catalog could not be used whole (a damaged object), or null. */
  catalogProblem: string | null = null;
  /** The retention record in force: which points show, which segments are pruned. */
  retention: Retention;
  /** False when the caller lent the store (and closes it). */
  private ownsStore = true;
  /** Why the retention record in force could not be read (then the newest before it that reads is used), or null. */
  retentionProblem: string | null = null;

  private constructor(
    readonly config: VolumeConfig,
    readonly store: ArchiveStore,
    readonly pool: CompressionPool,
    readonly source: SegmentSource,
    readonly catalog: Catalog,
    private contents: CatalogContent,
    cacheBytesMax: number,
    readonly cipher: ObjectCipher | null,
    /** False when the caller lent the pool (and closes it). */
    private readonly ownsPool: boolean,
  ) {
    this.snapshots = new SnapshotCache(config, source, cacheBytesMax / 2);
    this.retention = Retention.none(config.workingSetSegments);
    this.adopt(contents);
  }

  /** Reads the archive's descriptor. NOT_FOUND when the store holds no salvo volume. */
  static async descriptor(store: ArchiveStore): Promise<VolumeConfig> {
    let bytes: Buffer;
    try {
      bytes = await store.get(ArchiveKeys.descriptor);
    } catch (err) {
      if (isVolumeError(err, 'NOT_FOUND')) {
        throw new VolumeError('NOT_FOUND', `${store.location} is not a salvo archive (no ${ArchiveKeys.descriptor})`, {
          hint: 'give the path of a volume directory or of the archive that `salvo init --archive` named',
        });
      }
      throw err;
    }
    return decodeVolumeConfig(bytes.toString('utf8'), `${store.location}/${ArchiveKeys.descriptor}`);
  }

  static async open(
    store: ArchiveStore,
    options: { cacheBytesMax?: number; onProgress?: (done: number, total: number) => void; cipher?: ObjectCipher | null; pool?: CompressionPool; lentStore?: boolean } = {},
  ): Promise<ArchiveView> {
    const config = await ArchiveView.descriptor(store);
    const cipher = cipherFor(config, options.cipher, `archive ${store.location}`);
    const pool = options.pool ?? new CompressionPool();
    const cacheBytesMax = options.cacheBytesMax ?? 256 * 1024 * 1024;
    const source = new SegmentSource(store, pool, null, cacheBytesMax / 2, config.volumeId, cipher);
    try {
      const record = await recordInForce(store, config.volumeId, cipher);
      const read = await readArchiveContents(store, config.volumeId, cipher, { onProgress: options.onProgress, compacted: compactedKeys(record.state) });
      const view = new ArchiveView(config, store, pool, source, Catalog.inMemory([]), read.content, cacheBytesMax, cipher, !options.pool);
      view.ownsStore = !options.lentStore;
      view.adoptRecord(record);
      view.damaged.push(...read.damaged);
      view.catalogProblem = read.problem;
      for (const d of read.damaged) debug('%s', d.message);
      return view;
    } catch (err) {
      if (!options.pool) await pool.close();
      throw err;
    }
  }

  /** Sequences of the segments archived whole and not pruned, oldest first. */
  get segments(): readonly number[] {
    return this.contents.segments.filter((s) => !this.retention.isPruned(s));
  }

  /** The segments the archive holds, whole or in tail pieces, as a prune sees them. */
  get held(): HeldSegments {
    const retention = this.retention;
    return { whole: new Set(this.contents.segments), pieces: this.contents.tails.keys(), isPruned: (s) => retention.isPruned(s) };
  }

  private adoptRecord(record: { state: RetentionState; problem: string | null }): void {
    this.retentionProblem = record.problem;
    this.adoptRetention(record.state);
  }

  /** Takes a retention record in: the catalog shows only the points it keeps. */
  adoptRetention(state: RetentionState): void {
    this.retention = new Retention(state, this.config.workingSetSegments);
    const retention = this.retention;
    this.catalog.showOnly((p) => retention.shows(p));
    this.source.useCompacted(compactedKeys(state));
  }

  /**
   * Takes in what was archived since the view was opened (or last refreshed): new segments,
   * tail pieces and synch points. A few requests: listings that start past what is known.
   */
  async refresh(): Promise<void> {
    const record = await recordInForce(this.store, this.config.volumeId, this.cipher);
    const read = await readArchiveContents(this.store, this.config.volumeId, this.cipher, { known: this.contents, compacted: compactedKeys(record.state) });
    this.adoptRecord(record);
    this.damaged.push(...read.damaged);
    // A segment that gained pieces or became whole must be read afresh.
    for (const s of [...read.after.segments, ...read.after.tails.keys()]) this.source.forget(s);
    this.adopt(read.content);
  }

  private adopt(contents: CatalogContent): void {
    this.contents = contents;
    this.source.tailKeys.clear();
    for (const [sequence, keys] of contents.tails) this.source.tailKeys.set(sequence, [...keys]);
    this.catalog.reconcile(contents.points.map((p) => synchPointFromEntry(p.sequence, p)), () => true);
    debug('archive %s: %d segments, %d with tails only, %d synch points', this.store.location, contents.segments.length, contents.tails.size, this.catalog.all.length);
  }

  async close(): Promise<void> {
    this.source.close();
    if (this.ownsPool) await this.pool.close();
    if (this.ownsStore) await this.store.close();
  }
}

/** The retention record in force (or, damaged, the newest before it that reads: readRecordForReading). */
function recordInForce(store: ArchiveStore, volumeId: string, cipher: ObjectCipher | null): Promise<{ state: RetentionState; problem: string | null }> {
  return readRecordForReading({ store, volumeId, cipher });
}
