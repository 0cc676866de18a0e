/**
 * Reading archived objects: the index (header, summary, chunk table) by one or two range
 * requests, and single chunks by range, checked against their CRC before decompression.
 */
import { VolumeError } from '../errors.js';
import {
  ARCHIVE_PROLOGUE_GUESS,
  decodeArchiveHeader,
  decodeArchiveIndex,
  prologueLength,
  verifyChunk,
  type ArchiveObjectIndex,
} from '../format/archive-object.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import type { ArchiveStore } from './archive-store.js';
import type { CompressionPool } from './compression-pool.js';

/**
 * The object's index by one range request of `guess` bytes, or two when its prologue is
 * longer (a reader of many objects passes the length it last saw: summaries of one history
 * are alike in size).
 */
export async function fetchArchiveIndex(store: ArchiveStore, key: string, cipher: ObjectCipher | null = null, guess = ARCHIVE_PROLOGUE_GUESS): Promise<ArchiveObjectIndex> {
  const first = await store.get(key, { offset: 0, length: guess });
  const length = prologueLength(decodeArchiveHeader(first, key));
  const bytes =
    length <= first.length ? first : Buffer.concat([first, await store.get(key, { offset: first.length, length: length - first.length })]);
  return decodeArchiveIndex(bytes, key, cipher);
}

/** Fetches, verifies (and opens) and decompresses chunk `chunk`; CORRUPT_ARCHIVE if any check fails. */
export async function fetchChunk(
  store: ArchiveStore,
  pool: CompressionPool,
  key: string,
  index: ArchiveObjectIndex,
  chunk: number,
  cipher: ObjectCipher | null = null,
): Promise<Buffer> {
  const entry = index.chunks[chunk]!;
  const stored = await store.get(key, { offset: entry.objectOffset, length: entry.compressedLength });
  const compressed = verifyChunk(stored, index, key, chunk, cipher);
  let raw: Buffer;
  try {
    [raw] = (await pool.decompress([compressed])) as [Buffer];
  } catch (err) {
    throw VolumeError.corruptArchive(key, `chunk ${chunk} does not decompress: ${(err as Error).message}`);
  }
  if (raw.length !== entry.rawLength) throw VolumeError.corruptArchive(key, `chunk ${chunk} decompresses to ${raw.length} bytes, expected ${entry.rawLength}`);
  return raw;
}
