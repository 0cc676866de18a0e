import { AssertionError } from 'node:assert';
import t from 'tap';
import {
  BLOCK_CRC_SIZE,
  FLAG_COPY_FORWARD,
  RECORD_HEADER_SIZE,
  RECORD_MAGIC,
  RecordType,
  decodeRecordHeader,
  decodeSynchBody,
  encodeRecordHeader,
  encodeSynchBody,
  writeRecordSize,
  type RecordHeader,
  type SynchBody,
} from '../../lib/format/record.js';
import { bitFlipEscapes, outcome, resealed, truncationEscapes } from './codec-helpers.js';

const BS = 4096;

function encode(header: RecordHeader, offset = 0): Buffer {
  const bytes = Buffer.alloc(offset + RECORD_HEADER_SIZE);
  encodeRecordHeader(bytes, offset, header);
  return bytes;
}

const WRITE: RecordHeader = { type: RecordType.Write, flags: 0, sequence: 77, block: 12, count: 3, bodyLength: 3 * (BLOCK_CRC_SIZE + BS) };
const ZERO: RecordHeader = { type: RecordType.Zero, flags: 0, sequence: 78, block: 100, count: 50, bodyLength: 0 };
const SYNCH: RecordHeader = { type: RecordType.Synch, flags: 0, sequence: 79, block: 0, count: 0, bodyLength: 93 };

t.test('record: sizes and layout are as FORMAT documents', async (t) => {
  t.equal(RECORD_HEADER_SIZE, 32);
  t.equal(BLOCK_CRC_SIZE, 4);
  const bytes = encode(WRITE);
  t.equal(bytes.toString('latin1', 0, 4), 'SREC');
  t.equal(bytes.readUInt32LE(0), RECORD_MAGIC);
  t.same([bytes[4], bytes[5], bytes.readUInt16LE(6)], [1, 0, 0], 'type, flags, reserved');
  t.equal(bytes.readBigUInt64LE(8), 77n, 'sequence at 8');
  t.same([bytes.readUInt32LE(16), bytes.readUInt32LE(20), bytes.readUInt32LE(24)], [12, 3, 3 * 4100], 'block, count, body length');
  t.equal(writeRecordSize(3, BS), 32 + 3 * 4100);
  t.equal(writeRecordSize(1, 512), 32 + 516);
});

t.test('record: every header field round-trips, at any offset, up to 2^53 - 1', async (t) => {
  const cases: RecordHeader[] = [
    WRITE,
    ZERO,
    SYNCH,
    { ...WRITE, flags: FLAG_COPY_FORWARD, sequence: 2 ** 53 - 1, block: 0xffff_ffff, count: 1, bodyLength: BLOCK_CRC_SIZE + BS },
    { ...ZERO, sequence: 0, block: 0, count: 0x7fff_ffff },
    { ...ZERO, flags: 0xff, sequence: 2 ** 32, count: 1 },
    { ...SYNCH, sequence: 2 ** 53 - 1, bodyLength: 0xffff_ffff },
    { ...WRITE, count: 1_000_000, bodyLength: 1_000_000 * (BLOCK_CRC_SIZE + BS) },
  ];
  for (const header of cases) {
    for (const offset of [0, 7, 4096]) {
      const bytes = encode(header, offset);
      t.same(decodeRecordHeader(bytes, offset, 'x', BS), header, `type ${header.type} sequence ${header.sequence} at ${offset}`);
    }
  }
});

t.test('record: a flipped bit anywhere in a record header is CORRUPT_SEGMENT', async (t) => {
  for (const header of [WRITE, ZERO, SYNCH, { ...WRITE, sequence: 2 ** 53 - 1 }]) {
    const bytes = encode(header, 5);
    t.same(bitFlipEscapes(bytes, 5, 5 + 32, (b) => decodeRecordHeader(b, 5, 'x', BS), 'CORRUPT_SEGMENT'), [], `type ${header.type}: all 256 bits`);
  }
});

t.test('record: a blank (all-zero) header is the end of the records', async (t) => {
  t.equal(decodeRecordHeader(Buffer.alloc(32), 0, 'x', BS), null);
  t.equal(decodeRecordHeader(Buffer.alloc(100), 68, 'x', BS), null);
});

