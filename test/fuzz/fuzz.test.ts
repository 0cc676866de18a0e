/**
 * Fuzzing every decoder of the on-disk format: random bytes and mutations of valid encodings
 * (bit flips, byte sets, truncation, extension, splices of two encodings, zeroed ranges) and
 * structured inputs whose checksums are valid but whose fields are arbitrary.
 *
 * FUZZERS below is the one table of every fuzzer. Each gets FUZZ_MS milliseconds (default
 * 1000) from seed SEED (default below), printed in each test name: a failure replays with
 * `SEED=<n> npx tap test/fuzz/fuzz.test.ts` (add FUZZ_ITERATIONS=<n> to run exactly n inputs).
 * The canaries at the end of the table are broken on purpose: the harness must catch them,
 * which proves it can fail.
 */
import { AssertionError } from 'node:assert';
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import {
  decodeArchiveHeader,
  decodeArchiveIndex,
  encodeArchiveObject,
  archiveObjectSize,
  verifyChunk,
  type ArchiveObjectIndex,
} from '../../lib/format/archive-object.js';
import { crc32c } from '../../lib/format/checksum.js';
import {
  CATALOG_HEADER_SIZE,
  decodeCatalogBody,
  decodeCatalogObject,
  encodeCatalogBody,
  encodeCatalogObject,
  type CatalogContent,
} from '../../lib/format/archive-catalog.js';
import { VolumeError } from '../../lib/errors.js';
import {
  BLOCK_CRC_SIZE,
  RECORD_HEADER_SIZE,
  RecordType,
  decodeRecordHeader,
  decodeSynchBody,
  encodeRecordHeader,
  encodeSynchBody,
  entrySeed,
  type RecordHeader,
  type SynchBody,
} from '../../lib/format/record.js';
import { decodeSegmentHeader, encodeSegmentHeader, type SegmentHeader } from '../../lib/format/segment-header.js';
import { SegmentSummary } from '../../lib/format/summary.js';
import { decodeVolumeConfig, encodeVolumeConfig, resolvePolicy, type VolumeConfig } from '../../lib/format/volume-config.js';
import { scanSegment, type ScanResult } from '../../lib/volume/segment-scan.js';
import { buildArchiveObject, buildSegment, encodeRecords, type RecordSpec } from '../fixtures/segment-builder.js';
import { expect, padTo, runFuzzer, type Fuzzer, type FuzzReport, type KnownBug, type Random } from './harness.js';

const SEED = process.env.SEED !== undefined ? Number(process.env.SEED) >>> 0 : 20261122;
const FUZZ_MS = Number(process.env.FUZZ_MS ?? 1000);
const FUZZ_ITERATIONS = process.env.FUZZ_ITERATIONS !== undefined ? Number(process.env.FUZZ_ITERATIONS) : undefined;

/** Small blocks keep segments small, so more of them are tried per second. */
const BS = 512;
/** Record sequences of fuzzed segments start near 2^53, where u64 decoding turns to "corrupt". */
const FIRST_RECORD_SEQUENCE = 2 ** 53 - 48;
const corruptSegment = (what: string) => VolumeError.corruptSegment('fuzz', what);

// ---------------------------------------------------------------------------------------------
// Valid encodings to start from.

function randomSynchBody(random: Random): SynchBody {
  const text = () =>
    random.pick(['', 'first', 'before-upgrade', 'snapshot ✓', '🚀', 'quote " and \\ backslash', 'line\nbreak', '\u0000nul', random.bytes(6).toString('hex')]);
  const info: Record<string, string> = {};
  for (let i = random.int(4); i > 0; i--) info[random.pick(['host', 'agent', 'frozen', 'pid', text()])] = text();
  if (random.chance(0.05)) Object.defineProperty(info, '__proto__', { value: 'x', enumerable: true, configurable: true, writable: true });
  return { timeMs: random.pick([0, 1, Date.UTC(2026, 10, 22), 2 ** 53 - 1, random.u32() * 1000]), label: random.chance(0.3) ? null : text(), info };
}

function randomRecords(random: Random, max: number): RecordSpec[] {
  const specs: RecordSpec[] = [];
  for (let n = random.int(max + 1); n > 0; n--) {
    const kind = random.pick(['write', 'write', 'zero', 'synch'] as const);
    if (kind === 'write') {
      const count = random.between(1, 3);
      specs.push({ type: 'write', block: random.edgyU32(), blocks: Array.from({ length: count }, () => random.bytes(BS)), flags: random.pick([0, 0, 1, 255]) });
    } else if (kind === 'zero') {
      specs.push({ type: 'zero', block: random.edgyU32(), count: random.pick([1, 2, 100, 0x7fff_ffff]) });
    } else {
      specs.push({ type: 'synch', body: randomSynchBody(random) });
    }
  }
  return specs;
}

