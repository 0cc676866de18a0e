/**
 * The bytes of one segment slot, behind a small interface so that the engine runs the same
 * over real files and over the fault-injecting simulation of test/faults/ (which cuts, tears
 * and reorders writes that were not made durable).
 */
import fs from 'node:fs';
import path from 'node:path';
import { VolumeError, errnoCode } from '../errors.js';
import type { FileReader } from '../archive/archiver.js';
import { native } from '../util/native.js';

export interface SlotFile {
  /** A path for messages; the sidecar summary lives beside it. */
  readonly path: string;
  /** Reads up to `length` bytes at `position`; returns how many (fewer only at the end). */
  read(into: Buffer, offset: number, length: number, position: number): number;
  /** The same, off the event loop (for large reads). */
  readAsync(into: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Fills `into` (shared memory) from `position` through `reader`; returns how many bytes (fewer only at the end). */
  readThrough(reader: FileReader, into: Buffer, position: number): Promise<number>;
  /**
   * Reads consecutive block entries (a u32 CRC, then `blockSize` bytes) at `position` in one
   * scatter read: the blocks back to back into `blocks`, the CRC of the i-th at `crcs[4 i]`.
   * Returns the bytes read (fewer only at the end). At most 512 entries.
   */
  readEntries(blocks: Buffer, crcs: Buffer, blockSize: number, position: number): number;
  /** Writes all of `parts` at `position` and returns the bytes written (fewer: the disk is full). */
  write(parts: Buffer[], position: number): number;
  /** Makes every write so far durable (fdatasync). */
  datasync(): void;
  /** The same, on the thread pool, so the event loop keeps serving reads meanwhile. */
  datasyncAsync(): Promise<void>;
  /** Sets the length (a hole when it grows). */
  truncate(length: number): void;
  /** The same on the thread pool: cutting a full 64 MiB slot takes tens of milliseconds. */
  truncateAsync(length: number): Promise<void>;
  /**
   * Makes [offset, offset + length) a hole, on the thread pool: a metadata change, whole or not
   * at all after a crash, like a truncate. Rejects with code EOPNOTSUPP where the filesystem cannot.
   */
  punchHoleAsync(offset: number, length: number): Promise<void>;
  /** Starts reading [offset, offset + length) into the page cache, off the event loop; a hint that may do nothing. */
  prefetchAsync(offset: number, length: number): Promise<void>;
  close(): void;
}

/** Opens the slot files of a volume. */
export interface SlotFiles {
  /** Opens slot `index`; NOT_FOUND when it does not exist. */
  open(index: number): SlotFile;
}

export function slotFileName(index: number): string {
  return `${index.toString().padStart(4, '0')}.slot`;
}

/** Slot files in a directory: `slots/NNNN.slot`. */
export class FsSlotFiles implements SlotFiles {
  constructor(readonly slotsDir: string) {}

  /** Creates a blank sparse slot file; fails if it exists. */
  createSlot(index: number, sizeBytes: number): void {
    const fd = fs.openSync(path.join(this.slotsDir, slotFileName(index)), 'wx', 0o600);
    try {
      fs.ftruncateSync(fd, sizeBytes);
    } finally {
      fs.closeSync(fd);
    }
  }

  open(index: number): SlotFile {
    const file = path.join(this.slotsDir, slotFileName(index));
    try {
      return new FsSlotFile(file, fs.openSync(file, 'r+'));
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EMFILE' || code === 'ENFILE') {
        throw new VolumeError('RESOURCE_LIMIT', `segment slot ${file} cannot be opened: too many open files (${code})`, {
          cause: err,
          hint: 'raise the limit of open files (ulimit -n; LimitNOFILE= in a systemd unit)',
        });
      }
      if (code !== 'ENOENT') throw err; // permission, I/O: what it is, not a damaged volume
      throw new VolumeError('NOT_FOUND', `segment slot ${file} is missing`, {
        cause: err,
        hint: 'the volume directory is incomplete; restore it from the archive with `salvo restore`',
      });
    }
  }
}

class FsSlotFile implements SlotFile {
  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  read(into: Buffer, offset: number, length: number, position: number): number {
    return fs.readSync(this.fd, into, offset, length, position);
  }

  readAsync(into: Buffer, offset: number, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => fs.read(this.fd, into, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
  }

  readThrough(reader: FileReader, into: Buffer, position: number): Promise<number> {
    return reader.readFile(this.fd, into, position);
  }

  readEntries(blocks: Buffer, crcs: Buffer, blockSize: number, position: number): number {
    return native().readEntries(this.fd, blocks, crcs, blockSize, position);
  }

  write(parts: Buffer[], position: number): number {
    return parts.length === 1 ? fs.writeSync(this.fd, parts[0]!, 0, parts[0]!.length, position) : fs.writevSync(this.fd, parts, position);
  }

  datasync(): void {
    fs.fdatasyncSync(this.fd);
  }

  datasyncAsync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  truncate(length: number): void {
    fs.ftruncateSync(this.fd, length);
  }

  truncateAsync(length: number): Promise<void> {
    return new Promise((resolve, reject) => fs.ftruncate(this.fd, length, (err) => (err ? reject(err) : resolve())));
  }

  punchHoleAsync(offset: number, length: number): Promise<void> {
    return native().punchHole(this.fd, offset, length);
  }

  prefetchAsync(offset: number, length: number): Promise<void> {
    return native().prefetch(this.fd, offset, length);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
