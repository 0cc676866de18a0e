import t from 'tap';
import { ObjectCipher } from '../../lib/format/object-cipher.js';
import {
  ARCHIVE_HEADER_SIZE,
  ARCHIVE_MAGIC,
  archiveObjectSize,
  decodeArchiveHeader,
  decodeArchiveIndex,
  encodeArchiveObject,
  prologueLength,
  verifyChunk,
  type ArchiveObjectIndex,
} from '../../lib/format/archive-object.js';
import { crc32c } from '../../lib/format/checksum.js';
import { SegmentSummary } from '../../lib/format/summary.js';
import { buildArchiveObject, buildSegment, patternBlocks, type BuiltSegment } from '../fixtures/segment-builder.js';
import { bitFlipEscapes, outcome, resealed } from './codec-helpers.js';

const VOLUME_ID = 'fedcba9876543210fedcba9876543210';
const KEY = 'segments/0000000000000009.seg';

function segment(sequence = 9): BuiltSegment {
  return buildSegment({ version: 2, blockSizeBytes: 512, volumeId: VOLUME_ID, sequence, firstRecordSequence: 40, createdAtMs: 0 }, [
    { type: 'write', block: 0, blocks: patternBlocks(512, 0, 3, 1) },
    { type: 'synch', body: { timeMs: Date.UTC(2026, 10, 22), label: 'a', info: { host: 'h' } } },
    { type: 'zero', block: 8, count: 8 },
    { type: 'write', block: 20, blocks: patternBlocks(512, 20, 2, 1) },
  ]);
}

function object(options: { sequence?: number; chunkSizeBytes?: number; from?: number } = {}): { bytes: Buffer; built: BuiltSegment; summary: SegmentSummary } {
  const built = segment(options.sequence);
  const from = options.from ?? 64;
  const summary = built.summary.sliceFrom(from, 40 + built.offsets.indexOf(from));
  const bytes = buildArchiveObject({
    version: 2,
    volumeId: VOLUME_ID,
    blockSizeBytes: 512,
    sequence: built.header.sequence,
    segmentBytes: built.bytes,
    summary,
    chunkSizeBytes: options.chunkSizeBytes ?? 1024,
  });
  return { bytes, built, summary };
}

const chunkOf = (bytes: Buffer, index: ArchiveObjectIndex, i: number) =>
  bytes.subarray(index.chunks[i]!.objectOffset, index.chunks[i]!.objectOffset + index.chunks[i]!.compressedLength);

/** Decodes the index and checks every chunk, as a reader of the whole object would. */
function decodeWhole(bytes: Buffer): ArchiveObjectIndex {
  const index = decodeArchiveIndex(bytes, KEY);
  index.chunks.forEach((entry, i) => verifyChunk(chunkOf(bytes, index, i), index, KEY, i));
  return index;
}

t.test('archive-object: layout is as FORMAT documents', async (t) => {
  t.equal(ARCHIVE_HEADER_SIZE, 64);
  t.equal(ARCHIVE_MAGIC.toString('latin1'), 'SALVOARC');
  const { bytes, summary } = object();
  t.equal(bytes.toString('latin1', 0, 8), 'SALVOARC');
  t.same([bytes.readUInt16LE(8), bytes.readUInt16LE(10), bytes.readUInt32LE(12)], [2, 64, 512], 'version, header size, block size');
  t.equal(bytes.toString('hex', 16, 32), VOLUME_ID);
  t.equal(bytes.readBigUInt64LE(32), 9n, 'sequence at 32');
  t.same([bytes.readUInt32LE(40), bytes.readUInt32LE(44)], [64, summary.rawEnd], 'raw range at 40');
  t.equal(bytes.readUInt32LE(48), summary.encode().length, 'summary length at 48');
  t.same([bytes.readUInt32LE(52), bytes.readUInt32LE(56)], [Math.ceil((summary.rawEnd - 64) / 1024), 1024], 'chunk count, chunk size');
  t.same(bytes.subarray(64, 64 + bytes.readUInt32LE(48)), summary.encode(), 'the summary follows the header');
});

