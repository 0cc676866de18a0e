import t, { type Test } from 'tap';
import { VolumeError } from '../../lib/errors.js';
import {
  describePolicy,
  isEmptyPolicy,
  parseWithin,
  selectPoints,
  validatePolicy,
  type PointInfo,
  type RetentionPolicy,
} from '../../lib/format/retention-policy.js';
import { referenceKeep } from './reference-policy.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;
const UTC = { timeZone: 'UTC' } as const;

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Points in log order (recordSequence 1, 2, ...) at the given ISO times, with optional labels. */
function pointsAt(...specs: (string | [string, string])[]): PointInfo[] {
  return specs.map((spec, i) => {
    const [time, label] = typeof spec === 'string' ? [spec, null] : spec;
    return { timeMs: Date.parse(time), label, recordSequence: i + 1 };
  });
}

/** recordSequence → reasons of the kept points, for readable expectations. */
function kept(points: readonly PointInfo[], policy: RetentionPolicy, options: { timeZone?: 'local' | 'UTC' } = UTC) {
  const decisions = selectPoints(points, policy, options);
  for (const d of decisions) if (d.keep !== d.reasons.length > 0) throw new Error(`keep ${d.keep} with reasons ${d.reasons}`);
  return Object.fromEntries(decisions.filter((d) => d.keep).map((d) => [d.point.recordSequence, d.reasons]));
}

function randomCase(rand: () => number, monotone: boolean): { points: PointInfo[]; policy: RetentionPolicy } {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const scale = pick([MIN, 10 * MIN, HOUR, 6 * HOUR, DAY, 7 * DAY, 30 * DAY, YEAR]);
  const count = rand() < 0.1 ? int(120) : int(30);
  let time = Date.UTC(1995 + int(45), int(12), 1 + int(28)) + int(DAY);
  let sequence = int(100);
  const points: PointInfo[] = [];
  for (let i = 0; i < count; i++) {
    const roll = rand();
    // Equal times are common (several points in one bucket); a clock stepping back only when asked.
    if (!monotone && roll < 0.2) time -= int(3 * scale);
    else if (roll > 0.15) time += int(2 * scale);
    sequence += 1 + int(4);
    points.push({ timeMs: time, label: rand() < 0.15 ? pick(['a', 'b', 'before-upgrade']) : null, recordSequence: sequence });
  }
  for (let i = points.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [points[i], points[j]] = [points[j]!, points[i]!];
  }
  const policy: RetentionPolicy = {};
  for (const field of ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) if (rand() < 0.35) policy[field] = 1 + int(8);
  if (rand() < 0.3) policy.withinMs = pick([30 * MIN, DAY, 36 * HOUR, 7 * DAY, YEAR, 1 + int(scale * 10)]);
  if (rand() < 0.2) policy.labels = ['a', 'before-upgrade', 'never-used'].filter(() => rand() < 0.5);
  return { points, policy };
}

function compareWithReference(t: Test, seed: number, cases: number, monotone: boolean) {
  const rand = mulberry32(seed);
  const seen = { dropped: 0, kept: 0, oldest: 0, several: 0, within: 0, weekly: 0, label: 0, empty: 0 };
  let failures = 0;
  for (let i = 0; i < cases; i++) {
    const { points, policy } = randomCase(rand, monotone);
    const reference = referenceKeep(points, policy);
    const expected = points.map((p) => [p.recordSequence, reference.has(p.recordSequence), reference.get(p.recordSequence) ?? []]);
    const decisions = selectPoints(points, policy, UTC);
    const actual = decisions.map((d, j) => [d.point === points[j] ? d.point.recordSequence : 'out of order', d.keep, d.reasons]);
    if (JSON.stringify(actual) !== JSON.stringify(expected) && failures++ < 3) {
      t.strictSame(actual, expected, `seed ${seed} case ${i}: ${JSON.stringify({ policy, points })}`);
    }
    if (isEmptyPolicy(policy)) seen.empty++;
    for (const d of decisions) {
      seen[d.keep ? 'kept' : 'dropped']++;
      if (d.reasons.length > 1) seen.several++;
      if (d.reasons.some((r) => r.startsWith('oldest '))) seen.oldest++;
      if (d.reasons.some((r) => r.startsWith('within '))) seen.within++;
      if (d.reasons.some((r) => r.startsWith('weekly '))) seen.weekly++;
      if (d.reasons.some((r) => r.startsWith('labelled ') || r.startsWith('keep-label '))) seen.label++;
    }
  }
  t.equal(failures, 0, `${cases} random cases agree with the reference`);
  for (const [what, n] of Object.entries(seen)) t.ok(n > 0, `the cases exercise ${what} (${n})`);
}

