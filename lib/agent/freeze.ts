/**
 * A synch point taken with a filesystem frozen (`salvo sync --freeze`), run by the mount itself:
 * the thaw never depends on the `salvo sync` process, which may be killed (SIGKILL cannot be
 * caught) or give up waiting. The filesystem is frozen (fsfreeze: flushed, new writes blocked),
 * the point taken, and the filesystem thawed whatever happens; at the deadline it is thawed even
 * if the point has not come (an archive stall holding the engine), and the point is then not
 * taken at all: a point that says frozen was taken while frozen. Commands run asynchronously:
 * the mount serves the flush the freeze makes through the loop device.
 */
import { execFile } from 'node:child_process';
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import { mountAtPath } from '../fuse/mount-table.js';

const debug = createDebug('salvo:agent');

/** How long a filesystem may stay frozen for one synch point; the agent waits longer (120 s). */
export const FREEZE_DEADLINE_MS = 60_000;

export function runCommand(file: string, args: string[], what: string, timeoutMs = 10 * 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const status = typeof (err as { code?: unknown }).code === 'number' ? `exit status ${(err as { code: number }).code}` : err.message.split('\n')[0];
      const detail = stderr.trim().split('\n').pop();
      reject(new VolumeError('COMMAND_FAILED', `${what} failed (${status})${detail ? `: ${detail}` : ''}`));
    });
  });
}

/** What `--freeze` names must be a mounted filesystem: refused before anything runs. */
export function checkFreezable(mountpoint: string): void {
  const mount = mountAtPath(mountpoint);
  if (!mount) throw VolumeError.badInput(`--freeze ${mountpoint} is not a mountpoint`, 'give the mountpoint of the filesystem on the volume, e.g. --freeze /srv/db');
  if (mount.type.startsWith('fuse')) throw VolumeError.badInput(`--freeze ${mountpoint} is a ${mount.type} mount, which cannot be frozen`, 'give the mountpoint of the filesystem on the volume’s loop device');
}

/**
 * Freezes `mountpoint`, takes the point (`take` is given the check to run just before the SYNCH
 * record is placed: it throws once the filesystem was thawed), and thaws it.
 */
export async function synchFrozen<T>(mountpoint: string, take: (stillFrozen: () => void) => Promise<T>, deadlineMs = FREEZE_DEADLINE_MS): Promise<T> {
  checkFreezable(mountpoint);
  let thawing: Promise<void> | null = null;
  const thaw = () =>
    (thawing ??= runCommand('fsfreeze', ['--unfreeze', mountpoint], `fsfreeze --unfreeze ${mountpoint}`).then(
      () => debug('thawed %s', mountpoint),
      // Not frozen (a --freeze that failed): nothing to thaw.
      (err: unknown) => debug('%s', (err as Error).message),
    ));
  const deadline = setTimeout(() => void thaw(), deadlineMs);
  try {
    await runCommand('fsfreeze', ['--freeze', mountpoint], `fsfreeze --freeze ${mountpoint}`, deadlineMs);
    debug('froze %s', mountpoint);
    return await take(() => {
      if (thawing) {
        throw new VolumeError('COMMAND_FAILED', `${mountpoint} was thawed after ${deadlineMs / 1000} s, before the synch point could be taken: none was taken`, {
          hint: 'see `salvo status` (an archive stall holds synch points back), then sync again',
        });
      }
    });
  } finally {
    clearTimeout(deadline);
    await thaw();
  }
}
