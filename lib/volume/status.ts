/** What `salvo status` shows of a volume: segment states, archive lag, sizes. */
import type { StoreStats } from '../archive/archive-store.js';
import type { Archiver } from '../archive/archiver.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import type { VolumeConfig } from '../format/volume-config.js';
import type { Clock } from '../util/clock.js';
import type { Log } from './log.js';
import type { Catalog, SynchPoint } from './synch-point.js';
import type { ArchiveStore } from '../archive/archive-store.js';

export interface VolumeStatus extends Pick<VolumeConfig, 'volumeId' | 'sizeBytes' | 'blockSizeBytes' | 'segmentSizeBytes' | 'workingSetSegments' | 'spareSegments'> {
  volume: string;
  /** Writes are shipped at least this often while they arrive (`--rpo`; 0: at synch points). */
  rpoSeconds: number;
  /** Archived objects are sealed with the volume's key. */
  encrypted: boolean;
  segments: { current: number; active: number; inactive: number; recycle: number; archivedOnPrimary: number; currentSequence: number };
  /** Storage the slot files take now (sparse until used), and what they may take once every slot has held a segment. */
  primary: { allocatedBytes: number; slotBytes: number };
  bytesWritten: number;
  /** Bytes of blocks with data that discards freed (ZERO records written for them). */
  bytesDiscarded: number;
  bytesCopiedForward: number;
  indexBytes: number;
  /** Blocks with data in the live index: what its memory follows. */
  indexedBlocks: number;
  synchPoints: number;
  latest: string | null;
  writesStalledSince: string | null;
  /** Stalls that ended since the volume was opened (writes waited for a free slot), and their total length. */
  writeStalls: { count: number; totalMs: number };
  archive: {
    location: string;
    segmentsArchived: number;
    tailsShipped: number;
    rawBytesArchived: number;
    storedBytesArchived: number;
    compressionRatio: number | null;
    pendingItems: number;
    /** The archiver is at work (shipping, or giving memory back after its queue emptied). */
    busy: boolean;
    /** Raw bytes not in the archive yet: the pieces queued and the current segment's part not queued. */
    bytesWaiting: number;
    /** Of those, the current segment's: queued at the next synch point, RPO tick or roll. */
    bytesInCurrentSegment: number;
    lastError: string | null;
    /** Why, in a word (full, denied, unreachable, conflict, damaged), while the archive fails. */
    failingCause: string | null;
    failingSince: string | null;
    /** The newest synch point the archive alone can restore. */
    recoveryPoint: string | null;
    oldestUnarchivedWriteAgeMs: number | null;
    requests: StoreStats;
  };
}

export function volumeStatus(v: { dir: string; config: VolumeConfig; log: Log; catalog: Catalog; archiver: Archiver; store: ArchiveStore; clock: Clock; cipher: ObjectCipher | null; rpoSeconds: number; recoveryPoint: SynchPoint | null }): VolumeStatus {
  const { config, log, catalog, archiver } = v;
  const slots = log.slots;
  const count = (state: string) => slots.filter((s) => s.state === state).length;
  const a = archiver.stats;
  const oldest = [log.unshippedSinceMs, archiver.oldestPendingSinceMs].filter((t): t is number => t !== null);
  const time = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    volume: v.dir,
    rpoSeconds: v.rpoSeconds,
    encrypted: v.cipher !== null,
    volumeId: config.volumeId,
    sizeBytes: config.sizeBytes,
    blockSizeBytes: config.blockSizeBytes,
    segmentSizeBytes: config.segmentSizeBytes,
    workingSetSegments: config.workingSetSegments,
    spareSegments: config.spareSegments,
    segments: {
      current: count('current'),
      active: count('active'),
      inactive: count('inactive'),
      recycle: count('recycle'),
      archivedOnPrimary: slots.filter((s) => s.archived && s.state !== 'recycle').length,
      currentSequence: log.current.sequence,
    },
    // A stat of every slot file, only when asked (BENCHMARKS.md, "Figures behind the code": status of a big volume).
    primary: { allocatedBytes: slots.reduce((n, s) => n + s.allocatedBytes(), 0), slotBytes: slots.length * config.segmentSizeBytes },
    bytesWritten: log.counters.bytesWritten,
    bytesDiscarded: log.counters.blocksDiscarded * config.blockSizeBytes,
    bytesCopiedForward: log.counters.bytesCopiedForward,
    indexBytes: log.index.memoryBytes,
    indexedBlocks: log.index.size,
    synchPoints: catalog.all.length,
    latest: time(catalog.latest?.timeMs ?? null),
    writesStalledSince: time(log.stalledSince),
    writeStalls: { count: log.counters.writeStalls, totalMs: log.counters.writeStalledMs },
    archive: {
      location: v.store.location,
      segmentsArchived: a.segmentsArchived,
      tailsShipped: a.tailsShipped,
      rawBytesArchived: a.rawBytesArchived,
      storedBytesArchived: a.storedBytesArchived,
      compressionRatio: a.storedBytesArchived > 0 ? a.rawBytesArchived / a.storedBytesArchived : null,
      pendingItems: a.pendingItems,
      busy: archiver.busy,
      bytesWaiting: a.bytesWaiting + log.unshippedBytes,
      bytesInCurrentSegment: log.unshippedBytes,
      lastError: a.lastError,
      failingCause: a.failingCause,
      failingSince: time(a.failingSinceMs),
      recoveryPoint: time(v.recoveryPoint?.timeMs ?? null),
      oldestUnarchivedWriteAgeMs: oldest.length > 0 ? v.clock.now() - Math.min(...oldest) : null,
      requests: { ...v.store.stats },
    },
  };
}
