/**
 * An archived object: one segment, or one piece of the current segment shipped at a synch
 * point (a "tail"), compressed and self-describing. The archive alone is enough to rebuild
 * everything, so each object names its volume, segment sequence and the raw byte range of
 * the segment it covers.
 *
 *   header (64) | summary | chunk table (count × 16 + 4) | chunk 0 | chunk 1 | ...
 *
 * The raw range is cut into chunks of `chunkSizeBytes` (the last one shorter), each zstd
 * compressed on its own so that a reader fetches and decompresses only the chunks a read
 * needs, by byte range. A chunk table entry is: object offset u32, compressed length u32,
 * raw length u32, CRC32C of the compressed bytes u32. The table ends with its own CRC32C.
 * The header, summary and table come first so one range request of the object's first
 * bytes usually brings all three.
 *
 * Invariants: ARCHIVE_HEADER_SIZE is 64 and its CRC covers bytes 0..60; chunks are contiguous
 * and in raw order; the object's size is the end of its last chunk.
 */
import assert from 'node:assert';
import { VolumeError } from '../errors.js';
import { crc32c } from './checksum.js';
import { readU64, volumeIdBytes, writeU64 } from './bytes.js';
import { unsupportedVersion } from './segment-header.js';
import { SegmentSummary } from './summary.js';
import type { ObjectCipher, PartContext } from './object-cipher.js';

export const ARCHIVE_MAGIC = Buffer.from('SALVOARC', 'latin1');
/** An object whose summary and chunks are sealed with the volume's key (object-cipher.ts). */
export const ARCHIVE_MAGIC_ENCRYPTED = Buffer.from('SALVOAEN', 'latin1');
/**
 * A compacted object (FORMAT.md §3.15): a segment object rewritten with only the records the kept
 * points need; its summary lists those, and the raw bytes of the others are zeros.
 */
export const ARCHIVE_MAGIC_COMPACTED = Buffer.from('SALVOACP', 'latin1');
export const ARCHIVE_MAGIC_COMPACTED_ENCRYPTED = Buffer.from('SALVOACE', 'latin1');
export const ARCHIVE_HEADER_SIZE = 64;
const CHUNK_ENTRY_SIZE = 16;
/** Bytes fetched by the first range request of an object: usually header, summary and table. */
export const ARCHIVE_PROLOGUE_GUESS = 64 * 1024;

export interface ArchiveObjectHeader {
  /** The volume's format version, as in its segment headers. */
  version: number;
  /** The summary and every chunk are sealed (AES-256-GCM); chunk CRCs cover the sealed bytes. */
  encrypted: boolean;
  /** A compacted object: the summary lists the live records only, and the rest of the raw range may be zeros. */
  compacted: boolean;
  blockSizeBytes: number;
  volumeId: string;
  sequence: number;
  rawStart: number;
  rawEnd: number;
  summaryLength: number;
  chunkCount: number;
  chunkSizeBytes: number;
}

export interface ChunkEntry {
  objectOffset: number;
  compressedLength: number;
  rawLength: number;
  crc: number;
}

/** Header, summary and chunk table: what a reader needs before fetching any data. */
export interface ArchiveObjectIndex {
  header: ArchiveObjectHeader;
  summary: SegmentSummary;
  chunks: ChunkEntry[];
  /** Bytes from the object's start to the first chunk. */
  prologueLength: number;
}

