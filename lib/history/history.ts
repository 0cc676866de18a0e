/**
 * A volume's history: its synch points and what opens them. Two kinds read it alike: the history
 * of a live volume (VolumeHistory: segments from primary storage while slots hold them, else
 * from the archive) and an archive on its own (ArchiveView).
 */
import type { ArchiveStore } from '../archive/archive-store.js';
import type { CompressionPool } from '../archive/compression-pool.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import type { VolumeConfig } from '../format/volume-config.js';
import type { Catalog } from '../volume/synch-point.js';
import type { Volume } from '../volume/volume.js';
import { SegmentSource, type SourceStats } from './segment-source.js';
import { SnapshotCache } from './snapshot.js';

/** Memory for rebuilt snapshot indexes and fetched archive chunks together, unless told (`mount --cache`). */
export const CACHE_BYTES_DEFAULT = 256 * 1024 * 1024;

export interface History {
  readonly config: VolumeConfig;
  readonly catalog: Catalog;
  readonly snapshots: SnapshotCache;
  readonly source: SegmentSource;
  readonly store: ArchiveStore;
  readonly pool: CompressionPool;
  readonly cipher: ObjectCipher | null;
}

/** What status shows of the reads of the past. */
export interface HistoryStatus {
  /** Bytes the caches hold now, and their bound. */
  cacheBytes: number;
  cacheBytesMax: number;
  snapshotReads: SourceStats;
}

/** The past of a live volume, as its mount and the commands on a volume directory read it. */
export class VolumeHistory implements History {
  readonly source: SegmentSource;
  readonly snapshots: SnapshotCache;

  constructor(
    readonly volume: Volume,
    readonly cacheBytesMax = CACHE_BYTES_DEFAULT,
  ) {
    // One bound for both caches: half for fetched archive data, half for rebuilt indexes.
    this.source = new SegmentSource(volume.store, volume.pool, volume, cacheBytesMax / 2, volume.config.volumeId, volume.cipher);
    this.snapshots = new SnapshotCache(volume.config, this.source, cacheBytesMax / 2);
  }

  get config(): VolumeConfig {
    return this.volume.config;
  }

  get catalog(): Catalog {
    return this.volume.catalog;
  }

  get store(): ArchiveStore {
    return this.volume.store;
  }

  get pool(): CompressionPool {
    return this.volume.pool;
  }

  get cipher(): ObjectCipher | null {
    return this.volume.cipher;
  }

  /** Closes what the reads of the past hold beyond memory (the chunk spill's file); the volume stays open. */
  close(): void {
    this.source.close();
  }

  status(): HistoryStatus {
    return { cacheBytes: this.snapshots.bytes + this.source.cacheBytes, cacheBytesMax: this.cacheBytesMax, snapshotReads: { ...this.source.stats } };
  }
}
