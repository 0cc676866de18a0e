/**
 * scanSegment (lib/volume/segment-scan.ts) is the reader of raw segment bytes that recovery
 * and verify share; its tests sit with the codecs it decodes.
 */
import t from 'tap';
import { crc32c, firstBadEntry } from '../../lib/format/checksum.js';
import { RECORD_HEADER_SIZE, RecordType, encodeRecordHeader } from '../../lib/format/record.js';
import { scanSegment, type ScanOptions } from '../../lib/volume/segment-scan.js';
import { buildSegment, encodeRecords, patternBlocks, type RecordSpec } from '../fixtures/segment-builder.js';
import { outcome } from './codec-helpers.js';

const BS = 512;
const SPECS: RecordSpec[] = [
  { type: 'write', block: 0, blocks: patternBlocks(BS, 0, 2, 1) },
  { type: 'zero', block: 7, count: 3 },
  { type: 'synch', body: { timeMs: Date.UTC(2026, 10, 22), label: 'one', info: { host: 'h' } } },
  { type: 'write', block: 9, blocks: patternBlocks(BS, 9, 1, 1), flags: 1 },
];
const built = buildSegment({ version: 2, blockSizeBytes: BS, volumeId: '0123456789abcdef0123456789abcdef', sequence: 5, firstRecordSequence: 2 ** 53 - 10, createdAtMs: 0 }, SPECS);
const OPTIONS: ScanOptions = { sequence: 5, firstRecordSequence: 2 ** 53 - 10, rawStart: 64, blockSizeBytes: BS, entrySeed: 5, where: 'slot 1', badBlock: 'stop' };
/** The segment's records as a slot holds them: then blank to the slot's end. */
const RAW = Buffer.concat([built.bytes.subarray(64), Buffer.alloc(4096)]);

t.test('segment-scan: a valid segment scans to the summary the Log kept', async (t) => {
  for (const badBlock of ['stop', 'report'] as const) {
    const scan = scanSegment(RAW, { ...OPTIONS, badBlock });
    t.equal(scan.stoppedBy, null, badBlock);
    t.same(scan.badBlocks, []);
    t.same(scan.summary.encode(), built.summary.encode());
  }
  t.equal(scanSegment(built.bytes.subarray(64), OPTIONS).stoppedBy, null, 'the end of the bytes ends the scan too');
  t.same(scanSegment(Buffer.concat([built.bytes.subarray(64), Buffer.alloc(31, 0xee)]), OPTIONS).summary.encode(), built.summary.encode(), 'fewer than 32 trailing bytes are not a record');
});

t.test('segment-scan: exhausted says the bytes ran out, so more of them might hold more records', async (t) => {
  const records = built.bytes.subarray(64);
  t.equal(scanSegment(RAW, OPTIONS).exhausted, false, 'a blank record header ends the records');
  t.equal(scanSegment(records, OPTIONS).exhausted, true, 'the bytes end right after a record');
  t.equal(scanSegment(Buffer.concat([records, Buffer.alloc(31, 0xee)]), OPTIONS).exhausted, true, 'fewer than 32 bytes left');
  const cut = scanSegment(records.subarray(0, records.length - 1), OPTIONS);
  t.same([cut.exhausted, cut.summary.nextRecordSequence], [true, 2 ** 53 - 7], 'the last record runs past the bytes: not counted, and more bytes are wanted');
  const damaged = Buffer.from(RAW);
  damaged[built.offsets[1]! - 64 + 3]! ^= 1;
  t.equal(scanSegment(damaged, OPTIONS).exhausted, false, 'a damaged record ends the scan whatever follows');
});

t.test('segment-scan: a tail piece scans from its own raw offset and record sequence', async (t) => {
  const from = built.offsets[2]!;
  const scan = scanSegment(built.bytes.subarray(from), { ...OPTIONS, rawStart: from, firstRecordSequence: 2 ** 53 - 8 });
  t.equal(scan.stoppedBy, null);
  t.same(scan.summary.encode(), built.summary.sliceFrom(from, 2 ** 53 - 8).encode());
});

t.test('segment-scan: an empty or blank segment has no records', async (t) => {
  for (const bytes of [Buffer.alloc(0), Buffer.alloc(31), Buffer.alloc(8192)]) {
    const scan = scanSegment(bytes, OPTIONS);
    t.same([scan.stoppedBy, scan.summary.extentCount, scan.summary.rawEnd, scan.summary.nextRecordSequence], [null, 0, 64, 2 ** 53 - 10]);
  }
});

/** The encoder refuses sequences past 2^53 - 1, so such a header is made by hand: high word raised, CRC redone. */
function pastSafeSequence(record: Buffer): Buffer {
  const bytes = Buffer.from(record);
  bytes.writeUInt32LE(0x20_0000, 12);
  bytes.writeUInt32LE(0, 8);
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, 28)), 28);
  return bytes;
}

