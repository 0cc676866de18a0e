/**
 * A volume's files with its slot files in memory, remembering what is durable: writes land in
 * the "OS" (visible to reads at once) and become durable only at datasync. `crash` returns what
 * a machine would find after losing power: the durable bytes plus any subset of the writes since
 * the last datasync, applied in any order, the last one possibly torn. The small files (sidecars,
 * catalog, lock, config) are the real ones in the volume directory, and a crash rewrites them
 * to what a power cut leaves of the writes not made durable (SimSmallFiles below).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FileReader } from '../../lib/archive/archiver.js';
import { FsVolumeFiles, slotsDirectory, type HeldLock, type SmallFileWrite, type VolumeFiles } from '../../lib/volume/files.js';
import type { SlotFile } from '../../lib/volume/slot-file.js';
import { slotFileName } from '../../lib/volume/slot-file.js';

/** Thrown by a slot file when the simulated machine dies in the middle of an operation. */
export class SimulatedCrash extends Error {}

/**
 * Counts I/O calls down; at zero every further write, datasync or truncate dies. The death
 * may come in background work (the archiver recycling a slot), so `died` tells the harness.
 */
export class CrashTrigger {
  private fire!: () => void;
  readonly died = new Promise<void>((resolve) => (this.fire = resolve));

  constructor(public remaining = Infinity) {}

  tick(): void {
    if (--this.remaining < 0) {
      this.fire();
      throw new SimulatedCrash('power lost');
    }
  }
}

interface PendingWrite {
  position: number;
  bytes: Buffer;
}

export interface CrashStats {
  pendingWrites: number;
  kept: number;
  torn: number;
}

/** SlotFile.readEntries made of plain reads, for slot files kept in memory. */
export function readEntriesInTurn(file: Pick<SlotFile, 'read'>, blocks: Buffer, crcs: Buffer, blockSize: number, position: number): number {
  let n = 0;
  for (let i = 0; i * blockSize < blocks.length; i++) {
    const crc = file.read(crcs, 4 * i, 4, position + n);
    n += crc;
    if (crc < 4) break;
    const block = file.read(blocks, i * blockSize, blockSize, position + n);
    n += block;
    if (block < blockSize) break;
  }
  return n;
}

class SimSlotFile implements SlotFile {
  visible: Buffer;
  durable: Buffer;
  pending: PendingWrite[] = [];

  constructor(
    readonly path: string,
    size: number,
    private readonly trigger: CrashTrigger,
    image?: Buffer,
  ) {
    this.durable = image ? Buffer.from(image) : Buffer.alloc(size);
    this.visible = Buffer.from(this.durable);
  }

  read(into: Buffer, offset: number, length: number, position: number): number {
    const n = Math.max(0, Math.min(length, this.visible.length - position));
    this.visible.copy(into, offset, position, position + n);
    return n;
  }

  async readAsync(into: Buffer, offset: number, length: number, position: number): Promise<number> {
    return this.read(into, offset, length, position);
  }

  // Simulated bytes have no descriptor for a worker to read: read here.
  async readThrough(_reader: FileReader, into: Buffer, position: number): Promise<number> {
    return this.read(into, 0, into.length, position);
  }

  readEntries(blocks: Buffer, crcs: Buffer, blockSize: number, position: number): number {
    return readEntriesInTurn(this, blocks, crcs, blockSize, position);
  }

  write(parts: Buffer[], position: number): number {
    this.trigger.tick();
    const bytes = Buffer.concat(parts);
    if (position + bytes.length > this.visible.length) throw new Error('write past the end of a slot');
    bytes.copy(this.visible, position);
    this.pending.push({ position, bytes });
    return bytes.length;
  }

  datasync(): void {
    this.trigger.tick();
    for (const w of this.pending) w.bytes.copy(this.durable, w.position);
    this.pending = [];
  }

  async datasyncAsync(): Promise<void> {
    this.datasync();
  }

  /** Truncation is a metadata change the simulation treats as durable at once. */
  truncate(length: number): void {
    this.trigger.tick();
    this.visible.fill(0, Math.min(length, this.visible.length));
    this.durable.fill(0, Math.min(length, this.durable.length));
    this.pending = this.pending
      .filter((w) => w.position < length)
      .map((w) => ({ position: w.position, bytes: w.bytes.subarray(0, Math.min(w.bytes.length, length - w.position)) }));
  }

