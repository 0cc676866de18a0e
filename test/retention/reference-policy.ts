/**
 * A second, independent statement of lib/retention/policy.ts's rules, for its property test only.
 * It works rule by rule over whole lists where the module walks points once with counters, and it
 * computes buckets another way (ISO strings, week 1 from January 4th); UTC only.
 *
 * Its bucket rule, stated precisely: list the points newest first by recordSequence and cut the list
 * into runs of consecutive points sharing a bucket; a rule with count N keeps the first (newest) point
 * of each of the first N runs, and when there are fewer than N runs it also keeps the oldest point
 * (`oldest <rule>` if that point is not the first of its run). This is restic's "bucket differs from
 * the one the rule kept last, while the count lasts" whether or not timeMs rises with recordSequence:
 * while a rule has counts left it keeps every change of bucket, so the one it kept last is the
 * previous point's.
 */
import type { PointInfo, RetentionPolicy } from '../../lib/format/retention-policy.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

type Rule = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

/** Monday 00:00 UTC of ISO week 1 of `year`: the Monday of the week holding January 4th. */
function week1Monday(year: number): number {
  const jan4 = Date.UTC(year, 0, 4);
  const weekday = new Date(jan4).getUTCDay() || 7; // Monday 1 .. Sunday 7
  return jan4 - (weekday - 1) * DAY;
}

function isoWeek(timeMs: number): string {
  const year = new Date(timeMs).getUTCFullYear();
  let weekYear = year + 1;
  while (week1Monday(weekYear) > timeMs) weekYear--;
  const week = Math.floor((timeMs - week1Monday(weekYear)) / (7 * DAY)) + 1;
  return `${weekYear}-W${week < 10 ? '0' : ''}${week}`;
}

function bucket(rule: Rule, timeMs: number): string {
  const iso = new Date(timeMs).toISOString(); // 2026-12-07T14:03:00.000Z
  if (rule === 'weekly') return isoWeek(timeMs);
  return iso.slice(0, { hourly: 13, daily: 10, monthly: 7, yearly: 4 }[rule]);
}

/** The duration as the module writes it: the biggest unit it is a whole number of. */
function spanText(ms: number): string {
  const units: [string, number][] = [['ms', 1], ['s', 1000], ['m', 60_000], ['h', HOUR], ['d', DAY], ['w', 7 * DAY], ['y', 365 * DAY]];
  let text = `${ms}ms`;
  for (const [unit, size] of units) if (ms % size === 0) text = `${ms / size}${unit}`;
  return text;
}

/** recordSequence → reasons, for the kept points only. */
export function referenceKeep(points: readonly PointInfo[], policy: RetentionPolicy): Map<number, string[]> {
  const kept = new Map<number, string[]>();
  const give = (point: PointInfo, reason: string) => {
    const list = kept.get(point.recordSequence) ?? [];
    list.push(reason);
    kept.set(point.recordSequence, list);
  };
  const counts = (['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const).map((k) => policy[k] ?? 0);
  const anyRule = (policy.withinMs ?? 0) > 0 || counts.some((c) => c > 0) || (policy.labels ?? []).length > 0;
  if (!anyRule) {
    for (const p of points) give(p, 'no policy');
    return kept;
  }
  if (points.length === 0) return kept;

  const list = [...points].sort((a, b) => b.recordSequence - a.recordSequence);
  const newest = list[0]!;
  give(newest, 'newest');

  for (const p of list) {
    if (p.label === null) continue;
    give(p, (policy.labels ?? []).includes(p.label) ? `keep-label ${p.label}` : `labelled ${p.label}`);
  }

  const within = policy.withinMs ?? 0;
  if (within > 0) for (const p of list) if (newest.timeMs - p.timeMs < within) give(p, `within ${spanText(within)}`);

  const last = policy.last ?? 0;
  list.slice(0, last).forEach((p, i) => give(p, `last ${i + 1}/${last}`));

  for (const rule of ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) {
    const n = policy[rule] ?? 0;
    if (n <= 0) continue;
    const runs: PointInfo[][] = [];
    for (const p of list) {
      const run = runs[runs.length - 1];
      if (run && bucket(rule, run[0]!.timeMs) === bucket(rule, p.timeMs)) run.push(p);
      else runs.push([p]);
    }
    for (const run of runs.slice(0, n)) give(run[0]!, `${rule} ${bucket(rule, run[0]!.timeMs)}`);
    const oldestRun = runs[runs.length - 1]!;
    if (runs.length < n && oldestRun.length > 1) {
      const oldest = oldestRun[oldestRun.length - 1]!;
      give(oldest, `oldest ${rule} ${bucket(rule, oldest.timeMs)}`);
    }
  }
  return kept;
}