function randomSegmentHeader(random: Random): SegmentHeader {
  return {
    version: random.pick([1, 2]),
    blockSizeBytes: random.pick([512, 4096, 65536, random.u32()]),
    volumeId: random.volumeId(),
    sequence: random.pick([1, 2, 2 ** 32, 2 ** 53 - 1, random.between(1, 2 ** 31)]),
    firstRecordSequence: random.pick([0, 1, 2 ** 53 - 1, random.u32()]),
    createdAtMs: random.pick([0, Date.UTC(2026, 10, 22), 2 ** 53 - 1]),
  };
}

/** Raw bytes of a segment after its header (what scanSegment reads), and its summary. */
function randomSegmentBody(random: Random, sequence = 1): { bytes: Buffer; summary: SegmentSummary } {
  const records = encodeRecords(randomRecords(random, 12), { version: 2, sequence, firstRecordSequence: FIRST_RECORD_SEQUENCE, rawStart: 64, blockSizeBytes: BS });
  return { bytes: Buffer.concat([records.bytes, Buffer.alloc(random.pick([0, 0, 16, 32, 100]))]), summary: records.summary };
}

function randomArchiveObject(random: Random): Buffer {
  const segment = buildSegment(
    { version: 2, blockSizeBytes: BS, volumeId: random.volumeId(), sequence: random.pick([1, 2, 2 ** 53 - 1]), firstRecordSequence: 1, createdAtMs: 0 },
    randomRecords(random, 6),
  );
  // A whole segment, or a tail piece of it from a record boundary.
  const from = random.chance(0.7) ? 64 : random.pick([64, ...segment.offsets]);
  const index = segment.offsets.indexOf(from);
  const summary = segment.summary.sliceFrom(from, 1 + Math.max(0, index));
  return buildArchiveObject({
    version: 2,
    volumeId: segment.header.volumeId,
    blockSizeBytes: BS,
    sequence: segment.header.sequence,
    segmentBytes: segment.bytes,
    summary,
    chunkSizeBytes: random.pick([1, 100, 512, 1024, 4096, 1 << 20]),
    // Not zstd: the codec only checks CRCs and lengths, so any stored bytes do.
    compress: (raw) => raw.map((piece) => (random.chance(0.5) ? Buffer.from(piece) : random.bytes(random.int(piece.length + 8)))),
  });
}

function randomConfig(random: Random): VolumeConfig {
  const policy = resolvePolicy(
    random.pick([
      { sizeBytes: 16384, blockSizeBytes: 512, segmentSizeBytes: 12288, workingSetSegments: 3, spareSegments: 1 },
      { sizeBytes: 64 << 20, blockSizeBytes: 4096, segmentSizeBytes: 1 << 20, workingSetSegments: 128, spareSegments: 8 },
      { sizeBytes: 20 * 2 ** 30, blockSizeBytes: 4096, segmentSizeBytes: 64 << 20, spareSegments: 8 },
      { sizeBytes: 2 ** 40, blockSizeBytes: 65536, segmentSizeBytes: 2 ** 30, spareSegments: 2 },
    ]),
  );
  const config: VolumeConfig = {
    format: 'salvo-volume',
    version: 1,
    volumeId: random.volumeId(),
    ...policy,
    chunkSizeBytes: random.pick([1 << 20, 4096, 1]),
    rpoSeconds: random.pick([0, 30]),
    createdAt: new Date(Date.UTC(2026, 10, 22) + random.int(1e9)).toISOString(),
  };
  if (random.chance(0.5)) config.archive = random.pick(['/backup/db', 's3://bucket/prefix', '']);
  return config;
}

// ---------------------------------------------------------------------------------------------
// Structured inputs: valid checksums around arbitrary fields.

/** Rewrites the CRC32C at `at` over `bytes[from, at)`. */
function sealCrc(bytes: Buffer, from: number, at: number): Buffer {
  if (at + 4 <= bytes.length && from <= at) bytes.writeUInt32LE(crc32c(bytes.subarray(from, at)), at);
  return bytes;
}

/** Sets 1..3 random bytes of `bytes[from, to)` to random values. */
function scribble(random: Random, bytes: Buffer, from: number, to: number): Buffer {
  if (to <= from) return bytes;
  for (let n = random.between(1, 3); n > 0; n--) bytes[random.between(from, to - 1)] = random.pick([0, 1, 2, 3, 0x7f, 0x80, 0xff, random.int(256)]);
  return bytes;
}