/** Builds the object's parts in order; their concatenation is the object. */
export function encodeArchiveObject(
  header: Omit<ArchiveObjectHeader, 'summaryLength' | 'chunkCount' | 'encrypted' | 'compacted'> & { compacted?: boolean },
  summary: SegmentSummary,
  compressedChunks: { bytes: Buffer; rawLength: number; crc?: number }[],
  cipher: ObjectCipher | null = null,
): Buffer[] {
  const { compacted = false, ...placed } = header;
  const context = (part: PartContext['part']): PartContext => ({ ...placed, part });
  const summaryBytes = cipher ? cipher.seal(summary.encode(), context('summary')) : summary.encode();
  // A chunk's CRC covers the bytes stored: sealed ones get their own.
  if (cipher) compressedChunks = compressedChunks.map((c, i) => ({ bytes: cipher.seal(c.bytes, context(i)), rawLength: c.rawLength }));
  assert(unsupportedVersion(header.version) === null);
  const head = Buffer.alloc(ARCHIVE_HEADER_SIZE);
  (compacted ? (cipher ? ARCHIVE_MAGIC_COMPACTED_ENCRYPTED : ARCHIVE_MAGIC_COMPACTED) : cipher ? ARCHIVE_MAGIC_ENCRYPTED : ARCHIVE_MAGIC).copy(head, 0);
  head.writeUInt16LE(header.version, 8);
  head.writeUInt16LE(ARCHIVE_HEADER_SIZE, 10);
  head.writeUInt32LE(header.blockSizeBytes, 12);
  volumeIdBytes(header.volumeId).copy(head, 16);
  writeU64(head, 32, header.sequence);
  head.writeUInt32LE(header.rawStart, 40);
  head.writeUInt32LE(header.rawEnd, 44);
  head.writeUInt32LE(summaryBytes.length, 48);
  head.writeUInt32LE(compressedChunks.length, 52);
  head.writeUInt32LE(header.chunkSizeBytes, 56);
  head.writeUInt32LE(crc32c(head.subarray(0, 60)), 60);

  const table = Buffer.alloc(compressedChunks.length * CHUNK_ENTRY_SIZE + 4);
  let objectOffset = ARCHIVE_HEADER_SIZE + summaryBytes.length + table.length;
  compressedChunks.forEach((chunk, i) => {
    const at = i * CHUNK_ENTRY_SIZE;
    table.writeUInt32LE(objectOffset, at);
    table.writeUInt32LE(chunk.bytes.length, at + 4);
    table.writeUInt32LE(chunk.rawLength, at + 8);
    table.writeUInt32LE(chunk.crc ?? crc32c(chunk.bytes), at + 12);
    objectOffset += chunk.bytes.length;
  });
  assert(objectOffset < 2 ** 32, 'archived object too large');
  table.writeUInt32LE(crc32c(table.subarray(0, table.length - 4)), table.length - 4);
  return [head, summaryBytes, table, ...compressedChunks.map((c) => c.bytes)];
}

export function decodeArchiveHeader(bytes: Buffer, key: string): ArchiveObjectHeader {
  if (bytes.length < ARCHIVE_HEADER_SIZE) throw VolumeError.corruptArchive(key, 'shorter than its header');
  const magic = bytes.subarray(0, 8);
  const encrypted = magic.equals(ARCHIVE_MAGIC_ENCRYPTED) || magic.equals(ARCHIVE_MAGIC_COMPACTED_ENCRYPTED);
  const compacted = magic.equals(ARCHIVE_MAGIC_COMPACTED) || magic.equals(ARCHIVE_MAGIC_COMPACTED_ENCRYPTED);
  if (!encrypted && !compacted && !magic.equals(ARCHIVE_MAGIC)) throw VolumeError.corruptArchive(key, 'not a salvo archive object (bad magic)');
  if (bytes.readUInt32LE(60) !== crc32c(bytes.subarray(0, 60))) throw VolumeError.corruptArchive(key, 'header checksum mismatch');
  const version = bytes.readUInt16LE(8);
  const unsupported = unsupportedVersion(version);
  if (unsupported !== null) throw VolumeError.corruptArchive(key, unsupported);
  if (bytes.readUInt16LE(10) !== ARCHIVE_HEADER_SIZE) throw VolumeError.corruptArchive(key, 'header size is not 64');
  const header: ArchiveObjectHeader = {
    version,
    encrypted,
    compacted,
    blockSizeBytes: bytes.readUInt32LE(12),
    volumeId: bytes.toString('hex', 16, 32),
    sequence: readU64(bytes, 32),
    rawStart: bytes.readUInt32LE(40),
    rawEnd: bytes.readUInt32LE(44),
    summaryLength: bytes.readUInt32LE(48),
    chunkCount: bytes.readUInt32LE(52),
    chunkSizeBytes: bytes.readUInt32LE(56),
  };
  const expectedChunks = header.chunkSizeBytes > 0 ? Math.ceil((header.rawEnd - header.rawStart) / header.chunkSizeBytes) : -1;
  if (header.sequence < 1 || header.rawEnd < header.rawStart || header.chunkCount !== expectedChunks) {
    throw VolumeError.corruptArchive(key, 'header fields out of range');
  }
  return header;
}

