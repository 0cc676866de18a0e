/**
 * The bytes of one segment slot, behind a small interface so that the engine runs the same
 * over real files and over the fault-injecting simulation of test/faults/ (which cuts, tears
 * and reorders writes that were not made durable).
 */
import fs from 'node:fs';
import path from 'node:path';
import { RAISE_OPEN_FILES, VolumeError, errnoCode } from '../errors.js';
import type { FileReader } from '../archive/archiver.js';
import { native } from '../util/native.js';
import type { DescriptorPool, PooledFile } from './descriptor-pool.js';
import { openFilesLimit, sharedDescriptorPool } from './open-files.js';

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
  /** Bytes of storage the file takes (it is sparse until used). */
  allocatedBytes(): number;
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

/**
 * Slot files in a directory: `slots/NNNN.slot`. Their descriptors come from a pool shared by
 * the process (open-files.ts), opened on first use and closed when the pool needs room, so a
 * volume may have more slot files than the process may open.
 */
export class FsSlotFiles implements SlotFiles {
  constructor(
    readonly slotsDir: string,
    /** Default: the process's shared pool, sized from its limit of open files (taken at the first open). */
    private readonly descriptors?: DescriptorPool,
  ) {}

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
    const pool = this.descriptors ?? sharedDescriptorPool();
    const file = path.join(this.slotsDir, slotFileName(index));
    try {
      return new FsSlotFile(pool, pool.add(file));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw openFailure(pool, file, err);
      throw new VolumeError('NOT_FOUND', `segment slot ${file} is missing`, {
        cause: err,
        hint: 'the volume directory is incomplete; restore it from the archive with `salvo restore`',
      });
    }
  }
}

/** Out of descriptors is a limit of the system, at any time (not only at open), never a damaged volume; other errors are what they are. */
function openFailure(pool: DescriptorPool, file: string, err: unknown): unknown {
  const code = errnoCode(err);
  if (code !== 'EMFILE' && code !== 'ENFILE') return err;
  // /proc/self/limits may not open either now: the limit is named when it can be read.
  const limit = code === 'EMFILE' ? openFilesLimit() : null;
  const which = code === 'EMFILE' ? `this process's limit of open files${limit === null ? '' : ` (${limit})`}` : "the system's limit of open files (fs.file-max)";
  return new VolumeError('RESOURCE_LIMIT', `segment slot ${file} cannot be opened: ${which} is reached (${code}), with ${pool.size} slot files open and none idle`, {
    cause: err,
    hint: code === 'EMFILE' ? RAISE_OPEN_FILES : 'raise fs.file-max (sysctl), or close files other programs hold',
  });
}

/**
 * A slot file whose descriptor the pool may close between uses. Synchronous operations take it
 * (opened again if the pool closed it); operations off the event loop pin it until they end.
 */
class FsSlotFile implements SlotFile {
  constructor(
    private readonly pool: DescriptorPool,
    private readonly file: PooledFile,
  ) {}

  get path(): string {
    return this.file.path;
  }

  /** The descriptor, for a synchronous operation. */
  private fd(): number {
    try {
      return this.pool.take(this.file);
    } catch (err) {
      throw this.reopenFailure(err);
    }
  }

  /** Runs `operation` with the descriptor pinned, so that the pool closes it only after the operation ends. */
  private async pinned<T>(operation: (fd: number) => Promise<T>): Promise<T> {
    let fd: number;
    try {
      fd = this.pool.pin(this.file);
    } catch (err) {
      throw this.reopenFailure(err);
    }
    try {
      return await operation(fd);
    } finally {
      this.pool.unpin(this.file);
    }
  }

  read(into: Buffer, offset: number, length: number, position: number): number {
    return fs.readSync(this.fd(), into, offset, length, position);
  }

  readAsync(into: Buffer, offset: number, length: number, position: number): Promise<number> {
    return this.pinned((fd) => new Promise((resolve, reject) => fs.read(fd, into, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)))));
  }

  readThrough(reader: FileReader, into: Buffer, position: number): Promise<number> {
    return this.pinned((fd) => reader.readFile(fd, into, position));
  }

  readEntries(blocks: Buffer, crcs: Buffer, blockSize: number, position: number): number {
    return native().readEntries(this.fd(), blocks, crcs, blockSize, position);
  }

  write(parts: Buffer[], position: number): number {
    const fd = this.fd();
    return parts.length === 1 ? fs.writeSync(fd, parts[0]!, 0, parts[0]!.length, position) : fs.writevSync(fd, parts, position);
  }

  datasync(): void {
    fs.fdatasyncSync(this.fd());
  }

  datasyncAsync(): Promise<void> {
    return this.pinned((fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))));
  }

  truncate(length: number): void {
    fs.ftruncateSync(this.fd(), length);
  }

  truncateAsync(length: number): Promise<void> {
    return this.pinned((fd) => new Promise((resolve, reject) => fs.ftruncate(fd, length, (err) => (err ? reject(err) : resolve()))));
  }

  punchHoleAsync(offset: number, length: number): Promise<void> {
    return this.pinned((fd) => native().punchHole(fd, offset, length));
  }

  prefetchAsync(offset: number, length: number): Promise<void> {
    return this.pinned((fd) => native().prefetch(fd, offset, length));
  }

  allocatedBytes(): number {
    return fs.statSync(this.file.path).blocks * 512;
  }

  close(): void {
    this.pool.close(this.file);
  }

  /** Opening the file again failed: out of descriptors, or the file was removed from under the open volume. */
  private reopenFailure(err: unknown): unknown {
    if (errnoCode(err) !== 'ENOENT') return openFailure(this.pool, this.path, err);
    return new VolumeError('NOT_FOUND', `segment slot ${this.path} is gone from under the open volume`, {
      cause: err,
      hint: 'something removed it; stop the mount and restore the volume from the archive with `salvo restore`',
    });
  }
}

