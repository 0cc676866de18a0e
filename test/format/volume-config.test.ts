import t from 'tap';
import { VolumeError } from '../../lib/errors.js';
import { parseSize } from '../../lib/cli/units.js';
import {
  CHUNK_SIZE_BYTES,
  CONFIG_FORMAT,
  HEADROOM,
  decodeVolumeConfig,
  encodeVolumeConfig,
  newVolumeConfig,
  resolvePolicy,
  defaultSegmentSize,
  segmentCapacityBlocks,
  type PolicyInput,
  type VolumeConfig,
} from '../../lib/format/volume-config.js';
import { outcome } from './codec-helpers.js';

const CONFIG: VolumeConfig = {
  format: 'salvo-volume',
  version: 1,
  volumeId: '5a1f05eed0c0ffee0123456789abcdef',
  sizeBytes: 64 * 2 ** 20,
  blockSizeBytes: 4096,
  segmentSizeBytes: 2 ** 20,
  workingSetSegments: 128,
  spareSegments: 8,
  chunkSizeBytes: CHUNK_SIZE_BYTES,
  rpoSeconds: 30,
  createdAt: '2026-11-22T01:00:00.000Z',
  archive: '/backup/db',
};

/** What `salvo init` hands resolvePolicy for these arguments (its defaults: 4096-byte blocks, 8 spares, the segment size by the volume's). */
function policyOf(args: string): PolicyInput {
  const flags = Object.fromEntries(args.match(/--[\w-]+ \S+/g)!.map((pair) => pair.split(' ') as [string, string]));
  return {
    sizeBytes: parseSize(flags['--size']!),
    blockSizeBytes: parseSize(flags['--block-size'] ?? '4096'),
    segmentSizeBytes: flags['--segment-size'] === undefined ? undefined : parseSize(flags['--segment-size']),
    workingSetSegments: flags['--segments'] === undefined ? undefined : Number(flags['--segments']),
    spareSegments: Number(flags['--spare'] ?? '8'),
  };
}

function refusal(fn: () => unknown): VolumeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof VolumeError) return err;
    throw err;
  }
  throw new Error('expected a VolumeError');
}

t.test('volume-config: a config round-trips through volume.json', async (t) => {
  const text = encodeVolumeConfig(CONFIG);
  t.ok(text.endsWith('}\n'));
  t.same(decodeVolumeConfig(text, 'volume.json'), CONFIG);
  t.equal(encodeVolumeConfig(decodeVolumeConfig(text, 'volume.json')), text, 'and re-encodes to the same text');
  const { archive: _a, ...descriptor } = CONFIG;
  t.same(decodeVolumeConfig(encodeVolumeConfig(descriptor as VolumeConfig), 'archive/volume.json'), descriptor, 'the archive’s copy has no archive field');
  t.same(decodeVolumeConfig(JSON.stringify(CONFIG), 'compact'), CONFIG, 'any JSON spelling');
});

t.test('volume-config: newVolumeConfig makes a config that decodes', async (t) => {
  const now = new Date(Date.UTC(2026, 10, 22, 1));
  const config = newVolumeConfig(resolvePolicy(policyOf('--size 64M --segment-size 1M --segments 128')), '/backup/db', 0, now);
  t.equal(config.format, CONFIG_FORMAT);
  t.equal(config.version, 2, 'new volumes are format 2');
  t.match(config.volumeId, /^[0-9a-f]{32}$/);
  t.equal(config.createdAt, '2026-11-22T01:00:00.000Z');
  t.same(decodeVolumeConfig(encodeVolumeConfig(config), 'x'), config);
  t.same(decodeVolumeConfig(encodeVolumeConfig({ ...config, version: 1 }), 'x').version, 1, 'format 1 volumes still open');
});

t.test('volume-config: text that is not a salvo config is CORRUPT_CONFIG', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['empty', '', /is not valid JSON/],
    ['binary', '\u0000\u0001SALVOSEG', /is not valid JSON/],
    ['truncated', encodeVolumeConfig(CONFIG).slice(0, 100), /is not valid JSON/],
    ['null', 'null', /is not a salvo volume configuration/],
    ['a number', '42', /is not a salvo volume configuration/],
    ['an array', '[]', /is not a salvo volume configuration/],
    ['another format', JSON.stringify({ ...CONFIG, format: 'restic' }), /is not a salvo volume configuration/],
    ['version 3', JSON.stringify({ ...CONFIG, version: 3 }), /volume\.json: format version 3 is not supported \(this salvo reads 1 and 2\)/],
    ['version "1"', JSON.stringify({ ...CONFIG, version: '1' }), /format version "1" is not supported/],
    ['no version', JSON.stringify({ ...CONFIG, version: undefined }), /format version undefined is not supported/],
  ];
  for (const [what, text, message] of cases) t.throws(() => decodeVolumeConfig(text, '/v/volume.json'), { code: 'CORRUPT_CONFIG', message }, what);
});