/** Bytes from the object's start through its chunk table. */
export function prologueLength(header: ArchiveObjectHeader): number {
  return ARCHIVE_HEADER_SIZE + header.summaryLength + header.chunkCount * CHUNK_ENTRY_SIZE + 4;
}

/**
 * Decodes header, summary and chunk table from the object's first `prologueLength` bytes.
 * An encrypted object needs the volume's cipher, and an encrypted archive accepts no
 * plaintext object (a foreign object is refused before anything else is read from it).
 */
export function decodeArchiveIndex(bytes: Buffer, key: string, cipher: ObjectCipher | null = null): ArchiveObjectIndex {
  const header = decodeArchiveHeader(bytes, key);
  const length = prologueLength(header);
  if (bytes.length < length) throw VolumeError.corruptArchive(key, 'truncated before its chunk table ends');
  if (header.encrypted && !cipher) {
    throw new VolumeError('BAD_INPUT', `archive object ${key} is encrypted`, { hint: 'give the volume’s key with --encrypt-key-file' });
  }
  if (!header.encrypted && cipher) throw VolumeError.corruptArchive(key, 'not encrypted, in an encrypted archive');
  const stored = bytes.subarray(ARCHIVE_HEADER_SIZE, ARCHIVE_HEADER_SIZE + header.summaryLength);
  const summaryBytes = cipher ? cipher.open(stored, { ...header, part: 'summary' }, key) : stored;
  if (SegmentSummary.encodedLength(summaryBytes) !== summaryBytes.length) throw VolumeError.corruptArchive(key, 'summary length does not match its header');
  const summary = SegmentSummary.decode(summaryBytes, (what) => VolumeError.corruptArchive(key, what));
  if (summary.sequence !== header.sequence || summary.rawStart !== header.rawStart || summary.rawEnd !== header.rawEnd) {
    throw VolumeError.corruptArchive(key, 'summary does not match its header');
  }
  const table = bytes.subarray(ARCHIVE_HEADER_SIZE + header.summaryLength, length);
  if (table.readUInt32LE(table.length - 4) !== crc32c(table.subarray(0, table.length - 4))) {
    throw VolumeError.corruptArchive(key, 'chunk table checksum mismatch');
  }
  const chunks: ChunkEntry[] = [];
  let expectedOffset = length;
  for (let i = 0; i < header.chunkCount; i++) {
    const at = i * CHUNK_ENTRY_SIZE;
    const entry = {
      objectOffset: table.readUInt32LE(at),
      compressedLength: table.readUInt32LE(at + 4),
      rawLength: table.readUInt32LE(at + 8),
      crc: table.readUInt32LE(at + 12),
    };
    const rawExpected = Math.min(header.chunkSizeBytes, header.rawEnd - header.rawStart - i * header.chunkSizeBytes);
    if (entry.objectOffset !== expectedOffset || entry.rawLength !== rawExpected) {
      throw VolumeError.corruptArchive(key, `chunk ${i} out of place`);
    }
    expectedOffset += entry.compressedLength;
    chunks.push(entry);
  }
  return { header, summary, chunks, prologueLength: length };
}

/** The object's total size in bytes, as its index describes it. */
export function archiveObjectSize(index: ArchiveObjectIndex): number {
  const last = index.chunks[index.chunks.length - 1];
  return last ? last.objectOffset + last.compressedLength : index.prologueLength;
}

/**
 * Checks a fetched chunk against its table entry (and opens it when the object is
 * encrypted) before it is decompressed; returns the compressed bytes.
 */
export function verifyChunk(bytes: Buffer, index: ArchiveObjectIndex, key: string, chunk: number, cipher: ObjectCipher | null = null): Buffer {
  const entry = index.chunks[chunk]!;
  if (bytes.length !== entry.compressedLength) throw VolumeError.corruptArchive(key, `chunk ${chunk} truncated`);
  if (crc32c(bytes) !== entry.crc) throw VolumeError.corruptArchive(key, `chunk ${chunk} checksum mismatch`);
  return cipher && index.header.encrypted ? cipher.open(bytes, { ...index.header, part: chunk }, key) : bytes;
}
