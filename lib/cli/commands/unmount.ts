import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { VolumeError, errnoCode, isVolumeError } from '../../errors.js';
import { controlRequest, resolveControl } from '../../agent/control.js';
import { isMountpoint } from '../../fuse/mount-table.js';
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
 * Returns once the serving process is gone too: it closes the volume after the FUSE unmount
 * (flush, the archive upload in flight, the lock), and "unmounted" means all of that is done.
 */
export async function unmount(mountpoint: string): Promise<void> {
  const target = path.resolve(mountpoint);
  let pid: number | undefined;
  try {
    const control = await resolveControl(target);
    pid = control.pid;
    await controlRequest(control.socket, { cmd: 'unmount' });
  } catch (err) {
    if (!isVolumeError(err, 'NOT_MOUNTED') || !isMountpoint(target)) throw err;
    await run('fusermount', ['-u', '-z', target]); // the serving process is gone: nothing to flush
  }
  const stillThere = () => isMountpoint(target) || (pid !== undefined && isRunning(pid));
  for (let waited = 0; stillThere(); waited += 100) {
    if (waited > 60_000) throw new VolumeError('COMMAND_FAILED', `${target} ${isMountpoint(target) ? 'is still mounted' : `was unmounted but its process ${pid} still runs`} after 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function registerUnmount(program: Command): void {
  program
    .command('unmount')
    .alias('umount')
    .description('flush the volume and stop its mount')
    .argument('<mountpoint>', 'where `salvo mount` mounted it')
    .addHelpText('after', '\nExample:\n  losetup -d /dev/loop0 && salvo unmount /mnt/salvo')
    .action(async (mountpoint: string) => {
      await unmount(mountpoint);
      print(`unmounted ${path.resolve(mountpoint)}`);
    });
}
