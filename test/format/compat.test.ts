/**
 * Format compatibility: every golden fixture in test/fixtures/format-v1/ and format-v2/ (and in
 * each later format-v<N>/ beside them) must keep opening the way it did when it was written.
 * Valid fixtures decode to the pinned values below (the literals here, not the generator's
 * constants, are the contract); corrupt ones are rejected with the pinned CORRUPT_* code; a torn
 * tail is recovered up to its last good record. Both versions hold the same volume at the same
 * offsets, so the same checks run on each; format 2's new cases (seeded entry CRCs, stale bytes
 * in recycled slots) have tests of their own.
 *
 * The fixtures are read as committed; nothing here regenerates them. The last tests check
 * that generate.ts still writes the same bytes and that every fixture file was exercised.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { CompressionPool } from '../../lib/archive/compression-pool.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { VolumeError } from '../../lib/errors.js';
import {
  decodeArchiveHeader,
  decodeArchiveIndex,
  verifyChunk,
  type ArchiveObjectIndex,
} from '../../lib/format/archive-object.js';
import { firstBadEntry } from '../../lib/format/checksum.js';
import { FLAG_COPY_FORWARD, RECORD_HEADER_SIZE, RecordType, decodeRecordHeader, decodeSynchBody, entrySeed } from '../../lib/format/record.js';
import { decodeSegmentHeader } from '../../lib/format/segment-header.js';
import { SegmentSummary } from '../../lib/format/summary.js';
import { decodeVolumeConfig } from '../../lib/format/volume-config.js';
import { scanSegment, type ScanResult } from '../../lib/volume/segment-scan.js';
import { Volume } from '../../lib/volume/volume.js';
import { systemClock } from '../../lib/util/clock.js';
import { historyOf } from '../helpers/temp-volume.js';
import { buildFixtures } from '../fixtures/generate.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

// The pinned facts of the fixtures (see format-v1/README.md and format-v2/README.md).
const VOLUME_ID = '5a1f05eed0c0ffee0123456789abcdef';
const BS = 512;
const ENTRY = 4 + BS;
const T0 = Date.parse('2026-11-22T01:00:00.000Z');
const FIRST = { time: '2026-11-22T01:00:01.123Z', label: 'first', info: { host: 'fixture-host', agent: 'salvo-fixtures' } };
const SECOND = { time: '2026-11-22T01:01:01.456Z', label: 'second', info: { host: 'fixture-host', frozen: '/srv/db' } };
const THIRD = { time: '2026-11-22T01:01:02.789Z', label: null, info: { host: 'fixture-host' } };

/** One format version's fixture tree, and which of its files the tests read. */
class Fixtures {
  readonly dir: string;
  /** Every fixture file a test read, so the last test can tell that none was forgotten. */
  readonly used = new Set<string>();

  constructor(readonly version: 1 | 2) {
    this.dir = path.join(FIXTURES, `format-v${version}`);
  }

  get name(): string {
    return `format-v${this.version}`;
  }

  read(name: string): Buffer {
    this.used.add(name);
    return fs.readFileSync(path.join(this.dir, name));
  }

  markTree(dir: string): void {
    for (const name of listFiles(path.join(this.dir, dir))) this.used.add(path.join(dir, name));
  }

  scan(name: string, badBlock: 'stop' | 'report'): ScanResult {
    const bytes = this.read(name);
    const header = decodeSegmentHeader(bytes.subarray(0, 64), name)!;
    return scanSegment(bytes.subarray(64), {
      sequence: header.sequence,
      firstRecordSequence: header.firstRecordSequence,
      rawStart: 64,
      blockSizeBytes: header.blockSizeBytes,
      entrySeed: entrySeed(header.version, header.sequence),
      where: name,
      badBlock,
    });
  }

