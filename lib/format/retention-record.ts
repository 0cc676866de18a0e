/**
 * Retention records (FORMAT.md §3.15): what the volume keeps of its history. `retention/<n>.ret`,
 * the highest `n` in force: the saved policy, the synch points forgotten (hidden, and back with an
 * undo while their segments are there), and the segments pruned (their objects deleted, or about
 * to be once no reader can still be using them). Each record is whole; a change writes the next.
 *
 * This module is the bytes. The body is compressed by the caller (lib/retention/records.ts).
 */
import { VolumeError } from '../errors.js';
import { validatePolicy, type RetentionPolicy } from './retention-policy.js';
import type { ObjectCipher } from './object-cipher.js';
import { decodeFramed, encodeFramed, type FrameKind, type FrameSeal } from './framed-object.js';

const RETENTION_FRAME: FrameKind = { magic: Buffer.from('SALVORET', 'latin1'), version: 1, noun: 'retention record' };

/**
 * Segments `[first, last]` whose objects are to go, and since when: readers get a grace period
 * before the deletes. `pruned`: every object of them; `replaced`: all but the compacted object
 * the record names.
 */
export interface PendingDelete {
  first: number;
  last: number;
  sinceMs: number;
  kind: 'pruned' | 'replaced';
}

/** Points forgotten together, and when: a prune may leave recent ones for an undo (the mount's waits a day). */
export interface ForgetBatch {
  sinceMs: number;
  /** Record sequences, ascending. */
  points: number[];
}

export interface RetentionState {
  /** The record's number; 0 for a history no record speaks of (keep everything). */
  n: number;
  timeMs: number;
  policy: RetentionPolicy;
  /** The points forgotten and not yet pruned away. */
  forgotten: ForgetBatch[];
  /** Segments pruned, as inclusive ranges, ascending and apart. */
  pruned: [number, number][];
  /** Segments compacted, and the generation of the compacted object that now holds each: `[sequence, gen]`, ascending. */
  compacted: [number, number][];
  /** Record sequences of forgotten points a compaction cut the data of: gone for good, ascending. */
  lost: number[];
  /** Segments whose old objects may still be in the archive. */
  pending: PendingDelete[];
}

export function initialRetention(): RetentionState {
  return { n: 0, timeMs: 0, policy: {}, forgotten: [], pruned: [], compacted: [], lost: [], pending: [] };
}

export function retentionKey(n: number): string {
  return `retention/${n.toString(16).padStart(16, '0')}.ret`;
}

/** The key of segment `sequence`'s compacted object of generation `gen`. */
export function compactedKey(sequence: number, gen: number): string {
  return `compacted/${sequence.toString(16).padStart(16, '0')}-${gen.toString(16).padStart(8, '0')}.seg`;
}

/** The objects of the compacted segments `state` names, by sequence. */
export function compactedKeys(state: Pick<RetentionState, 'compacted'>): Map<number, string> {
  return new Map(state.compacted.map(([s, gen]) => [s, compactedKey(s, gen)]));
}

export function parseCompactedKey(key: string): { sequence: number; gen: number } | null {
  const m = /^compacted\/([0-9a-f]{16})-([0-9a-f]{8})\.seg$/.exec(key);
  return m ? { sequence: parseInt(m[1]!, 16), gen: parseInt(m[2]!, 16) } : null;
}

export function parseRetentionKey(key: string): number | null {
  const m = /^retention\/([0-9a-f]{16})\.ret$/.exec(key);
  const n = m ? parseInt(m[1]!, 16) : null;
  return n !== null && n > 0 && Number.isSafeInteger(n) ? n : null;
}

function seal(n: number): FrameSeal {
  return { sequence: n, rawStart: 0, part: 'retention' };
}

