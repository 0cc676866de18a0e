import t from 'tap';
import { VolumeError, type VolumeErrorCode } from '../../lib/errors.js';
import { crc32c } from '../../lib/format/checksum.js';
import { SUMMARY_HEADER_SIZE, SUMMARY_MAGIC, SegmentSummary } from '../../lib/format/summary.js';
import { buildSegment, patternBlocks } from '../fixtures/segment-builder.js';
import { bitFlipEscapes, outcome, truncationEscapes } from './codec-helpers.js';

const asSegment = (what: string) => VolumeError.corruptSegment('0007.sum', what);
const asArchive = (what: string) => VolumeError.corruptArchive('segments/0000000000000007.seg', what);
const decode = (bytes: Buffer) => SegmentSummary.decode(bytes, asSegment);

function extentsOf(summary: SegmentSummary): [number, number, boolean, number][] {
  return Array.from({ length: summary.extentCount }, (_, i) => [summary.extentBlock(i), summary.extentBlocks(i), summary.extentIsZero(i), summary.extentOffset(i)]);
}

/** A summary as the Log builds it: writes, ZERO runs and synch points, near 2^53 if asked. */
function sample(firstRecordSequence = 10, sequence = 7): SegmentSummary {
  return buildSegment({ version: 2, blockSizeBytes: 512, volumeId: '0123456789abcdef0123456789abcdef', sequence, firstRecordSequence, createdAtMs: 0 }, [
    { type: 'write', block: 0, blocks: patternBlocks(512, 0, 2, 1) },
    { type: 'zero', block: 0xffff_fff0, count: 0x10 },
    { type: 'synch', body: { timeMs: Date.UTC(2026, 10, 22), label: 'one', info: { host: 'h' } } },
    { type: 'write', block: 0xffff_ffff, blocks: patternBlocks(512, 9, 1, 1) },
    { type: 'zero', block: 5, count: 0x7fff_ffff },
    { type: 'synch', body: { timeMs: 2 ** 53 - 1, label: null, info: {} } },
    { type: 'write', block: 3, blocks: patternBlocks(512, 3, 1, 2) },
  ]).summary;
}

/** Recomputes the summary's CRC after a deliberate edit, as a writer of those fields would. */
function resealSummary(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const length = SUMMARY_HEADER_SIZE + copy.readUInt32LE(48);
  copy.writeUInt32LE(crc32c(copy.subarray(SUMMARY_HEADER_SIZE, length), crc32c(copy.subarray(0, 52))), 52);
  return copy;
}

t.test('summary: layout is as FORMAT documents', async (t) => {
  t.equal(SUMMARY_HEADER_SIZE, 56);
  const bytes = sample().encode();
  t.equal(bytes.readUInt32LE(0), SUMMARY_MAGIC);
  t.equal(bytes.toString('latin1', 0, 4), 'SSUM');
  t.same([bytes.readUInt16LE(4), bytes.readUInt16LE(6)], [1, 56], 'version, header size');
  t.same([bytes.readUInt32LE(40), bytes.readUInt32LE(44)], [5, 2], 'extent count, synch count');
  t.equal(bytes.length, 56 + bytes.readUInt32LE(48), 'body length at 48');
  t.equal(SegmentSummary.encodedLength(bytes), bytes.length);
  t.equal(bytes.readUInt32LE(56 + 12 + 4), (0x10 | 0x8000_0000) >>> 0, 'a ZERO extent sets bit 31 of its count');
});

t.test('summary: every field round-trips losslessly, up to 2^53 - 1', async (t) => {
  for (const [first, sequence] of [[10, 7], [2 ** 53 - 8, 2 ** 53 - 1], [0, 1]] as const) {
    const summary = sample(first, sequence);
    const bytes = summary.encode();
    const decoded = decode(bytes);
    t.same(
      [decoded.sequence, decoded.firstRecordSequence, decoded.nextRecordSequence, decoded.rawStart, decoded.rawEnd],
      [sequence, first, first + 7, summary.rawStart, summary.rawEnd],
      `sequence ${sequence}`,
    );
    t.same(extentsOf(decoded), extentsOf(summary));
    t.same(decoded.synchs, summary.synchs);
    t.same(decoded.encode(), bytes, 'and re-encodes to the same bytes');
  }
  t.same(extentsOf(decode(sample().encode())).slice(1, 2), [[0xffff_fff0, 0x10, true, 64 + 32 + 2 * 516]], "a ZERO extent sits at its record");
});