  /** Copies a fixture directory to a temporary one, since opening a volume writes to it. */
  copyOfTree(t: Test, dir: string): string {
    this.markTree(dir);
    const target = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'salvo-compat-')), 'volume');
    t.teardown(() => fs.rmSync(path.dirname(target), { recursive: true, force: true }));
    fs.cpSync(path.join(this.dir, dir), target, { recursive: true });
    return target;
  }

  archiveStore(dir: string, replace: Record<string, Buffer> = {}): MemoryStore {
    this.markTree(dir);
    const store = new MemoryStore('memory:fixture');
    for (const name of listFiles(path.join(this.dir, dir))) store.objects.set(name, fs.readFileSync(path.join(this.dir, dir, name)));
    for (const [key, bytes] of Object.entries(replace)) store.objects.set(key, bytes);
    return store;
  }

  /** Opens a copy of a volume directory; what recovery warns about goes to `warnings`. */
  async openVolume(t: Test, dir: string, warnings: string[] = []): Promise<Volume> {
    const volume = await Volume.open(this.copyOfTree(t, dir), {
      store: new MemoryStore(),
      clock: { ...systemClock, now: () => T0 + 3_600_000 },
      onStall: () => undefined,
      onWarning: (message) => warnings.push(message),
    });
    t.teardown(() => volume.close().catch(() => undefined));
    return volume;
  }
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) out.push(...listFiles(path.join(dir, entry.name)).map((n) => path.join(entry.name, n)));
    else out.push(entry.name);
  }
  return out.sort();
}

/** What `block <n> v<version>` starts with. */
function tagOf(block: Buffer): string {
  return block.toString('latin1', 0, block.indexOf(0x0a));
}

function extentsOf(summary: SegmentSummary): [number, number, boolean, number][] {
  return Array.from({ length: summary.extentCount }, (_, i) => [summary.extentBlock(i), summary.extentBlocks(i), summary.extentIsZero(i), summary.extentOffset(i)]);
}

function synchsOf(summary: SegmentSummary) {
  return summary.synchs.map((s) => ({ time: new Date(s.timeMs).toISOString(), label: s.label, info: s.info, offset: s.offset, recordSequence: s.recordSequence }));
}

const SEGMENT_1_EXTENTS = [
  [0, 4, false, 96],
  [10, 1, false, 2192],
  [20, 4, true, 2708],
  [10, 1, false, 2893],
  [4, 6, false, 3441],
  [1, 1, false, 6569],
];
const SEGMENT_2_EXTENTS = [
  [2, 1, false, 96],
  [30, 2, false, 760],
  [0, 1, true, 1792],
];
const SEGMENT_2_SYNCHS = [
  { ...SECOND, offset: 612, recordSequence: 9 },
  { ...THIRD, offset: 1824, recordSequence: 12 },
];

/** The index, with every chunk checked against it: what a reader of the whole object relies on. */
function checkedIndex(object: Buffer, key: string): ArchiveObjectIndex {
  const index = decodeArchiveIndex(object, key);
  index.chunks.forEach((entry, i) => verifyChunk(object.subarray(entry.objectOffset, entry.objectOffset + entry.compressedLength), index, key, i));
  return index;
}

function outcomeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof VolumeError ? err.code : String(err);
  }
}

async function decompressAll(object: Buffer, index: ArchiveObjectIndex, pool: CompressionPool, key: string): Promise<Buffer> {
  const chunks = index.chunks.map((entry, i) => {
    const bytes = object.subarray(entry.objectOffset, entry.objectOffset + entry.compressedLength);
    verifyChunk(bytes, index, key, i);
    return bytes;
  });
  return Buffer.concat(await pool.decompress(chunks));
}

