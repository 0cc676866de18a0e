/**
 * Synch points and their catalog. A synch point is the consistency marker an agent asks for:
 * a SYNCH record in the log, named by its time (UTC ISO-8601 with milliseconds, unique and
 * increasing, so `ls` sorts snapshots by time).
 *
 * The catalog is the list of every synch point in the volume's history, oldest first. On
 * primary storage it is `catalog.jsonl` (one point a line, appended as points are taken). The
 * log on primary and the summaries in the archive are the truth, but recovery rebuilds the
 * catalog from the log alone (`salvo list <archive>` from the summaries): the points of segments
 * that left primary storage survive only in the file, so it is made durable as points are taken.
 */
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import type { SynchEntry } from '../format/summary.js';
import { CATALOG_FILE, type VolumeFiles } from './files.js';

const debug = createDebug('salvo:volume');

export interface SynchPoint {
  timeMs: number;
  label: string | null;
  info: Record<string, string>;
  /** Segment holding the SYNCH record. */
  sequence: number;
  /** Raw offset of the SYNCH record in that segment. */
  offset: number;
  recordSequence: number;
}

export function synchPointTime(point: Pick<SynchPoint, 'timeMs'>): string {
  return new Date(point.timeMs).toISOString();
}

/** The snapshot file that shows the point: `<time>.img`. */
export function snapshotFileName(point: Pick<SynchPoint, 'timeMs'>): string {
  return `${synchPointTime(point)}.img`;
}

export function synchPointFromEntry(sequence: number, entry: SynchEntry): SynchPoint {
  return { timeMs: entry.timeMs, label: entry.label, info: entry.info, sequence, offset: entry.offset, recordSequence: entry.recordSequence };
}

/**
 * Labels become file names under `/snapshots/by-label/` and name points to `--at`: a safe
 * alphabet, and nothing `--at` would read as something else (`latest`, a time, a file name).
 */
export function checkLabel(label: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/.test(label)) {
    throw VolumeError.badInput(`label '${label}' is not allowed`, 'use letters, digits and . _ @ + - (up to 128, not starting with a symbol)');
  }
  if (label === 'latest' || /\.img$/.test(label) || parseTimeSpec(label) !== null) {
    throw VolumeError.badInput(`label '${label}' is not allowed: --at would read it as ${label === 'latest' ? 'the newest point' : /\.img$/.test(label) ? 'a snapshot file name' : 'a time'}`, 'choose a label such as before-upgrade');
  }
  return label;
}

/** A label names one point: a second point with it would hide the first from `--at` and by-label/. */
export function duplicateLabel(label: string, point: SynchPoint): VolumeError {
  return VolumeError.badInput(`label '${label}' already names the synch point ${synchPointTime(point)}`, 'choose another label');
}

/**
 * A time given to `--at`, as the last millisecond it names (ms since the epoch), or null if
 * `spec` is not one: ISO-8601 with a `T` or a space, `Z` or an offset (UTC without one); a
 * time to the second, minute or day names the whole of it (`01:30:00` takes in the point at
 * `01:30:00.123`); or milliseconds since the epoch (12 digits or more).
 */
export function parseTimeSpec(spec: string): number | null {
  if (/^\d{12,}$/.test(spec)) return Number(spec);
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3})\d*)?)?)?\s*(Z|[+-]\d\d:?\d\d)?$/i.exec(spec.trim());
  if (!m) return null;
  const [, year, month, day, hour, minute, second, fraction, zone = 'Z'] = m;
  if (Number(hour ?? 0) > 23 || Number(minute ?? 0) > 59 || Number(second ?? 0) > 59) return null;
  const offset = zone.toUpperCase() === 'Z' ? '+00:00' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const start = Date.parse(`${year}-${month}-${day}T${hour ?? '00'}:${minute ?? '00'}:${second ?? '00'}.${(fraction ?? '0').padEnd(3, '0')}${offset}`);
  // Date.parse rolls 2026-02-30 over into March: a date is one that reads back the same.
  if (Number.isNaN(start) || new Date(Date.parse(`${year}-${month}-${day}T00:00:00Z`)).toISOString().slice(0, 10) !== `${year}-${month}-${day}`) return null;
  const span = fraction !== undefined ? 1 : second !== undefined ? 1000 : minute !== undefined ? 60_000 : 86_400_000;
  return start + span - 1;
}

export class Catalog {
  /** Whether a point shows (retention: not forgotten, window whole); null shows every point. */
  private shows: ((p: SynchPoint) => boolean) | null = null;
  /** The points that show, worked out when first asked for after a change. */
  private showing: SynchPoint[] | null = null;

  private constructor(
    /** Where the catalog is kept; null for one in memory only. */
    private readonly files: VolumeFiles | null,
    private points: SynchPoint[],
  ) {}

