/**
 * Retention records in a store (FORMAT.md §3.15): the newest is in force. Reading costs one
 * listing of `retention/` (a few keys: older records are deleted as new ones are written) and
 * one request. A change writes the next record and reads it back before anything acts on it;
 * two writers that race for the same number meet ARCHIVE_CONFLICT, and the loser starts over
 * from the winner's record.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import createDebug from 'debug';
import { VolumeError, isVolumeError } from '../errors.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import {
  decodeRetentionBody,
  decodeRetentionObject,
  encodeRetentionBody,
  encodeRetentionObject,
  initialRetention,
  parseRetentionKey,
  retentionKey,
  type RetentionState,
} from '../format/retention-record.js';
import type { ArchiveStore } from './archive-store.js';

const debug = createDebug('salvo:retention');
const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);
/** Records kept behind the newest: a reader that listed a moment ago still finds the one it saw. */
const KEEP_BEHIND = 3;
const ATTEMPTS = 5;

export interface ArchiveRef {
  store: ArchiveStore;
  volumeId: string;
  cipher: ObjectCipher | null;
}

async function readRecord(archive: ArchiveRef, n: number): Promise<RetentionState> {
  const key = retentionKey(n);
  const bytes = await archive.store.get(key);
  const compressed = decodeRetentionObject(bytes, key, archive.volumeId, n, archive.cipher);
  let body: Buffer;
  try {
    body = await gunzip(compressed);
  } catch (err) {
    throw VolumeError.corruptArchive(key, `retention record body does not decompress: ${(err as Error).message}`);
  }
  return decodeRetentionBody(body, key, n);
}

async function recordNumbers(archive: ArchiveRef): Promise<number[]> {
  const keys = await archive.store.list('retention/');
  return keys.flatMap((k) => parseRetentionKey(k) ?? []).sort((a, b) => b - a);
}

/**
 * The record in force: the newest. A damaged newest record is an error here (CORRUPT_ARCHIVE):
 * the records before it may not know of segments it pruned, so neither a reader nor a writer may
 * act on them as if they were the newest.
 */
export async function readRetention(archive: ArchiveRef): Promise<RetentionState> {
  for (let attempt = 1; ; attempt++) {
    const [newest] = await recordNumbers(archive);
    if (newest === undefined) return initialRetention();
    try {
      return await readRecord(archive, newest);
    } catch (err) {
      // Deleted by a writer since the listing (it keeps a few behind the newest): list again.
      if (!isVolumeError(err, 'NOT_FOUND') || attempt === ATTEMPTS) throw err;
    }
  }
}

/**
 * The record a reader goes by: the newest, or when it cannot be read (damaged at rest, or a damaged
 * answer), the newest older one that can, with the problem said. Safe: records only add, and every
 * object an older record names was whole when it was written and is never written over, so a reader
 * of an older record meets at worst an object deleted since (a typed error), never other data.
 */
export async function readRecordForReading(archive: ArchiveRef): Promise<{ state: RetentionState; problem: string | null }> {
  let problem: string | null = null;
  for (const n of await recordNumbers(archive)) {
    try {
      return { state: await readRecord(archive, n), problem };
    } catch (err) {
      if (!isVolumeError(err, 'CORRUPT_ARCHIVE') && !isVolumeError(err, 'NOT_FOUND')) throw err;
      problem ??= err.message;
    }
  }
  return { state: initialRetention(), problem };
}

/**
 * Applies `change` to the record in force and writes the result as the next record, read back
 * whole before this returns; `change` returns null when nothing is to change. Returns the record
 * now in force.
 */
export async function changeRetention(archive: ArchiveRef, change: (current: RetentionState) => RetentionState | null, nowMs: number): Promise<RetentionState> {
  for (let attempt = 1; ; attempt++) {
    const current = await readRetention(archive);
    const next = change(current);
    if (next === null) return current;
    const record: RetentionState = { ...next, n: current.n + 1, timeMs: nowMs };
    const key = retentionKey(record.n);
    const bytes = encodeRetentionObject(archive.volumeId, record.n, await gzip(encodeRetentionBody(record)), archive.cipher);
    try {
      await archive.store.put(key, [bytes]);
      // Read back: nothing acts on a record (deletes least of all) that the archive does not hold whole.
      if (!(await archive.store.get(key)).equals(bytes)) throw VolumeError.archiveUnavailable(`${key} reads back other than it was written`);
    } catch (err) {
      if (isVolumeError(err, 'ARCHIVE_CONFLICT') && attempt < ATTEMPTS) continue;
      // A record cut short, or stored but not confirmed, was never acted on: it must not become the
      // one in force (a damaged newest record stops every writer). Best effort: the store is failing.
      if (!isVolumeError(err, 'ARCHIVE_CONFLICT')) await archive.store.delete(key).catch(() => undefined);
      throw err;
    }
    debug('wrote %s: %d forgotten, pruned %o, %d pending', key, record.forgotten.length, record.pruned, record.pending.length);
    for (const n of (await recordNumbers(archive)).filter((n) => n < record.n - KEEP_BEHIND)) {
      await archive.store.delete(retentionKey(n)).catch((err) => debug('deleting %s failed: %s', retentionKey(n), (err as Error).message));
    }
    return record;
  }
}
