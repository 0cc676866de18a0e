/**
 * What the archive holds under an item's key before the archiver puts it there: nothing, this
 * volume's copy whole, or one of ours cut short or damaged (an upload a crash or a full disk
 * interrupted: to be replaced). Another volume's object there, or one too damaged to say whose
 * it is, is an error that says which and what to do: the archiver retries it, never replaces it.
 */
import { VolumeError, isVolumeError } from '../errors.js';
import { ARCHIVE_HEADER_SIZE, archiveObjectSize, decodeArchiveHeader } from '../format/archive-object.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import { fetchArchiveIndex } from './archive-reader.js';
import type { ArchiveStore } from './archive-store.js';

/** The object an item makes: whose, which segment, which raw range. */
export interface ExpectedObject {
  volumeId: string;
  sequence: number;
  rawStart: number;
  rawEnd: number;
}

export async function whatKeyHolds(store: ArchiveStore, key: string, expected: ExpectedObject, cipher: ObjectCipher | null): Promise<'whole' | 'partial' | null> {
  const size = await store.head(key);
  if (size === null) return null;
  let header;
  try {
    header = decodeArchiveHeader(await store.get(key, { offset: 0, length: ARCHIVE_HEADER_SIZE }), key);
  } catch (err) {
    if (!isVolumeError(err, 'CORRUPT_ARCHIVE')) throw err;
    throw new VolumeError('CORRUPT_ARCHIVE', `${err.message}; salvo cannot tell whose object it is, so it does not replace it`, {
      hint: `if ${store.location} is this volume's archive alone, delete ${key} there: salvo then uploads it again`,
    });
  }
  const { volumeId, sequence } = expected;
  if (header.volumeId !== volumeId || header.sequence !== sequence || header.rawStart !== expected.rawStart || header.rawEnd !== expected.rawEnd) {
    throw new VolumeError('ARCHIVE_CONFLICT', `archive ${store.location} holds under ${key} ${header.volumeId === volumeId ? 'a different copy of' : `segment ${header.sequence} of volume ${header.volumeId}, not`} this volume's segment ${sequence}`, {
      hint: 'another volume (or a copy of this one) is archiving to the same place; give each volume its own archive',
    });
  }
  try {
    return size === archiveObjectSize(await fetchArchiveIndex(store, key, cipher)) ? 'whole' : 'partial';
  } catch (err) {
    if (isVolumeError(err, 'CORRUPT_ARCHIVE')) return 'partial';
    throw err;
  }
}
