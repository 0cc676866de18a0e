/**
 * One process at a time per volume: `lock` in the volume directory holds the owner's pid.
 * A lock whose process is gone (a killed mount) is stale and is taken over.
 */
import fs from 'node:fs';
import { VolumeError, errnoCode } from '../errors.js';
import { FsVolumeFiles, LOCK_FILE, type VolumeFiles } from './files.js';

export class VolumeLock {
  private constructor(private readonly files: VolumeFiles) {}

  static acquire(files: VolumeFiles): VolumeLock {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (files.create(LOCK_FILE, Buffer.from(`${process.pid}\n`))) return new VolumeLock(files);
      const owner = VolumeLock.owner(files);
      if (owner !== null && owner !== process.pid && isProcessAlive(owner)) {
        throw new VolumeError('LOCKED', `volume ${files.dir} is in use by process ${owner}`, {
          hint: 'unmount it first (`salvo unmount <mountpoint>`), or read its archive instead',
        });
      }
      files.remove(LOCK_FILE); // stale: its process is gone
    }
    throw new VolumeError('LOCKED', `volume ${files.dir}: could not take the lock`);
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
    this.files.remove(LOCK_FILE);
  }
}

/** Whether process `pid` runs (another user's counts). A killed mount may linger as a zombie until its parent reaps it: that does not count as alive. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