t.test('archive-object: header, summary, chunk table and chunks round-trip', async (t) => {
  for (const [chunkSizeBytes, sequence, from] of [[1024, 9, 64], [1, 2 ** 53 - 1, 64], [1 << 20, 1, 64], [512, 9, segment().offsets[2]!]] as const) {
    const { bytes, built, summary } = object({ chunkSizeBytes, sequence, from });
    const index = decodeWhole(bytes);
    t.same(
      index.header,
      { version: 2, encrypted: false, compacted: false, blockSizeBytes: 512, volumeId: VOLUME_ID, sequence, rawStart: from, rawEnd: summary.rawEnd, summaryLength: summary.encode().length, chunkCount: Math.ceil((summary.rawEnd - from) / chunkSizeBytes), chunkSizeBytes },
      `chunks of ${chunkSizeBytes} from ${from}, sequence ${sequence}`,
    );
    t.same(index.summary.encode(), summary.encode());
    t.equal(index.prologueLength, prologueLength(index.header));
    t.equal(index.chunks[0]!.objectOffset, index.prologueLength, 'the first chunk follows the table');
    t.equal(archiveObjectSize(index), bytes.length, 'the last chunk ends the object');
    t.same(Buffer.concat(index.chunks.map((_, i) => chunkOf(bytes, index, i))), built.bytes.subarray(from, summary.rawEnd), 'chunks cover the raw range in order');
    const { summaryLength: _s, chunkCount: _c, encrypted: _e, ...header } = index.header;
    const again = Buffer.concat(encodeArchiveObject(header, index.summary, index.chunks.map((c, i) => ({ bytes: chunkOf(bytes, index, i), rawLength: c.rawLength }))));
    t.same(again, bytes, 'and re-encodes to the same bytes');
  }
});

t.test('archive-object: a compacted object has its own magic, plain or encrypted, and round-trips', async (t) => {
  const { bytes } = object();
  const index = decodeWhole(bytes);
  const { summaryLength: _s, chunkCount: _c, encrypted: _e, ...header } = index.header;
  const chunks = index.chunks.map((c, i) => ({ bytes: chunkOf(bytes, index, i), rawLength: c.rawLength }));
  const compacted = Buffer.concat(encodeArchiveObject({ ...header, compacted: true }, index.summary, chunks));
  t.equal(compacted.toString('latin1', 0, 8), 'SALVOACP', 'magic SALVOACP');
  t.match(decodeWhole(compacted).header, { compacted: true, encrypted: false }, 'decoded as compacted');
  t.same(compacted.subarray(8, 60), bytes.subarray(8, 60), 'every other header field as the segment object’s');
  const cipher = ObjectCipher.fromKey(Buffer.alloc(32, 5), 'test key');
  const sealed = Buffer.concat(encodeArchiveObject({ ...header, compacted: true }, index.summary, chunks, cipher));
  t.equal(sealed.toString('latin1', 0, 8), 'SALVOACE', 'magic SALVOACE when encrypted');
  t.match(decodeArchiveIndex(sealed, KEY, cipher).header, { compacted: true, encrypted: true }, 'decoded as compacted and encrypted');
});

t.test('archive-object: an object with no records has no chunks', async (t) => {
  const summary = new SegmentSummary(4, 7, 64, 64, 7);
  const bytes = Buffer.concat(encodeArchiveObject({ version: 2, blockSizeBytes: 512, volumeId: VOLUME_ID, sequence: 4, rawStart: 64, rawEnd: 64, chunkSizeBytes: 1024 }, summary, []));
  const index = decodeWhole(bytes);
  t.same(index.chunks, []);
  t.equal(archiveObjectSize(index), bytes.length);
});

t.test('archive-object: a flipped bit anywhere in the header, summary or chunk table is CORRUPT_ARCHIVE', async (t) => {
  const { bytes } = object();
  const index = decodeArchiveIndex(bytes, KEY);
  t.same(bitFlipEscapes(bytes, 0, 64, (b) => decodeArchiveHeader(b, KEY), 'CORRUPT_ARCHIVE'), [], 'header: decodeArchiveHeader');
  t.same(bitFlipEscapes(bytes, 0, index.prologueLength, (b) => decodeArchiveIndex(b, KEY), 'CORRUPT_ARCHIVE'), [], `all ${index.prologueLength * 8} bits of the prologue: decodeArchiveIndex`);
});