t.test('volume-config: missing or malformed fields are CORRUPT_CONFIG', async (t) => {
  const numeric = ['sizeBytes', 'blockSizeBytes', 'segmentSizeBytes', 'workingSetSegments', 'spareSegments', 'chunkSizeBytes', 'rpoSeconds'] as const;
  const escapes: string[] = [];
  const expectCorrupt = (what: string, config: Record<string, unknown>) => {
    const result = outcome(() => decodeVolumeConfig(JSON.stringify(config), 'x'));
    if (result !== 'CORRUPT_CONFIG') escapes.push(`${what}: ${result}`);
  };
  for (const field of numeric) {
    for (const value of [undefined, null, -1, 1.5, '4096', 2 ** 53, true, [], {}]) expectCorrupt(`${field} = ${JSON.stringify(value)}`, { ...CONFIG, [field]: value });
  }
  for (const value of [undefined, 7, '', 'ABCDEF0123456789ABCDEF0123456789', '5a1f05eed0c0ffee0123456789abcde', '5a1f05eed0c0ffee0123456789abcdefa', 'zz1f05eed0c0ffee0123456789abcdef']) {
    expectCorrupt(`volumeId = ${JSON.stringify(value)}`, { ...CONFIG, volumeId: value });
  }
  expectCorrupt('createdAt = 0', { ...CONFIG, createdAt: 0 });
  expectCorrupt('archive = 1', { ...CONFIG, archive: 1 });
  expectCorrupt('chunkSizeBytes = 0', { ...CONFIG, chunkSizeBytes: 0 });
  t.same(escapes, []);
});

t.test('volume-config: a well-formed config whose policy cannot run is CORRUPT_CONFIG', async (t) => {
  const cases: [string, Partial<VolumeConfig>][] = [
    ['block size 1000', { blockSizeBytes: 1000 }],
    ['block size 0', { blockSizeBytes: 0 }],
    ['size not a multiple of the block size', { sizeBytes: CONFIG.sizeBytes + 1 }],
    ['segment size 0', { segmentSizeBytes: 0 }],
    ['segment size not a multiple of 4 KiB', { segmentSizeBytes: 2 ** 20 + 512 }],
    ['no spare slot', { spareSegments: 0 }],
    ['a working set too small', { workingSetSegments: 3 }],
  ];
  for (const [what, change] of cases) {
    t.throws(() => decodeVolumeConfig(JSON.stringify({ ...CONFIG, ...change }), '/v/volume.json'), { code: 'CORRUPT_CONFIG', message: /\/v\/volume.json holds a policy salvo cannot run: (BAD_INPUT|BAD_POLICY): / }, what);
  }
});

t.test('volume-config: --size 64M --segment-size 1M --segments 128 is accepted', async (t) => {
  const policy = resolvePolicy(policyOf('--size 64M --segment-size 1M --segments 128'));
  t.same(policy, { sizeBytes: 64 * 2 ** 20, blockSizeBytes: 4096, segmentSizeBytes: 2 ** 20, workingSetSegments: 128, spareSegments: 8 });
  t.equal(segmentCapacityBlocks(2 ** 20, 4096), Math.floor((2 ** 20 - 64) / (32 + 4 + 4096)), 'one segment holds 253 single-block records');
  t.equal(segmentCapacityBlocks(2 ** 20, 4096), 253);
});

