/**
 * Operating errors: the expected failures of a storage system (a corrupt segment, a full disk,
 * an unreachable archive, bad input). Each carries a `code` from one union, a message that
 * starts with that code, an optional `hint` telling the operator what to do, and a `cause`.
 * Programmer errors are `node:assert` failures instead, and are never caught.
 */

export type VolumeErrorCode =
  | 'BAD_INPUT' // a wrong argument: size, path, label, policy
  | 'BAD_POLICY' // a segment policy that cannot hold the volume
  | 'EXISTS' // init over an existing volume or archive
  | 'NOT_FOUND' // no volume, no archive object, no such synch point
  | 'LOCKED' // the volume is in use by another process
  | 'CORRUPT_SEGMENT' // a segment header, record or summary failed its checksum
  | 'CORRUPT_BLOCK' // a block's data failed its checksum
  | 'CORRUPT_ARCHIVE' // an archived object failed its checksum or does not parse
  | 'CORRUPT_CONFIG' // volume.json is not a salvo volume of a known version
  | 'ARCHIVE_UNAVAILABLE' // the backing store cannot be reached or refused a request
  | 'ARCHIVE_CONFLICT' // the archive already holds another volume or the object exists
  | 'NO_SPACE' // primary storage is full
  | 'READ_ONLY' // a write to a snapshot
  | 'CLOSED' // the volume was closed
  | 'NOT_MOUNTED' // no mount answers at that path
  | 'RESOURCE_LIMIT' // a limit of the system (open files) stands in the way
  | 'INTERRUPTED' // stopped by a signal before it was done
  | 'COMMAND_FAILED'; // an external command (fsfreeze, mkfs, hook) failed

export class VolumeError extends Error {
  readonly code: VolumeErrorCode;
  readonly hint: string | undefined;

  constructor(code: VolumeErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(`${code}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VolumeError';
    this.code = code;
    this.hint = options.hint;
  }

  static badInput(message: string, hint?: string): VolumeError {
    return new VolumeError('BAD_INPUT', message, { hint });
  }

  static corruptSegment(where: string, what: string): VolumeError {
    return new VolumeError('CORRUPT_SEGMENT', `${where}: ${what}`, {
      hint: 'run `salvo verify` to list every damaged segment',
    });
  }

  static corruptBlock(where: string, block: number): VolumeError {
    return new VolumeError('CORRUPT_BLOCK', `${where}: block ${block} failed its checksum`, {
      hint: 'the block is not served; run `salvo verify` and restore an earlier synch point',
    });
  }

  static corruptArchive(key: string, what: string): VolumeError {
    return new VolumeError('CORRUPT_ARCHIVE', `archive object ${key}: ${what}`, {
      hint: 'run `salvo verify` on the archive to list every damaged object',
    });
  }

  static archiveUnavailable(what: string, cause?: unknown): VolumeError {
    return new VolumeError('ARCHIVE_UNAVAILABLE', what, {
      cause,
      hint: 'check that the archive is reachable and that salvo may write there',
    });
  }
}

/** Narrows an unknown thrown value to a VolumeError with one of `codes`. */
export function isVolumeError(err: unknown, ...codes: VolumeErrorCode[]): err is VolumeError {
  return err instanceof VolumeError && (codes.length === 0 || codes.includes(err.code));
}

/** The errno-style code of a Node system error (`ENOENT`, `ENOSPC`, ...), if it has one. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

export const RAISE_OPEN_FILES = 'raise the limit of open files (ulimit -n; LimitNOFILE= in a systemd unit)';

/**
 * A system resource run out, wherever it shows: memory (ENOMEM, or a typed array V8 could not
 * allocate) or descriptors (EMFILE, ENFILE). Named for what it is, never taken for damage.
 */
export function asResourceLimit(err: unknown): VolumeError | null {
  if (err instanceof VolumeError) return err.code === 'RESOURCE_LIMIT' ? err : null;
  const code = errnoCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ENOMEM' || (err instanceof RangeError && /allocation failed/i.test(message))) {
    return new VolumeError('RESOURCE_LIMIT', `out of memory: ${message}`, {
      cause: err,
      hint: 'give salvo more memory (close other programs, or mount with a smaller --cache)',
    });
  }
  if (code === 'EMFILE' || code === 'ENFILE') return new VolumeError('RESOURCE_LIMIT', `too many open files: ${message}`, { cause: err, hint: RAISE_OPEN_FILES });
  return null;
}