/** The checks every version passes: the same volume, records and offsets in each. */
function formatChecks(fx: Fixtures): void {
  const { name: v, version } = fx;

  t.test(`compat: ${v} volume.json decodes to the pinned policy`, async (t) => {
    const config = decodeVolumeConfig(fx.read('volume/volume.json').toString('utf8'), 'volume.json');
    t.same(config, {
      format: 'salvo-volume',
      version,
      volumeId: VOLUME_ID,
      sizeBytes: 16384,
      blockSizeBytes: BS,
      segmentSizeBytes: 12288,
      workingSetSegments: 3,
      spareSegments: 1,
      chunkSizeBytes: 4096,
      rpoSeconds: 0,
      createdAt: '2026-11-22T01:00:00.000Z',
      archive: '/var/lib/salvo/fixture-archive',
    });
    const descriptor = decodeVolumeConfig(fx.read('archive/volume.json').toString('utf8'), 'archive/volume.json');
    t.equal(descriptor.archive, undefined, 'the archive’s copy does not name the archive');
    t.equal(descriptor.volumeId, VOLUME_ID);
    t.equal(descriptor.version, version);
  });

  t.test(`compat: ${v} segment 1 decodes to the pinned header, records, blocks and synch point`, async (t) => {
    const slot = fx.read('volume/slots/0000.slot');
    t.equal(slot.length, 12288, 'a slot file is the segment size');
    t.same(decodeSegmentHeader(slot.subarray(0, 64), '0000.slot'), {
      version,
      blockSizeBytes: BS,
      volumeId: VOLUME_ID,
      sequence: 1,
      firstRecordSequence: 1,
      createdAtMs: T0,
    });
    const scan = fx.scan('volume/slots/0000.slot', 'report');
    t.equal(scan.stoppedBy, null);
    t.same(scan.badBlocks, []);
    t.equal(scan.summary.rawEnd, 7085);
    t.equal(scan.summary.nextRecordSequence, 8);
    t.same(extentsOf(scan.summary), SEGMENT_1_EXTENTS);
    t.same(synchsOf(scan.summary), [{ ...FIRST, offset: 2740, recordSequence: 4 }]);

    const headers = [64, 2160, 2708, 2740, 2861, 3409, 6537].map((offset) => decodeRecordHeader(slot, offset, '0000.slot', BS)!);
    t.same(
      headers.map((h) => [h.type, h.sequence, h.block, h.count, h.flags]),
      [
        [RecordType.Write, 1, 0, 4, 0],
        [RecordType.Write, 2, 10, 1, 0],
        [RecordType.Zero, 3, 20, 4, 0],
        [RecordType.Synch, 4, 0, 0, 0],
        [RecordType.Write, 5, 10, 1, FLAG_COPY_FORWARD],
        [RecordType.Write, 6, 4, 6, 0],
        [RecordType.Write, 7, 1, 1, 0],
      ],
    );
    t.equal(decodeRecordHeader(slot, 7085, '0000.slot', BS), null, 'the segment’s written part ends with a blank record');
    const entry = (offset: number) => slot.subarray(offset + 4, offset + 4 + BS);
    t.equal(tagOf(entry(96)), 'block 0 v1');
    t.equal(tagOf(entry(96 + 3 * 516)), 'block 3 v1');
    t.equal(tagOf(entry(3441 + 5 * 516)), 'block 9 v1');
    t.equal(tagOf(entry(6569)), 'block 1 v2');
    t.equal(entry(96).readUInt32LE(BS - 4), 0x06050403, 'the pattern after the tag is pinned too');
  });

  t.test(`compat: ${v} summary sidecar decodes and re-encodes to the same bytes`, async (t) => {
    const bytes = fx.read('volume/slots/0000.sum');
    const summary = SegmentSummary.decode(bytes, (what) => VolumeError.corruptSegment('0000.sum', what));
    t.same([summary.sequence, summary.firstRecordSequence, summary.nextRecordSequence, summary.rawStart, summary.rawEnd], [1, 1, 8, 64, 7085]);
    t.same(extentsOf(summary), SEGMENT_1_EXTENTS);
    t.same(synchsOf(summary), [{ ...FIRST, offset: 2740, recordSequence: 4 }]);
    t.same(summary.encode(), bytes, 'lossless');
    t.same(summary.encode(), fx.scan('volume/slots/0000.slot', 'stop').summary.encode(), 'the sidecar is what a scan of the segment rebuilds');
  });

  t.test(`compat: ${v} segment 2 (current) decodes to its pinned synch points`, async (t) => {
    const slot = fx.read('volume/slots/0001.slot');
    t.same(decodeSegmentHeader(slot.subarray(0, 64), '0001.slot'), { version, blockSizeBytes: BS, volumeId: VOLUME_ID, sequence: 2, firstRecordSequence: 8, createdAtMs: T0 + 60_000 });
    const scan = fx.scan('volume/slots/0001.slot', 'stop');
    t.equal(scan.stoppedBy, null, 'the records end at a blank record header');
    t.equal(scan.summary.rawEnd, 1917);
    t.equal(scan.summary.nextRecordSequence, 13);
    t.same(extentsOf(scan.summary), SEGMENT_2_EXTENTS);
    t.same(synchsOf(scan.summary), SEGMENT_2_SYNCHS);
    for (const blank of ['volume/slots/0002.slot', 'volume/slots/0003.slot']) {
      t.equal(decodeSegmentHeader(fx.read(blank).subarray(0, 64), blank), null, `${blank} is a blank slot`);
    }
    // Format 2 keeps a recycled slot's bytes past its first record header; 0003 was never used.
    const zeroed = version === 1 ? ['volume/slots/0002.slot', 'volume/slots/0003.slot'] : ['volume/slots/0003.slot'];
    for (const blank of zeroed) t.ok(fx.read(blank).every((b) => b === 0), `${blank} is all zeros`);
  });

  t.test(`compat: a ${v} volume directory opens and reads the pinned blocks and synch points`, async (t) => {
    const warnings: string[] = [];
    const volume = await fx.openVolume(t, 'volume', warnings);
    t.same(warnings, [], 'nothing was cut');
    const block = (n: number) => volume.read(n * BS, BS);
    t.same(block(0), Buffer.alloc(BS), 'block 0 was zeroed after the second synch point');
    t.same([1, 2, 3, 4, 9, 10, 30, 31].map((n) => tagOf(block(n))), ['block 1 v2', 'block 2 v3', 'block 3 v1', 'block 4 v1', 'block 9 v1', 'block 10 v1', 'block 30 v1', 'block 31 v1']);
    t.same(block(20), Buffer.alloc(BS), 'a ZERO extent reads as zeros');
    t.same(block(15), Buffer.alloc(BS), 'a block never written reads as zeros');
    const points = volume.catalog.all;
    t.same(
      points.map((p) => [new Date(p.timeMs).toISOString(), p.label, p.sequence, p.offset, p.recordSequence]),
      [
        [FIRST.time, 'first', 1, 2740, 4],
        [SECOND.time, 'second', 2, 612, 9],
        [THIRD.time, null, 2, 1824, 12],
      ],
    );
    t.same(points[1]!.info, SECOND.info);
    const first = await historyOf(volume).snapshots.open(points[0]!);
    t.same(tagOf(await first.read(1 * BS, BS)), 'block 1 v1', 'at "first", block 1 is still version 1');
    t.ok(first.isHole(4), 'at "first", block 4 was not written yet');
    const second = await historyOf(volume).snapshots.open(points[1]!);
    t.same(tagOf(await second.read(0, BS)), 'block 0 v1', 'at "second", block 0 is not zeroed yet');
    t.same(tagOf(await second.read(2 * BS, BS)), 'block 2 v3');
    t.ok(second.isHole(30));
  });

  t.test(`compat: the ${v} archive alone lists every synch point and restores each`, async (t) => {
    const view = await ArchiveView.open(fx.archiveStore('archive'));
    t.teardown(() => view.close());
    t.equal(view.config.volumeId, VOLUME_ID);
    t.same(view.segments, [1]);
    t.same(
      view.catalog.all.map((p) => [new Date(p.timeMs).toISOString(), p.label, p.sequence, p.offset]),
      [
        [FIRST.time, 'first', 1, 2740],
        [SECOND.time, 'second', 2, 612],
        [THIRD.time, null, 2, 1824],
      ],
    );
    const [first, second, third] = await Promise.all(view.catalog.all.map((p) => view.snapshots.open(p)));
    const tags = async (snapshot: typeof first, blocks: number[]) =>
      Promise.all(blocks.map(async (n) => (snapshot!.isHole(n) ? 'hole' : tagOf(await snapshot!.read(n * BS, BS)))));
    t.same(await tags(first, [0, 1, 3, 4, 10, 20]), ['block 0 v1', 'block 1 v1', 'block 3 v1', 'hole', 'block 10 v1', 'hole']);
    t.same(await tags(second, [0, 1, 2, 9, 30]), ['block 0 v1', 'block 1 v2', 'block 2 v3', 'block 9 v1', 'hole']);
    t.same(await tags(third, [0, 2, 30, 31]), ['hole', 'block 2 v3', 'block 30 v1', 'block 31 v1']);
  });

  t.test(`compat: a ${v} archived segment decodes, and its chunks decompress to the segment’s bytes`, async (t) => {
    const object = fx.read('archive/segments/0000000000000001.seg');
    const index = decodeArchiveIndex(object, 'segments/0000000000000001.seg');
    t.same(index.header, {
      version,
      encrypted: false,
      compacted: false,
      blockSizeBytes: BS,
      volumeId: VOLUME_ID,
      sequence: 1,
      rawStart: 64,
      rawEnd: 7085,
      summaryLength: 233,
      chunkCount: 2,
      chunkSizeBytes: 4096,
    });
    t.same(index.summary.encode(), fx.read('volume/slots/0000.sum'), 'the object carries the segment’s summary');
    t.same(index.chunks.map((c) => c.rawLength), [4096, 7085 - 64 - 4096]);
    t.equal(index.chunks[0]!.objectOffset, index.prologueLength);
    const pool = new CompressionPool(1);
    t.teardown(() => pool.close());
    const raw = await decompressAll(object, index, pool, 'segment 1');
    t.same(raw, fx.read('volume/slots/0000.slot').subarray(64, 7085));
  });

  t.test(`compat: ${v} checksum-mismatch fixtures are rejected with the right code`, async (t) => {
    const header = fx.read('checksum-mismatch/segment-header.slot');
    t.throws(() => decodeSegmentHeader(header.subarray(0, 64), 'x'), { code: 'CORRUPT_SEGMENT', message: /segment header checksum mismatch/ });

    const record = fx.scan('checksum-mismatch/record-header.slot', 'stop');
    t.match(record.stoppedBy, /^CORRUPT_SEGMENT: .* at offset 2160: record header checksum mismatch$/);
    t.same([record.summary.rawEnd, record.summary.nextRecordSequence], [2160, 2], 'the scan keeps record 1 only');
    t.throws(() => decodeRecordHeader(fx.read('checksum-mismatch/record-header.slot'), 2160, 'x', BS), { code: 'CORRUPT_SEGMENT' });

    const synch = fx.scan('checksum-mismatch/synch-body.slot', 'stop');
    t.match(synch.stoppedBy, /at offset 2740: synch record checksum mismatch$/);
    t.equal(synch.summary.synchs.length, 0, 'a damaged synch point is never listed');

    const stop = fx.scan('checksum-mismatch/block.slot', 'stop');
    t.match(stop.stoppedBy, /at offset 3957: block 5 failed its checksum$/);
    t.equal(stop.summary.rawEnd, 3409, 'recovery of a current segment would keep records 1-5');
    const report = fx.scan('checksum-mismatch/block.slot', 'report');
    t.equal(report.stoppedBy, null, 'verify of a sealed segment reads on');
    t.same(report.badBlocks, [{ block: 5, offset: 3957 }]);
    t.equal(report.summary.rawEnd, 7085);

    t.throws(() => SegmentSummary.decode(fx.read('checksum-mismatch/summary.sum'), (what) => VolumeError.corruptSegment('x', what)), {
      code: 'CORRUPT_SEGMENT',
      message: /summary checksum mismatch/,
    });
    t.throws(() => decodeArchiveHeader(fx.read('checksum-mismatch/archive-header.seg'), 'x'), { code: 'CORRUPT_ARCHIVE', message: /header checksum mismatch/ });
    t.throws(() => decodeArchiveIndex(fx.read('checksum-mismatch/chunk-table.seg'), 'x'), { code: 'CORRUPT_ARCHIVE', message: /chunk table checksum mismatch/ });
    const chunk = fx.read('checksum-mismatch/chunk.seg');
    const index = decodeArchiveIndex(chunk, 'x');
    verifyChunk(chunk.subarray(index.chunks[0]!.objectOffset, index.chunks[1]!.objectOffset), index, 'x', 0);
    t.throws(() => verifyChunk(chunk.subarray(index.chunks[1]!.objectOffset), index, 'x', 1), { code: 'CORRUPT_ARCHIVE', message: /chunk 1 checksum mismatch/ });
  });

  t.test(`compat: a damaged archived chunk is never served from a ${v} archive`, async (t) => {
    const key = 'segments/0000000000000001.seg';
    const view = await ArchiveView.open(fx.archiveStore('archive', { [key]: fx.read('checksum-mismatch/chunk.seg') }));
    t.teardown(() => view.close());
    // Segment 1's raw bytes 64..4160 are chunk 0, 4160..7085 chunk 1.
    const second = await view.snapshots.open(view.catalog.all[1]!);
    t.same(tagOf(await second.read(0, BS)), 'block 0 v1', 'block 0 (raw offset 96) lies in chunk 0, which is intact');
    await t.rejects(second.read(9 * BS, BS), { code: 'CORRUPT_ARCHIVE', message: /chunk 1 checksum mismatch/ }, 'block 9 (raw offset 6021) lies in chunk 1');
    await t.rejects(second.read(0, 16384), { code: 'CORRUPT_ARCHIVE' }, 'nor as part of a larger read');
  });

  t.test(`compat: a ${v} volume with a damaged block opens and never serves that block`, async (t) => {
    const volume = await fx.openVolume(t, 'checksum-mismatch/volume');
    t.same(tagOf(volume.read(4 * BS, BS)), 'block 4 v1');
    t.same(tagOf(volume.read(6 * BS, BS)), 'block 6 v1');
    t.throws(() => volume.read(5 * BS, BS), { code: 'CORRUPT_BLOCK', message: /block 5 failed its checksum/ });
    t.throws(() => volume.read(0, 16384), { code: 'CORRUPT_BLOCK' }, 'nor as part of a larger read');
  });

  t.test(`compat: ${v} torn tails are recovered up to the last good record`, async (t) => {
    const cases: [string, RegExp][] = [
      ['torn-tail/torn-block.slot', /at offset 1949: block 3 failed its checksum$/],
      ['torn-tail/torn-header.slot', /at offset 1917: record header checksum mismatch$/],
      ['torn-tail/stale-record.slot', /at offset 1917: record sequence 5, expected 13$/],
    ];
    for (const [name, stoppedBy] of cases) {
      const scan = fx.scan(name, 'stop');
      t.match(scan.stoppedBy, stoppedBy, name);
      t.equal(scan.summary.rawEnd, 1917, `${name}: kept up to the end of record 12`);
      t.equal(scan.summary.nextRecordSequence, 13);
      t.same(extentsOf(scan.summary), SEGMENT_2_EXTENTS);
      t.same(synchsOf(scan.summary), SEGMENT_2_SYNCHS);
    }
  });

  // Format 1's torn record is a write of block 3 cut mid-block; format 2's a write of block 7
  // whose header is whole over a stale entry (aligned-stale.slot).
  const torn = version === 1 ? 3 : 7;
  t.test(`compat: a ${v} volume with a torn tail recovers, cuts the tail, and appends after it`, async (t) => {
    const warnings: string[] = [];
    let volume = await fx.openVolume(t, 'torn-tail/volume', warnings);
    const dir = volume.dir;
    t.match(warnings, [new RegExp(`^recovery dropped the torn end of segment 2 \\(10371 bytes, .*at offset 1949: block ${torn} failed its checksum$`)], 'the cut is reported');
    t.same(tagOf(volume.read(torn * BS, BS)), `block ${torn} v1`, `the torn write of block ${torn} is not served: the last good record’s is`);
    t.same(tagOf(volume.read(2 * BS, BS)), 'block 2 v3', 'records before the tear are');
    t.equal(volume.catalog.all.length, 3);
    const slot = fs.readFileSync(path.join(dir, 'slots', '0001.slot'));
    t.equal(slot.length, 12288);
    t.equal(decodeRecordHeader(slot, 1917, '0001.slot', BS), null, 'the torn record was cut: a blank record header ends the records');
    if (version === 1) t.ok(slot.subarray(1917).every((b) => b === 0), 'format 1 cuts the file to a hole');
    await volume.write(Buffer.alloc(BS, 0x55), torn * BS);
    await volume.close();
    volume = await Volume.open(dir, { store: new MemoryStore(), onStall: () => undefined });
    t.teardown(() => volume.close().catch(() => undefined));
    t.same(volume.read(torn * BS, BS), Buffer.alloc(BS, 0x55), 'the next record landed where the torn one was cut');
  });

  t.test(`compat: ${v} truncated archived objects are CORRUPT_ARCHIVE`, async (t) => {
    t.throws(() => decodeArchiveHeader(fx.read('truncated-object/header.seg'), 'x'), { code: 'CORRUPT_ARCHIVE', message: /shorter than its header/ });
    t.throws(() => decodeArchiveIndex(fx.read('truncated-object/prologue.seg'), 'x'), { code: 'CORRUPT_ARCHIVE', message: /truncated before its chunk table ends/ });
    const cut = fx.read('truncated-object/last-chunk.seg');
    const index = decodeArchiveIndex(cut, 'x');
    t.throws(() => verifyChunk(cut.subarray(index.chunks[1]!.objectOffset), index, 'x', 1), { code: 'CORRUPT_ARCHIVE', message: /chunk 1 truncated/ });
    const view = await ArchiveView.open(fx.archiveStore('archive', { 'segments/0000000000000001.seg': cut }));
    t.teardown(() => view.close());
    const second = await view.snapshots.open(view.catalog.all[1]!);
    t.same(tagOf(await second.read(4 * BS, BS)), 'block 4 v1', 'chunk 0 still reads');
    await t.rejects(second.read(1 * BS, BS), { code: 'CORRUPT_ARCHIVE', message: /chunk 1 truncated/ }, 'block 1 v2 (raw offset 6569) lies in the cut chunk 1');
  });
}

