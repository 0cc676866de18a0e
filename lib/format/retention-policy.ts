/**
 * Which synch points a retention policy keeps, by the rules and in the words of
 * `restic forget --keep-*` (restic's ApplyPolicy), so that restic's documentation holds here.
 * Where salvo differs: the newest point and every labelled point are never dropped; points are
 * ordered by recordSequence (the log's order, as wall clocks step back) while buckets use timeMs;
 * keep-within is a fixed span of ms (m is minutes, 1y is 365 days), not restic's calendar y/m/d/h.
 */
import assert from 'node:assert';
import { VolumeError } from '../errors.js';

export interface RetentionPolicy {
  /** keep every point within this many ms of the newest point (restic's --keep-within: relative to the newest point, not to now, so a volume that stopped taking points keeps its last window) */
  withinMs?: number;
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /**
   * restic's --keep-tag. Every labelled point is kept anyway, so listing a label changes only the
   * reason given (`keep-label x` rather than `labelled x`): kept for restic's wording.
   */
  labels?: string[];
}

export interface PointInfo {
  timeMs: number;
  label: string | null;
  recordSequence: number;
}

export interface Decision<P extends PointInfo = PointInfo> {
  point: P;
  keep: boolean;
  reasons: string[];
}

const BUCKET_RULES = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
type BucketRule = (typeof BUCKET_RULES)[number];
const COUNT_FIELDS = ['last', ...BUCKET_RULES] as const;
const FIELDS = ['withinMs', ...COUNT_FIELDS, 'labels'] as const;

