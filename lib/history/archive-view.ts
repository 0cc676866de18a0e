/**
 * An archive on its own: enough to list every synch point and restore any of them when
 * primary storage is lost. The descriptor (`volume.json`) says how to read it; one listing
 * finds the segment objects and tail pieces; their summaries give the catalog.
 */
import createDebug from 'debug';
import { VolumeError, isVolumeError } from '../errors.js';
import { decodeVolumeConfig, type VolumeConfig } from '../format/volume-config.js';
import { Catalog, synchPointFromEntry, type SynchPoint } from '../volume/synch-point.js';
import { SegmentSource } from './segment-source.js';
import { SnapshotCache } from './snapshot.js';
import { cipherFor, type ObjectCipher } from '../format/object-cipher.js';
import { ArchiveKeys, type ArchiveStore } from '../archive/archive-store.js';
import { CompressionPool } from '../archive/compression-pool.js';
import type { History } from './history.js';

const debug = createDebug('salvo:archive');
const SUMMARY_FETCHES_MAX = 8;

export class ArchiveView implements History {
  readonly snapshots: SnapshotCache;

  private constructor(
    readonly config: VolumeConfig,
    readonly store: ArchiveStore,
    readonly pool: CompressionPool,
    readonly source: SegmentSource,
    readonly catalog: Catalog,
    /** Sequences of the segments archived whole, oldest first. */
    readonly segments: number[],
    /** Objects whose summaries could not be read: their synch points are missing from the catalog. */
    readonly damaged: { sequence: number; message: string }[],
    cacheBytesMax: number,
    readonly cipher: ObjectCipher | null,
  ) {
    this.snapshots = new SnapshotCache(config, source, cacheBytesMax / 2);
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
    options: { cacheBytesMax?: number; onProgress?: (done: number, total: number) => void; cipher?: ObjectCipher } = {},
  ): Promise<ArchiveView> {
    const config = await ArchiveView.descriptor(store);
    const cipher = cipherFor(config, options.cipher, `archive ${store.location}`);
    const pool = new CompressionPool();
    const cacheBytesMax = options.cacheBytesMax ?? 256 * 1024 * 1024;
    const source = new SegmentSource(store, pool, null, cacheBytesMax / 2, config.volumeId, cipher);
    try {
      const segments = (await store.list('segments/')).map((k) => ArchiveKeys.parseSegment(k)).filter((s): s is number => s !== null);
      const whole = new Set(segments);
      for (const key of await store.list('tails/')) {
        const tail = ArchiveKeys.parseTail(key);
        if (!tail || whole.has(tail.sequence)) continue;
        source.tailKeys.set(tail.sequence, [...(source.tailKeys.get(tail.sequence) ?? []), key]);
      }
      const sequences = [...segments, ...source.tailKeys.keys()].sort((a, b) => a - b);
      const points: SynchPoint[] = [];
      const damaged: { sequence: number; message: string }[] = [];
      for (let i = 0; i < sequences.length; i += SUMMARY_FETCHES_MAX) {
        const batch = sequences.slice(i, i + SUMMARY_FETCHES_MAX);
        await Promise.all(
          batch.map(async (sequence) => {
            try {
              const summary = await source.summary(sequence);
              points.push(...summary.synchs.map((e) => synchPointFromEntry(sequence, e)));
            } catch (err) {
              // One damaged object must not hide the rest of the history.
              if (!isVolumeError(err, 'CORRUPT_ARCHIVE')) throw err;
              damaged.push({ sequence, message: err.message });
            }
          }),
        );
        options.onProgress?.(Math.min(i + SUMMARY_FETCHES_MAX, sequences.length), sequences.length);
      }
      for (const d of damaged) debug('%s', d.message);
      debug('archive %s: %d segments, %d with tails only, %d synch points', store.location, segments.length, source.tailKeys.size, points.length);
      return new ArchiveView(config, store, pool, source, Catalog.inMemory(points), segments, damaged, cacheBytesMax, cipher);
    } catch (err) {
      await pool.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
    await this.store.close();
  }
}