/** What format 2 adds: seeded entry CRCs, and recycled slots that keep their older bytes. */
function formatTwoChecks(fx: Fixtures): void {
  t.test('compat: format-v2 fixtures of an unsupported version are refused', async (t) => {
    t.throws(() => decodeSegmentHeader(fx.read('unsupported-version/segment-header.slot'), 'x'), {
      code: 'CORRUPT_SEGMENT',
      message: /segment format version 3 is not supported \(this salvo reads 1 and 2\)$/,
    });
    t.throws(() => decodeArchiveHeader(fx.read('unsupported-version/archive-header.seg'), 'x'), {
      code: 'CORRUPT_ARCHIVE',
      message: /format version 3 is not supported \(this salvo reads 1 and 2\)$/,
    });
    t.throws(() => decodeVolumeConfig(fx.read('unsupported-version/volume.json').toString('utf8'), 'volume.json'), {
      code: 'CORRUPT_CONFIG',
      message: /: volume\.json: format version 3 is not supported \(this salvo reads 1 and 2\)$/,
    });
  });

  t.test('compat: format-v2 stale bytes in recycled slots are never records, and the seed is what rejects their entries', async (t) => {
    // Segment 2's slot: behind the blank record header at its tail, an older segment's record 5
    // (a write of block 7, its header blanked) and record 6.
    const current = fx.read('volume/slots/0001.slot');
    t.equal(decodeRecordHeader(current, 1917, '0001.slot', BS), null, 'a blank record header ends segment 2');
    const staleEntry = current.subarray(1949, 1949 + ENTRY);
    t.equal(tagOf(staleEntry.subarray(4)), 'block 7 v0', 'record 5’s entry is still there');
    t.equal(firstBadEntry(staleEntry, BS, entrySeed(2, 2)), 0, 'it fails under segment 2’s seed');
    t.equal(firstBadEntry(staleEntry, BS, entrySeed(2, 1)), -1, 'and passes under its own segment’s');
    t.same(decodeRecordHeader(current, 2465, '0001.slot', BS), { type: RecordType.Write, flags: 0, sequence: 6, block: 11, count: 2, bodyLength: 2 * ENTRY }, 'record 6 is whole');
    // A SYNCH record's body is seeded like a block entry: a stale one behind a torn header fails too.
    const synch = decodeRecordHeader(current, 612, '0001.slot', BS)!;
    const body = current.subarray(612 + RECORD_HEADER_SIZE, 612 + RECORD_HEADER_SIZE + synch.bodyLength);
    t.equal(decodeSynchBody(body, '0001.slot', entrySeed(2, 2)).label, 'second', 'the synch body of record 9 checks under segment 2’s seed');
    t.throws(() => decodeSynchBody(body, '0001.slot', entrySeed(2, 3)), { code: 'CORRUPT_SEGMENT', message: /synch record checksum mismatch/ }, 'and not under the next segment’s');

    // Slot 0002: blank (its first page punched out), over the older segment's records 1-3.
    const recycled = fx.read('volume/slots/0002.slot');
    t.ok(recycled.subarray(0, 4096).every((b) => b === 0), 'the first page, segment header and first record header among it, is zero');
    const older = recycled.subarray(4288, 4288 + ENTRY);
    t.equal(tagOf(older.subarray(4)), 'block 22 v0', 'the rest is the older segment’s');
    t.equal(firstBadEntry(older, BS, entrySeed(2, 3)), 0, 'its entries fail under the seed of segment 3, the next to take the slot');
    t.equal(firstBadEntry(older, BS, entrySeed(2, 1)), -1, 'and pass under their own');
    const next = scanSegment(recycled.subarray(64), { sequence: 3, firstRecordSequence: 13, rawStart: 64, blockSizeBytes: BS, entrySeed: entrySeed(2, 3), where: '0002.slot', badBlock: 'stop' });
    t.same([next.stoppedBy, next.summary.rawEnd, next.summary.extentCount], [null, 64, 0], 'a scan of the slot as segment 3 finds no record');

    const volume = await fx.openVolume(t, 'volume');
    t.same(tagOf(volume.read(7 * BS, BS)), 'block 7 v1', 'the stale entry of block 7 is not served');
    t.same(tagOf(volume.read(10 * BS, BS)), 'block 10 v1');
    t.same(volume.read(11 * BS, 2 * BS), Buffer.alloc(2 * BS), 'blocks only stale bytes hold read as zeros');
  });

  t.test('compat: a format-v2 record header written whole over a stale record is cut at its stale entry', async (t) => {
    const name = 'torn-tail/aligned-stale.slot';
    const bytes = fx.read(name);
    t.same(decodeRecordHeader(bytes, 1917, name, BS), { type: RecordType.Write, flags: 0, sequence: 13, block: 7, count: 1, bodyLength: ENTRY }, 'record 13’s header is whole and next in sequence');
    t.equal(tagOf(bytes.subarray(1953, 1953 + BS)), 'block 7 v0', 'over the stale record 5’s entry');
    const scan = fx.scan(name, 'stop');
    t.match(scan.stoppedBy, /at offset 1949: block 7 failed its checksum$/);
    t.same([scan.summary.rawEnd, scan.summary.nextRecordSequence], [1917, 13], 'kept up to the end of record 12');
    t.same(extentsOf(scan.summary), SEGMENT_2_EXTENTS);
    // The seed is what rejects it: checked from the older segment's seed (as format 1 checks
    // every segment's from 0), the stale entry passes for record 13's.
    const olderSeed = scanSegment(bytes.subarray(1917), { sequence: 2, firstRecordSequence: 13, rawStart: 1917, blockSizeBytes: BS, entrySeed: entrySeed(2, 1), where: name, badBlock: 'stop' });
    t.match(olderSeed.stoppedBy, /at offset 2465: record sequence 6, expected 14$/);
    t.same(extentsOf(olderSeed.summary), [[7, 1, false, 1949]], 'the stale block 7 would have been served as record 13’s');
  });
}