function randomRecordHeader(random: Random, sequence?: number): RecordHeader {
  const type = random.pick([0, 1, 2, 3, 3, 4, 255]) as RecordType;
  const count = random.chance(0.5) ? random.between(0, 3) : random.edgyU32();
  const consistent =
    type === RecordType.Write ? count * (BLOCK_CRC_SIZE + BS) : type === RecordType.Zero ? 0 : type === RecordType.Synch ? random.int(200) : random.int(64);
  return {
    type,
    flags: random.int(256),
    sequence: sequence ?? random.edgyU64(),
    block: random.chance(0.5) ? 0 : random.edgyU32(),
    count: type === RecordType.Synch && random.chance(0.7) ? 0 : count,
    bodyLength: random.chance(0.7) && consistent <= 0xffff_ffff ? consistent : random.edgyU32(),
  };
}

function structuredSynchBody(random: Random): Buffer {
  const json = random.pick([
    () => JSON.stringify({ label: randomSynchBody(random).label, info: randomSynchBody(random).info }),
    () => JSON.stringify({ label: 42, info: {} }),
    () => JSON.stringify({ label: null, info: [] }),
    () => JSON.stringify({ label: null, info: { host: 7 } }),
    () => JSON.stringify({ label: null, info: null }),
    () => JSON.stringify({ label: null }),
    () => JSON.stringify({ info: {} }),
    () => JSON.stringify({ label: 'x', info: {}, extra: true }),
    () => JSON.stringify([1, 2]),
    () => 'null',
    () => '"label"',
    () => '{"label":null,"info":{}',
    () => '{"label":null,"label":"dup","info":{}}',
    () => '{"label":"\\ud800","info":{}}',
    () => random.bytes(random.int(40)).toString('latin1'),
  ])();
  const text = Buffer.from(json, random.chance(0.9) ? 'utf8' : 'latin1');
  const bytes = Buffer.alloc(16 + text.length);
  const time = random.edgyU64();
  bytes.writeUInt32LE(time % 2 ** 32, 0);
  bytes.writeUInt32LE(Math.floor(time / 2 ** 32) >>> 0, 4);
  bytes.writeUInt32LE(random.chance(0.9) ? text.length : random.edgyU32(), 8);
  text.copy(bytes, 12);
  return sealCrc(bytes, 0, 12 + text.length);
}

function structuredSummary(random: Random, corpus: readonly Buffer[]): Buffer {
  if (random.chance(0.4)) {
    // Built through the API with fields no scan would produce.
    const rawStart = random.pick([64, 0, 1000]);
    const summary = new SegmentSummary(random.edgyU64(), random.edgyU64(), rawStart, rawStart + random.pick([0, 1, 4096]), random.edgyU64(), 1);
    for (let n = random.int(4); n > 0; n--) summary.addExtent(random.edgyU32(), random.between(1, 0x7fff_ffff), random.chance(0.3), random.edgyU32());
    for (let n = random.int(3); n > 0; n--) summary.synchs.push({ ...randomSynchBody(random), offset: random.edgyU32(), recordSequence: random.edgyU64() });
    return summary.encode();
  }
  // A valid summary with a few bytes changed and its CRC made valid again.
  const bytes = Buffer.from(random.pick(corpus));
  const length = Math.min(bytes.length, 56 + bytes.readUInt32LE(48));
  scribble(random, bytes, 0, length);
  if (bytes.length < 56) return bytes;
  const end = Math.min(bytes.length, 56 + bytes.readUInt32LE(48));
  bytes.writeUInt32LE(crc32c(bytes.subarray(56, end), crc32c(bytes.subarray(0, 52))), 52);
  return bytes;
}

function structuredArchiveObject(random: Random, corpus: readonly Buffer[]): Buffer {
  const bytes = Buffer.from(random.pick(corpus));
  const tableStart = 64 + bytes.readUInt32LE(48);
  const tableEnd = tableStart + bytes.readUInt32LE(52) * 16;
  if (random.chance(0.5)) {
    scribble(random, bytes, 8, 60); // header fields
    return sealCrc(bytes, 0, 60);
  }
  scribble(random, bytes, tableStart, Math.min(tableEnd, bytes.length)); // chunk table entries
  return sealCrc(bytes, tableStart, tableEnd);
}

function structuredConfig(random: Random): Buffer {
  const config = randomConfig(random) as unknown as Record<string, unknown>;
  const field = random.pick([...Object.keys(config), 'extra', '__proto__']);
  const value = random.pick([undefined, -1, 0, 1, 1.5, 2 ** 53, 2 ** 32, '4096', null, true, [], {}, 'salvo-volume', 'ABCDEF0123456789abcdef0123456789', 1e308]);
  if (value === undefined) delete config[field];
  else config[field] = value;
  return Buffer.from(encodeVolumeConfig(config as unknown as VolumeConfig));
}

