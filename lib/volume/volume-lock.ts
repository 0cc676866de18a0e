/**
 * One process at a time per volume: the kernel's lock (flock) on `lock` in the volume directory,
 * which holds the owner's pid for messages. The kernel drops the lock when its process ends,
 * however it ends, so a killed mount leaves nothing to take over, and two processes starting at
 * once cannot both take it.
 */
import { VolumeError } from '../errors.js';
import { FsVolumeFiles, LOCK_FILE, type HeldLock, type VolumeFiles } from './files.js';

export class VolumeLock {
  private constructor(private readonly held: HeldLock) {}

  static acquire(files: VolumeFiles): VolumeLock {
    const held = files.lock(LOCK_FILE, Buffer.from(`${process.pid}\n`));
    if (!held) throw inUse(files.dir, VolumeLock.owner(files));
    return new VolumeLock(held);
  }

  /** LOCKED, naming the process, when another process holds the volume in `dir`: the check before a mount. */
  static check(dir: string): void {
    VolumeLock.acquire(new FsVolumeFiles(dir)).release();
  }

  /** Pid written in the volume's lock, or null when there is none. */
  static owner(files: VolumeFiles | string): number | null {
    try {
      const bytes = (typeof files === 'string' ? new FsVolumeFiles(files) : files).read(LOCK_FILE);
      const pid = bytes ? Number.parseInt(bytes.toString('utf8'), 10) : NaN;
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  release(): void {
    this.held.release();
  }
}

function inUse(dir: string, owner: number | null): VolumeError {
  return new VolumeError('LOCKED', `volume ${dir} is in use${owner === null ? '' : ` by process ${owner}`}`, {
    hint: 'unmount it first (`salvo unmount <mountpoint>`), or read its archive instead',
  });
}
