/**
 * The segment header: the first 64 bytes of every segment slot on primary storage. It names
 * the volume and the segment's sequence, so recovery can order slots without any other file
 * and a reader can tell that a slot was recycled under it (the sequence changed).
 *
 * Invariants: SEGMENT_HEADER_SIZE is 64; the CRC covers bytes 0..60; an all-zero magic means a
 * blank (recycled) slot, any other bad magic or CRC is corruption.
 */
import assert from 'node:assert';
import { VolumeError } from '../errors.js';
import { crc32c } from './checksum.js';
import { readU64, volumeIdBytes, writeU64 } from './bytes.js';

export const SEGMENT_MAGIC = Buffer.from('SALVOSEG', 'latin1');
export const SEGMENT_HEADER_SIZE = 64;
/** The format new volumes get. A volume keeps the version it was made with: every segment and archived object says it. */
export const FORMAT_VERSION = 2;
/** Versions this salvo reads and writes: 1 (slots truncated when recycled, plain entry CRCs) and 2 (FORMAT.md §3.4). */
export const FORMAT_VERSIONS: readonly number[] = [1, 2];

/** Why `version` cannot be read, for a message; null when it can. */
export function unsupportedVersion(version: unknown): string | null {
  return FORMAT_VERSIONS.includes(version as number) ? null : `format version ${typeof version === 'string' ? JSON.stringify(version) : String(version)} is not supported (this salvo reads ${FORMAT_VERSIONS.join(' and ')})`;
}

export interface SegmentHeader {
  /** The volume's format version (FORMAT_VERSIONS). */
  version: number;
  blockSizeBytes: number;
  volumeId: string;
  /** Position of this segment in the log: 1, 2, 3 ... never reused. */
  sequence: number;
  /** Sequence of the first record in the segment; records follow without gaps. */
  firstRecordSequence: number;
  createdAtMs: number;
}

export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  for (const value of [header.sequence, header.firstRecordSequence, header.createdAtMs]) assert(Number.isSafeInteger(value) && value >= 0);
  assert(unsupportedVersion(header.version) === null);
  const bytes = Buffer.alloc(SEGMENT_HEADER_SIZE);
  SEGMENT_MAGIC.copy(bytes, 0);
  bytes.writeUInt16LE(header.version, 8);
  bytes.writeUInt16LE(SEGMENT_HEADER_SIZE, 10);
  bytes.writeUInt32LE(header.blockSizeBytes, 12);
  volumeIdBytes(header.volumeId).copy(bytes, 16);
  writeU64(bytes, 32, header.sequence);
  writeU64(bytes, 40, header.firstRecordSequence);
  writeU64(bytes, 48, header.createdAtMs);
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, 60)), 60);
  return bytes;
}

/** Decodes a segment header; `null` for a blank slot. Throws CORRUPT_SEGMENT otherwise. */
export function decodeSegmentHeader(bytes: Buffer, where: string): SegmentHeader | null {
  assert(bytes.length >= SEGMENT_HEADER_SIZE);
  // Blank only when the whole header is zero: a zeroed magic on a written header is damage.
  if (bytes.subarray(0, SEGMENT_HEADER_SIZE).every((b) => b === 0)) return null;
  if (!bytes.subarray(0, 8).equals(SEGMENT_MAGIC)) throw VolumeError.corruptSegment(where, 'not a salvo segment (bad magic)');
  if (bytes.readUInt32LE(60) !== crc32c(bytes.subarray(0, 60))) {
    throw VolumeError.corruptSegment(where, 'segment header checksum mismatch');
  }
  const version = bytes.readUInt16LE(8);
  const unsupported = unsupportedVersion(version);
  if (unsupported !== null) throw VolumeError.corruptSegment(where, `segment ${unsupported}`);
  if (bytes.readUInt16LE(10) !== SEGMENT_HEADER_SIZE) throw VolumeError.corruptSegment(where, 'segment header size is not 64');
  const sequence = readU64(bytes, 32);
  const firstRecordSequence = readU64(bytes, 40);
  const createdAtMs = readU64(bytes, 48);
  if (sequence < 1 || firstRecordSequence < 0 || createdAtMs < 0) throw VolumeError.corruptSegment(where, 'segment header out of range');
  return {
    version,
    blockSizeBytes: bytes.readUInt32LE(12),
    volumeId: bytes.toString('hex', 16, 32),
    sequence,
    firstRecordSequence,
    createdAtMs,
  };
}