t.test('archive-object: a flipped bit anywhere in a chunk is CORRUPT_ARCHIVE', async (t) => {
  const { bytes } = object();
  const index = decodeArchiveIndex(bytes, KEY);
  t.same(bitFlipEscapes(bytes, index.prologueLength, bytes.length, decodeWhole, 'CORRUPT_ARCHIVE'), [], `all ${(bytes.length - index.prologueLength) * 8} bits of ${index.chunks.length} chunks`);
  t.throws(() => verifyChunk(Buffer.alloc(index.chunks[0]!.compressedLength), index, KEY, 0), {
    code: 'CORRUPT_ARCHIVE',
    message: new RegExp(`archive object ${KEY}: chunk 0 checksum mismatch`),
  });
});

t.test('archive-object: blank and foreign bytes are CORRUPT_ARCHIVE (there is no blank object)', async (t) => {
  t.throws(() => decodeArchiveHeader(Buffer.alloc(64), KEY), { code: 'CORRUPT_ARCHIVE', message: /not a salvo archive object \(bad magic\)/ });
  t.throws(() => decodeArchiveIndex(Buffer.alloc(4096), KEY), { code: 'CORRUPT_ARCHIVE' });
  const foreign = Buffer.alloc(64);
  foreign.write('SALVOSEG', 0, 'latin1'); // a segment header is not an archived object
  t.throws(() => decodeArchiveHeader(resealed(foreign, 0, 60), KEY), { code: 'CORRUPT_ARCHIVE', message: /bad magic/ });
});

t.test('archive-object: a truncated object is CORRUPT_ARCHIVE wherever it is cut', async (t) => {
  const { bytes } = object();
  const index = decodeArchiveIndex(bytes, KEY);
  const escapes: string[] = [];
  for (let length = 0; length < bytes.length; length++) {
    const result = outcome(() => decodeWhole(Buffer.from(bytes.subarray(0, length))));
    if (result !== 'CORRUPT_ARCHIVE') escapes.push(`${length} bytes: ${result}`);
  }
  t.same(escapes, [], `every one of ${bytes.length} cuts`);
  t.throws(() => decodeArchiveHeader(bytes.subarray(0, 63), KEY), { code: 'CORRUPT_ARCHIVE', message: /shorter than its header/ });
  t.throws(() => decodeArchiveIndex(bytes.subarray(0, index.prologueLength - 1), KEY), { code: 'CORRUPT_ARCHIVE', message: /truncated before its chunk table ends/ });
  const last = index.chunks.length - 1;
  t.throws(() => verifyChunk(chunkOf(bytes, index, last).subarray(1), index, KEY, last), { code: 'CORRUPT_ARCHIVE', message: new RegExp(`chunk ${last} truncated`) });
  t.same(decodeArchiveIndex(bytes.subarray(0, index.prologueLength), KEY), index, 'the prologue alone is enough for the index');
});

t.test('archive-object: another version or header size is CORRUPT_ARCHIVE even with a valid checksum', async (t) => {
  for (const [at, value, message] of [
    [8, 3, /format version 3 is not supported \(this salvo reads 1 and 2\)/],
    [8, 0, /format version 0 is not supported/],
    [10, 128, /header size is not 64/],
  ] as const) {
    const { bytes } = object();
    bytes.writeUInt16LE(value, at);
    t.throws(() => decodeArchiveHeader(resealed(bytes, 0, 60), KEY), { code: 'CORRUPT_ARCHIVE', message }, `u16 at ${at} = ${value}`);
  }
  const { bytes } = object();
  bytes.writeUInt16LE(1, 8);
  t.equal(decodeArchiveHeader(resealed(bytes, 0, 60), KEY).version, 1, 'a format 1 volume’s object reads as version 1');
});

t.test('archive-object: header fields out of range with a valid checksum are CORRUPT_ARCHIVE', async (t) => {
  const edit = (fn: (b: Buffer) => void) => {
    const { bytes } = object();
    fn(bytes);
    return resealed(bytes, 0, 60);
  };
  const cases: [string, Buffer][] = [
    ['sequence 0', edit((b) => b.writeBigUInt64LE(0n, 32))],
    ['sequence 2^53', edit((b) => b.writeBigUInt64LE(2n ** 53n, 32))],
    ['rawEnd before rawStart', edit((b) => b.writeUInt32LE(63, 44))],
    ['one chunk too many', edit((b) => b.writeUInt32LE(b.readUInt32LE(52) + 1, 52))],
    ['one chunk too few', edit((b) => b.writeUInt32LE(b.readUInt32LE(52) - 1, 52))],
    ['chunk size 0', edit((b) => b.writeUInt32LE(0, 56))],
    ['chunk size twice as large', edit((b) => b.writeUInt32LE(2048, 56))],
  ];
  for (const [what, bytes] of cases) t.throws(() => decodeArchiveHeader(bytes, KEY), { code: 'CORRUPT_ARCHIVE', message: /header fields out of range/ }, what);
  t.throws(() => decodeArchiveIndex(edit((b) => b.writeUInt32LE(b.readUInt32LE(48) + 4, 48)), KEY), { code: 'CORRUPT_ARCHIVE' }, 'a summary length 4 bytes too long');
});