t.test('volume-config: a working set too small is BAD_POLICY, and its hint names a --segments value that is accepted', async (t) => {
  const input = policyOf('--size 64M --segment-size 1M --segments 64');
  const err = refusal(() => resolvePolicy(input));
  t.equal(err.code, 'BAD_POLICY');
  t.match(err.message, /^BAD_POLICY: a working set of 64 × 1.00 MiB segments cannot hold a 64.0 MiB volume with room for copy-forward$/);
  t.match(err.hint, /^use --segments 82 \(or more\) with --segment-size 1M or --segment-size 2M with --segments 64$/);
  // The rule: (segments - 1) × capacity ≥ 1.25 × blocks, i.e. 81 × 253 = 20493 ≥ 20480.
  t.ok(81 * 253 >= HEADROOM * 16384 && 80 * 253 < HEADROOM * 16384);
  const segments = Number(/--segments (\d+) \(or more\)/.exec(err.hint!)![1]);
  t.same(resolvePolicy({ ...input, workingSetSegments: segments }).workingSetSegments, 82, 'the hinted --segments is accepted');
  t.equal(refusal(() => resolvePolicy({ ...input, workingSetSegments: segments - 1 })).code, 'BAD_POLICY', 'and is the smallest that is');
  const [, size, count] = /--segment-size (\S+) with --segments (\d+)/.exec(err.hint!)!;
  t.equal(resolvePolicy({ ...input, segmentSizeBytes: parseSize(size!), workingSetSegments: Number(count) }).segmentSizeBytes, 2 * 2 ** 20, 'so is the hinted larger segment');
});

t.test('volume-config: the default working set is 64, or what the volume needs, or twice the volume', async (t) => {
  t.equal(resolvePolicy(policyOf('--size 64M --segment-size 1M')).workingSetSegments, 129, 'twice 64 MiB in 1 MiB segments, plus one');
  t.equal(resolvePolicy(policyOf('--size 20G')).workingSetSegments, 641, '20 GiB in 64 MiB segments');
  t.equal(resolvePolicy(policyOf('--size 16M --segment-size 1M')).workingSetSegments, 64);
});

t.test('volume-config: the default segment size grows with the volume, so a 16 TiB volume has ~33k slots, not 500k', async (t) => {
  const cases: [string, number, number][] = [
    ['--size 1G', 64 * 2 ** 20, 64],
    ['--size 64G', 64 * 2 ** 20, 2049],
    ['--size 65G', 128 * 2 ** 20, 1041],
    ['--size 256G', 256 * 2 ** 20, 2049],
    ['--size 4T', 2 ** 30, 8193],
    ['--size 16T', 2 ** 30, 32769],
  ];
  for (const [args, segment, workingSet] of cases) {
    t.same([defaultSegmentSize(parseSize(args.split(' ')[1]!)), resolvePolicy(policyOf(args)).workingSetSegments], [segment, workingSet], args);
  }
  t.equal(resolvePolicy(policyOf('--size 16T --block-size 4096 --segment-size 1G')).sizeBytes, 2 ** 44, 'exactly 2^32 blocks is a volume');
  t.same(resolvePolicy(policyOf('--size 48T --block-size 16K')).workingSetSegments, 65528, 'larger blocks, larger volumes: as many segments as a volume may have slots, less than twice the volume');
});

t.test('volume-config: bad geometry is BAD_INPUT with a line that says what works', async (t) => {
  const cases: [string, RegExp][] = [
    ['--size 64M --block-size 1000', /block size 1000 is not a power of two from 512 to 65536/],
    ['--size 64M --block-size 256', /block size 256 is not a power of two/],
    ['--size 64M --block-size 128K', /block size 131072 is not a power of two/],
    ['--size 100000 --segment-size 1M', /size 100000 is not a multiple of the block size 4096/],
    ['--size 17T --block-size 4096', /is more than 2\^32 blocks of 4\.00 KiB/],
    ['--size 64M --segment-size 1001K', /must be a multiple of 4 KiB/],
    ['--size 64M --segment-size 2G', /at most 1 GiB/],
    ['--size 64M --segment-size 64K', /hold at least 16 blocks/],
    ['--size 64M --segment-size 1M --spare 0', /at least one spare slot/],
  ];
  for (const [args, message] of cases) {
    const err = refusal(() => resolvePolicy(policyOf(args)));
    t.equal(err.code, 'BAD_INPUT', args);
    t.match(err.message, message, args);
  }
  t.equal(refusal(() => resolvePolicy({ ...policyOf('--size 64M --segment-size 1M'), workingSetSegments: 100.5 })).code, 'BAD_POLICY', 'a fractional --segments');
});

// Regressions: bugs the fuzzers and these tests found in lib/, now fixed.

t.test('volume-config: a volume of 0 bytes is refused', async (t) => {
  t.equal(outcome(() => resolvePolicy({ ...policyOf('--size 64M --segment-size 1M'), sizeBytes: 0 })), 'BAD_INPUT', 'resolvePolicy');
  t.equal(outcome(() => decodeVolumeConfig(JSON.stringify({ ...CONFIG, sizeBytes: 0 }), 'x')), 'CORRUPT_CONFIG', 'decodeVolumeConfig');
});