/** Keep these last for each version: they need every test above to have run. */
function generatorChecks(fx: Fixtures): void {
  t.test(`compat: generate.ts still writes the committed ${fx.name} fixtures`, async (t) => {
    const files = await buildFixtures(fx.version);
    const committed = listFiles(fx.dir);
    t.same([...files.keys()].sort(), committed, 'the same files');
    const pool = new CompressionPool(1);
    t.teardown(() => pool.close());
    for (const name of committed) {
      const expected = fs.readFileSync(path.join(fx.dir, name));
      const actual = files.get(name)!;
      if (!/\.(seg|tail)$/.test(name)) {
        t.ok(actual.equals(expected), `${name} is byte for byte the same`);
        continue;
      }
      // Archived objects hold zstd output, which another zstd build may lay out differently: the
      // header and summary must be the same bytes, and the chunks must decompress to the same raw
      // bytes, or be damaged the same way.
      const fixed = Math.min(expected.length, 64 + (expected.length >= 64 ? expected.readUInt32LE(48) : 0));
      t.ok(actual.subarray(0, fixed).equals(expected.subarray(0, fixed)), `${name}: same header and summary bytes`);
      const expectedOutcome = outcomeOf(() => checkedIndex(expected, name));
      t.equal(outcomeOf(() => checkedIndex(actual, name)), expectedOutcome, `${name}: ${expectedOutcome === 'ok' ? 'decodes' : `is ${expectedOutcome}`} alike`);
      if (expectedOutcome !== 'ok') continue;
      const [actualRaw, expectedRaw] = await Promise.all([actual, expected].map((bytes) => decompressAll(bytes, decodeArchiveIndex(bytes, name), pool, name)));
      t.same(actualRaw, expectedRaw, `${name}: same raw bytes`);
    }
    const forgotten = committed.filter((name) => name !== 'README.md' && !fx.used.has(name));
    t.same(forgotten, [], 'every fixture file is exercised by compat.test.ts');
  });
}

const v1 = new Fixtures(1);
formatChecks(v1);
generatorChecks(v1);

const v2 = new Fixtures(2);
formatChecks(v2);
formatTwoChecks(v2);
generatorChecks(v2);
