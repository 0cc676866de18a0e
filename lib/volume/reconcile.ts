/**
 * At open, the log on primary storage meets its archive: one listing, from the oldest segment on
 * primary on, tells whether the archive is this volume's (no segment newer than the log's), where
 * the current segment's tail shipping resumes, which tail pieces to delete in their turn, and
 * which sealed segments the archive holds already. The rest is queued. An archive that cannot be
 * reached only defers all of that to the archiver's retries.
 */
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import { archiveObjectSize } from '../format/archive-object.js';
import { SEGMENT_HEADER_SIZE } from '../format/segment-header.js';
import { fetchArchiveIndex } from '../archive/archive-reader.js';
import { ArchiveKeys, tailChain, type ArchiveStore } from '../archive/archive-store.js';
import { readArchiveContents } from '../archive/archive-catalog.js';
import { synchPointFromEntry, type Catalog, type SynchPoint } from './synch-point.js';
import type { Archiver } from '../archive/archiver.js';
import { segmentItem } from './archive-items.js';
import type { SegmentSlot } from './segment-slot.js';

const debug = createDebug('salvo:volume');

/** Segments checked at once for being in the archive already. */
const SETTLE_CHECKS_MAX = 8;

export interface Reconciled {
  store: ArchiveStore;
  archiver: Archiver;
  cipher: ObjectCipher | null;
  /** The current segment, and the sealed ones on primary. */
  current: SegmentSlot;
  sealed: SegmentSlot[];
}

export async function reconcileWithArchive(parts: Reconciled): Promise<void> {
  const oldest = Math.min(parts.current.sequence, ...parts.sealed.map((s) => s.sequence));
  const listed = await listOurs(parts.store, oldest, parts.current.sequence);
  if (listed) await adoptShippedTails(parts, listed.filter((k) => k.startsWith('tails/')));
  await queueUnarchived(parts, new Set(listed ?? []));
}

/**
 * The archive's segment and tail keys from segment `oldest` on (the oldest on primary: what
 * this open needs, however long the history), or null when it cannot be listed now.
 * ARCHIVE_CONFLICT when it holds a segment this volume has not written yet: another writer's (a
 * copy of this volume directory, say), and mounting would make the two fight over its objects.
 */
async function listOurs(store: ArchiveStore, oldest: number, current: number): Promise<string[] | null> {
  let keys: string[];
  try {
    keys = [...(await store.list('segments/', ArchiveKeys.segment(oldest - 1))), ...(await store.list('tails/', ArchiveKeys.tailPrefix(oldest)))];
  } catch (err) {
    debug('cannot list the archive at open (%s)', (err as Error).message);
    return null;
  }
  for (const key of keys) {
    const sequence = ArchiveKeys.parseSegment(key) ?? ArchiveKeys.parseTail(key)?.sequence;
    if (sequence !== undefined && sequence !== null && (sequence > current || (sequence === current && key.startsWith('segments/')))) {
      throw new VolumeError('ARCHIVE_CONFLICT', `archive ${store.location} holds ${key}, newer than this volume's newest segment (${current})`, {
        hint: 'another copy of this volume is writing to the same archive; mount only one, and give a copied volume its own archive',
      });
    }
  }
  return keys;
}

/**
 * Queues the sealed segments on primary for the archive, but for those the archive already
 * holds whole (shipped before this open): they count as archived at once, so status tells the
 * truth from the start and nothing is shipped twice. Checked a few at a time.
 */
async function queueUnarchived({ archiver, sealed }: Reconciled, listed: Set<string>): Promise<void> {
  const settled = new Set<number>();
  const candidates = sealed.filter((s) => listed.has(ArchiveKeys.segment(s.sequence)));
  for (let i = 0; i < candidates.length; i += SETTLE_CHECKS_MAX) {
    const batch = candidates.slice(i, i + SETTLE_CHECKS_MAX);
    const held = await Promise.all(batch.map((slot) => archiver.settle(segmentItem(slot))));
    batch.forEach((slot, j) => held[j] && settled.add(slot.sequence));
  }
  for (const slot of sealed) if (!settled.has(slot.sequence)) archiver.enqueue(segmentItem(slot));
}

/**
 * Learns which tail pieces earlier runs shipped: where the current segment's shipping resumes,
 * and which pieces to delete once their segments are whole. Each piece of the current segment's
 * chain is checked whole: one cut short (an upload a crash interrupted before the archiver could
 * see it) is deleted, and shipping resumes where it starts; one unreadable now ends the chain
 * there too. Either way the tail is shipped again from that point, and nothing is lost.
 */
async function adoptShippedTails({ store, archiver, cipher, current }: Reconciled, keys: string[]): Promise<void> {
  const bySequence = new Map<number, string[]>();
  for (const key of keys) {
    const tail = ArchiveKeys.parseTail(key);
    if (tail) bySequence.set(tail.sequence, [...(bySequence.get(tail.sequence) ?? []), key]);
  }
  let resume: { end: number; nextRecordSequence: number } | null = null;
  for (const key of tailChain(bySequence.get(current.sequence) ?? [], SEGMENT_HEADER_SIZE).keys) {
    try {
      const index = await fetchArchiveIndex(store, key, cipher);
      if ((await store.head(key)) !== archiveObjectSize(index)) {
        debug('tail piece %s was cut short; it is deleted and shipped again', key);
        await store.delete(key);
        bySequence.set(current.sequence, bySequence.get(current.sequence)!.filter((k) => k !== key));
        break;
      }
      resume = { end: index.header.rawEnd, nextRecordSequence: index.summary.nextRecordSequence };
    } catch (err) {
      debug('cannot read tail piece %s (%s); the tail is shipped again from its start', key, (err as Error).message);
      break;
    }
  }
  if (resume && resume.end <= current.tail) {
    current.shippedTo = resume.end;
    current.shippedRecordSequence = resume.nextRecordSequence;
  }
  for (const [sequence, tails] of bySequence) archiver.adoptTails(sequence, tails);
}

/**
 * The synch points the archive holds in segments gone from primary storage (`inArchiveOnly`) that
 * `catalog` lacks: on primary such points live only in catalog.jsonl. A few requests through the archive's
 * catalog; an archive out of reach gives none (the catalog stays as it was).
 */
export async function pointsOnlyInArchive(
  { store, config, cipher }: { store: ArchiveStore; config: { volumeId: string }; cipher: ObjectCipher | null },
  catalog: Catalog,
  inArchiveOnly: (sequence: number) => boolean,
): Promise<SynchPoint[]> {
  let points;
  try {
    points = (await readArchiveContents(store, config.volumeId, cipher)).content.points;
  } catch (err) {
    debug('reading the archive for points the catalog lacks: %s', (err as Error).message);
    return [];
  }
  const known = new Set(catalog.everything.map((p) => p.recordSequence));
  return points.filter((p) => inArchiveOnly(p.sequence) && !known.has(p.recordSequence)).map((p) => synchPointFromEntry(p.sequence, p));
}
