/**
 * The volume directory's copy of the retention record in force, `retention.json` (FORMAT.md
 * §3.15): the record's body as plain JSON. The archive holds the record; this copy lets the
 * mount and `salvo list <dir>` hide forgotten points without reaching the archive, as the
 * catalog (`catalog.jsonl`) lets them list points. It is only ever replaced by a newer record.
 */
import createDebug from 'debug';
import { decodeRetentionBody, encodeRetentionBody, initialRetention, type RetentionState } from '../format/retention-record.js';
import type { VolumeFiles } from '../volume/files.js';

const debug = createDebug('salvo:retention');
export const RETENTION_FILE = 'retention.json';

/** The copy, or the initial record when there is none; a damaged copy is the initial record too, until the archive's is read. */
export function loadLocalRetention(files: VolumeFiles): RetentionState {
  const bytes = files.read(RETENTION_FILE);
  if (!bytes) return initialRetention();
  try {
    const n = (JSON.parse(bytes.toString('utf8')) as { n?: unknown }).n;
    return decodeRetentionBody(bytes, files.path(RETENTION_FILE), typeof n === 'number' ? n : -1);
  } catch (err) {
    debug('%s is unreadable (%s): every point shows until the archive is read', files.path(RETENTION_FILE), (err as Error).message);
    return initialRetention();
  }
}

/** Replaces the copy with `state` when it is newer; durable, so that a power cut does not bring forgotten points back. */
export function saveLocalRetention(files: VolumeFiles, state: RetentionState): void {
  if (state.n <= loadLocalRetention(files).n) return;
  files.replace(RETENTION_FILE, encodeRetentionBody(state), { durable: true });
}
