/** Sizes and durations as the CLI takes them (and sizes as it prints them, which it must take back). */
import t from 'tap';
import { formatSizeArgument } from '../../lib/format/units.js';
import { parseDuration, parseSize } from '../../lib/cli/units.js';
import { outcome } from '../format/codec-helpers.js';

t.test('units: sizes with binary units parse to bytes', async (t) => {
  const cases: [string, number][] = [
    ['4096', 4096],
    ['1', 1],
    ['64K', 64 * 1024],
    ['64k', 64 * 1024],
    ['64KiB', 64 * 1024],
    ['64kb', 64 * 1024],
    ['512B', 512],
    ['64M', 64 * 2 ** 20],
    [' 64 M ', 64 * 2 ** 20],
    ['1.5G', 1.5 * 2 ** 30],
    ['1.5K', 1536],
    ['0.5K', 512],
    ['20G', 20 * 2 ** 30],
    ['2TiB', 2 * 2 ** 40],
    ['8191T', 8191 * 2 ** 40],
    ['9007199254740991', 2 ** 53 - 1],
  ];
  for (const [text, bytes] of cases) t.equal(parseSize(text), bytes, JSON.stringify(text));
});

t.test('units: sizes that are not a positive whole number of bytes are BAD_INPUT', async (t) => {
  const cases = ['12Q', '-1', '0', '0K', '', ' ', 'M', '1e6', '0x10', '1,5G', '1.5', '0.3K', '1.0001K', '64 MB B', 'sixty', '8192T', '9007199254740992', '99999999999999999999'];
  const escapes = cases.filter((text) => outcome(() => parseSize(text)) !== 'BAD_INPUT');
  t.same(escapes, []);
  t.throws(() => parseSize('12Q', '--size'), { code: 'BAD_INPUT', message: /^BAD_INPUT: --size '12Q' is not a size$/, hint: /4096, 64K, 64M, 20G, 1T/ });
  t.throws(() => parseSize('0', '--segment-size'), { code: 'BAD_INPUT', message: /--segment-size '0' is not a positive whole number of bytes/ });
  t.throws(() => parseSize('-1'), { code: 'BAD_INPUT', message: /size '-1' is not a size/ }, 'a sign is not a size');
});

t.test('units: every size formatted for the CLI parses back to itself', async (t) => {
  for (const bytes of [1, 512, 1536, 4096, 65536, 2 ** 20, 3 * 2 ** 20 + 4096, 2 ** 30, 20 * 2 ** 30, 2 ** 40, 8191 * 2 ** 40, 2 ** 53 - 1]) {
    t.equal(parseSize(formatSizeArgument(bytes)), bytes, formatSizeArgument(bytes));
  }
  t.same([1024, 2 ** 20, 1536, 5 * 2 ** 30].map(formatSizeArgument), ['1K', '1M', '1536', '5G']);
});

t.test('units: durations parse to milliseconds; a bare number is seconds', async (t) => {
  const cases: [string, number][] = [
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['15', 15_000],
    ['1.5s', 1500],
    [' 2 m ', 120_000],
  ];
  for (const [text, ms] of cases) t.equal(parseDuration(text), ms, JSON.stringify(text));
});

t.test('units: durations that are not positive are BAD_INPUT', async (t) => {
  const cases = ['0', '0s', '0ms', '-1s', '', 's', '5M', '5 min', '1w', '1e3', 'soon'];
  t.same(cases.filter((text) => outcome(() => parseDuration(text)) !== 'BAD_INPUT'), []);
  t.throws(() => parseDuration('5M', '--every'), { code: 'BAD_INPUT', message: /--every '5M' is not a duration/, hint: /500ms, 30s, 5m, 1h, 1d/ });
  t.throws(() => parseDuration('0', '--rpo'), { code: 'BAD_INPUT', message: /--rpo '0' must be from 1 ms to 24 days/ });
});

// Regressions: bugs the fuzzers and these tests found in lib/, now fixed.

t.test('units: a duration no timer can wait is refused', async (t) => {
  // `salvo sync --every 30d` waits with setTimeout, which takes at most 2^31 - 1 ms: Node turns a
  // longer delay into 1 ms (TimeoutOverflowWarning), so the agent would take a synch point every millisecond.
  t.equal(outcome(() => parseDuration('30d')), 'BAD_INPUT', '30d');
  t.equal(outcome(() => parseDuration('0.001ms')), 'BAD_INPUT', '0.001ms');
  t.ok(parseDuration('24d') <= 2 ** 31 - 1, '24d still fits a timer');
});
