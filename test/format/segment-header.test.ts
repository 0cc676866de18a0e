import { AssertionError } from 'node:assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import {
  FORMAT_VERSION,
  FORMAT_VERSIONS,
  SEGMENT_HEADER_SIZE,
  SEGMENT_MAGIC,
  decodeSegmentHeader,
  encodeSegmentHeader,
  type SegmentHeader,
} from '../../lib/format/segment-header.js';
import { Volume } from '../../lib/volume/volume.js';
import { bitFlipEscapes, outcome, resealed } from './codec-helpers.js';

const HEADER: SegmentHeader = {
  version: 2,
  blockSizeBytes: 4096,
  volumeId: '0123456789abcdef0123456789abcdef',
  sequence: 42,
  firstRecordSequence: 1_000_000,
  createdAtMs: Date.UTC(2026, 10, 22, 1, 30),
};

t.test('segment-header: sizes and magic are as FORMAT documents', async (t) => {
  t.equal(SEGMENT_HEADER_SIZE, 64);
  t.equal(SEGMENT_MAGIC.toString('latin1'), 'SALVOSEG');
  t.equal(FORMAT_VERSION, 2, 'new volumes are format 2');
  t.same(FORMAT_VERSIONS, [1, 2], 'format 1 volumes are still read and written');
  const bytes = encodeSegmentHeader(HEADER);
  t.equal(bytes.length, 64);
  t.equal(bytes.toString('latin1', 0, 8), 'SALVOSEG');
  t.equal(bytes.readUInt16LE(8), 2, 'version at 8');
  t.equal(encodeSegmentHeader({ ...HEADER, version: 1 }).readUInt16LE(8), 1, 'the volume’s own version');
  t.equal(bytes.readUInt16LE(10), 64, 'header size at 10');
  t.equal(bytes.readUInt32LE(12), 4096, 'block size at 12');
  t.equal(bytes.toString('hex', 16, 32), HEADER.volumeId, 'volume id at 16');
  t.equal(bytes.readBigUInt64LE(32), 42n, 'sequence at 32');
  t.equal(bytes.readBigUInt64LE(40), 1_000_000n, 'first record sequence at 40');
  t.equal(bytes.readBigUInt64LE(48), BigInt(HEADER.createdAtMs), 'created at 48');
  t.equal(bytes.readUInt32LE(56), 0, 'bytes 56..60 are reserved, zero');
});

t.test('segment-header: every field round-trips, up to 2^53 - 1', async (t) => {
  const cases: SegmentHeader[] = [
    HEADER,
    { ...HEADER, version: 1 },
    { version: 1, blockSizeBytes: 512, volumeId: '00000000000000000000000000000000', sequence: 1, firstRecordSequence: 0, createdAtMs: 0 },
    { version: 2, blockSizeBytes: 65536, volumeId: 'ffffffffffffffffffffffffffffffff', sequence: 2 ** 53 - 1, firstRecordSequence: 2 ** 53 - 1, createdAtMs: 2 ** 53 - 1 },
    { version: 2, blockSizeBytes: 0xffff_ffff, volumeId: 'a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5', sequence: 2 ** 32, firstRecordSequence: 2 ** 32 - 1, createdAtMs: 2 ** 32 + 1 },
    { version: 2, blockSizeBytes: 4096, volumeId: HEADER.volumeId, sequence: 2 ** 53 - 2, firstRecordSequence: 2 ** 52 + 3, createdAtMs: Date.UTC(9999, 11, 31) },
  ];
  for (const header of cases) {
    const bytes = encodeSegmentHeader(header);
    t.same(decodeSegmentHeader(bytes, 'x'), header, `sequence ${header.sequence}`);
    t.same(encodeSegmentHeader(decodeSegmentHeader(bytes, 'x')!), bytes, 'and re-encodes to the same bytes');
  }
});

t.test('segment-header: a flipped bit anywhere in the header is CORRUPT_SEGMENT', async (t) => {
  for (const header of [HEADER, { ...HEADER, sequence: 2 ** 53 - 1 }]) {
    const bytes = encodeSegmentHeader(header);
    t.same(bitFlipEscapes(bytes, 0, 64, (b) => decodeSegmentHeader(b, 'x'), 'CORRUPT_SEGMENT'), [], `all 512 bits of sequence ${header.sequence}`);
  }
});

t.test('segment-header: a blank (all-zero) header is a blank slot, not corruption', async (t) => {
  t.equal(decodeSegmentHeader(Buffer.alloc(64), 'x'), null);
  t.equal(decodeSegmentHeader(Buffer.alloc(4096), 'x'), null, 'longer input: only the first 64 bytes count');
});

t.test('segment-header: a wrong magic is CORRUPT_SEGMENT', async (t) => {
  for (const magic of ['SALVOARC', 'SALVOSEH', 'salvoseg', '\0\0\0\0\0\0\0S']) {
    const bytes = encodeSegmentHeader(HEADER);
    bytes.write(magic, 0, 'latin1');
    t.throws(() => decodeSegmentHeader(resealed(bytes, 0, 60), 'slot 3'), { code: 'CORRUPT_SEGMENT', message: /slot 3: not a salvo segment \(bad magic\)/ }, JSON.stringify(magic));
  }
  t.throws(() => decodeSegmentHeader(Buffer.alloc(64, 0xff), 'x'), { code: 'CORRUPT_SEGMENT' }, 'all ones');
});

