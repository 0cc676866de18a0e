/**
 * Forgetting (restic's `forget`): the policy decides which of the points that show are kept, and
 * the others are recorded as forgotten in the next retention record. Nothing is deleted: the
 * points come back with an undo until a prune deletes the segments only they needed.
 */
import type { ArchiveView } from '../history/archive-view.js';
import type { RetentionState } from '../format/retention-record.js';
import type { SynchPoint } from '../volume/synch-point.js';
import { ArchiveKeys } from '../archive/archive-store.js';
import { selectPoints, type Decision, type RetentionPolicy } from '../format/retention-policy.js';
import { changeRetention, type ArchiveRef } from '../archive/retention-records.js';
import { unneededSegments } from '../history/retention.js';

const HEADS_AT_ONCE = 8;

export interface ForgetPlan {
  policy: RetentionPolicy;
  /** Every point that shows now, oldest first, with what the policy says of it. */
  decisions: Decision<SynchPoint>[];
  /** Segments a prune would then delete (those already pruned and not yet deleted included). */
  segments: number[];
  /** Their objects' bytes in the archive. */
  bytes: number;
}

export function archiveRef(view: ArchiveView): ArchiveRef {
  return { store: view.store, volumeId: view.config.volumeId, cipher: view.cipher };
}

/** What `policy` would keep and drop, and what a prune would free after it. */
export async function planForget(view: ArchiveView, policy: RetentionPolicy, options: { timeZone?: 'local' | 'UTC' } = {}): Promise<ForgetPlan> {
  const decisions = selectPoints(view.catalog.all, policy, options);
  const kept = decisions.filter((d) => d.keep).map((d) => d.point);
  const pending = view.retention.state.pending.flatMap((p) => Array.from({ length: p.last - p.first + 1 }, (_, i) => p.first + i));
  const segments = [...new Set([...unneededSegments(kept, view.held, view.config.workingSetSegments), ...pending])].sort((a, b) => a - b);
  return { policy, decisions, segments, bytes: await objectBytes(view, segments) };
}

/** Records the plan's dropped points as forgotten; returns the record in force. */
export async function applyForget(view: ArchiveView, plan: ForgetPlan, nowMs: number): Promise<RetentionState> {
  const dropped = plan.decisions.filter((d) => !d.keep).map((d) => d.point.recordSequence);
  const state = await changeRetention(
    archiveRef(view),
    (current) => {
      const already = new Set(current.forgotten.flatMap((b) => b.points));
      const points = dropped.filter((r) => !already.has(r)).sort((a, b) => a - b);
      return points.length === 0 ? null : { ...current, forgotten: [...current.forgotten, { sinceMs: nowMs, points }] };
    },
    nowMs,
  );
  view.adoptRetention(state);
  return state;
}

/** Brings back every forgotten point whose segments are still there. */
export async function undoForget(view: ArchiveView, nowMs: number): Promise<{ state: RetentionState; restored: number }> {
  let restored = 0;
  const state = await changeRetention(
    archiveRef(view),
    (current) => {
      restored = current.forgotten.reduce((n, b) => n + b.points.length, 0);
      return restored === 0 ? null : { ...current, forgotten: [] };
    },
    nowMs,
  );
  view.adoptRetention(state);
  return { state, restored };
}

/** Saves `policy` as the volume's (the mount applies it as the archive grows). */
export async function savePolicy(view: ArchiveView, policy: RetentionPolicy, nowMs: number): Promise<RetentionState> {
  const state = await changeRetention(archiveRef(view), (current) => ({ ...current, policy }), nowMs);
  view.adoptRetention(state);
  return state;
}

/** The bytes the archive holds for `segments`: each segment object, or the tail pieces of one not archived whole. */
export async function objectBytes(view: ArchiveView, segments: readonly number[]): Promise<number> {
  const whole = new Set(view.segments);
  const keys = segments.flatMap((s) => (whole.has(s) ? [ArchiveKeys.segment(s)] : (view.source.tailKeys.get(s) ?? [ArchiveKeys.segment(s)])));
  let bytes = 0;
  for (let i = 0; i < keys.length; i += HEADS_AT_ONCE) {
    for (const size of await Promise.all(keys.slice(i, i + HEADS_AT_ONCE).map((k) => view.store.head(k)))) bytes += size ?? 0;
  }
  return bytes;
}