  async truncateAsync(length: number): Promise<void> {
    this.truncate(length);
  }

  /** A hole is a metadata change too: durable at once; writes not yet durable land as zeros there. */
  async punchHoleAsync(offset: number, length: number): Promise<void> {
    this.trigger.tick();
    const end = Math.min(offset + length, this.visible.length);
    this.visible.fill(0, offset, end);
    this.durable.fill(0, offset, end);
    this.pending = this.pending.map((w) => {
      const from = Math.max(offset, w.position);
      const to = Math.min(end, w.position + w.bytes.length);
      if (from >= to) return w;
      const bytes = Buffer.from(w.bytes);
      bytes.fill(0, from - w.position, to - w.position);
      return { position: w.position, bytes };
    });
  }

  /** No page cache here: reading ahead changes nothing a crash could show. */
  async prefetchAsync(): Promise<void> {}

  allocatedBytes(): number {
    return this.visible.length;
  }

  close(): void {}
}

const SECTOR = 512;

/** A small file's bytes: `durable` survives a power cut; `pending`, appended since the last sync after it, may land in part. */
interface SimInode {
  durable: Buffer;
  pending: Buffer;
}

/** What a name is bound to: surely `durable`, or any of the bindings made since (creations, renames over it, removals). */
interface SimName {
  durable: SimInode | null;
  since: (SimInode | null)[];
}

/**
 * The small files, as a disk keeps them through a power cut: the real files hold what reads see;
 * beside them, for each file touched, its inodes and bindings. An append or a replace without
 * `durable` may be lost or torn; a replace's rename may be undone; a durable one survives. Every
 * write, sync and directory sync is an I/O call the trigger counts, so a crash can fall between a
 * write and its sync.
 */
class SimSmallFiles {
  private readonly names = new Map<string, SimName>();

  constructor(
    private readonly disk: FsVolumeFiles,
    private readonly trigger: CrashTrigger,
  ) {}

  read(name: string): Buffer | null {
    return this.disk.read(name);
  }

  append(name: string, bytes: Buffer, options: SmallFileWrite = {}): void {
    this.trigger.tick();
    const entry = this.name(name);
    let inode = bound(entry);
    const created = inode === null;
    if (!inode) entry.since.push((inode = { durable: Buffer.alloc(0), pending: Buffer.alloc(0) }));
    inode.pending = Buffer.concat([inode.pending, bytes]);
    this.disk.append(name, bytes);
    if (!options.durable) return;
    this.sync(inode);
    if (created) this.syncDirectory(name);
  }

  replace(name: string, bytes: Buffer, options: SmallFileWrite = {}): void {
    this.trigger.tick();
    const inode: SimInode = { durable: Buffer.alloc(0), pending: Buffer.from(bytes) };
    if (options.durable) this.sync(inode);
    this.name(name).since.push(inode); // the rename
    this.disk.replace(name, bytes);
    if (options.durable) this.syncDirectory(name);
  }

  /** One simulated process at a time, and a power cut ends the one that held it: the lock is always free. */
  lock(name: string, bytes: Buffer): HeldLock {
    this.replace(name, bytes);
    return { release: () => this.remove(name) };
  }

  remove(name: string): void {
    this.trigger.tick();
    this.name(name).since.push(null);
    this.disk.remove(name);
  }

  /** Rewrites each file touched to what a power cut leaves of it now. */
  crash(random: () => number): void {
    for (const [name, entry] of this.names) {
      // The bindings since the last directory sync land in order, up to any one of them.
      const k = Math.floor(random() * (entry.since.length + 1));
      const inode = k === 0 ? entry.durable : entry.since[k - 1]!;
      if (!inode) {
        fs.rmSync(this.disk.path(name), { force: true });
        continue;
      }
      // Of the bytes not synced, all, none, or a torn part reach the disk; a disk writes whole
      // sectors, so a tear falls at a sector boundary of the file (a pid in `lock` is never cut in two).
      const r = random();
      const torn = Math.floor((inode.durable.length + Math.floor(random() * inode.pending.length)) / SECTOR) * SECTOR - inode.durable.length;
      const kept = r < 1 / 3 ? inode.pending.length : r < 2 / 3 ? 0 : Math.max(0, torn);
      fs.writeFileSync(this.disk.path(name), Buffer.concat([inode.durable, inode.pending.subarray(0, kept)]), { mode: 0o600 });
    }
  }