t.test('segment-header: another version or header size is CORRUPT_SEGMENT even with a valid checksum', async (t) => {
  for (const value of [0, 3, 0xffff]) {
    const bytes = encodeSegmentHeader(HEADER);
    bytes.writeUInt16LE(value, 8);
    t.throws(() => decodeSegmentHeader(resealed(bytes, 0, 60), 'x'), { code: 'CORRUPT_SEGMENT', message: /segment format version \d+ is not supported \(this salvo reads 1 and 2\)/ }, `version ${value}`);
  }
  for (const value of [32, 128]) {
    const bytes = encodeSegmentHeader(HEADER);
    bytes.writeUInt16LE(value, 10);
    t.throws(() => decodeSegmentHeader(resealed(bytes, 0, 60), 'x'), { code: 'CORRUPT_SEGMENT', message: /header size is not 64/ }, `header size ${value}`);
  }
  t.throws(() => encodeSegmentHeader({ ...HEADER, version: 3 }), AssertionError, 'nor is another version written');
});

t.test('segment-header: sequences and times past 2^53 - 1, or a sequence of 0, are CORRUPT_SEGMENT', async (t) => {
  for (const [at, value] of [[32, 0n], [32, 2n ** 53n], [32, 2n ** 64n - 1n], [40, 2n ** 53n], [48, 2n ** 53n + 1n], [48, 2n ** 63n]] as const) {
    const bytes = encodeSegmentHeader(HEADER);
    bytes.writeBigUInt64LE(value, at);
    t.throws(() => decodeSegmentHeader(resealed(bytes, 0, 60), 'x'), { code: 'CORRUPT_SEGMENT', message: /out of range/ }, `u64 at ${at} = ${value}`);
  }
});

t.test('segment-header: a truncated header is CORRUPT_SEGMENT once read as a slot reads it (zeros past the end)', async (t) => {
  const bytes = encodeSegmentHeader(HEADER);
  const escapes: string[] = [];
  for (let length = 1; length < 64; length++) {
    const padded = Buffer.alloc(64);
    bytes.copy(padded, 0, 0, length);
    const result = outcome(() => decodeSegmentHeader(padded, 'x'));
    if (result !== 'CORRUPT_SEGMENT') escapes.push(`${length} bytes: ${result}`);
  }
  t.same(escapes, []);
  // Fewer than 64 bytes is a caller's mistake (SegmentSlot always reads 64): an assert, not garbage.
  t.throws(() => decodeSegmentHeader(bytes.subarray(0, 63), 'x'), AssertionError);
});

t.test('segment-header: reserved bytes 56..60 are written as zero', async (t) => {
  const bytes = encodeSegmentHeader({ ...HEADER, createdAtMs: 2 ** 53 - 1 });
  t.same(bytes.subarray(56, 60), Buffer.alloc(4));
});

// Regressions: bugs the fuzzers and these tests found in lib/, now fixed.

t.test('segment-header: a header whose magic alone is zeroed is not a blank slot', async (t) => {
  const bytes = encodeSegmentHeader(HEADER);
  bytes.fill(0, 0, 8); // e.g. one damaged sector start; the other 56 bytes still name segment 42
  t.equal(outcome(() => decodeSegmentHeader(bytes, 'x')), 'CORRUPT_SEGMENT', 'decodeSegmentHeader should not return null', {});
});

t.test('segment-header: a volume whose current segment lost its magic is refused, not silently shortened', async (t) => {
  // format-v1/volume: segment 2 (records 8..12, synch points 'second' and a third) is current.
  const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'format-v1', 'volume');
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'salvo-magic-')), 'volume');
  t.teardown(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));
  fs.cpSync(fixture, dir, { recursive: true });
  const slot = path.join(dir, 'slots', '0001.slot');
  const bytes = fs.readFileSync(slot);
  bytes.fill(0, 0, 8);
  fs.writeFileSync(slot, bytes);
  let volume: Volume | null = null;
  let result = 'opened';
  try {
    volume = await Volume.open(dir, { store: new MemoryStore(), onStall: () => undefined });
  } catch (err) {
    result = (err as { code?: string }).code ?? String(err);
  }
  t.equal(result, 'CORRUPT_SEGMENT', 'Volume.open should refuse the volume');
  if (volume) {
    t.equal(volume.read(2 * 512, 10).toString('latin1'), 'block 2 v3', 'or at least still serve block 2 as written by record 8');
    t.equal(volume.catalog.all.length, 3, 'and list all three synch points');
    await volume.close();
  }
});

t.test('segment-header: the encoder refuses a sequence the decoder would reject', async (t) => {
  t.equal(outcome(() => encodeSegmentHeader({ ...HEADER, sequence: 2 ** 53 })), 'AssertionError', 'encodeSegmentHeader should assert a safe integer', {});
});
