/**
 * Retention in a volume's mount: the catalog shows only the points the retention record in force
 * keeps (from the volume directory's copy at once, then from the archive every 30 s, so that a prune
 * elsewhere is seen within its grace), and the saved policy is applied as the archive grows — forget, then prune what was forgotten at least a day ago, so an
 * undo (`salvo forget --undo`) has that day. Every run is a few requests; a failed one is retried
 * at the next and never touches the volume's writes.
 */
import createDebug from 'debug';
import type { ArchiveStore } from '../archive/archive-store.js';
import type { CompressionPool } from '../archive/compression-pool.js';
import type { RetentionState } from '../format/retention-record.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import type { VolumeConfig } from '../format/volume-config.js';
import { ArchiveView } from '../history/archive-view.js';
import type { Clock, Timer } from '../util/clock.js';
import type { VolumeFiles } from '../volume/files.js';
import type { Catalog } from '../volume/synch-point.js';
import type { SegmentSource } from '../history/segment-source.js';
import { applyForget, planForget } from './forget.js';
import { loadLocalRetention, saveLocalRetention } from './local-record.js';
import { describePolicy, isEmptyPolicy } from '../format/retention-policy.js';
import { PRUNE_GRACE_MS, prune } from './prune.js';
import { readRetention } from '../archive/retention-records.js';
import { retentionSummary, showKept, type RetentionStatus } from '../history/retention.js';

const debug = createDebug('salvo:retention');
/** How often the mount applies the saved policy. */
const RETENTION_EVERY_MS = 10 * 60_000;
/**
 * How often the mount reads the record in force between runs: a prune elsewhere (on the archive
 * alone) deletes after a grace of twice this, so the mount has stopped showing its points by then.
 */
export const REFRESH_EVERY_MS = 30_000;
/** How long the mount leaves forgotten points for an undo before it prunes them. */
export const UNDO_MS = 24 * 3_600_000;

export interface KeptVolume {
  config: VolumeConfig;
  catalog: Catalog;
  /** The segment source of the mount's history: it reads compacted segments from their objects. */
  source?: SegmentSource;
  store: ArchiveStore;
  pool: CompressionPool;
  cipher: ObjectCipher | null;
}

export class RetentionKeeper {
  private state: RetentionState;
  private timer: Timer | null = null;
  private running: Promise<void> | null = null;
  private readonly stopping = new AbortController();
  private lastRun: RetentionStatus['lastRun'] = null;
  private problem: string | null = null;
  /** When the policy last ran (monotonic ms), or null before its first run. */
  private policyRanAt: number | null = null;

  constructor(
    private readonly volume: KeptVolume,
    private readonly files: VolumeFiles,
    private readonly clock: Clock,
  ) {
    this.state = loadLocalRetention(files);
    this.adopt(this.state);
  }

  /** Runs the policy now and then every RETENTION_EVERY_MS, and reads the record in force every REFRESH_EVERY_MS. */
  start(): void {
    this.schedule(0);
  }

  /** Reads the archive's record in force (after a `salvo forget` or `prune` elsewhere); returns it. */
  async refresh(): Promise<RetentionState> {
    const state = await readRetention({ store: this.volume.store, volumeId: this.volume.config.volumeId, cipher: this.volume.cipher });
    this.adopt(state);
    return state;
  }

  status(): RetentionStatus {
    return { ...retentionSummary(this.state, this.problem), lastRun: this.lastRun };
  }

  async close(): Promise<void> {
    this.timer?.cancel();
    this.stopping.abort();
    await this.running;
  }

  private adopt(state: RetentionState): void {
    if (state.n < this.state.n) return;
    this.state = state;
    if (state.n > 0) saveLocalRetention(this.files, state);
    showKept(this.volume.catalog, state, this.volume.config.workingSetSegments, this.volume.source);
  }

  private schedule(ms: number): void {
    this.timer = this.clock.after(
      ms,
      () => {
        this.running = this.tick().finally(() => {
          this.running = null;
          if (!this.stopping.signal.aborted) this.schedule(REFRESH_EVERY_MS);
        });
      },
      { background: true },
    );
  }

  private async tick(): Promise<void> {
    try {
      const due = this.policyRanAt === null || this.clock.monotonic() - this.policyRanAt >= RETENTION_EVERY_MS;
      const state = await this.refresh();
      if (!due) {
        this.problem = null;
        return;
      }
      this.policyRanAt = this.clock.monotonic();
      if (isEmptyPolicy(state.policy)) return;
      const view = await ArchiveView.open(this.volume.store, { pool: this.volume.pool, cipher: this.volume.cipher, lentStore: true });
      try {
        const plan = await planForget(view, state.policy);
        const forgot = plan.decisions.filter((d) => !d.keep).length;
        if (forgot > 0) this.adopt(await applyForget(view, plan, this.clock.now()));
        const pruned = await prune(view, {
          graceMs: PRUNE_GRACE_MS,
          undoMs: UNDO_MS,
          compact: true,
          now: () => this.clock.now(),
          sleep: (ms) => this.sleep(ms),
          onRecord: async (record) => this.adopt(record),
        });
        const freed = pruned.bytes - pruned.compacted.bytesAfter;
        this.lastRun = { at: new Date(this.clock.now()).toISOString(), forgot, prunedSegments: pruned.segments, compactedSegments: pruned.compacted.segments, freedBytes: freed };
        this.problem = null;
        debug('policy %s: forgot %d points, pruned %d segments, compacted %d, freed %d bytes', describePolicy(state.policy), forgot, pruned.segments, pruned.compacted.segments, freed);
      } finally {
        await view.close();
      }
    } catch (err) {
      if (this.stopping.signal.aborted) return;
      this.problem = (err as Error).message;
      debug('applying the retention policy failed: %s', this.problem);
    }
  }

  /** A wait that ends early (by throwing) when the mount stops. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = this.clock.after(ms, resolve, { background: true });
      this.stopping.signal.addEventListener('abort', () => {
        timer.cancel();
        reject(new Error('the mount is stopping'));
      });
    });
  }
}