/** A segment body whose records keep valid CRCs and in-order sequences, but with arbitrary fields, bodies and tails. */
function structuredSegment(random: Random): Buffer {
  const parts: Buffer[] = [];
  let sequence = FIRST_RECORD_SEQUENCE;
  let offset = 64;
  for (let n = random.int(8); n > 0; n--) {
    const kind = random.pick(['valid', 'valid', 'fields', 'bad-block', 'bad-synch', 'sequence'] as const);
    let bytes: Buffer;
    if (kind === 'valid' || kind === 'bad-block' || kind === 'bad-synch') {
      const specs = randomRecords(random, 1);
      if (specs.length === 0) continue;
      bytes = Buffer.from(encodeRecords(specs, { version: 2, sequence: 1, firstRecordSequence: sequence, rawStart: offset, blockSizeBytes: BS }).bytes);
      if (kind !== 'valid' && bytes.length > RECORD_HEADER_SIZE) bytes[random.between(RECORD_HEADER_SIZE, bytes.length - 1)]! ^= 1 << random.int(8);
    } else {
      const header = randomRecordHeader(random, kind === 'sequence' ? random.pick([sequence - 1, sequence + 1, 0, 2 ** 53]) : sequence);
      bytes = Buffer.alloc(RECORD_HEADER_SIZE + Math.min(header.bodyLength, random.pick([0, 64, 2000, 4000])));
      encodeRecordHeader(bytes, 0, header);
      random.bytes(bytes.length - RECORD_HEADER_SIZE).copy(bytes, RECORD_HEADER_SIZE);
    }
    parts.push(bytes);
    offset += bytes.length;
    sequence++;
  }
  const body = Buffer.concat(parts);
  // Sometimes a torn end: the last record cut short.
  return random.chance(0.3) ? body.subarray(0, random.int(body.length + 1)) : Buffer.concat([body, Buffer.alloc(random.pick([0, 32]))]);
}

// ---------------------------------------------------------------------------------------------
// Checks on what a decoder accepted.

function sameBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (actual.equals(expected)) return;
  let at = 0;
  while (at < Math.min(actual.length, expected.length) && actual[at] === expected[at]) at++;
  throw new Error(`${what}: re-encoding differs at byte ${at} (${actual.length} bytes, input ${expected.length})`);
}

function summaryInvariants(summary: SegmentSummary): void {
  for (let i = 0; i < summary.extentCount; i++) {
    const offset = summary.extentOffset(i);
    expect(summary.extentBlocks(i) > 0, `extent ${i} has no blocks`);
    expect(offset >= summary.rawStart && offset < summary.rawEnd, `extent ${i} at ${offset} lies outside [${summary.rawStart}, ${summary.rawEnd})`);
  }
  for (const s of summary.synchs) expect(s.offset >= summary.rawStart && s.offset < summary.rawEnd, `synch at ${s.offset} lies outside the summary`);
  expect(Number.isSafeInteger(summary.sequence) && summary.sequence >= 1, 'sequence out of range');
  expect(summary.nextRecordSequence >= summary.firstRecordSequence, 'next record sequence before the first');
}

/** The stop/report pair of scans of one input. */
interface Scans {
  bytes: Buffer;
  stop: ScanResult;
  report: ScanResult;
}

/** The scanned segments are format 2 segment 1's. */
const SCAN_SEED = entrySeed(2, 1);

function scan(bytes: Buffer, badBlock: 'stop' | 'report'): ScanResult {
  return scanSegment(bytes, { sequence: 1, firstRecordSequence: FIRST_RECORD_SEQUENCE, rawStart: 64, blockSizeBytes: BS, entrySeed: SCAN_SEED, where: 'fuzz', badBlock });
}

function checkScan(bytes: Buffer, result: ScanResult, mode: 'stop' | 'report', how: string): void {
  const { summary, stoppedBy, badBlocks } = result;
  const entrySize = BLOCK_CRC_SIZE + BS;
  expect(summary.rawStart === 64 && summary.rawEnd >= 64 && summary.rawEnd - 64 <= bytes.length, `${mode}: rawEnd ${summary.rawEnd} outside the bytes`);
  summaryInvariants(summary);
  if (how === 'valid') expect(stoppedBy === null && badBlocks.length === 0, `${mode}: a valid segment stopped: ${stoppedBy}`);
  // No block whose CRC fails is ever reported as good.
  const bad = new Set(badBlocks.map((b) => b.offset));
  for (let i = 0; i < summary.extentCount; i++) {
    if (summary.extentIsZero(i)) continue;
    for (let b = 0; b < summary.extentBlocks(i); b++) {
      const at = summary.extentOffset(i) + b * entrySize - 64;
      expect(at + entrySize <= summary.rawEnd - 64, `${mode}: extent ${i} runs past the scanned records`);
      const good = crc32c(bytes.subarray(at + BLOCK_CRC_SIZE, at + entrySize), SCAN_SEED) === bytes.readUInt32LE(at);
      if (mode === 'stop') expect(good, `stop: block ${summary.extentBlock(i) + b} at ${at + 64} fails its CRC but was kept`);
      else expect(good !== bad.has(at + 64), `report: block ${summary.extentBlock(i) + b} at ${at + 64} is ${good ? 'good but listed' : 'bad but not listed'}`);
    }
  }
  // A clean end is a blank record header or too few bytes for one: never a non-blank header.
  if (stoppedBy === null) {
    const next = bytes.subarray(summary.rawEnd - 64, summary.rawEnd - 64 + RECORD_HEADER_SIZE);
    expect(next.length < RECORD_HEADER_SIZE || next.every((b) => b === 0), `${mode}: the scan ended without stoppedBy at a record header that is not blank`);
  }
  // The summary is lossless, and recovery's cut is stable: rescanning the kept prefix keeps it all.
  const encoded = summary.encode();
  sameBytes(SegmentSummary.decode(encoded, corruptSegment).encode(), encoded, `${mode}: scan summary`);
  const again = scan(bytes.subarray(0, summary.rawEnd - 64), mode);
  expect(again.stoppedBy === null, `${mode}: rescanning the kept prefix stopped: ${again.stoppedBy}`);
  sameBytes(again.summary.encode(), encoded, `${mode}: rescan of the kept prefix`);
}