/** The body's plain bytes: UTF-8 JSON. */
export function encodeRetentionBody(state: RetentionState): Buffer {
  const forgotten = state.forgotten.map((b) => [b.sinceMs, b.points]);
  const pending = state.pending.map((p) => [p.first, p.last, p.sinceMs, p.kind === 'replaced' ? 1 : 0]);
  return Buffer.from(JSON.stringify({ n: state.n, timeMs: state.timeMs, policy: state.policy, forgotten, pruned: state.pruned, compacted: state.compacted, lost: state.lost, pending }));
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && !Object.is(v, -0);

/** Parses a body; CORRUPT_ARCHIVE when it is not what encodeRetentionBody writes for record `n`. */
export function decodeRetentionBody(bytes: Buffer, key: string, n: number): RetentionState {
  const bad = (what: string) => VolumeError.corruptArchive(key, `retention record ${what}`);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw bad('body is not JSON');
  }
  if (body === null || typeof body !== 'object' || body.n !== n) throw bad('does not name itself');
  if (!isCount(body.timeMs)) throw bad('has a malformed time');
  let policy: RetentionPolicy;
  try {
    policy = validatePolicy(body.policy);
  } catch (err) {
    throw bad(`has a malformed policy: ${(err as Error).message}`);
  }
  const forgotten = body.forgotten;
  const ascendingCounts = (v: unknown) => Array.isArray(v) && v.every((r, i) => isCount(r) && (i === 0 || r > (v[i - 1] as number)));
  if (!Array.isArray(forgotten) || !forgotten.every((b) => Array.isArray(b) && b.length === 2 && isCount(b[0]) && ascendingCounts(b[1]))) throw bad('has a malformed forgotten list');
  const pruned = body.pruned;
  const ascending = (r: unknown, i: number, all: unknown[]) =>
    Array.isArray(r) && isCount(r[0]) && isCount(r[1]) && r[0] <= r[1] && (i === 0 || r[0] > (all[i - 1] as number[])[1]! + 1);
  if (!Array.isArray(pruned) || !pruned.every((r, i) => ascending(r, i, pruned) && r.length === 2)) throw bad('has a malformed pruned list');
  // compacted, lost and a pending entry's kind came after the first records: absent means none (and pruned).
  const compacted = body.compacted ?? [];
  if (!Array.isArray(compacted) || !compacted.every((c, i) => Array.isArray(c) && c.length === 2 && isCount(c[0]) && isCount(c[1]) && c[1] > 0 && (i === 0 || c[0] > (compacted[i - 1] as number[])[0]!))) {
    throw bad('has a malformed compacted list');
  }
  const lost = body.lost ?? [];
  if (!ascendingCounts(lost)) throw bad('has a malformed lost list');
  const pending = body.pending;
  const pendingOk = (r: unknown) => Array.isArray(r) && (r.length === 3 || (r.length === 4 && (r[3] === 0 || r[3] === 1))) && isCount(r[0]) && isCount(r[1]) && r[0] <= r[1] && isCount(r[2]);
  if (!Array.isArray(pending) || !pending.every(pendingOk)) throw bad('has a malformed pending list');
  return {
    n,
    timeMs: body.timeMs,
    policy,
    forgotten: (forgotten as [number, number[]][]).map(([sinceMs, points]) => ({ sinceMs, points })),
    pruned: pruned as [number, number][],
    compacted: compacted as [number, number][],
    lost: lost as number[],
    pending: (pending as number[][]).map(([first, last, sinceMs, kind]) => ({ first: first!, last: last!, sinceMs: sinceMs!, kind: kind === 1 ? ('replaced' as const) : ('pruned' as const) })),
  };
}

export function encodeRetentionObject(volumeId: string, n: number, compressedBody: Buffer, cipher: ObjectCipher | null): Buffer {
  return encodeFramed(RETENTION_FRAME, volumeId, seal(n), compressedBody, cipher);
}

export function decodeRetentionObject(bytes: Buffer, key: string, volumeId: string, n: number, cipher: ObjectCipher | null): Buffer {
  return decodeFramed(RETENTION_FRAME, bytes, key, volumeId, seal(n), cipher);
}

export function rangesHold(ranges: readonly (readonly [number, number])[], value: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid]!;
    if (value < a) hi = mid - 1;
    else if (value > b) lo = mid + 1;
    else return true;
  }
  return false;
}

/** `ranges` with `values` added: inclusive ranges, ascending and apart. */
export function addToRanges(ranges: readonly (readonly [number, number])[], values: Iterable<number>): [number, number][] {
  const all = new Set<number>(values);
  const out: [number, number][] = [];
  const push = (a: number, b: number) => {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  };
  const singles = [...all].sort((a, b) => a - b).map((v) => [v, v] as const);
  const merged = [...ranges, ...singles].sort((x, y) => x[0] - y[0]);
  for (const [a, b] of merged) push(a, b);
  return out;
}
