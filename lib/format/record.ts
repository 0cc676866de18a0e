/**
 * Log records: what a segment holds after its header, back to back.
 *
 *   WRITE  header + count × (crc32c of the block, block bytes)   new data for blocks [block, block+count)
 *   ZERO   header only                                           blocks [block, block+count) now read as zeros
 *   SYNCH  header + synch body                                    a synch point: time, label, info
 *
 * Every block carries its own CRC so that a 4 KiB read verifies 4 KiB, not a whole record.
 * Record sequences increase by one from the segment header's first record sequence: a
 * record with any other sequence (a stale one behind a torn tail) ends the segment.
 *
 * Invariants: RECORD_HEADER_SIZE is 32; the header CRC covers bytes 0..28; a synch body
 * carries its own CRC in its last 4 bytes.
 */
import assert from 'node:assert';
import { VolumeError } from '../errors.js';
import { crc32c } from './checksum.js';
import { readU64, writeU64 } from './bytes.js';

export const RECORD_MAGIC = 0x43455253; // "SREC" little-endian
export const RECORD_HEADER_SIZE = 32;
/** Bytes in front of every block in a WRITE record: its CRC32C. */
export const BLOCK_CRC_SIZE = 4;

/**
 * What the CRC32C of a block entry or of a SYNCH record's body continues from: nothing (0) in
 * format 1; from format 2 on the segment's sequence, so an entry left in a reused slot by the
 * segment before never passes for one of this segment (FORMAT.md §3.4).
 */
export function entrySeed(version: number, segmentSequence: number): number {
  return version >= 2 ? segmentSequence % 0x1_0000_0000 : 0;
}

export const RecordType = { Write: 1, Zero: 2, Synch: 3 } as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Flags bit 0: the record was written by copy-forward, not by the application. */
export const FLAG_COPY_FORWARD = 1;

export interface RecordHeader {
  type: RecordType;
  flags: number;
  sequence: number;
  /** First block (WRITE, ZERO); 0 for SYNCH. */
  block: number;
  /** Blocks (WRITE, ZERO); 0 for SYNCH. */
  count: number;
  /** Bytes after the header. */
  bodyLength: number;
}

export function encodeRecordHeader(target: Buffer, offset: number, header: RecordHeader): void {
  target.writeUInt32LE(RECORD_MAGIC, offset);
  target.writeUInt8(header.type, offset + 4);
  target.writeUInt8(header.flags, offset + 5);
  target.writeUInt16LE(0, offset + 6);
  writeU64(target, offset + 8, header.sequence);
  target.writeUInt32LE(header.block, offset + 16);
  target.writeUInt32LE(header.count, offset + 20);
  target.writeUInt32LE(header.bodyLength, offset + 24);
  target.writeUInt32LE(crc32c(target.subarray(offset, offset + 28)), offset + 28);
}

/**
 * Decodes the record header at `offset`; `null` when the bytes are blank (the end of the
 * written part of a segment). Throws CORRUPT_SEGMENT when they are neither blank nor valid.
 */
export function decodeRecordHeader(source: Buffer, offset: number, where: string, blockSizeBytes: number): RecordHeader | null {
  assert(source.length >= offset + RECORD_HEADER_SIZE);
  const magic = source.readUInt32LE(offset);
  // Blank only when the whole header is zero: a zeroed magic on a written header is damage.
  if (magic === 0 && source.subarray(offset, offset + RECORD_HEADER_SIZE).every((b) => b === 0)) return null;
  if (magic !== RECORD_MAGIC) throw VolumeError.corruptSegment(where, 'bad record magic');
  if (source.readUInt32LE(offset + 28) !== crc32c(source.subarray(offset, offset + 28))) {
    throw VolumeError.corruptSegment(where, 'record header checksum mismatch');
  }
  const type = source.readUInt8(offset + 4) as RecordType;
  const sequence = readU64(source, offset + 8);
  const block = source.readUInt32LE(offset + 16);
  const count = source.readUInt32LE(offset + 20);
  const bodyLength = source.readUInt32LE(offset + 24);
  const expectedBody =
    type === RecordType.Write ? count * (BLOCK_CRC_SIZE + blockSizeBytes) : type === RecordType.Zero ? 0 : bodyLength;
  const valid =
    sequence >= 0 &&
    count < 0x8000_0000 &&
    bodyLength === expectedBody &&
    (type === RecordType.Synch ? count === 0 && block === 0 : type === RecordType.Write || type === RecordType.Zero ? count > 0 : false);
  if (!valid) throw VolumeError.corruptSegment(where, 'record header fields out of range');
  return { type, flags: source.readUInt8(offset + 5), sequence, block, count, bodyLength };
}

/** What a synch record says: when, a label, and free-form facts (host, agent, frozen fs). */
export interface SynchBody {
  timeMs: number;
  label: string | null;
  info: Record<string, string>;
}

/**
 * A synch body's bytes. `seed` is what its CRC continues from: in a SYNCH record the segment's
 * entry seed, like a block entry's (so a stale body behind a torn header never passes for this
 * segment's); in a summary 0, since the summary's own CRC covers it.
 */
export function encodeSynchBody(body: SynchBody, seed: number): Buffer {
  const json = Buffer.from(JSON.stringify({ label: body.label, info: body.info }), 'utf8');
  const bytes = Buffer.alloc(8 + 4 + json.length + 4);
  writeU64(bytes, 0, body.timeMs);
  bytes.writeUInt32LE(json.length, 8);
  json.copy(bytes, 12);
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, 12 + json.length), seed), 12 + json.length);
  return bytes;
}

export function decodeSynchBody(bytes: Buffer, where: string, seed: number): SynchBody {
  if (bytes.length < 16) throw VolumeError.corruptSegment(where, 'synch record too short');
  const jsonLength = bytes.readUInt32LE(8);
  if (jsonLength !== bytes.length - 16) throw VolumeError.corruptSegment(where, 'synch record length mismatch');
  if (bytes.readUInt32LE(12 + jsonLength) !== crc32c(bytes.subarray(0, 12 + jsonLength), seed)) {
    throw VolumeError.corruptSegment(where, 'synch record checksum mismatch');
  }
  const timeMs = readU64(bytes, 0);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8', 12, 12 + jsonLength));
  } catch {
    throw VolumeError.corruptSegment(where, 'synch record is not JSON');
  }
  if (timeMs < 0 || !isSynchJson(parsed)) throw VolumeError.corruptSegment(where, 'synch record fields out of range');
  return { timeMs, label: parsed.label, info: parsed.info };
}

function isSynchJson(value: unknown): value is { label: string | null; info: Record<string, string> } {
  if (typeof value !== 'object' || value === null) return false;
  const { label, info } = value as { label?: unknown; info?: unknown };
  if (!(label === null || typeof label === 'string')) return false;
  if (typeof info !== 'object' || info === null || Array.isArray(info)) return false;
  return Object.values(info).every((v) => typeof v === 'string');
}

/** Bytes a WRITE record of `count` blocks takes in a segment. */
export function writeRecordSize(count: number, blockSizeBytes: number): number {
  return RECORD_HEADER_SIZE + count * (BLOCK_CRC_SIZE + blockSizeBytes);
}