function rebuildArchiveObject(bytes: Buffer, index: ArchiveObjectIndex): Buffer {
  const { summaryLength: _s, chunkCount: _c, encrypted: _e, ...header } = index.header;
  const chunks = index.chunks.map((c) => ({ bytes: bytes.subarray(c.objectOffset, c.objectOffset + c.compressedLength), rawLength: c.rawLength }));
  return Buffer.concat(encodeArchiveObject(header, index.summary, chunks));
}

// ---------------------------------------------------------------------------------------------
// Bugs these fuzzers found in lib/, now fixed: each stays in the table as a regression check.

const ZERO_MAGIC_HEADER: KnownBug = {
  id: 'segment-header-zero-magic-is-blank',
  description: 'decodeSegmentHeader returns null (blank slot) when only the 8-byte magic is zero, whatever the other 56 bytes hold',
  matches: ({ message }) => message.includes('decoded as blank'),
};
const ZERO_MAGIC_RECORD: KnownBug = {
  id: 'record-header-zero-magic-is-blank',
  description: 'decodeRecordHeader returns null (end of records) when only the 4-byte magic is zero, whatever the other 28 bytes hold',
  matches: ({ message }) => message.includes('decoded as blank'),
};
const ZERO_MAGIC_SCAN: KnownBug = {
  id: 'scan-ends-silently-at-zero-magic',
  description: 'scanSegment ends without stoppedBy at a record header whose magic is zero but whose other bytes are not',
  matches: ({ message }) => message.includes('ended without stoppedBy at a record header that is not blank'),
};
const ZERO_COUNT_ASSERT: KnownBug = {
  id: 'scan-zero-record-count-2^31',
  description: 'scanSegment throws an AssertionError (SegmentSummary.addExtent) on a ZERO record with count >= 2^31 and a valid CRC',
  matches: ({ error }) => error instanceof AssertionError && (error.stack ?? '').includes('addExtent'),
};

const ZERO_SIZE_CONFIG: KnownBug = {
  id: 'config-size-0',
  description: 'decodeVolumeConfig (through resolvePolicy) accepts a volume.json with sizeBytes 0',
  matches: ({ message }) => message.includes('accepted a volume of 0 bytes'),
};

// ---------------------------------------------------------------------------------------------
// The table: every fuzzer, then the canaries.

// Archive catalog objects (the body as stored; its gzip is the caller's, so it is left out here).
const CATALOG_VOLUME = '00112233445566778899aabbccddeeff';
const CATALOG_RANGE = { from: { sequence: 3, offset: 64 }, to: { sequence: 9, offset: 4096 } };
const CATALOG_KEY = 'catalog/fuzz.cat';

function randomCatalog(random: Random): CatalogContent {
  const segments = [...new Set(Array.from({ length: random.int(6) }, () => 3 + random.int(7)))].sort((a, b) => a - b);
  const points = Array.from({ length: random.int(4) }, (_, i) => ({ sequence: 3 + random.int(7), ...randomSynchBody(random), offset: random.int(1 << 20), recordSequence: i * 7 + random.int(7) }));
  const tails = new Map(random.int(2) ? [[9, [`tails/${random.bytes(4).toString('hex')}.tail`]] as [number, string[]]] : []);
  return { ...CATALOG_RANGE, segments, tails, points };
}

/** A catalog object around `body` with every checksum right. */
function catalogObject(body: Buffer): Buffer {
  return encodeCatalogObject(CATALOG_VOLUME, CATALOG_RANGE.to, body, null);
}