const DAY = 86_400_000;
const UNIT_MS: Record<string, number> = { y: 365 * DAY, w: 7 * DAY, d: DAY, h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/**
 * Parses a keep-within span: `30m`, `24h`, `7d`, `2w`, `1y`, or a sum such as `1d12h`.
 * Not lib/cli/units' parseDuration: that one caps at the 24 days a timer can wait.
 */
export function parseWithin(text: string): number {
  const trimmed = text.trim();
  let ms = 0;
  if (/^(\d+(ms|[ywdhms]))+$/.test(trimmed)) {
    for (const [, count, unit] of trimmed.matchAll(/(\d+)(ms|[ywdhms])/g)) ms += Number(count) * UNIT_MS[unit!]!;
  }
  if (!(ms > 0) || !Number.isSafeInteger(ms)) {
    throw new VolumeError('BAD_POLICY', `keep-within '${text}' is not a positive duration`, {
      hint: 'write whole numbers with units: 30m, 24h, 7d, 2w, 1y, or a sum such as 1d12h (m is minutes, 1y is 365 days)',
    });
  }
  return ms;
}

/** The largest unit that gives a whole number: 7d is `1w`, 36h stays `36h`. */
function formatWithin(ms: number): string {
  const [unit, size] = Object.entries(UNIT_MS).find(([, size]) => ms % size === 0)!;
  return `${ms / size}${unit}`;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** The bucket a time falls in, as restic's ymdh/ymd/yw/ym/y, written readably for the reason. */
function bucketOf(rule: BucketRule, timeMs: number, utc: boolean): string {
  const d = new Date(timeMs);
  const [year, month, day, hour] = utc
    ? [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours()]
    : [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours()];
  const date = `${pad(year, 4)}-${pad(month + 1)}-${pad(day)}`;
  switch (rule) {
    case 'hourly':
      return `${date}T${pad(hour)}`;
    case 'daily':
      return date;
    case 'weekly': {
      // ISO 8601: a week belongs to the year of its Thursday, and week 1 holds the first Thursday.
      const civil = Date.UTC(year, month, day);
      const thursday = civil + (3 - ((new Date(civil).getUTCDay() + 6) % 7)) * DAY;
      const isoYear = new Date(thursday).getUTCFullYear();
      return `${pad(isoYear, 4)}-W${pad(1 + Math.floor((thursday - Date.UTC(isoYear, 0, 1)) / (7 * DAY)))}`;
    }
    case 'monthly':
      return `${pad(year, 4)}-${pad(month + 1)}`;
    case 'yearly':
      return pad(year, 4);
  }
}

/** No rule given: everything is kept. Zero counts are no rule, as in restic. */
export function isEmptyPolicy(policy: RetentionPolicy): boolean {
  return !((policy.withinMs ?? 0) > 0) && COUNT_FIELDS.every((field) => !((policy[field] ?? 0) > 0)) && !policy.labels?.length;
}

/** The policy in the CLI's flag words: `keep-within 24h, keep-daily 7, keep-label before-upgrade`. */
export function describePolicy(policy: RetentionPolicy): string {
  if (isEmptyPolicy(policy)) return 'keep everything';
  const words: string[] = [];
  if ((policy.withinMs ?? 0) > 0) words.push(`keep-within ${formatWithin(policy.withinMs!)}`);
  for (const field of COUNT_FIELDS) if ((policy[field] ?? 0) > 0) words.push(`keep-${field} ${policy[field]}`);
  for (const label of policy.labels ?? []) words.push(`keep-label ${label}`);
  return words.join(', ');
}

/**
 * Decides every point; returns decisions in the input's order. Points are identified by recordSequence (unique);
 * their order in the log is recordSequence order (newest = highest recordSequence), timeMs may go backwards
 * (wall clock steps) — buckets use timeMs, "newest"/"last" use recordSequence.
 *
 * Reasons, in this order: `newest`, `labelled x` or `keep-label x`, `within 24h`, `last 1/3`,
 * `hourly 2026-12-07T14`, `daily 2026-12-07`, `weekly 2026-W49`, `monthly 2026-12`, `yearly 2026`
 * (`oldest daily 2026-12-07` when only restic's oldest-point rule keeps it);
 * `no policy` for every point when the policy is empty; none for a dropped point.
 */
export function selectPoints<P extends PointInfo>(
  points: readonly P[],
  policy: RetentionPolicy,
  options: { timeZone?: 'local' | 'UTC' } = {},
): Decision<P>[] {
  if (isEmptyPolicy(policy)) return points.map((point) => ({ point, keep: true, reasons: ['no policy'] }));
  const utc = options.timeZone === 'UTC';
  const newestFirst = points.map((_, index) => index).sort((a, b) => points[b]!.recordSequence - points[a]!.recordSequence);
  const reasons = points.map((): string[] => []);
  const pinned = new Set(policy.labels);
  const newestTime = points[newestFirst[0]!]?.timeMs ?? 0;
  const last = policy.last ?? 0;
  // restic's buckets: a rule keeps a point whose bucket differs from that of the point it kept last,
  // while its count lasts. Points other rules keep do not count.
  const left = new Map(BUCKET_RULES.map((rule) => [rule, policy[rule] ?? 0]));
  const lastBucket = new Map<BucketRule, string>();

  newestFirst.forEach((index, nr) => {
    const point = points[index]!;
    const why = reasons[index]!;
    assert(nr === 0 || points[newestFirst[nr - 1]!]!.recordSequence !== point.recordSequence, 'points share a recordSequence');
    if (nr === 0) why.push('newest');
    if (point.label !== null) why.push(`${pinned.has(point.label) ? 'keep-label' : 'labelled'} ${point.label}`);
    // Strictly after, as restic's cur.Time.After(latest - within).
    if ((policy.withinMs ?? 0) > 0 && point.timeMs > newestTime - policy.withinMs!) why.push(`within ${formatWithin(policy.withinMs!)}`);
    if (nr < last) why.push(`last ${nr + 1}/${last}`);
    for (const rule of BUCKET_RULES) {
      if (left.get(rule)! <= 0) continue;
      const bucket = bucketOf(rule, point.timeMs, utc);
      // Like restic (0.17), also keep the oldest point while a rule has counts left: the longest history.
      const repeat = bucket === lastBucket.get(rule);
      if (!repeat || nr === newestFirst.length - 1) {
        lastBucket.set(rule, bucket);
        left.set(rule, left.get(rule)! - 1);
        why.push(`${repeat ? 'oldest ' : ''}${rule} ${bucket}`);
      }
    }
  });
  return points.map((point, index) => ({ point, keep: reasons[index]!.length > 0, reasons: reasons[index]! }));
}

function badPolicy(message: string): VolumeError {
  return new VolumeError('BAD_POLICY', message, {
    hint: 'withinMs and the counts (last, hourly, daily, weekly, monthly, yearly) are positive whole numbers; labels is a list of label names',
  });
}

/** Checks a policy read from JSON (volume.json) and returns a normalised copy: known fields in order, none undefined. */
export function validatePolicy(policy: unknown): RetentionPolicy {
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) throw badPolicy('the retention policy is not an object');
  const given = policy as Record<string, unknown>;
  // An unknown field is most likely a misspelt rule, and a rule lost would drop points.
  const unknown = Object.keys(given).find((field) => !(FIELDS as readonly string[]).includes(field));
  if (unknown !== undefined) throw badPolicy(`the retention policy has an unknown field '${unknown}'`);
  const result: RetentionPolicy = {};
  for (const field of FIELDS) {
    const value = given[field];
    if (value === undefined) continue;
    if (field === 'labels') {
      if (!Array.isArray(value) || !value.every((label) => typeof label === 'string' && label !== '')) {
        throw badPolicy(`retention policy field labels must be a list of non-empty strings, not ${JSON.stringify(value)}`);
      }
      if (value.length > 0) result.labels = [...new Set(value as string[])];
    } else {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
        throw badPolicy(`retention policy field ${field} must be a positive whole number, not ${JSON.stringify(value)}`);
      }
      result[field] = value;
    }
  }
  return result;
}
