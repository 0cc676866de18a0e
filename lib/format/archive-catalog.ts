/**
 * The archive's catalog (FORMAT.md §3.14): objects under `catalog/` that list what the archive
 * holds — the segments archived whole, the tail pieces of the others, and every synch point in
 * them — so that a reader opens a history of any length with a few requests instead of fetching
 * every summary. Each object covers the log from one position to another; together they chain
 * from the log's start. The summaries stay the truth: a catalog is never the only copy of
 * anything, and a missing or damaged one is rebuilt from them.
 *
 * This module is the bytes: the header and the sealed body around it, and the body's JSON. The
 * body is compressed by the caller (lib/archive/archive-catalog.ts), off the event loop.
 */
import { VolumeError } from '../errors.js';
import { FRAME_HEADER_SIZE, decodeFramed, encodeFramed, type FrameKind, type FrameSeal } from './framed-object.js';
import type { ObjectCipher } from './object-cipher.js';
import type { SynchEntry } from './summary.js';

export const CATALOG_MAGIC = Buffer.from('SALVOCAT', 'latin1');
export const CATALOG_VERSION = 1;
export const CATALOG_HEADER_SIZE = FRAME_HEADER_SIZE;

/** A place in the log: raw offset `offset` of segment `sequence` (everything before it, in log order). */
export interface LogPosition {
  sequence: number;
  offset: number;
}

export const LOG_ORIGIN: LogPosition = { sequence: 0, offset: 0 };

export function comparePositions(a: LogPosition, b: LogPosition): number {
  return a.sequence - b.sequence || a.offset - b.offset;
}

/** A synch point as the catalog keeps it: its summary entry and the segment that holds it. */
export interface CatalogPoint extends SynchEntry {
  sequence: number;
}

/** What one catalog object says of the archived items that end after `from` and at or before `to`. */
export interface CatalogContent {
  from: LogPosition;
  to: LogPosition;
  /** Segments archived whole, ascending. */
  segments: number[];
  /** Tail pieces of segments not archived whole here, by segment. */
  tails: Map<number, string[]>;
  points: CatalogPoint[];
}

export function emptyCatalog(from: LogPosition): CatalogContent {
  return { from, to: from, segments: [], tails: new Map(), points: [] };
}

/**
 * The content of consecutive objects as one: a segment archived whole makes its tail pieces
 * redundant, and a point listed twice (from a tail, then from its whole segment) counts once.
 */
export function mergeCatalogs(parts: readonly CatalogContent[]): CatalogContent {
  const merged = emptyCatalog(parts[0]?.from ?? LOG_ORIGIN);
  const segments = new Set<number>();
  const points = new Map<number, CatalogPoint>();
  for (const part of parts) {
    for (const s of part.segments) segments.add(s);
    for (const [s, keys] of part.tails) merged.tails.set(s, [...new Set([...(merged.tails.get(s) ?? []), ...keys])]);
    for (const p of part.points) points.set(p.recordSequence, p);
    if (comparePositions(part.to, merged.to) > 0) merged.to = part.to;
  }
  for (const s of segments) merged.tails.delete(s);
  merged.segments = [...segments].sort((a, b) => a - b);
  merged.points = [...points.values()].sort((a, b) => a.recordSequence - b.recordSequence);
  return merged;
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, '0');
}

function positionName(p: LogPosition): string {
  return `${hex(p.sequence, 16)}.${hex(p.offset, 8)}`;
}

/** `catalog/<from>-<to>.cat`, each position `<sequence:16 hex>.<offset:8 hex>`: a listing alone shows how objects chain. */
export function catalogKey(from: LogPosition, to: LogPosition): string {
  return `catalog/${positionName(from)}-${positionName(to)}.cat`;
}

export function parseCatalogKey(key: string): { from: LogPosition; to: LogPosition } | null {
  const m = /^catalog\/([0-9a-f]{16})\.([0-9a-f]{8})-([0-9a-f]{16})\.([0-9a-f]{8})\.cat$/.exec(key);
  if (!m) return null;
  const from = { sequence: parseInt(m[1]!, 16), offset: parseInt(m[2]!, 16) };
  const to = { sequence: parseInt(m[3]!, 16), offset: parseInt(m[4]!, 16) };
  return comparePositions(from, to) < 0 && Number.isSafeInteger(to.sequence) ? { from, to } : null;
}