t.test('policy: random point sets with rising times agree with the reference', async (t) => {
  compareWithReference(t, 0x5a1f0, 400, true);
});

t.test('policy: random point sets whose clock steps back agree with the reference too', async (t) => {
  // The reference cuts runs in log order, which is restic's rule whatever the times do.
  compareWithReference(t, 0xc10c, 200, false);
});

t.test("policy: restic's documented example, one point every Sunday, keep-daily 4", async (t) => {
  const sundays = Array.from({ length: 12 }, (_, i) => new Date(Date.UTC(2019, 8, 1 + 7 * i, 11)).toISOString());
  t.strictSame(kept(pointsAt(...sundays), { daily: 4 }), {
    9: ['daily 2019-10-27'],
    10: ['daily 2019-11-03'],
    11: ['daily 2019-11-10'],
    12: ['newest', 'daily 2019-11-17'],
  });
});

t.test('policy: keep-daily 7 over several points a day keeps the last point of each of the last 7 days', async (t) => {
  const times = Array.from({ length: 10 }, (_, day) => [8, 12, 20].map((h) => new Date(Date.UTC(2026, 11, 1 + day, h)).toISOString())).flat();
  const expected: Record<number, string[]> = {};
  for (let day = 4; day <= 10; day++) expected[3 * day] = [`daily 2026-12-${String(day).padStart(2, '0')}`];
  expected[30]!.unshift('newest');
  t.strictSame(kept(pointsAt(...times), { daily: 7 }), expected);
});

t.test("policy: like restic, a rule with counts left also keeps the oldest point", async (t) => {
  const points = pointsAt('2026-12-05T08:00Z', '2026-12-05T20:00Z', '2026-12-06T08:00Z', '2026-12-06T20:00Z');
  t.strictSame(kept(points, { daily: 7, weekly: 1 }), {
    1: ['oldest daily 2026-12-05'],
    2: ['daily 2026-12-05'],
    4: ['newest', 'daily 2026-12-06', 'weekly 2026-W49'],
  });
  t.strictSame(kept(points, { daily: 2 }), { 2: ['daily 2026-12-05'], 4: ['newest', 'daily 2026-12-06'] }, 'not once the counts are spent');
});

t.test('policy: a point another rule keeps does not use up a bucket count', async (t) => {
  const points = pointsAt('2026-12-05T12:00Z', '2026-12-06T12:00Z', '2026-12-07T08:00Z', '2026-12-07T09:00Z', ['2026-12-07T10:00Z', 'a']);
  t.strictSame(kept(points, { last: 3, daily: 2 }), {
    2: ['daily 2026-12-06'],
    3: ['last 3/3'],
    4: ['last 2/3'],
    5: ['newest', 'labelled a', 'last 1/3', 'daily 2026-12-07'],
  });
});

