/**
 * What a retention record means for a history: which synch points show (not forgotten, and
 * their whole window still there) and which segments a prune may delete. A point's image is the
 * backward scan over its window, segments `[p.sequence − W, p.sequence]` (FORMAT.md §6), so a
 * segment is needed exactly by the kept points whose window holds it, and by every point to
 * come: nothing from the newest point's window on is ever pruned.
 */
import { compactedKeys, initialRetention, rangesHold, type RetentionState } from '../format/retention-record.js';
import type { Catalog } from '../volume/synch-point.js';
import type { SegmentSource } from './segment-source.js';
import { describePolicy } from '../format/retention-policy.js';

export interface PointPlace {
  recordSequence: number;
  /** The segment that holds the point's SYNCH record. */
  sequence: number;
}

export class Retention {
  /** When each forgotten point was forgotten, by record sequence. */
  private readonly forgotten: Map<number, number>;
  private readonly lost: Set<number>;
  /** The generation of each compacted segment's object. */
  readonly compacted: Map<number, number>;

  constructor(
    readonly state: RetentionState,
    /** W: a point's window reaches this many segments back (workingSetSegments). */
    readonly window: number,
  ) {
    this.forgotten = new Map(state.forgotten.flatMap((b) => b.points.map((r) => [r, b.sinceMs] as const)));
    this.lost = new Set(state.lost);
    this.compacted = new Map(state.compacted);
  }

  static none(window: number): Retention {
    return new Retention(initialRetention(), window);
  }

  isForgotten(point: PointPlace): boolean {
    return this.forgotten.has(point.recordSequence);
  }

  /** When the point was forgotten, or null. */
  forgottenAt(point: PointPlace): number | null {
    return this.forgotten.get(point.recordSequence) ?? null;
  }

  isPruned(segment: number): boolean {
    return rangesHold(this.state.pruned, segment);
  }

  /** Whether the point is gone for good: a prune deleted a segment of its window, or a compaction cut its data. */
  lostWindow(point: PointPlace): boolean {
    if (this.lost.has(point.recordSequence)) return true;
    const first = Math.max(1, point.sequence - this.window);
    return this.state.pruned.some(([a, b]) => a <= point.sequence && b >= first);
  }

  /** A point shows in lists and /snapshots while it is not forgotten and its window is whole. */
  shows(point: PointPlace): boolean {
    return !this.isForgotten(point) && !this.lostWindow(point);
  }
}

/** What the archive holds, as a prune sees it. */
export interface HeldSegments {
  /** Segments archived whole. */
  whole: ReadonlySet<number>;
  /** Segments the archive holds tail pieces of only. */
  pieces: Iterable<number>;
  isPruned(segment: number): boolean;
}

/**
 * Where the segments a point to come may need begin: W before the first segment the archive lacks
 * whole (pruned ones aside). Points past it may be on primary storage only (uploads finish out of
 * order), and a point taken later reads a window that starts there at the earliest: older segments'
 * live blocks were copied forward (FORMAT.md §4, rule 4). Neither a prune nor a compaction touches
 * anything from there on; below it, the kept points' own scans say what is needed.
 */
export function retentionFloor(held: HeldSegments, window: number): number {
  let firstLacking = 1;
  while (held.whole.has(firstLacking) || held.isPruned(firstLacking)) firstLacking++;
  return firstLacking - window;
}

/**
 * The segments the archive holds that no point of `kept` needs and no point to come will: in no
 * kept point's window, and below the floor (retentionFloor).
 */
export function unneededSegments(kept: readonly PointPlace[], held: HeldSegments, window: number): number[] {
  if (kept.length === 0) return [];
  const windows = kept.map((p) => [Math.max(1, p.sequence - window), p.sequence] as const);
  const floor = retentionFloor(held, window);
  const out: number[] = [];
  for (const s of [...new Set([...held.whole, ...held.pieces])].sort((a, b) => a - b)) {
    if (s >= floor) break;
    if (!held.isPruned(s) && !windows.some(([a, b]) => a <= s && s <= b)) out.push(s);
  }
  return out;
}

export interface RetentionStatus {
  record: number;
  policy: string;
  forgotten: number;
  /** The last run of the policy: when, what it forgot and pruned, or why it failed. */
  lastRun: { at: string; forgot: number; prunedSegments: number; compactedSegments: number; freedBytes: number } | null;
  problem: string | null;
}

/** What status shows of a retention record. */
export function retentionSummary(state: RetentionState, problem: string | null): Omit<RetentionStatus, 'lastRun'> {
  const forgotten = state.forgotten.reduce((n, b) => n + b.points.length, 0);
  return { record: state.n, policy: describePolicy(state.policy), forgotten, problem };
}

/** Makes `catalog` show only the points `state` keeps, and `source` read compacted segments from their objects. */
export function showKept(catalog: Catalog, state: RetentionState, window: number, source?: SegmentSource): void {
  const retention = new Retention(state, window);
  catalog.showOnly(state.n === 0 ? null : (p) => retention.shows(p));
  source?.useCompacted(compactedKeys(state));
}