t.test('summary: an empty summary and one with many extents round-trip', async (t) => {
  const empty = new SegmentSummary(1, 1, 64, 64, 1);
  t.same(decode(empty.encode()).encode(), empty.encode());
  const many = new SegmentSummary(3, 100, 64, 1_000_000, 1100, 1); // grows from a capacity of 1
  for (let i = 0; i < 1000; i++) many.addExtent(i * 7, 1 + (i % 5), i % 3 === 0, 64 + i * 900);
  const decoded = decode(many.encode());
  t.equal(decoded.extentCount, 1000);
  t.same(extentsOf(decoded), extentsOf(many));
});

t.test('summary: a flipped bit anywhere in a summary is CORRUPT_SEGMENT (or CORRUPT_ARCHIVE, as the caller says)', async (t) => {
  const bytes = sample().encode();
  t.same(bitFlipEscapes(bytes, 0, bytes.length, decode, 'CORRUPT_SEGMENT'), [], `${bytes.length * 8} bits`);
  const inArchive = (b: Buffer) => SegmentSummary.decode(b, asArchive);
  t.same(bitFlipEscapes(bytes, 0, 64, inArchive, 'CORRUPT_ARCHIVE'), [], 'the caller picks the code');
});

t.test('summary: blank, truncated and foreign bytes are corrupt (there is no blank summary)', async (t) => {
  t.throws(() => decode(Buffer.alloc(56)), { code: 'CORRUPT_SEGMENT', message: /0007.sum: not a segment summary \(bad magic\)/ });
  t.throws(() => decode(Buffer.alloc(0)), { code: 'CORRUPT_SEGMENT' });
  t.equal(SegmentSummary.encodedLength(Buffer.alloc(100)), -1);
  const bytes = sample().encode();
  t.same(truncationEscapes(bytes, bytes.length, decode, 'CORRUPT_SEGMENT'), [], 'every prefix');
  t.throws(() => decode(Buffer.from('SALVOSEG'.repeat(8), 'latin1')), { code: 'CORRUPT_SEGMENT' });
});

t.test('summary: bytes after the summary are not part of it', async (t) => {
  // Callers hand the sidecar file or the archive object's summary range; the summary says its own length.
  const bytes = sample().encode();
  t.same(decode(Buffer.concat([bytes, Buffer.from('trailing')])).encode(), bytes);
});

t.test('summary: another version or header size is corrupt even with a valid checksum', async (t) => {
  for (const [at, value] of [[4, 2], [4, 0], [6, 64]] as const) {
    const bytes = sample().encode();
    bytes.writeUInt16LE(value, at);
    t.throws(() => decode(resealSummary(bytes)), { code: 'CORRUPT_SEGMENT', message: /summary version \d+ is not supported/ }, `u16 at ${at} = ${value}`);
  }
});