t.test('policy: keep-within counts back from the newest point, strictly, however old it is', async (t) => {
  const newest = Date.UTC(2001, 0, 10);
  const points: PointInfo[] = [newest - 2 * DAY, newest - DAY, newest - DAY + 1, newest - HOUR, newest].map((timeMs, i) => ({ timeMs, label: null, recordSequence: i + 1 }));
  t.strictSame(kept(points, { withinMs: DAY }), { 3: ['within 1d'], 4: ['within 1d'], 5: ['newest', 'within 1d'] });
  t.strictSame(kept(points, { withinMs: 36 * HOUR }), { 2: ['within 36h'], 3: ['within 36h'], 4: ['within 36h'], 5: ['newest', 'within 36h'] });
});

t.test('policy: the newest and every labelled point are never dropped; labels only name the reason', async (t) => {
  const points = pointsAt(['2020-01-01T00:00Z', 'before-upgrade'], ['2021-01-01T00:00Z', 'nightly'], '2022-01-01T00:00Z', '2023-01-01T00:00Z');
  t.strictSame(kept(points, { labels: ['before-upgrade'] }), { 1: ['keep-label before-upgrade'], 2: ['labelled nightly'], 4: ['newest'] });
  t.strictSame(kept(points, { last: 1 }), { 1: ['labelled before-upgrade'], 2: ['labelled nightly'], 4: ['newest', 'last 1/1'] });
});

t.test('policy: the newest is the last point logged; a clock stepped back still splits buckets by time', async (t) => {
  // Logged in this order; the clock went back a day before point 4.
  const points = pointsAt('2026-12-05T10:00Z', '2026-12-06T10:00Z', '2026-12-07T10:00Z', '2026-12-06T12:00Z', '2026-12-07T09:00Z');
  t.strictSame(
    kept(points, { daily: 3 }),
    { 3: ['daily 2026-12-07'], 4: ['daily 2026-12-06'], 5: ['newest', 'daily 2026-12-07'] },
    'each change of day is a new bucket, so 12-07 is kept twice and 12-05 is not',
  );
  t.strictSame(
    kept(points, { withinMs: DAY }),
    { 2: ['within 1d'], 3: ['within 1d'], 4: ['within 1d'], 5: ['newest', 'within 1d'] },
    'within counts back from the last point logged; a later time is within',
  );
  t.strictSame(kept(points, { last: 2 }), { 4: ['last 2/2'], 5: ['newest', 'last 1/2'] }, 'last goes by log order');
});

t.test('policy: bucket names, ISO weeks across a year end', async (t) => {
  const points = pointsAt('2024-12-29T23:00Z', '2024-12-30T00:30Z', '2026-12-31T14:00Z', '2027-01-01T14:00Z', '2027-01-04T00:00Z');
  t.strictSame(kept(points, { weekly: 9 }), {
    1: ['weekly 2024-W52'],
    2: ['weekly 2025-W01'],
    4: ['weekly 2026-W53'],
    5: ['newest', 'weekly 2027-W01'],
  });
  t.strictSame(kept(points, { hourly: 1, monthly: 2, yearly: 9 }), {
    1: ['oldest yearly 2024'],
    2: ['yearly 2024'],
    3: ['monthly 2026-12', 'yearly 2026'],
    5: ['newest', 'hourly 2027-01-04T00', 'monthly 2027-01', 'yearly 2027'],
  });
});

t.test('policy: buckets are in local time unless UTC is asked for', async (t) => {
  const saved = process.env.TZ;
  process.env.TZ = 'America/New_York';
  t.teardown(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });
  const points = pointsAt('2026-12-07T03:00Z');
  t.strictSame(kept(points, { daily: 1 }, {}), { 1: ['newest', 'daily 2026-12-06'] }, '22:00 the evening before in New York');
  t.strictSame(kept(points, { daily: 1 }, { timeZone: 'local' }), { 1: ['newest', 'daily 2026-12-06'] });
  t.strictSame(kept(points, { daily: 1 }), { 1: ['newest', 'daily 2026-12-07'] });
});

