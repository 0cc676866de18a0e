/**
 * What a mount shows Prometheus (`salvo mount --metrics`): a registry of its own (never
 * prom-client's global one), every series labelled with the volume. The engine already counts
 * what matters (the log's counters, the archiver's stats, the history's reads): the registry
 * reads them at scrape time, from one status taken per scrape, instead of instrumenting every
 * path. Only latencies are recorded where they happen (the FUSE requests, the synch points).
 * README.md, "Metrics", lists the names and what each means.
 */
import fs from 'node:fs';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { VolumeMount } from '../fuse/mount.js';
import type { History } from '../history/history.js';
import type { VolumeStatus } from '../volume/status.js';
import type { Volume } from '../volume/volume.js';
import { registerHistogram } from './histograms.js';
import type { MetricsSource } from './server.js';

export interface MountMetricsOptions {
  /** The `volume` label: the volume directory, or the archive's location for a mount of an archive alone. */
  label: string;
  /** The live volume; null for a mount of an archive alone (its history then is an archive view). */
  volume: Volume | null;
  history: History;
  mount: VolumeMount;
  /** process_* and nodejs_* (memory, CPU, event loop lag, GC) in the same registry; default true. */
  processMetrics?: boolean;
}

type Labels = Record<string, string>;
/** One value of a metric at a scrape: a number, or numbers by label (e.g. by cause). */
type Reading = number | readonly [Labels, number][];

/** What one scrape reads, taken once before the registry's collectors run. */
interface Scrape {
  nowMs: number;
  status: VolumeStatus | null;
  /** The filesystem holding the volume directory; null if statfs failed. */
  filesystem: { freeBytes: number; sizeBytes: number } | null;
}

export class MountMetrics implements MetricsSource {
  readonly registry = new Registry();
  private scrape: Scrape;