const FUZZERS: Fuzzer<any>[] = [
  {
    name: 'archive-catalog',
    maxLength: 600,
    corpus: (random) => Array.from({ length: 8 }, () => catalogObject(encodeCatalogBody(randomCatalog(random)))),
    // Valid checksums around a mutated body: the JSON parser and the field checks meet arbitrary text.
    structured: (random, corpus) => {
      const body = Buffer.from(random.pick(corpus).subarray(CATALOG_HEADER_SIZE));
      for (let n = 1 + random.int(4); n > 0 && body.length > 0; n--) body[random.int(body.length)] = random.pick([0x30, 0x2c, 0x5b, 0x5d, 0x22, 0x2d, 0x7b, random.int(256)]);
      return catalogObject(body);
    },
    decode: (bytes: Buffer) => decodeCatalogBody(decodeCatalogObject(bytes, CATALOG_KEY, CATALOG_VOLUME, CATALOG_RANGE.to, null), CATALOG_KEY, CATALOG_RANGE),
    check: (content: CatalogContent) => {
      const again = decodeCatalogBody(encodeCatalogBody(content), CATALOG_KEY, CATALOG_RANGE);
      expect(isDeepStrictEqual(again, content), 'catalog does not round-trip');
    },
    codes: ['CORRUPT_ARCHIVE'],
  },
  {
    name: 'segment-header',
    maxLength: 80,
    corpus: (random) => Array.from({ length: 16 }, () => encodeSegmentHeader(randomSegmentHeader(random))),
    structured: (random) => sealCrc(scribble(random, encodeSegmentHeader(randomSegmentHeader(random)), 0, 60), 0, 60),
    // A slot reads as zeros past its file's end, so a short input is a truncated slot.
    decode: (bytes: Buffer) => decodeSegmentHeader(padTo(bytes, 64), 'fuzz'),
    check: (header: SegmentHeader | null, input) => {
      const bytes = padTo(input.bytes, 64).subarray(0, 64);
      if (header === null) return expect(bytes.every((b) => b === 0), 'decoded as blank, but the header is not all zeros');
      const again = encodeSegmentHeader(header);
      expect(isDeepStrictEqual(decodeSegmentHeader(again, 'again'), header), 'segment header does not round-trip');
      // Bytes 56..60 are reserved (written as zero, not checked on read): only a sealed input can set them.
      if (!input.sealed) sameBytes(again, bytes, 'segment header');
    },
    codes: ['CORRUPT_SEGMENT'],
    known: [ZERO_MAGIC_HEADER],
  },
  {
    name: 'record-header',
    maxLength: 48,
    corpus: (random) =>
      Array.from({ length: 8 }, () => randomSegmentBody(random)).flatMap(({ bytes, summary }) => {
        const headers: Buffer[] = [];
        for (let at = 0; at + RECORD_HEADER_SIZE <= summary.rawEnd - 64; ) {
          const header = decodeRecordHeader(bytes, at, 'corpus', BS)!;
          headers.push(Buffer.from(bytes.subarray(at, at + RECORD_HEADER_SIZE)));
          at += RECORD_HEADER_SIZE + header.bodyLength;
        }
        return headers;
      }),
    structured: (random) => {
      const bytes = Buffer.alloc(RECORD_HEADER_SIZE);
      encodeRecordHeader(bytes, 0, randomRecordHeader(random));
      return random.chance(0.3) ? sealCrc(scribble(random, bytes, 0, 28), 0, 28) : bytes;
    },
    // Decoded at offset 5 of a larger buffer, to catch offset arithmetic.
    decode: (bytes: Buffer) => decodeRecordHeader(Buffer.concat([Buffer.alloc(5, 0xa5), padTo(bytes, RECORD_HEADER_SIZE)]), 5, 'fuzz', BS),
    check: (header: RecordHeader | null, input) => {
      const bytes = padTo(input.bytes, RECORD_HEADER_SIZE).subarray(0, RECORD_HEADER_SIZE);
      if (header === null) return expect(bytes.every((b) => b === 0), 'decoded as blank, but the header is not all zeros');
      const again = Buffer.alloc(RECORD_HEADER_SIZE);
      encodeRecordHeader(again, 0, header);
      expect(isDeepStrictEqual(decodeRecordHeader(again, 0, 'again', BS), header), 'record header does not round-trip');
      // Bytes 6..8 are reserved (written as zero, not checked on read): only a sealed input can set them.
      if (!input.sealed) sameBytes(again, bytes, 'record header');
    },
    codes: ['CORRUPT_SEGMENT'],
    known: [ZERO_MAGIC_RECORD],
  },
  {
    name: 'synch-body',
    maxLength: 200,
    corpus: (random) => Array.from({ length: 16 }, () => encodeSynchBody(randomSynchBody(random), 0)),
    structured: (random) => structuredSynchBody(random),
    decode: (bytes: Buffer) => decodeSynchBody(bytes, 'fuzz', 0),
    check: (body: SynchBody, input) => {
      expect(Number.isSafeInteger(body.timeMs) && body.timeMs >= 0, 'time out of range');
      const again = encodeSynchBody(body, 0);
      expect(isDeepStrictEqual(decodeSynchBody(again, 'again', 0), body), 'synch body does not round-trip');
      // JSON text is not canonical (spacing, key order, escapes): exact bytes only for unsealed inputs.
      if (!input.sealed) sameBytes(again, input.bytes, 'synch body');
    },
    codes: ['CORRUPT_SEGMENT'],
  },
  {
    name: 'segment-summary',
    maxLength: 400,
    corpus: (random) =>
      Array.from({ length: 12 }, () => {
        const { summary } = randomSegmentBody(random, random.pick([1, 2 ** 53 - 1]));
        const cut = random.chance(0.3) && summary.extentCount > 0 ? summary.extentOffset(random.int(summary.extentCount)) - RECORD_HEADER_SIZE : null;
        return (cut !== null && cut >= 64 ? summary.sliceFrom(cut, FIRST_RECORD_SEQUENCE) : summary).encode();
      }),
    structured: structuredSummary,
    decode: (bytes: Buffer) => SegmentSummary.decode(bytes, corruptSegment),
    check: (summary: SegmentSummary, input) => {
      summaryInvariants(summary);
      const again = summary.encode();
      sameBytes(SegmentSummary.decode(again, corruptSegment).encode(), again, 'summary (decode of its re-encoding)');
      sameBytes(summary.sliceFrom(summary.rawStart, summary.firstRecordSequence).encode(), again, 'summary sliced at its start');
      if (!input.sealed) sameBytes(again, input.bytes.subarray(0, SegmentSummary.encodedLength(input.bytes)), 'summary');
    },
    codes: ['CORRUPT_SEGMENT'],
  },
  {
    name: 'archive-header',
    maxLength: 100,
    corpus: (random) => Array.from({ length: 12 }, () => randomArchiveObject(random).subarray(0, 64)),
    structured: (random, corpus) => sealCrc(scribble(random, Buffer.from(random.pick(corpus)), 8, 60), 0, 60),
    decode: (bytes: Buffer) => decodeArchiveHeader(bytes, 'fuzz'),
    check: (header) => {
      expect(Number.isSafeInteger(header.sequence) && header.sequence >= 1, 'sequence out of range');
      expect(header.rawEnd >= header.rawStart, 'rawEnd before rawStart');
      expect(header.chunkSizeBytes > 0 && header.chunkCount === Math.ceil((header.rawEnd - header.rawStart) / header.chunkSizeBytes), 'chunk count does not cover the raw range');
    },
    codes: ['CORRUPT_ARCHIVE'],
  },
  {
    name: 'archive-object',
    maxLength: 600,
    corpus: (random) => Array.from({ length: 12 }, () => randomArchiveObject(random)),
    structured: structuredArchiveObject,
    // The index, then every chunk checked as a reader would before decompressing it.
    decode: (bytes: Buffer) => {
      const index = decodeArchiveIndex(bytes, 'fuzz');
      index.chunks.forEach((c, i) => verifyChunk(bytes.subarray(c.objectOffset, c.objectOffset + c.compressedLength), index, 'fuzz', i));
      return index;
    },
    check: (index: ArchiveObjectIndex, input) => {
      const size = archiveObjectSize(index);
      expect(size <= input.bytes.length, 'the index describes more bytes than the object has');
      summaryInvariants(index.summary);
      const rebuilt = rebuildArchiveObject(input.bytes, index);
      const again = decodeArchiveIndex(rebuilt, 'again');
      expect(isDeepStrictEqual(again.header, index.header) && isDeepStrictEqual(again.chunks, index.chunks), 'archive index does not round-trip');
      if (!input.sealed) sameBytes(rebuilt, input.bytes.subarray(0, size), 'archive object');
    },
    codes: ['CORRUPT_ARCHIVE'],
  },
  {
    name: 'volume-config',
    maxLength: 400,
    corpus: (random) => Array.from({ length: 8 }, () => Buffer.from(encodeVolumeConfig(randomConfig(random)))),
    structured: (random) => structuredConfig(random),
    decode: (bytes: Buffer) => decodeVolumeConfig(bytes.toString('utf8'), 'fuzz'),
    check: (config: VolumeConfig) => {
      resolvePolicy(config); // what was accepted can run
      expect(config.sizeBytes > 0, 'accepted a volume of 0 bytes');
      // volume.json is text without a checksum: any spelling of a valid config is valid, so the round trip is semantic.
      expect(isDeepStrictEqual(decodeVolumeConfig(encodeVolumeConfig(config), 'again'), config), 'config does not round-trip');
    },
    codes: ['CORRUPT_CONFIG'],
    known: [ZERO_SIZE_CONFIG],
  },
  {
    name: 'segment-scan',
    maxLength: 3000,
    corpus: (random) => Array.from({ length: 12 }, () => randomSegmentBody(random).bytes),
    structured: (random) => structuredSegment(random),
    decode: (bytes: Buffer): Scans => ({ bytes, stop: scan(bytes, 'stop'), report: scan(bytes, 'report') }),
    check: ({ bytes, stop, report }: Scans, input) => {
      checkScan(bytes, stop, 'stop', input.how);
      checkScan(bytes, report, 'report', input.how);
      expect(stop.summary.rawEnd <= report.summary.rawEnd, 'the stopping scan read further than the reporting one');
    },
    codes: [], // scanSegment reports damage in stoppedBy and never throws
    known: [ZERO_COUNT_ASSERT, ZERO_MAGIC_SCAN],
  },
  // Canaries: broken on purpose. The harness must report each, or it could not fail at all.
  {
    name: 'canary: reads past the end (RangeError)',
    canary: true,
    maxLength: 64,
    corpus: (random) => Array.from({ length: 4 }, () => encodeSegmentHeader(randomSegmentHeader(random))),
    decode: (bytes: Buffer) => bytes.readUInt32LE(bytes.length > 0 ? bytes[0]! % 80 : 0),
    codes: ['CORRUPT_SEGMENT'],
  },
  {
    name: 'canary: skips the checksum (accepts garbage)',
    canary: true,
    maxLength: 64,
    corpus: (random) => Array.from({ length: 4 }, () => encodeSegmentHeader(randomSegmentHeader(random))),
    // Recomputes the CRC before decoding, so a flipped bit is never noticed.
    decode: (bytes: Buffer) => decodeSegmentHeader(sealCrc(Buffer.from(padTo(bytes, 64)), 0, 60), 'canary'),
    check: (header: SegmentHeader | null, input) => {
      if (header !== null) sameBytes(encodeSegmentHeader(header), padTo(input.bytes, 64).subarray(0, 64), 'segment header');
    },
    codes: ['CORRUPT_SEGMENT'],
  },
];