t.test('policy: an empty policy keeps everything', async (t) => {
  for (const policy of [{}, { last: 0 }, { labels: [] }]) t.ok(isEmptyPolicy(policy), JSON.stringify(policy));
  t.notOk(isEmptyPolicy({ labels: ['a'] }), 'keep-label alone is a rule');
  t.notOk(isEmptyPolicy({ withinMs: 1 }));
  const points = pointsAt('2026-01-01T00:00Z', '2026-01-01T00:00Z');
  t.strictSame(kept(points, {}), { 1: ['no policy'], 2: ['no policy'] });
  t.strictSame(selectPoints([], { daily: 3 }), []);
  t.throws(() => selectPoints([...points, points[0]!], { last: 1 }), { name: 'AssertionError' }, 'recordSequence is unique');
});

t.test('policy: describePolicy in the CLI flag words', async (t) => {
  t.equal(describePolicy({}), 'keep everything');
  t.equal(
    describePolicy({ labels: ['before-upgrade'], daily: 7, withinMs: DAY, last: 3, yearly: 2 }),
    'keep-within 1d, keep-last 3, keep-daily 7, keep-yearly 2, keep-label before-upgrade',
  );
  t.equal(describePolicy({ withinMs: 36 * HOUR }), 'keep-within 36h');
  t.equal(describePolicy({ withinMs: 14 * DAY }), 'keep-within 2w');
  t.equal(describePolicy({ withinMs: YEAR }), 'keep-within 1y');
  t.equal(describePolicy({ withinMs: 1500 }), 'keep-within 1500ms');
});

t.test('policy: parseWithin reads the spans keep-within takes', async (t) => {
  const spans: [string, number][] = [['30m', 30 * MIN], ['24h', DAY], ['7d', 7 * DAY], ['2w', 14 * DAY], ['1y', YEAR], ['1d12h', 36 * HOUR], [' 90s ', 90_000], ['1500ms', 1500]];
  for (const [text, ms] of spans) t.equal(parseWithin(text), ms, text);
  for (const text of ['', '5', '1.5h', '0h', '3x', 'h', '1d 12h', '-1d']) {
    t.throws(() => parseWithin(text), { code: 'BAD_POLICY' }, `'${text}'`);
  }
});

t.test('policy: validatePolicy checks a policy read from JSON and normalises it', async (t) => {
  const normal = validatePolicy(JSON.parse('{"labels":["a","a","b"],"daily":7,"withinMs":86400000}'));
  t.strictSame(normal, { withinMs: DAY, daily: 7, labels: ['a', 'b'] });
  t.strictSame(Object.keys(normal), ['withinMs', 'daily', 'labels'], 'fields in one order');
  t.strictSame(validatePolicy({ last: undefined, labels: [] }), {}, 'no undefined or empty fields');
  const input = { last: 2 };
  t.not(validatePolicy(input), input, 'a copy');

  const bad: [unknown, string][] = [
    [null, 'not an object'],
    [[1], 'not an object'],
    ['daily', 'not an object'],
    [{ dayly: 7 }, "unknown field 'dayly'"],
    [{ daily: 0 }, 'daily'],
    [{ daily: 1.5 }, 'daily'],
    [{ daily: '7' }, 'daily'],
    [{ withinMs: -1 }, 'withinMs'],
    [{ hourly: null }, 'hourly'],
    [{ labels: 'x' }, 'labels'],
    [{ labels: [''] }, 'labels'],
    [{ labels: [1] }, 'labels'],
  ];
  for (const [policy, field] of bad) {
    try {
      validatePolicy(policy);
      t.fail(`${JSON.stringify(policy)} passed`);
    } catch (err) {
      t.ok(err instanceof VolumeError && err.code === 'BAD_POLICY', `${JSON.stringify(policy)}: BAD_POLICY`);
      const { message, hint } = err as VolumeError;
      t.ok(message.includes(field) && !message.includes('\n') && hint !== undefined, message);
    }
  }
});