t.test('record: a wrong magic is CORRUPT_SEGMENT', async (t) => {
  const bytes = encode(WRITE);
  bytes.write('SSUM', 0, 'latin1');
  t.throws(() => decodeRecordHeader(resealed(bytes, 0, 28), 0, 'seg 9 at offset 64', BS), { code: 'CORRUPT_SEGMENT', message: /seg 9 at offset 64: bad record magic/ });
  t.throws(() => decodeRecordHeader(Buffer.alloc(32, 0xff), 0, 'x', BS), { code: 'CORRUPT_SEGMENT' });
});

t.test('record: headers with a valid checksum but impossible fields are CORRUPT_SEGMENT', async (t) => {
  const cases: [string, RecordHeader][] = [
    ['type 0', { ...ZERO, type: 0 as RecordType }],
    ['type 4', { ...ZERO, type: 4 as RecordType }],
    ['type 255', { ...SYNCH, type: 255 as RecordType }],
    ['WRITE of 0 blocks', { ...WRITE, count: 0, bodyLength: 0 }],
    ['WRITE whose body is one entry short', { ...WRITE, bodyLength: WRITE.bodyLength - (BLOCK_CRC_SIZE + BS) }],
    ['WRITE whose body is one byte long', { ...WRITE, bodyLength: WRITE.bodyLength + 1 }],
    ['ZERO of 0 blocks', { ...ZERO, count: 0 }],
    ['ZERO with a body', { ...ZERO, bodyLength: 1 }],
    ['SYNCH naming a block', { ...SYNCH, block: 1 }],
    ['SYNCH with a count', { ...SYNCH, count: 1 }],
  ];
  for (const [what, header] of cases) {
    t.throws(() => decodeRecordHeader(encode(header), 0, 'x', BS), { code: 'CORRUPT_SEGMENT', message: /fields out of range/ }, what);
  }
  for (const value of [2n ** 53n, 2n ** 64n - 1n]) {
    const bytes = encode(ZERO);
    bytes.writeBigUInt64LE(value, 8);
    t.throws(() => decodeRecordHeader(resealed(bytes, 0, 28), 0, 'x', BS), { code: 'CORRUPT_SEGMENT', message: /fields out of range/ }, `sequence ${value}`);
  }
  t.throws(() => decodeRecordHeader(encode(WRITE), 0, 'x', 512), { code: 'CORRUPT_SEGMENT' }, 'a WRITE body sized for another block size');
});

t.test('record: fewer than 32 bytes is a caller’s mistake, caught by an assert', async (t) => {
  // scanSegment never asks for a header it does not hold whole; a torn header is zero-filled by the slot read.
  t.throws(() => decodeRecordHeader(encode(WRITE).subarray(0, 31), 0, 'x', BS), AssertionError);
  const escapes: string[] = [];
  for (let length = 4; length < 32; length++) {
    const torn = Buffer.alloc(32);
    encode(WRITE).copy(torn, 0, 0, length);
    const result = outcome(() => decodeRecordHeader(torn, 0, 'x', BS));
    if (result !== 'CORRUPT_SEGMENT') escapes.push(`${length} bytes: ${result}`);
  }
  t.same(escapes, [], 'a header torn after its magic is CORRUPT_SEGMENT');
});

const BODIES: SynchBody[] = [
  { timeMs: Date.UTC(2026, 10, 22, 1, 30, 0, 123), label: 'before-upgrade', info: { host: 'db1', agent: 'salvo-sync', frozen: '/srv/db' } },
  { timeMs: 0, label: null, info: {} },
  { timeMs: 2 ** 53 - 1, label: '', info: { '': '' } },
  { timeMs: 2 ** 32, label: 'snapshot ✓ 🚀', info: { 'quote"': 'back\\slash', nl: 'line\nbreak', nul: '\u0000', lone: '\ud800' } },
];

