/**
 * Why the archive refuses what the archiver ships, in the words an admin acts on: full,
 * access denied, unreachable, another volume's objects in the way, or a damaged object. The
 * archiver logs a failing put once per cause (not once per retry), with what to do, and status
 * shows the cause while it lasts.
 */
import { isVolumeError } from '../errors.js';

export type TroubleCause = 'full' | 'denied' | 'unreachable' | 'conflict' | 'damaged' | 'failing';

const WHAT_TO_DO: Record<TroubleCause, string> = {
  full: 'the archive is full: free space there, give it a larger disk, or keep less history (`salvo policy <volume> --keep-…`, then `salvo prune`); salvo never drops a point the policy keeps to make room',
  denied: 'the archive refuses access: check its permissions, or the AWS credentials and bucket policy',
  unreachable: 'the archive cannot be reached: check that its disk is mounted, or the network and the S3 endpoint',
  conflict: 'the archive holds another volume’s objects under this volume’s keys: give each volume its own archive',
  damaged: 'an object in the archive is damaged: run `salvo verify` on the archive',
  failing: 'see the message; salvo retries',
};

export function troubleCause(err: unknown): TroubleCause {
  const message = err instanceof Error ? err.message : String(err);
  if (isVolumeError(err, 'ARCHIVE_CONFLICT')) return 'conflict';
  if (isVolumeError(err, 'CORRUPT_ARCHIVE')) return 'damaged';
  if (/ENOSPC|EDQUOT|no space left|QuotaExceeded|quota/i.test(message)) return 'full';
  if (/EACCES|EPERM|EROFS|HTTP 40[13]\b|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|read-only file system/i.test(message)) return 'denied';
  if (isVolumeError(err, 'ARCHIVE_UNAVAILABLE')) return 'unreachable';
  return 'failing';
}

/** What an admin does about `cause`, in a sentence (status shows it beside the failure). */
export function whatToDo(cause: TroubleCause): string {
  return WHAT_TO_DO[cause];
}

/** The line logged when the archive starts failing for `cause`. */
export function troubleLine(location: string, cause: TroubleCause, message: string): string {
  return `archive ${location}: ${message} — ${whatToDo(cause)}; writes wait on primary storage meanwhile and ship once it takes them (retrying)`;
}
