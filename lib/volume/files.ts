/**
 * Every file of a volume directory goes through one interface: the segment slots (slot-file.ts)
 * and the small files beside them — `volume.json`, `catalog.jsonl`, `lock`, and each sealed
 * segment's summary sidecar `slots/NNNN.sum`. The directory on disk is the default; the fault
 * simulation gives its own, to lose or tear what was not made durable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import { native } from '../util/native.js';
import type { DescriptorPool } from './descriptor-pool.js';
import { FsSlotFiles, slotFileName, type SlotFiles } from './slot-file.js';

export const CONFIG_FILE = 'volume.json';
export const CATALOG_FILE = 'catalog.jsonl';
export const LOCK_FILE = 'lock';
export const SLOTS_DIR = 'slots';

/** Where the slot files of the volume in `dir` are. */
export function slotsDirectory(dir: string): string {
  return path.join(dir, SLOTS_DIR);
}

/** The summary sidecar of slot `index`. */
export function sidecarName(index: number): string {
  return `${SLOTS_DIR}/${slotFileName(index).replace(/\.slot$/, '.sum')}`;
}

/** How a write of a small file meets a power cut. */
export interface SmallFileWrite {
  /**
   * On disk when the call returns: an append is fdatasynced (and the directory fsynced when the
   * append created the file); a replace fsyncs the new file before the rename and the directory
   * after it. Without it a power cut may lose or tear the write, or (a replace) keep the old file.
   * Off by default: the sidecars are caches recovery rebuilds, and a sync costs a disk flush.
   */
  durable?: boolean;
}

export interface HeldLock {
  /** Removes the file and lets the lock go. */
  release(): void;
}

export interface VolumeFiles extends SlotFiles {
  /** The volume directory, for messages. */
  readonly dir: string;
  /** Where `name` is, for messages. */
  path(name: string): string;
  /** Creates a blank sparse slot file; fails if it exists. */
  createSlot(index: number, sizeBytes: number): void;
  /** The whole of a small file, or null when it does not exist. */
  read(name: string): Buffer | null;
  /** Replaces a small file whole: a reader sees the old bytes or the new, never a mix. */
  replace(name: string, bytes: Buffer, options?: SmallFileWrite): void;
  append(name: string, bytes: Buffer, options?: SmallFileWrite): void;
  /**
   * Takes the lock of small file `name` (made if need be) and writes `bytes` in it; null when
   * another process holds it. Held until released or the process ends.
   */
  lock(name: string, bytes: Buffer): HeldLock | null;
  /** Removes a small file; a missing one is not an error. */
  remove(name: string): void;
}

/** The volume's files in its directory on disk. */
export class FsVolumeFiles extends FsSlotFiles implements VolumeFiles {
  constructor(
    readonly dir: string,
    descriptors?: DescriptorPool,
  ) {
    super(path.join(dir, SLOTS_DIR), descriptors);
  }

  path(name: string): string {
    return path.join(this.dir, name);
  }

  read(name: string): Buffer | null {
    try {
      return fs.readFileSync(this.path(name));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return null;
      throw err;
    }
  }

  replace(name: string, bytes: Buffer, options: SmallFileWrite = {}): void {
    const target = this.path(name);
    const temporary = `${target}.tmp`;
    const fd = fs.openSync(temporary, 'w', 0o600);
    try {
      fs.writeFileSync(fd, bytes);
      // The new bytes reach the disk before the name does, so a power cut after the rename never
      // finds the file empty or torn; the directory's fsync then makes the rename itself durable.
      if (options.durable) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temporary, target);
    if (options.durable) syncDirectory(path.dirname(target));
  }

  append(name: string, bytes: Buffer, options: SmallFileWrite = {}): void {
    const target = this.path(name);
    let created = false;
    let fd: number;
    try {
      fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_APPEND);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      created = true;
    }
    try {
      fs.writeFileSync(fd, bytes);
      if (options.durable) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // fdatasync keeps the bytes, not a new file's name: that is the directory's.
    if (options.durable && created) syncDirectory(path.dirname(target));
  }

  lock(name: string, bytes: Buffer): HeldLock | null {
    const target = this.path(name);
    for (;;) {
      const fd = fs.openSync(target, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      let held = false;
      try {
        if (!native().lockFile(fd)) return null;
        // Its last holder may have removed the file between this open and this lock: the lock
        // is then on a file no one else sees. Open the name again.
        if (!sameFile(fd, target)) continue;
        fs.ftruncateSync(fd, 0);
        fs.writeSync(fd, bytes, 0, bytes.length, 0);
        held = true;
        return {
          // Removed before the lock goes: whoever locks the old file next finds it gone.
          release: () => {
            fs.rmSync(target, { force: true });
            fs.closeSync(fd);
          },
        };
      } finally {
        if (!held) fs.closeSync(fd);
      }
    }
  }

  remove(name: string): void {
    fs.rmSync(this.path(name), { force: true });
  }
}

/** Whether `name` is the file open as `fd`. */
function sameFile(fd: number, name: string): boolean {
  try {
    return fs.statSync(name).ino === fs.fstatSync(fd).ino;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** fsync of a directory: the names created, renamed or removed in it so far survive a power cut. */
export function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