t.test('record: synch bodies round-trip losslessly', async (t) => {
  for (const body of BODIES) {
    const bytes = encodeSynchBody(body, 0);
    t.equal(bytes.readUInt32LE(8), bytes.length - 16, 'JSON length at 8');
    t.same(decodeSynchBody(bytes, 'x', 0), body, `label ${JSON.stringify(body.label)}`);
    t.same(encodeSynchBody(decodeSynchBody(bytes, 'x', 0), 0), bytes, 'and re-encodes to the same bytes');
  }
});

t.test('record: a synch body checked under another seed is CORRUPT_SEGMENT (format 2: a stale body in a reused slot)', async (t) => {
  const bytes = encodeSynchBody(BODIES[0]!, 41);
  t.same(decodeSynchBody(bytes, 'x', 41), BODIES[0], 'under its own segment’s seed it decodes');
  t.throws(() => decodeSynchBody(bytes, 'x', 42), { code: 'CORRUPT_SEGMENT', message: /synch record checksum mismatch/ }, 'under the next one it does not');
  t.not(encodeSynchBody(BODIES[0]!, 0).readUInt32LE(bytes.length - 4), bytes.readUInt32LE(bytes.length - 4), 'only the CRC differs from a format 1 body');
});

t.test('record: a flipped bit anywhere in a synch body is CORRUPT_SEGMENT', async (t) => {
  for (const body of BODIES) {
    const bytes = encodeSynchBody(body, 0);
    t.same(bitFlipEscapes(bytes, 0, bytes.length, (b) => decodeSynchBody(b, 'x', 0), 'CORRUPT_SEGMENT'), [], `${bytes.length * 8} bits`);
  }
});

t.test('record: blank, truncated and extended synch bodies are CORRUPT_SEGMENT', async (t) => {
  t.throws(() => decodeSynchBody(Buffer.alloc(16), 'x', 0), { code: 'CORRUPT_SEGMENT' }, 'all zeros');
  t.throws(() => decodeSynchBody(Buffer.alloc(0), 'x', 0), { code: 'CORRUPT_SEGMENT', message: /too short/ });
  const bytes = encodeSynchBody(BODIES[0]!, 0);
  t.same(truncationEscapes(bytes, bytes.length, (b) => decodeSynchBody(b, 'x', 0), 'CORRUPT_SEGMENT'), [], 'every prefix');
  t.throws(() => decodeSynchBody(Buffer.concat([bytes, Buffer.alloc(1)]), 'x', 0), { code: 'CORRUPT_SEGMENT', message: /length mismatch/ }, 'a byte too many');
});

t.test('record: synch bodies with a valid checksum but bad contents are CORRUPT_SEGMENT', async (t) => {
  const framed = (json: string, timeMs = 1n): Buffer => {
    const text = Buffer.from(json, 'utf8');
    const bytes = Buffer.alloc(16 + text.length);
    bytes.writeBigUInt64LE(timeMs, 0);
    bytes.writeUInt32LE(text.length, 8);
    text.copy(bytes, 12);
    return resealed(bytes, 0, 12 + text.length);
  };
  t.same(decodeSynchBody(framed('{"label":"a","info":{"k":"v"}}'), 'x', 0), { timeMs: 1, label: 'a', info: { k: 'v' } }, 'the framing helper makes valid bodies');
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"label":', /not JSON/],
    ['empty', '', /not JSON/],
    ['null', 'null', /fields out of range/],
    ['an array', '[]', /fields out of range/],
    ['no label', '{"info":{}}', /fields out of range/],
    ['a numeric label', '{"label":1,"info":{}}', /fields out of range/],
    ['no info', '{"label":null}', /fields out of range/],
    ['info null', '{"label":null,"info":null}', /fields out of range/],
    ['info an array', '{"label":null,"info":["a"]}', /fields out of range/],
    ['a numeric info value', '{"label":null,"info":{"pid":1}}', /fields out of range/],
  ];
  for (const [what, json, message] of cases) t.throws(() => decodeSynchBody(framed(json), 'x', 0), { code: 'CORRUPT_SEGMENT', message }, what);
  t.throws(() => decodeSynchBody(framed('{"label":null,"info":{}}', 2n ** 53n), 'x', 0), { code: 'CORRUPT_SEGMENT', message: /fields out of range/ }, 'a time past 2^53 - 1');
});
