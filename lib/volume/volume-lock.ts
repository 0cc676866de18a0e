/**
 * One process at a time per volume: the kernel's lock (flock) on `lock` in the volume directory,
 * which holds the owner's pid for messages. The kernel drops the lock when its process ends,
 * however it ends, so a killed mount leaves nothing to take over, and two processes starting at
 * once cannot both take it.
 */
import { VolumeError } from '../errors.js';
import { FsVolumeFiles, LOCK_FILE, type HeldLock, type VolumeFiles } from './files.js';

const OWNER_WAIT_MS = 500;
const OWNER_POLL_MS = 10;

export class VolumeLock {
  private constructor(private readonly held: HeldLock) {}

  static acquire(files: VolumeFiles): VolumeLock {
    const held = files.lock(LOCK_FILE, Buffer.from(`${process.pid}\n`));
    if (!held) throw inUse(files.dir, VolumeLock.ownerOfHeld(files));
    return new VolumeLock(held);
  }

  /**
   * The pid of a lock just found held: its holder writes it right after taking the lock, so a
   * process that lost a race by a moment waits that moment (at most OWNER_WAIT_MS) to name it.
   */
  private static ownerOfHeld(files: VolumeFiles): number | null {
    for (let waited = 0; ; waited += OWNER_POLL_MS) {
      const owner = VolumeLock.owner(files);
      if (owner !== null || waited >= OWNER_WAIT_MS) return owner;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, OWNER_POLL_MS);
    }
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