/** The body's plain bytes: UTF-8 JSON (FORMAT.md §3.14). */
export function encodeCatalogBody(content: CatalogContent): Buffer {
  const ranges: [number, number][] = [];
  for (const s of content.segments) {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === s - 1) last[1] = s;
    else ranges.push([s, s]);
  }
  return Buffer.from(
    JSON.stringify({
      from: [content.from.sequence, content.from.offset],
      to: [content.to.sequence, content.to.offset],
      segments: ranges,
      tails: [...content.tails].sort((a, b) => a[0] - b[0]),
      points: content.points.map((p) => [p.sequence, p.offset, p.recordSequence, p.timeMs, p.label, p.info]),
    }),
  );
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && !Object.is(v, -0);

/** Parses a body; CORRUPT_ARCHIVE when it is not what encodeCatalogBody writes for the object named `key`. */
export function decodeCatalogBody(bytes: Buffer, key: string, expected: { from: LogPosition; to: LogPosition }): CatalogContent {
  const bad = (what: string) => VolumeError.corruptArchive(key, `catalog ${what}`);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw bad('body is not JSON');
  }
  const body = json as { from?: unknown; to?: unknown; segments?: unknown; tails?: unknown; points?: unknown };
  const position = (v: unknown): LogPosition | null => (Array.isArray(v) && v.length === 2 && isCount(v[0]) && isCount(v[1]) ? { sequence: v[0], offset: v[1] } : null);
  const from = position(body.from);
  const to = position(body.to);
  if (!from || !to || comparePositions(from, expected.from) !== 0 || comparePositions(to, expected.to) !== 0) throw bad('range does not match its name');
  if (!Array.isArray(body.segments) || !Array.isArray(body.tails) || !Array.isArray(body.points)) throw bad('body lacks segments, tails or points');
  const segments: number[] = [];
  for (const r of body.segments) {
    // Ascending and apart, as encodeCatalogBody writes them: what is accepted reads back the same.
    if (!Array.isArray(r) || r.length !== 2 || !isCount(r[0]) || !isCount(r[1]) || r[0] > r[1] || r[1] - r[0] > 1 << 24 || (segments.length > 0 && r[0] <= segments[segments.length - 1]! + 1)) {
      throw bad('has a malformed segment range');
    }
    for (let s = r[0]; s <= r[1]; s++) segments.push(s);
  }
  const tails = new Map<number, string[]>();
  for (const t of body.tails) {
    if (!Array.isArray(t) || t.length !== 2 || !isCount(t[0]) || tails.has(t[0]) || !Array.isArray(t[1]) || !t[1].every((k) => typeof k === 'string')) throw bad('has a malformed tail list');
    tails.set(t[0], t[1] as string[]);
  }
  const points: CatalogPoint[] = [];
  for (const p of body.points) {
    if (!Array.isArray(p) || p.length !== 6 || !isCount(p[0]) || !isCount(p[1]) || !isCount(p[2]) || !isCount(p[3])) throw bad('has a malformed synch point');
    const [sequence, offset, recordSequence, timeMs, label, info] = p as [number, number, number, number, unknown, unknown];
    if ((label !== null && typeof label !== 'string') || typeof info !== 'object' || info === null || Array.isArray(info) || !Object.values(info).every((v) => typeof v === 'string')) {
      throw bad('has a malformed synch point');
    }
    points.push({ sequence, offset, recordSequence, timeMs, label, info: info as Record<string, string> });
  }
  return { from, to, segments, tails, points };
}

const CATALOG_FRAME: FrameKind = { magic: CATALOG_MAGIC, version: CATALOG_VERSION, noun: 'catalog' };

/** The sealing context of a catalog body: bound to its volume and the end it names. */
function catalogSeal(to: LogPosition): FrameSeal {
  return { sequence: to.sequence, rawStart: to.offset, part: 'catalog' };
}

/** Header and body (the compressed body bytes, sealed when the archive is encrypted). */
export function encodeCatalogObject(volumeId: string, to: LogPosition, compressedBody: Buffer, cipher: ObjectCipher | null): Buffer {
  return encodeFramed(CATALOG_FRAME, volumeId, catalogSeal(to), compressedBody, cipher);
}

/** The compressed body of the object named `key`, checked (and opened); CORRUPT_ARCHIVE when it is not this volume's, whole. */
export function decodeCatalogObject(bytes: Buffer, key: string, volumeId: string, to: LogPosition, cipher: ObjectCipher | null): Buffer {
  return decodeFramed(CATALOG_FRAME, bytes, key, volumeId, catalogSeal(to), cipher);
}
