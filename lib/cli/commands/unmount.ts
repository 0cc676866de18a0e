import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { VolumeError, errnoCode, isVolumeError } from '../../errors.js';
import { controlRequest, resolveControl } from '../../agent/control.js';
import { isMountpoint, isSalvoMount, mountAtPath } from '../../fuse/mount-table.js';
import { print } from '../output.js';

const run = promisify(execFile);

/** Until the process is reaped, not only until it exits (unlike VolumeLock's isProcessAlive): "unmounted" means it is gone. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/**
 * Asks the mount to flush and exit; a dead mount (its process killed) is detached directly.
 * Only salvo's own mounts: anything else mounted there is refused, untouched. Returns once the
 * serving process is gone too: it closes the volume after the FUSE unmount (flush, the archive
 * upload in flight, the lock), and "unmounted" means all of that is done. `target` may also be
 * the volume directory of a running mount.
 */
export async function unmount(target: string): Promise<string> {
  const entry = mountAtPath(target);
  if (entry && !isSalvoMount(entry)) {
    throw VolumeError.badInput(`${target} is not a salvo mount (it is a ${entry.type} filesystem from ${entry.source}); salvo unmounts only its own`, 'use umount for other filesystems');
  }
  if (!entry && !(fs.existsSync(path.join(target, 'volume.json')) && fs.existsSync(path.join(target, 'slots')))) {
    throw new VolumeError('NOT_FOUND', `${target} is not mounted`, { hint: 'give the mountpoint of `salvo mount` (`findmnt -t fuse.salvo` lists them)' });
  }
  let mountpoint = entry?.mountpoint ?? null;
  let pid: number | undefined;
  try {
    const control = await resolveControl(target);
    pid = control.pid;
    if (mountpoint === null) mountpoint = (await controlRequest<{ status: { mountpoint?: string } }>(control.socket, { cmd: 'status' }, 10_000)).status.mountpoint ?? null;
    await controlRequest(control.socket, { cmd: 'unmount' });
  } catch (err) {
    // The serving process is gone (killed): nothing to flush, the dead FUSE mount is detached.
    if (!isVolumeError(err, 'NOT_MOUNTED') || !entry) throw err;
    await run('fusermount', ['-u', '-z', entry.mountpoint]);
  }
  const stillThere = () => (mountpoint !== null && isMountpoint(mountpoint)) || (pid !== undefined && isRunning(pid));
  for (let waited = 0; stillThere(); waited += 100) {
    if (waited > 60_000) throw new VolumeError('COMMAND_FAILED', `${mountpoint ?? target} ${mountpoint !== null && isMountpoint(mountpoint) ? 'is still mounted' : `was unmounted but its process ${pid} still runs`} after 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return mountpoint ?? path.resolve(target);
}

export function registerUnmount(program: Command): void {
  program
    .command('unmount')
    .alias('umount')
    .description('flush the volume and stop its mount (salvo mounts only; refused while a loop device uses it)')
    .argument('<mountpoint>', 'where `salvo mount` mounted it (or its volume directory)')
    .addHelpText('after', '\nExample:\n  losetup -d /dev/loop0 && salvo unmount /mnt/salvo')
    .action(async (mountpoint: string) => {
      print(`unmounted ${await unmount(mountpoint)}`);
    });
}
