import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { VolumeError, errnoCode, isVolumeError } from '../../errors.js';
import { DRAIN_SECONDS_DEFAULT, controlRequest, resolveControl } from '../../agent/control.js';
import { formatBytes } from '../../format/units.js';
import type { DrainReport } from '../../volume/drain.js';
import { parseDuration } from '../units.js';
import { isMountpoint, isSalvoMount, mountAtPath } from '../../fuse/mount-table.js';
import { print } from '../output.js';

const run = promisify(execFile);

/** Until the process is reaped, not only until it exits: "unmounted" means it is gone. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/**
 * Asks the mount to flush and exit, once the archive has taken what is queued (a volume's mount
 * waits up to `drainSeconds` for it, less when the archive keeps failing) and says what it did
 * not take; a dead mount (its process killed) is detached directly.
 * Only salvo's own mounts: anything else mounted there is refused, untouched. Returns once the
 * serving process is gone too: it closes the volume after the FUSE unmount (flush, the archive
 * upload in flight, the lock), and "unmounted" means all of that is done. `target` may also be
 * the volume directory of a running mount.
 */
export async function unmount(target: string, drainSeconds = DRAIN_SECONDS_DEFAULT): Promise<{ mountpoint: string; archive: DrainReport | null }> {
  const entry = mountAtPath(target);
  if (entry && !isSalvoMount(entry)) {
    throw VolumeError.badInput(`${target} is not a salvo mount (it is a ${entry.type} filesystem from ${entry.source}); salvo unmounts only its own`, 'use umount for other filesystems');
  }
  if (!entry && !(fs.existsSync(path.join(target, 'volume.json')) && fs.existsSync(path.join(target, 'slots')))) {
    throw new VolumeError('NOT_FOUND', `${target} is not mounted`, { hint: 'give the mountpoint of `salvo mount` (`findmnt -t fuse.salvo` lists them)' });
  }
  let mountpoint = entry?.mountpoint ?? null;
  let pid: number | undefined;
  let archive: DrainReport | null = null;
  try {
    const control = await resolveControl(target);
    pid = control.pid;
    if (mountpoint === null) mountpoint = (await controlRequest<{ status: { mountpoint?: string } }>(control.socket, { cmd: 'status' }, 10_000)).status.mountpoint ?? null;
    const progress = process.stderr.isTTY ? showDrain(control.socket) : null;
    try {
      archive = (await controlRequest<{ archive: DrainReport | null }>(control.socket, { cmd: 'unmount', drainSeconds }, drainSeconds * 1000 + 60_000)).archive;
    } finally {
      progress?.stop();
    }
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
  return { mountpoint: mountpoint ?? path.resolve(target), archive };
}

/** On a terminal, what the archive still has to take, every second, while unmount waits for it. */
function showDrain(socket: string): { stop: () => void } {
  const timer = setInterval(() => {
    controlRequest<{ status: { archive?: { bytesWaiting: number; pendingItems: number } } }>(socket, { cmd: 'status' }, 5000).then(
      ({ status }) => status.archive && process.stderr.write(`\rwaiting for the archive to take ${formatBytes(status.archive.bytesWaiting)} (${status.archive.pendingItems} pieces)…   `),
      () => undefined,
    );
  }, 1000);
  return {
    stop: () => {
      clearInterval(timer);
      process.stderr.write('\r\x1b[K');
    },
  };
}

/** What an unmount that could not drain the archive says: the points and bytes on primary only, which ship at the next mount. */
function notOffSite(mountpoint: string, report: DrainReport): VolumeError {
  const points = report.pointsNotOffSite.map((p) => (p.label ? `${p.time} (${p.label})` : p.time));
  const which = points.length === 0 ? 'no synch point, only writes since the newest one' : `synch point${points.length > 1 ? 's' : ''} ${points.join(', ')}`;
  return new VolumeError('ARCHIVE_UNAVAILABLE', `unmounted ${mountpoint}, but the archive did not take ${formatBytes(report.bytesWaiting)} (${report.reason}): ${which} ${points.length === 1 ? 'is' : 'are'} on primary storage only`, {
    hint: 'nothing is lost: it ships at the next `salvo mount` of the volume; restore the archive\'s access (see the mount\'s log) before primary storage could be lost',
  });
}

export function registerUnmount(program: Command): void {
  program
    .command('unmount')
    .alias('umount')
    .description('flush the volume and stop its mount (salvo mounts only; refused while a loop device uses it)')
    .argument('<mountpoint>', 'where `salvo mount` mounted it (or its volume directory)')
    .option('--timeout <duration>', 'wait at most this long for the archive to take what is queued (default 10m); a failing archive ends the wait after 5 s')
    .addHelpText('after', '\nExample:\n  losetup -d /dev/loop0 && salvo unmount /mnt/salvo')
    .action(async (mountpoint: string, options: { timeout?: string }) => {
      const drainSeconds = options.timeout === undefined ? DRAIN_SECONDS_DEFAULT : parseDuration(options.timeout, '--timeout') / 1000;
      const done = await unmount(mountpoint, drainSeconds);
      if (done.archive && !done.archive.drained) throw notOffSite(done.mountpoint, done.archive);
      print(`unmounted ${done.mountpoint}${done.archive ? '; the archive holds every synch point' : ''}`);
    });
}