// ---------------------------------------------------------------------------------------------

const reports: FuzzReport[] = [];

for (const fuzzer of FUZZERS) {
  t.test(`fuzz: ${fuzzer.name} (SEED=${SEED})`, async (t) => {
    const report = runFuzzer(fuzzer, SEED, FUZZ_MS, FUZZ_ITERATIONS);
    reports.push(report);
    const totals = `${report.tried} inputs in ${Math.round(report.elapsedMs)} ms: ${report.accepted} accepted, ${report.rejected} rejected`;
    if (fuzzer.canary) {
      t.ok(report.failure, `the harness catches a broken decoder (${totals})`);
      t.comment(`canary caught at input ${report.failure?.iteration} (${report.failure?.how}): ${report.failure?.message}`);
      return;
    }
    t.equal(report.failure, null, totals, {
      diagnostic: report.failure !== null,
      replay: `SEED=${SEED} FUZZ_ITERATIONS=${report.tried} npx tap test/fuzz/fuzz.test.ts`,
    });
    t.ok(report.accepted > 0 && report.rejected + (fuzzer.codes.length === 0 ? 1 : 0) > 0, 'the inputs reach both outcomes');
    for (const bug of fuzzer.known ?? []) {
      const seen = report.known.get(bug.id);
      // Bugs found and fixed in lib/: a hit means the bug is back.
      t.equal(seen?.count ?? 0, 0, `fixed lib bug ${bug.id} stays fixed: ${bug.description}`, {
        diagnostic: seen !== undefined,
        first: seen ? `input ${seen.first.iteration} (${seen.first.how}), ${seen.first.inputLength} bytes ${seen.first.inputHex.slice(0, 160)}` : undefined,
      });
    }
  });
}

t.test(`fuzz: totals (SEED=${SEED}, FUZZ_MS=${FUZZ_MS})`, async (t) => {
  const lines = reports.map((r) => {
    const known = [...r.known].map(([id, k]) => `${id} ×${k.count}`).join(', ');
    return `${r.name.padEnd(46)} ${String(r.tried).padStart(8)} tried ${String(r.accepted).padStart(7)} accepted ${String(r.rejected).padStart(7)} rejected${known ? `  known bugs: ${known}` : ''}`;
  });
  for (const line of lines) t.comment(line);
  t.comment(`${'all fuzzers'.padEnd(46)} ${String(reports.reduce((n, r) => n + r.tried, 0)).padStart(8)} tried`);
  t.equal(reports.length, FUZZERS.length, 'every fuzzer in the table ran');
});
