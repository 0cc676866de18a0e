/**
 * One process at a time per volume: `lock` in the volume directory holds the owner's pid.
 * A lock whose process is gone (a killed mount) is stale and is taken over.
 */
import fs from 'node:fs';
import path from 'node:path';
import { VolumeError, errnoCode } from '../errors.js';

export class VolumeLock {
  private constructor(private readonly file: string) {}

  static acquire(dir: string): VolumeLock {
    const file = path.join(dir, 'lock');
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        return new VolumeLock(file);
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
      const owner = VolumeLock.owner(dir);
      if (owner !== null && owner !== process.pid && isProcessAlive(owner)) {
        throw new VolumeError('LOCKED', `volume ${dir} is in use by process ${owner}`, {
          hint: 'unmount it first (`salvo unmount <mountpoint>`), or read its archive instead',
        });
      }
      fs.rmSync(file, { force: true }); // stale: its process is gone
    }
    throw new VolumeError('LOCKED', `volume ${dir}: could not take the lock`);
  }

  /** Pid written in the volume's lock, or null when there is none. */
  static owner(dir: string): number | null {
    try {
      const pid = Number.parseInt(fs.readFileSync(path.join(dir, 'lock'), 'utf8'), 10);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  release(): void {
    fs.rmSync(this.file, { force: true });
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