  /** A catalog kept in memory only (for an archive read on its own). */
  static inMemory(points: SynchPoint[]): Catalog {
    return new Catalog(null, sortPoints(points));
  }

  /** Loads `catalog.jsonl`; a torn or malformed line is skipped (recovery re-adds it from the log). */
  static load(files: VolumeFiles): Catalog {
    const text = files.read(CATALOG_FILE)?.toString('utf8') ?? '';
    const points: SynchPoint[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const p = JSON.parse(line) as SynchPoint;
        if (typeof p.timeMs === 'number' && typeof p.sequence === 'number' && typeof p.offset === 'number' && typeof p.recordSequence === 'number') {
          points.push({ timeMs: p.timeMs, label: p.label ?? null, info: p.info ?? {}, sequence: p.sequence, offset: p.offset, recordSequence: p.recordSequence });
          continue;
        }
      } catch {
        // fall through
      }
      debug('catalog: skipping a malformed line in %s', files.path(CATALOG_FILE));
    }
    return new Catalog(files, sortPoints(points));
  }

  /** The points that show: those a retention record forgot or pruned away are left out. */
  get all(): readonly SynchPoint[] {
    if (!this.shows) return this.points;
    this.showing ??= this.points.filter(this.shows);
    return this.showing;
  }

  /** Every point the catalog holds, shown or not. */
  get everything(): readonly SynchPoint[] {
    return this.points;
  }

  get latest(): SynchPoint | undefined {
    const all = this.all;
    return all[all.length - 1];
  }

  /** Hides the points `shows` says no to (a retention record's), from now on. */
  showOnly(shows: ((p: SynchPoint) => boolean) | null): void {
    this.shows = shows;
    this.showing = null;
  }

  /**
   * Adds a point, on disk before it returns (the synch point is acknowledged after): once its
   * segment leaves primary storage the point is known only from this line and the archive, and
   * recovery does not read the archive, so a line a power cut took would drop it from /snapshots.
   * In memory only after the file holds it: a failed write fails the synch point.
   */
  append(point: SynchPoint): void {
    this.files?.append(CATALOG_FILE, Buffer.from(JSON.stringify(point) + '\n'), { durable: true });
    this.points.push(point);
    this.showing = null;
  }

  /**
   * Makes the catalog agree with the log after recovery: drops points past the log's end
   * (`keep` says no), adds the ones the log has and the file missed, and rewrites the file.
   */
  reconcile(fromLog: SynchPoint[], keep: (p: SynchPoint) => boolean): void {
    const byRecord = new Map<number, SynchPoint>();
    for (const p of this.points) if (keep(p)) byRecord.set(p.recordSequence, p);
    for (const p of fromLog) byRecord.set(p.recordSequence, p);
    this.points = sortPoints([...byRecord.values()]);
    this.showing = null;
    // Durable for the same reason as append, and because the appends that follow go to the new
    // file: a rename a power cut undid would take them with it.
    this.files?.replace(CATALOG_FILE, Buffer.from(this.points.map((p) => JSON.stringify(p) + '\n').join('')), { durable: true });
  }

  /** The newest point labelled `label`, if any. */
  labelled(label: string): SynchPoint | undefined {
    return [...this.all].reverse().find((p) => p.label === label);
  }

  /**
   * Finds a point by `latest`, its time (with or without `.img`), its label, or a time: the
   * newest point at or before it (parseTimeSpec says which times).
   */
  find(spec: string): SynchPoint {
    if (spec === 'latest') {
      if (this.latest) return this.latest;
      throw new VolumeError('NOT_FOUND', 'there are no synch points yet', { hint: 'take one with `salvo sync`' });
    }
    const named = spec.replace(/\.img$/, '');
    const found = this.all.find((p) => synchPointTime(p) === named) ?? this.labelled(spec) ?? this.labelled(named);
    if (found) return found;
    const at = parseTimeSpec(spec);
    if (at === null) {
      throw new VolumeError('NOT_FOUND', `no synch point '${spec}'`, { hint: 'give latest, a label or a time (`salvo list` shows them)' });
    }
    const before = this.all.filter((p) => p.timeMs <= at).pop();
    if (!before) {
      const oldest = this.all[0];
      throw new VolumeError('NOT_FOUND', `no synch point at or before ${new Date(at).toISOString()}`, {
        hint: oldest ? `the oldest is ${synchPointTime(oldest)}` : 'there are no synch points yet; take one with `salvo sync`',
      });
    }
    return before;
  }
}

function sortPoints(points: SynchPoint[]): SynchPoint[] {
  return points.sort((a, b) => a.recordSequence - b.recordSequence);
}