t.test('archive-object: a summary or chunk table that disagrees with the header is CORRUPT_ARCHIVE', async (t) => {
  const built = segment(9);
  const parts = (sequence: number, rawStart: number, rawEnd: number) =>
    Buffer.concat(
      encodeArchiveObject({ version: 2, blockSizeBytes: 512, volumeId: VOLUME_ID, sequence, rawStart, rawEnd, chunkSizeBytes: 1 << 20 }, built.summary, [
        { bytes: built.bytes.subarray(rawStart, rawEnd), rawLength: rawEnd - rawStart },
      ]),
    );
  const { rawStart, rawEnd } = built.summary;
  t.equal(outcome(() => decodeArchiveIndex(parts(9, rawStart, rawEnd), KEY)), 'ok', 'the matching object decodes');
  t.throws(() => decodeArchiveIndex(parts(10, rawStart, rawEnd), KEY), { code: 'CORRUPT_ARCHIVE', message: /summary does not match its header/ }, 'another sequence');
  t.throws(() => decodeArchiveIndex(parts(9, rawStart, rawEnd - 1), KEY), { code: 'CORRUPT_ARCHIVE', message: /summary does not match its header/ }, 'another range');

  const { bytes } = object();
  const index = decodeArchiveIndex(bytes, KEY);
  const table = ARCHIVE_HEADER_SIZE + index.header.summaryLength;
  const tableEnd = table + index.chunks.length * 16;
  const editTable = (fn: (b: Buffer) => void) => {
    const copy = Buffer.from(bytes);
    fn(copy);
    return resealed(copy, table, tableEnd);
  };
  t.throws(() => decodeArchiveIndex(editTable((b) => b.writeUInt32LE(b.readUInt32LE(table) + 1, table)), KEY), { code: 'CORRUPT_ARCHIVE', message: /chunk 0 out of place/ }, 'a chunk offset');
  t.throws(() => decodeArchiveIndex(editTable((b) => b.writeUInt32LE(1023, table + 8)), KEY), { code: 'CORRUPT_ARCHIVE', message: /chunk 0 out of place/ }, 'a raw length');
  t.throws(() => decodeArchiveIndex(editTable((b) => b.writeUInt32LE(b.readUInt32LE(table + 4) + 1, table + 4)), KEY), { code: 'CORRUPT_ARCHIVE', message: /chunk 1 out of place/ }, 'a compressed length moves the next chunk');
});

// Regressions: bugs the fuzzers and these tests found in lib/, now fixed.

t.test('archive-object: bytes between the summary and the chunk table are not accepted', async (t) => {
  // A writer that pads the summary region: header and table checksums are valid, the 8 bytes between are not covered.
  const { bytes } = object();
  const index = decodeArchiveIndex(bytes, KEY);
  const summaryEnd = ARCHIVE_HEADER_SIZE + index.header.summaryLength;
  const head = Buffer.from(bytes.subarray(0, 64));
  head.writeUInt32LE(index.header.summaryLength + 8, 48);
  const table = Buffer.from(bytes.subarray(summaryEnd, index.prologueLength));
  for (let i = 0; i < index.chunks.length; i++) table.writeUInt32LE(table.readUInt32LE(i * 16) + 8, i * 16);
  table.writeUInt32LE(crc32c(table.subarray(0, table.length - 4)), table.length - 4);
  const padded = Buffer.concat([resealed(head, 0, 60), bytes.subarray(64, summaryEnd), Buffer.from('GARBAGE!'), table, bytes.subarray(index.prologueLength)]);
  t.equal(outcome(() => decodeWhole(padded)), 'CORRUPT_ARCHIVE', 'decodeArchiveIndex should check that the summary fills summaryLength', {});
});
