/**
 * Retention in the simulation: forget by a random policy, prune and (mostly) compact, on the archive the live
 * engine keeps writing to, under the archive's weather, with power cuts at any file I/O. The
 * volume's catalog and its directory's copy of the record learn of each record as the CLI and
 * the mount's keeper give it to them (before anything is deleted). Afterwards: no point the
 * volume shows needs a segment that is gone; every point the policy kept, and every point the
 * archive did not yet hold, still shows; and the model forgets what no longer shows.
 */
import { readRetention } from '../../lib/archive/retention-records.js';
import type { CompressionPool } from '../../lib/archive/compression-pool.js';
import { ArchiveKeys } from '../../lib/archive/archive-store.js';
import { isVolumeError } from '../../lib/errors.js';
import type { RetentionPolicy } from '../../lib/format/retention-policy.js';
import { parseCompactedKey, type RetentionState } from '../../lib/format/retention-record.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { Retention, showKept } from '../../lib/history/retention.js';
import { applyForget, planForget } from '../../lib/retention/forget.js';
import { loadLocalRetention, saveLocalRetention } from '../../lib/retention/local-record.js';
import { prune } from '../../lib/retention/prune.js';
import type { VolumeFiles } from '../../lib/volume/files.js';
import type { SynchPoint } from '../../lib/volume/synch-point.js';
import type { Volume } from '../../lib/volume/volume.js';
import type { SimClock } from './sim-clock.js';
import { CALM, type SimStore } from './sim-store.js';
import { historyOf } from '../helpers/temp-volume.js';

export interface RetentionRun {
  random: () => number;
  store: SimStore;
  pool: CompressionPool;
  clock: SimClock;
  volume: Volume;
  files: VolumeFiles;
  /** The model's acknowledged points, by record sequence: those that no longer show are dropped. */
  points: Map<number, { point: SynchPoint }>;
  trail: string[];
}

export interface RetentionStats {
  retentionRuns: number;
  retentionFailed: number;
  pointsForgotten: number;
  segmentsPruned: number;
  segmentsCompacted: number;
}

function randomPolicy(random: () => number): RetentionPolicy {
  const r = random();
  if (r < 0.4) return { last: 1 + Math.floor(random() * 3) };
  if (r < 0.7) return { withinMs: Math.floor(1 + random() * 3 * 86_400_000) };
  return { daily: 1 + Math.floor(random() * 3), last: 1 };
}

/** The archived segments `point` needs that the store no longer holds (and primary storage does not either). */
function goneSegments(run: RetentionRun, point: SynchPoint, window: number): number[] {
  const held = new Set([...run.store.inner.objects.keys()].map((k) => ArchiveKeys.parseSegment(k) ?? parseCompactedKey(k)?.sequence ?? ArchiveKeys.parseTail(k)?.sequence ?? -1));
  const gone: number[] = [];
  for (let s = Math.max(1, point.sequence - window); s <= point.sequence; s++) if (!held.has(s) && !run.volume.slotHolding(s)) gone.push(s);
  return gone;
}

export async function forgetAndPrune(run: RetentionRun, stats: RetentionStats): Promise<string | null> {
  const { random, store, clock, volume, files } = run;
  const window = volume.config.workingSetSegments;
  const tell = async (state: RetentionState) => {
    saveLocalRetention(files, state);
    showKept(volume.catalog, state, window, historyOf(volume).source);
  };
  // A power cut (SimulatedCrash, from the files) goes on up: the simulation learns the record after it restarts.
  const policy = randomPolicy(random);
  run.trail.push(`forget ${JSON.stringify(policy)} and prune`);
  stats.retentionRuns++;
  let keptByPlan: number[] = [];
  let archived = new Set<number>();
  try {
    const view = await ArchiveView.open(store, { pool: run.pool });
    try {
      archived = new Set(view.catalog.everything.map((p) => p.recordSequence));
      const plan = await planForget(view, policy, { timeZone: 'UTC' });
      keptByPlan = plan.decisions.filter((d) => d.keep).map((d) => d.point.recordSequence);
      stats.pointsForgotten += plan.decisions.length - keptByPlan.length;
      await tell(await applyForget(view, plan, clock.now()));
      const result = await prune(view, { graceMs: random() < 0.5 ? 0 : 60_000, undoMs: 0, compact: random() < 0.7, now: () => clock.now(), sleep: (ms) => clock.sleep(ms), onRecord: tell });
      stats.segmentsPruned += result.segments;
      stats.segmentsCompacted += result.compacted.segments;
    } finally {
      await view.close();
    }
  } catch (err) {
    if (!isVolumeError(err)) throw err;
    stats.retentionFailed++;
    run.trail.push(`retention failed: ${err.code}`);
  }

  // Whatever happened: nothing the volume shows needs a segment that is gone.
  for (const point of volume.catalog.all) {
    const gone = goneSegments(run, point, window);
    if (gone.length > 0) return `synch point ${point.recordSequence} shows, and segments ${gone.join(', ')} of its window are gone`;
  }
  return learnRecord(run, (record) => keptByPlan.includes(record) || !archived.has(record));
}

/**
 * The model learns the record in force, read as the mount's keeper reads it within 30 s (also
 * after a power cut cut a run short): the points it hides are dropped from the model, and none of
 * those `mustShow` names may be among them.
 */
export async function learnRecord(run: Omit<RetentionRun, 'random' | 'pool' | 'clock' | 'trail'>, mustShow: (record: number) => boolean = () => false): Promise<string | null> {
  const { store, volume, files } = run;
  const window = volume.config.workingSetSegments;
  const weather = store.weather;
  const outage = store.outage;
  store.weather = CALM;
  store.outage = 0;
  let state: RetentionState;
  try {
    state = await readRetention({ store, volumeId: volume.config.volumeId, cipher: null });
  } catch (err) {
    // A damaged newest record (rot, or a cut-short one whose delete failed too): the volume's copy
    // holds the last record it was given, written and read back whole before that.
    if (!isVolumeError(err, 'CORRUPT_ARCHIVE')) throw err;
    state = loadLocalRetention(files);
  } finally {
    store.weather = weather;
    store.outage = outage;
  }
  if (state.n > loadLocalRetention(files).n) {
    saveLocalRetention(files, state);
    showKept(volume.catalog, state, window, historyOf(volume).source);
  }
  const retention = new Retention(state, window);
  for (const [record, { point }] of run.points) {
    if (retention.shows(point)) continue;
    if (mustShow(record)) return `synch point ${record} no longer shows, and the policy kept it or the archive did not hold it`;
    run.points.delete(record);
  }
  return null;
}
