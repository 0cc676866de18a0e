/**
 * Pruning (restic's `prune`): deletes the archived objects of segments that no point that shows
 * needs (FORMAT.md §3.15). In three steps, each one a retention record or after one, so that a
 * crash or an archive fault at any step leaves an archive where every kept point restores, and a
 * re-run finishes the job: (1) record the segments as pruned and pending — from then on no reader
 * shows a point that needs them; (2) wait out the grace period, so that a reader that opened such
 * a point before it refreshed (mounts refresh every 30 s) has let go; (3) delete the
 * objects, then record that nothing is pending.
 */
import { VolumeError } from '../errors.js';
import type { ArchiveView } from '../history/archive-view.js';
import { parseCompactedKey, type PendingDelete, type RetentionState } from '../format/retention-record.js';
import { ArchiveKeys } from '../archive/archive-store.js';
import { archiveRef } from './forget.js';
import { compact, type CompactResult } from './compact.js';
import { changeRetention } from '../archive/retention-records.js';
import { addToRanges } from '../format/retention-record.js';
import { Retention, unneededSegments } from '../history/retention.js';

/** How long readers get before a pruned segment's objects go: twice the refresh of a mount (of an archive, or a volume's keeper). */
export const PRUNE_GRACE_MS = 60_000;
const DELETES_AT_ONCE = 8;

export interface PruneResult {
  /** Segments whose objects this run deleted, and the bytes of every object it deleted (replaced ones too). */
  segments: number;
  bytes: number;
  /** Segments compacted, and their stored bytes before and after. */
  compacted: CompactResult;
}

export interface PruneOptions {
  graceMs: number;
  /** Points forgotten less than this long ago are left for an undo (0: prune everything forgotten). */
  undoMs: number;
  /** Whether to compact the segments kept points still need (FORMAT.md §3.15) after pruning. */
  compact: boolean;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Told before the wait for readers, with how long it is. */
  onWait?: (ms: number) => void;
  /**
   * Given each record this prune writes, before it deletes anything: the volume's own mount and its
   * directory's copy must stop showing the pruned points before their segments go.
   */
  onRecord?: (state: RetentionState) => Promise<void>;
}

export async function prune(view: ArchiveView, options: PruneOptions): Promise<PruneResult> {
  // A point whose summary did not read is unknown, and so is its window: nothing may go then.
  const [damaged] = view.damaged;
  if (damaged) {
    throw new VolumeError('CORRUPT_ARCHIVE', `prune refuses to run while the summary of segment ${damaged.sequence} cannot be read: ${damaged.message}`, {
      hint: 'run `salvo verify` on the archive',
    });
  }
  // Nor while the view goes by an older record than the one in force.
  if (view.retentionProblem) throw new VolumeError('CORRUPT_ARCHIVE', `prune refuses to run while the retention record in force cannot be read: ${view.retentionProblem}`);
  const window = view.config.workingSetSegments;
  // Points forgotten less than undoMs ago count as kept: they can still come back.
  const keptBy = (retention: Retention) => {
    const undoFrom = options.now() - options.undoMs;
    return view.catalog.everything.filter((p) => !retention.lostWindow(p) && (retention.forgottenAt(p) ?? Infinity) > undoFrom);
  };
  let state = await changeRetention(
    archiveRef(view),
    (current) => {
      const retention = new Retention(current, window);
      const fresh = unneededSegments(keptBy(retention), { ...view.held, isPruned: (s) => retention.isPruned(s) }, window);
      if (fresh.length === 0) return null;
      const pruned = addToRanges(current.pruned, fresh);
      const pending = [...current.pending, ...addToRanges([], fresh).map(([first, last]) => ({ first, last, sinceMs: options.now(), kind: 'pruned' as const }))];
      // A forgotten point whose window lost a segment is gone for good: the record need not name it.
      const after = new Retention({ ...current, pruned }, window);
      const places = new Map(view.catalog.everything.map((p) => [p.recordSequence, p]));
      const forgotten = current.forgotten
        .map((b) => ({ ...b, points: b.points.filter((r) => !places.has(r) || !after.lostWindow(places.get(r)!)) }))
        .filter((b) => b.points.length > 0);
      return { ...current, forgotten, pruned, pending };
    },
    options.now(),
  );
  view.adoptRetention(state);
  let compacted: CompactResult = { segments: 0, bytesBefore: 0, bytesAfter: 0 };
  if (options.compact) ({ state, result: compacted } = await compact(view, keptBy(view.retention), options.now()));
  if (state.pending.length === 0) return { segments: 0, bytes: 0, compacted };
  await options.onRecord?.(state);
  const due = Math.max(...state.pending.map((p) => p.sinceMs + options.graceMs)) - options.now();
  if (due > 0) {
    options.onWait?.(due);
    await options.sleep(due);
  }
  const { segments, bytes } = await deletePending(view, state);
  const done = new Set(state.pending.map(pendingName));
  const cleared = await changeRetention(
    archiveRef(view),
    (current) => (current.pending.some((p) => done.has(pendingName(p))) ? { ...current, pending: current.pending.filter((p) => !done.has(pendingName(p))) } : null),
    options.now(),
  );
  view.adoptRetention(cleared);
  await options.onRecord?.(cleared);
  return { segments, bytes, compacted };
}

function pendingName(p: PendingDelete): string {
  return `${p.kind}-${p.first}-${p.last}-${p.sinceMs}`;
}

/**
 * Deletes the objects of the pending segments, found by listings of `tails/` and `compacted/`: of
 * a pruned segment every object; of a replaced one all but the compacted object the record names.
 */
async function deletePending(view: ArchiveView, state: RetentionState): Promise<{ segments: number; bytes: number }> {
  const kinds = new Map<number, PendingDelete['kind']>();
  for (const p of state.pending) for (let s = p.first; s <= p.last; s++) if (kinds.get(s) !== 'pruned') kinds.set(s, p.kind);
  const current = new Map(state.compacted);
  const keys = [...kinds.keys()].map((s) => ArchiveKeys.segment(s));
  for (const key of await view.store.list('tails/')) if (kinds.has(ArchiveKeys.parseTail(key)?.sequence ?? -1)) keys.push(key);
  for (const key of await view.store.list('compacted/')) {
    const c = parseCompactedKey(key);
    if (c && kinds.has(c.sequence) && (kinds.get(c.sequence) === 'pruned' || c.gen !== current.get(c.sequence))) keys.push(key);
  }
  let bytes = 0;
  for (let i = 0; i < keys.length; i += DELETES_AT_ONCE) {
    const batch = keys.slice(i, i + DELETES_AT_ONCE);
    for (const size of await Promise.all(batch.map((k) => view.store.head(k)))) bytes += size ?? 0;
    await Promise.all(batch.map((k) => view.store.delete(k)));
  }
  for (const s of kinds.keys()) view.source.forget(s);
  return { segments: [...kinds.values()].filter((k) => k === 'pruned').length, bytes };
}