  constructor(private readonly options: MountMetricsOptions) {
    this.registry.setDefaultLabels({ volume: options.label });
    this.scrape = this.read();
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.registerCommon();
    if (options.volume) this.registerVolume(options.volume);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async metrics(): Promise<string> {
    this.scrape = this.read();
    return this.registry.metrics();
  }

  private read(): Scrape {
    const { volume } = this.options;
    return { nowMs: Date.now(), status: volume ? volume.status() : null, filesystem: volume ? filesystemOf(volume.dir) : null };
  }

  /** A counter (monotonic since the mount opened: Prometheus' rate() sees a restart as a reset) or a gauge, read at scrape time. */
  private metric(kind: 'counter' | 'gauge', name: string, help: string, read: (s: Scrape) => Reading | null, labelNames: string[] = []): void {
    const self = this;
    const collect = function (this: Counter | Gauge) {
      this.reset();
      const reading = read(self.scrape);
      // Nothing to show now (no recovery point's time): no sample, rather than a made-up 0.
      if (reading === null) return labelNames.length === 0 ? this.remove() : undefined;
      for (const [labels, value] of typeof reading === 'number' ? ([[{}, reading]] as const) : reading) {
        if (this instanceof Counter) this.inc(labels, value);
        else this.set(labels, value);
      }
    };
    const config = { name, help, labelNames, registers: [this.registry], collect };
    if (kind === 'counter') new Counter(config);
    else new Gauge(config);
  }

  /** What a mount of an archive alone shows too: the FUSE requests and the reads of the past. */
  private registerCommon(): void {
    const { mount, history } = this.options;
    registerHistogram(this.registry, 'salvo_fuse_request_duration_seconds', 'Time salvo took to answer a FUSE request, by operation', () =>
      Object.entries(mount.requestTimes).map(([op, histogram]) => ({ labels: { op }, histogram })),
    );
    this.metric('counter', 'salvo_read_bytes_total', 'Bytes read through the mount, from the live image or the snapshots', () => [
      [{ image: 'live' }, mount.bytesRead.live],
      [{ image: 'snapshot' }, mount.bytesRead.snapshot],
    ], ['image']);
    this.metric('counter', 'salvo_snapshot_cache_hits_total', 'Opens and reads of a snapshot answered by its index in memory', () => history.snapshots.stats.hits);
    this.metric('counter', 'salvo_snapshot_cache_misses_total', "Opens and reads of a snapshot that rebuilt its index (the backward scan)", () => history.snapshots.stats.misses);
    this.metric('counter', 'salvo_archive_fetched_bytes_total', 'Compressed bytes of archived chunks fetched to read the past', () => history.source.stats.bytesFetched);
    this.metric('counter', 'salvo_archive_fetched_chunks_total', 'Archived chunks fetched to read the past (read-ahead included)', () => history.source.stats.chunksFetched);
    this.metric('gauge', 'salvo_cache_bytes', 'Memory held by rebuilt snapshot indexes and fetched archive chunks', () => history.snapshots.bytes + history.source.cacheBytes);
    this.metric('counter', 'salvo_archive_requests_total', 'Requests made of the archive, by kind', () => {
      const r = history.store.stats;
      return [[{ kind: 'put' }, r.puts], [{ kind: 'get' }, r.gets], [{ kind: 'head' }, r.heads], [{ kind: 'list' }, r.lists], [{ kind: 'delete' }, r.deletes]];
    }, ['kind']);
    this.metric('gauge', 'salvo_synch_points', 'Synch points the mount lists under /snapshots', () => history.catalog.all.length);
    this.metric('gauge', 'salvo_volume_size_bytes', 'Size of the volume (of its images)', () => history.config.sizeBytes);
  }

  private registerVolume(volume: Volume): void {
    const status = (read: (s: VolumeStatus, scrape: Scrape) => Reading | null) => (scrape: Scrape) => (scrape.status ? read(scrape.status, scrape) : null);
    this.metric('counter', 'salvo_written_bytes_total', 'Bytes written to the live volume', status((s) => s.bytesWritten));
    this.metric('counter', 'salvo_discarded_bytes_total', 'Bytes of blocks with data that discards (fstrim, blkdiscard) freed', status((s) => s.bytesDiscarded));
    this.metric('counter', 'salvo_copied_forward_bytes_total', 'Bytes of live blocks copied forward out of retiring segments', status((s) => s.bytesCopiedForward));
    this.metric('counter', 'salvo_archived_bytes_total', 'Raw bytes of the log the archive took (segments and tail pieces)', status((s) => s.archive.rawBytesArchived));
    this.metric('counter', 'salvo_archive_stored_bytes_total', 'Bytes the archive stored for them, compressed (and sealed)', status((s) => s.archive.storedBytesArchived));
    this.metric('gauge', 'salvo_archive_pending_bytes', 'Raw bytes of the log not in the archive yet (queued, and the current segment not yet queued)', status((s) => s.archive.bytesWaiting));
    this.metric('gauge', 'salvo_archive_pending_pieces', 'Pieces of the log (segments, tails) queued for the archive', status((s) => s.archive.pendingItems));
    this.metric('gauge', 'salvo_archive_lag_seconds', 'Age of the oldest write not in the archive yet; 0 when the archive holds every write', status((s) => (s.archive.oldestUnarchivedWriteAgeMs ?? 0) / 1000));
    this.metric('gauge', 'salvo_recovery_point_age_seconds', 'Age of the newest synch point the archive alone restores; +Inf while it restores none', status((s, { nowMs }) => (s.archive.recoveryPoint === null ? Infinity : Math.max(0, nowMs - Date.parse(s.archive.recoveryPoint)) / 1000)));
    this.metric('gauge', 'salvo_recovery_point_timestamp_seconds', 'Time of the newest synch point the archive alone restores (absent while none)', status((s) => (s.archive.recoveryPoint === null ? null : Date.parse(s.archive.recoveryPoint) / 1000)));
    this.metric('gauge', 'salvo_archive_failing', '1 while shipping to the archive fails (and is retried), else 0', status((s) => (s.archive.failingCause === null ? 0 : 1)));
    this.metric('counter', 'salvo_archive_put_failures_total', 'Failed attempts to ship a piece of the log to the archive, by cause', () => Object.entries(volume.archiveFailures).map(([cause, n]) => [{ cause }, n] as [Labels, number]), ['cause']);
    // A stall in progress counts already: its stall and its seconds so far, so rate() shows it while it lasts.
    this.metric('counter', 'salvo_write_stalls_total', 'Times writes waited for a free segment slot (the archive behind)', status((s) => s.writeStalls.count + (s.writesStalledSince === null ? 0 : 1)));
    this.metric('counter', 'salvo_write_stall_seconds_total', 'Seconds writes waited for a free segment slot', monotonic(status((s, { nowMs }) => (s.writeStalls.totalMs + (s.writesStalledSince === null ? 0 : Math.max(0, nowMs - Date.parse(s.writesStalledSince)))) / 1000)));
    this.metric('gauge', 'salvo_write_stalled', '1 while writes wait for a free segment slot, else 0', status((s) => (s.writesStalledSince === null ? 0 : 1)));
    this.metric('counter', 'salvo_synch_points_total', 'Synch points taken since the mount opened the volume', () => volume.synchTimes.count);
    registerHistogram(this.registry, 'salvo_synch_duration_seconds', 'Time from the request of a synch point to its acknowledgement', () => [{ labels: {}, histogram: volume.synchTimes }]);
    this.metric('gauge', 'salvo_segments', 'Segment slots by state', status((s) => Object.entries({ current: s.segments.current, active: s.segments.active, inactive: s.segments.inactive, recycle: s.segments.recycle }).map(([state, n]) => [{ state }, n] as [Labels, number])), ['state']);
    this.metric('gauge', 'salvo_primary_allocated_bytes', 'Storage the slot files take now (sparse until used)', status((s) => s.primary.allocatedBytes));
    this.metric('gauge', 'salvo_primary_capacity_bytes', 'Storage the slot files may take once every slot has held a segment', status((s) => s.primary.slotBytes));
    this.metric('gauge', 'salvo_primary_filesystem_free_bytes', 'Bytes free (for unprivileged users) on the filesystem holding the volume directory', ({ filesystem }) => filesystem?.freeBytes ?? null);
    this.metric('gauge', 'salvo_primary_filesystem_size_bytes', 'Size of the filesystem holding the volume directory', ({ filesystem }) => filesystem?.sizeBytes ?? null);
    this.metric('gauge', 'salvo_index_memory_bytes', 'Memory of the live index (block to log entry)', status((s) => s.indexBytes));
  }
}

/** A counter read from a sum that may, for an instant, step back (a stall's running seconds, then its measured total): never below what was shown. */
function monotonic(read: (s: Scrape) => Reading | null): (s: Scrape) => Reading | null {
  let shown = 0;
  return (scrape) => {
    const value = read(scrape);
    if (typeof value !== 'number') return value;
    shown = Math.max(shown, value);
    return shown;
  };
}

function filesystemOf(dir: string): Scrape['filesystem'] {
  try {
    const s = fs.statfsSync(dir);
    return { freeBytes: s.bavail * s.bsize, sizeBytes: s.blocks * s.bsize };
  } catch {
    return null;
  }
}