t.test('segment-scan: damage ends the scan at the last good record, with the reason', async (t) => {
  const end = built.summary.rawEnd - 64;
  const withTail = (tail: Buffer) => Buffer.concat([built.bytes.subarray(64), tail, Buffer.alloc(64)]);
  const next = (specs: RecordSpec[], first = 2 ** 53 - 6) => encodeRecords(specs, { version: 2, sequence: 5, firstRecordSequence: first, rawStart: 64 + end, blockSizeBytes: BS }).bytes;
  const write = next([{ type: 'write', block: 1, blocks: patternBlocks(BS, 1, 1, 2) }]);
  const cases: [string, Buffer, RegExp][] = [
    ['a record header torn after 16 bytes', withTail(write.subarray(0, 16)), /record header checksum mismatch/],
    ['a block torn in half', withTail(Buffer.concat([write.subarray(0, 32 + 4 + 256), Buffer.alloc(256)])), /block 1 failed its checksum/],
    ['a record that runs past the end of the bytes', withTail(write).subarray(0, end + write.length - 1), /record runs past the end of the segment/],
    ['a stale record of the slot’s previous segment', withTail(next([{ type: 'zero', block: 1, count: 1 }], 77)), /record sequence 77, expected 9007199254740986/],
    ['a record past sequence 2^53 - 1', withTail(pastSafeSequence(next([{ type: 'zero', block: 1, count: 1 }], 2 ** 53 - 1))), /fields out of range/],
    ['a synch body that fails its checksum', withTail(Buffer.from(next([{ type: 'synch', body: { timeMs: 1, label: null, info: {} } }]).fill(0x20, 50, 54))), /synch record checksum mismatch/],
  ];
  for (const [what, bytes, reason] of cases) {
    const scan = scanSegment(bytes, OPTIONS);
    t.match(scan.stoppedBy, reason, what);
    const at = /block/.test(what) ? built.summary.rawEnd + RECORD_HEADER_SIZE : built.summary.rawEnd; // a block is named by its entry
    t.match(scan.stoppedBy, new RegExp(`slot 1 at offset ${at}:`), `${what}: names where`);
    t.same(scan.summary.encode(), built.summary.encode(), `${what}: keeps records 1-4`);
  }
});

t.test('segment-scan: a record header over the slot’s previous segment’s entries is torn, not the old data (format 2)', async (t) => {
  // A reused slot: the new record's header reached the disk, its entries did not, and the bytes
  // under them are entries of the same blocks that segment 4 wrote at the same offsets.
  const end = built.summary.rawEnd - 64;
  const record = (sequence: number, firstRecordSequence: number) =>
    encodeRecords([{ type: 'write', block: 1, blocks: patternBlocks(BS, 1, 2, sequence) }], { version: 2, sequence, firstRecordSequence, rawStart: 64 + end, blockSizeBytes: BS }).bytes;
  const torn = Buffer.concat([record(5, 2 ** 53 - 6).subarray(0, RECORD_HEADER_SIZE), record(4, 70).subarray(RECORD_HEADER_SIZE)]);
  const bytes = Buffer.concat([built.bytes.subarray(64), torn, Buffer.alloc(64)]);
  const scan = scanSegment(bytes, OPTIONS);
  t.match(scan.stoppedBy, new RegExp(`slot 1 at offset ${built.summary.rawEnd + RECORD_HEADER_SIZE}: block 1 failed its checksum`), 'the first stale entry fails under segment 5’s seed');
  t.same(scan.summary.encode(), built.summary.encode(), 'records 1-4 are kept, the torn one is not');
  const entries = torn.subarray(RECORD_HEADER_SIZE);
  t.same([firstBadEntry(entries, BS, 4), firstBadEntry(entries, BS, 5)], [-1, 0], 'under segment 4’s seed the same entries pass: the seed is what tells them apart');
});

t.test('segment-scan: a bad block stops a recovery scan and is listed by a verify scan', async (t) => {
  const bytes = Buffer.from(RAW);
  const entry = built.offsets[0]! - 64 + RECORD_HEADER_SIZE + (4 + BS); // block 1, the second entry of record 1
  bytes[entry + 4 + 10]! ^= 0x40;
  const stop = scanSegment(bytes, OPTIONS);
  t.match(stop.stoppedBy, new RegExp(`slot 1 at offset ${entry + 64}: block 1 failed its checksum`));
  t.same([stop.summary.extentCount, stop.summary.rawEnd], [0, 64], 'nothing of record 1 is kept');
  const report = scanSegment(bytes, { ...OPTIONS, badBlock: 'report' });
  t.equal(report.stoppedBy, null);
  t.same(report.badBlocks, [{ block: 1, offset: entry + 64 }]);
  t.same(report.summary.encode(), built.summary.encode(), 'the record still counts: verify reports, recovery of a sealed segment keeps it');
});

// Regressions: bugs the fuzzers and these tests found in lib/, now fixed.

t.test('segment-scan: a ZERO record of 2^31 blocks or more is reported, not thrown', async (t) => {
  const bytes = Buffer.alloc(64);
  encodeRecordHeader(bytes, 0, { type: RecordType.Zero, flags: 0, sequence: 2 ** 53 - 10, block: 0, count: 0x8000_0000, bodyLength: 0 });
  t.equal(outcome(() => scanSegment(bytes, OPTIONS)), 'ok', 'scanSegment must never throw', {});
});

t.test('segment-scan: a record whose magic alone is zeroed is damage, not the end of the segment', async (t) => {
  const bytes = Buffer.from(RAW);
  bytes.fill(0, built.offsets[1]! - 64, built.offsets[1]! - 64 + 4); // record 2's magic; its other 28 bytes and records 3-4 remain
  const scan = scanSegment(bytes, { ...OPTIONS, badBlock: 'report' });
  t.not(scan.stoppedBy, null, 'the scan should stop at record 2 with a reason', {});
  t.equal(scan.summary.rawEnd, built.offsets[1], 'records from record 2 on are not kept (right either way)');
});
