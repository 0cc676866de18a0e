/**
 * Synch points and their catalog. A synch point is the consistency marker an agent asks for:
 * a SYNCH record in the log, named by its time (UTC ISO-8601 with milliseconds, unique and
 * increasing, so `ls` sorts snapshots by time).
 *
 * The catalog is the list of every synch point in the volume's history, oldest first. On
 * primary storage it is `catalog.jsonl` (one point a line, appended as points are taken); it
 * is a cache: the log on primary and the summaries in the archive are the truth, and
 * recovery and `salvo list <archive>` rebuild it from them.
 */
import fs from 'node:fs';
import path from 'node:path';
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import type { SynchEntry } from '../format/summary.js';

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

/** Labels become file names under `/snapshots/by-label/`: keep them to a safe alphabet. */
export function checkLabel(label: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/.test(label)) {
    throw VolumeError.badInput(`label '${label}' is not allowed`, 'use letters, digits and . _ @ + - (up to 128, not starting with a symbol)');
  }
  return label;
}

export class Catalog {
  private constructor(
    private readonly file: string | null,
    private points: SynchPoint[],
  ) {}

  /** A catalog kept in memory only (for an archive read on its own). */
  static inMemory(points: SynchPoint[]): Catalog {
    return new Catalog(null, sortPoints(points));
  }

  static fileIn(dir: string): string {
    return path.join(dir, 'catalog.jsonl');
  }

  /** Loads `catalog.jsonl`; a torn or malformed line is skipped (recovery re-adds it from the log). */
  static load(dir: string): Catalog {
    const file = Catalog.fileIn(dir);
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
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
      debug('catalog: skipping a malformed line in %s', file);
    }
    return new Catalog(file, sortPoints(points));
  }

  get all(): readonly SynchPoint[] {
    return this.points;
  }

  get latest(): SynchPoint | undefined {
    return this.points[this.points.length - 1];
  }

  append(point: SynchPoint): void {
    this.points.push(point);
    if (this.file) fs.appendFileSync(this.file, JSON.stringify(point) + '\n', { mode: 0o600 });
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
    if (this.file) {
      const temporary = `${this.file}.tmp`;
      fs.writeFileSync(temporary, this.points.map((p) => JSON.stringify(p) + '\n').join(''), { mode: 0o600 });
      fs.renameSync(temporary, this.file);
    }
  }

  /** Finds a point by `latest`, its time (with or without `.img`), or its label. */
  find(spec: string): SynchPoint {
    const wanted = spec.replace(/\.img$/, '');
    const found =
      wanted === 'latest'
        ? this.latest
        : (this.points.find((p) => synchPointTime(p) === wanted) ?? [...this.points].reverse().find((p) => p.label === wanted));
    if (!found) {
      throw new VolumeError('NOT_FOUND', `no synch point '${spec}'`, { hint: 'run `salvo list` to see the synch points there are' });
    }
    return found;
  }
}

function sortPoints(points: SynchPoint[]): SynchPoint[] {
  return points.sort((a, b) => a.recordSequence - b.recordSequence);
}
