/**
 * VolumeError codes → errnos, in one place. fuse/ never lets an error escape a fuse-native
 * callback: everything is answered with one of these.
 */
import Fuse from 'fuse-native';
import createDebug from 'debug';
import { asResourceLimit, errnoCode, type VolumeErrorCode, VolumeError } from '../errors.js';

const debug = createDebug('salvo:fuse');

const BY_CODE: Record<VolumeErrorCode, number> = {
  BAD_INPUT: Fuse.EINVAL,
  BAD_POLICY: Fuse.EINVAL,
  EXISTS: Fuse.EEXIST,
  NOT_FOUND: Fuse.ENOENT,
  LOCKED: Fuse.EBUSY,
  CORRUPT_SEGMENT: Fuse.EIO,
  CORRUPT_BLOCK: Fuse.EIO,
  CORRUPT_ARCHIVE: Fuse.EIO,
  CORRUPT_CONFIG: Fuse.EIO,
  ARCHIVE_UNAVAILABLE: Fuse.EIO,
  ARCHIVE_CONFLICT: Fuse.EIO,
  NO_SPACE: Fuse.ENOSPC,
  READ_ONLY: Fuse.EROFS,
  CLOSED: Fuse.EIO,
  NOT_MOUNTED: Fuse.EIO,
  RESOURCE_LIMIT: Fuse.EIO,
  INTERRUPTED: Fuse.EIO,
  COMMAND_FAILED: Fuse.EIO,
};

/** The negative errno to answer for `err`, reporting what is not routine. */
export function toErrno(err: unknown, what: string, report: (message: string) => void): number {
  if (err instanceof VolumeError && err.code !== 'RESOURCE_LIMIT') {
    const errno = BY_CODE[err.code];
    if (errno === Fuse.EIO || errno === Fuse.ENOSPC) report(`${what}: ${err.message}`);
    else debug('%s: %s', what, err.message);
    return errno;
  }
  if (errnoCode(err) === 'ENOSPC') {
    report(`${what}: primary storage is full`);
    return Fuse.ENOSPC;
  }
  const limit = asResourceLimit(err);
  if (limit) {
    report(`${what}: ${limit.message} — ${limit.hint}`);
    // What ran out, also when the engine named it already (a slot file that could not be opened).
    const code = errnoCode(limit.cause);
    return code === 'EMFILE' || code === 'ENFILE' ? Fuse.EMFILE : Fuse.ENOMEM;
  }
  report(`${what}: unexpected error: ${(err as Error)?.stack ?? String(err)}`);
  return Fuse.EIO;
}