t.test('summary: fields out of range with a valid checksum are corrupt', async (t) => {
  const base = sample().encode();
  const edit = (fn: (b: Buffer) => void) => {
    const bytes = Buffer.from(base);
    fn(bytes);
    return resealSummary(bytes);
  };
  const extents = 56;
  const synchs = 56 + 5 * 12;
  const cases: [string, Buffer, RegExp][] = [
    ['sequence 0', edit((b) => b.writeBigUInt64LE(0n, 8)), /fields out of range/],
    ['sequence 2^53', edit((b) => b.writeBigUInt64LE(2n ** 53n, 8)), /fields out of range/],
    ['first record sequence 2^53', edit((b) => b.writeBigUInt64LE(2n ** 53n, 16)), /fields out of range/],
    ['next record sequence before the first', edit((b) => b.writeBigUInt64LE(9n, 24)), /fields out of range/],
    ['rawEnd before rawStart', edit((b) => b.writeUInt32LE(63, 36)), /fields out of range/],
    ['more extents than the body holds', edit((b) => b.writeUInt32LE(1_000_000, 40)), /extent table overruns/],
    ['an extent of 0 blocks', edit((b) => b.writeUInt32LE(0, extents + 4)), /extent 0 out of range/],
    ['a ZERO extent of 0 blocks', edit((b) => b.writeUInt32LE(0x8000_0000, extents + 12 + 4)), /extent 1 out of range/],
    ['an extent before rawStart', edit((b) => b.writeUInt32LE(63, extents + 8)), /extent 0 out of range/],
    ['an extent at rawEnd', edit((b) => b.writeUInt32LE(b.readUInt32LE(36), extents + 8)), /extent 0 out of range/],
    ['one synch entry too many', edit((b) => b.writeUInt32LE(3, 44)), /synch table overruns/],
    ['one synch entry too few (trailing bytes)', edit((b) => b.writeUInt32LE(1, 44)), /trailing bytes/],
    ['a synch entry before rawStart', edit((b) => b.writeUInt32LE(0, synchs)), /synch entry 0 out of range/],
    ['a synch entry sequence of 2^53', edit((b) => b.writeBigUInt64LE(2n ** 53n, synchs + 4)), /synch entry 0 out of range/],
    ['a synch body longer than the summary', edit((b) => b.writeUInt32LE(0xffff_ff00, synchs + 12)), /synch entry 0 out of range/],
    ['a damaged synch body', edit((b) => (b[synchs + 16 + 14]! ^= 1)), /synch entry 0: CORRUPT_SEGMENT: summary: synch record checksum mismatch/],
  ];
  for (const [what, bytes, message] of cases) t.throws(() => decode(bytes), { code: 'CORRUPT_SEGMENT', message }, what);
});

t.test('summary: sliceFrom keeps the extents and synch points from a record boundary on', async (t) => {
  const summary = sample();
  const offsets = summary.synchs.map((s) => s.offset); // both SYNCH records: record boundaries
  const slice = summary.sliceFrom(offsets[0]!, 13);
  t.same([slice.sequence, slice.firstRecordSequence, slice.rawStart, slice.rawEnd, slice.nextRecordSequence], [7, 13, offsets[0], summary.rawEnd, summary.nextRecordSequence]);
  t.same(extentsOf(slice), extentsOf(summary).slice(2), 'the extents of records 4.. (a WRITE extent sits past its record header)');
  t.same(slice.synchs, summary.synchs);
  t.same(decode(slice.encode()).encode(), slice.encode(), 'a slice encodes and decodes like any summary');
  t.same(summary.sliceFrom(summary.rawStart, 10).encode(), summary.encode(), 'from its start: the same summary');
  const end = summary.sliceFrom(summary.rawEnd, summary.nextRecordSequence);
  t.same([end.extentCount, end.synchs.length, end.rawStart, end.rawEnd], [0, 0, summary.rawEnd, summary.rawEnd], 'from its end: empty');
  t.equal(outcome(() => decode(end.encode())), 'ok');
  const late = summary.sliceFrom(offsets[1]!, 15);
  t.same(late.synchs.map((s) => s.label), [null]);
  t.same(extentsOf(late).map((e) => e[0]), [3]);
});

t.test('summary: the decoder reports damage with the caller’s error', async (t) => {
  const codes: VolumeErrorCode[] = [];
  for (const corrupt of [asSegment, asArchive]) {
    try {
      SegmentSummary.decode(Buffer.alloc(60), corrupt);
    } catch (err) {
      codes.push((err as VolumeError).code);
    }
  }
  t.same(codes, ['CORRUPT_SEGMENT', 'CORRUPT_ARCHIVE']);
});