  /** The file's state, taken from the disk (durable, as a crash or a clean close left it) when first touched. */
  private name(name: string): SimName {
    let entry = this.names.get(name);
    if (!entry) {
      const bytes = this.disk.read(name);
      entry = { durable: bytes ? { durable: bytes, pending: Buffer.alloc(0) } : null, since: [] };
      this.names.set(name, entry);
    }
    return entry;
  }

  private sync(inode: SimInode): void {
    this.trigger.tick();
    inode.durable = Buffer.concat([inode.durable, inode.pending]);
    inode.pending = Buffer.alloc(0);
  }

  /** fsync of the directory holding `name`: every binding of a name in it is durable. */
  private syncDirectory(name: string): void {
    this.trigger.tick();
    for (const [other, entry] of this.names) {
      if (path.dirname(other) !== path.dirname(name)) continue;
      entry.durable = bound(entry);
      entry.since = [];
    }
  }
}

function bound(entry: SimName): SimInode | null {
  return entry.since.length > 0 ? entry.since[entry.since.length - 1]! : entry.durable;
}

export class SimSlotFiles implements VolumeFiles {
  private readonly files = new Map<number, SimSlotFile>();
  private readonly disk: FsVolumeFiles;
  private readonly small: SimSmallFiles;

  constructor(
    readonly dir: string,
    private readonly sizeBytes: number,
    readonly trigger = new CrashTrigger(),
  ) {
    this.disk = new FsVolumeFiles(dir);
    this.small = new SimSmallFiles(this.disk, trigger);
  }

  open(index: number): SlotFile {
    let file = this.files.get(index);
    if (!file) {
      file = new SimSlotFile(path.join(slotsDirectory(this.dir), slotFileName(index)), this.sizeBytes, this.trigger);
      this.files.set(index, file);
    }
    return file;
  }

  createSlot(): void {
    throw new Error('the simulation opens the slots of a volume made on disk');
  }

  path(name: string): string {
    return this.disk.path(name);
  }

  read(name: string): Buffer | null {
    return this.small.read(name);
  }

  replace(name: string, bytes: Buffer, options?: SmallFileWrite): void {
    this.small.replace(name, bytes, options);
  }

  append(name: string, bytes: Buffer, options?: SmallFileWrite): void {
    this.small.append(name, bytes, options);
  }

  lock(name: string, bytes: Buffer): HeldLock {
    return this.small.lock(name, bytes);
  }

  remove(name: string): void {
    this.small.remove(name);
  }

  /** What survives a power loss now, as new files; `random` picks which unsynced writes land. */
  crash(random: () => number, stats: CrashStats): SimSlotFiles {
    // The old process is gone too: what its timers still try (an idle copy-forward's roll) dies at
    // the first I/O, before it could write a sidecar beside the slots the next volume opens.
    this.trigger.remaining = 0;
    this.small.crash(random);
    const after = new SimSlotFiles(this.dir, this.sizeBytes);
    for (const [index, file] of this.files) {
      const image = Buffer.from(file.durable);
      const landed = file.pending.filter(() => random() < 0.5);
      // Writes not made durable may reach the disk in any order.
      for (let i = landed.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [landed[i], landed[j]] = [landed[j]!, landed[i]!];
      }
      stats.pendingWrites += file.pending.length;
      landed.forEach((w, i) => {
        const torn = i === landed.length - 1 && random() < 0.5;
        const bytes = torn ? w.bytes.subarray(0, Math.floor(random() * w.bytes.length)) : w.bytes;
        bytes.copy(image, w.position);
        stats.kept++;
        if (torn) stats.torn++;
      });
      after.files.set(index, new SimSlotFile(file.path, this.sizeBytes, after.trigger, image));
    }
    return after;
  }
}
