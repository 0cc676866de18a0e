/**
 * The Volume: a block volume stored as a self-archiving log (claims 1 and 19). Writes append
 * to the current segment and update the index; reads look blocks up in the index and copy
 * them from the log; synch points are SYNCH records; sealed segments go to the archive.
 *
 * The facade knows nothing of FUSE or the CLI. It takes its archive store, compression pool
 * and clock from the caller, so tests can run it over an in-memory store with a fake clock.
 */
import assert from 'node:assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import createDebug from 'debug';
import { VolumeError, isVolumeError } from '../errors.js';
import { firstBadBlock } from '../format/checksum.js';
import { ObjectCipher, cipherFor } from '../format/object-cipher.js';
import { BLOCK_CRC_SIZE } from '../format/record.js';
import {
  configPath,
  encodeVolumeConfig,
  newVolumeConfig,
  resolvePolicy,
  type PolicyInput,
  type S3Settings,
  readVolumeConfig,
  type VolumeConfig,
} from '../format/volume-config.js';
import { ArchiveKeys, tailChain, type ArchiveStore, type StoreStats } from '../archive/archive-store.js';
import { SEGMENT_HEADER_SIZE } from '../format/segment-header.js';
import { Archiver } from '../archive/archiver.js';
import { fetchArchiveIndex } from '../archive/archive-reader.js';
import { CompressionPool } from '../archive/compression-pool.js';
import { openArchiveStore } from '../archive/open-store.js';
import { BlockIndex } from './block-index.js';
import { copyCheckedEntries, corruptEntry } from './block-copy.js';
import { Log, segmentItem } from './log.js';
import { Mutex } from './mutex.js';
import { recover, slotsDirectory } from './recovery.js';
import { FsSlotFiles, type SlotFiles } from './slot-file.js';
import type { SegmentSlot } from './segment-slot.js';
import { SegmentSource, type SourceStats } from './segment-source.js';
import { SnapshotCache } from './snapshot.js';
import { Catalog, checkLabel, duplicateLabel, type SynchPoint } from './synch-point.js';
import { VolumeLock } from './volume-lock.js';
import { checkOpenFileLimit } from './open-files.js';

const debug = createDebug('salvo:volume');

export interface CreateOptions extends Omit<PolicyInput, 'workingSetSegments'> {
  workingSetSegments?: number;
  archive: string;
  s3?: S3Settings;
  /** Seal archived objects with the key in this file (AES-256-GCM). */
  encryptKeyFile?: string;
  rpoSeconds?: number;
  /** The archive, when the caller already opened it (tests); else opened from `archive`. */
  store?: ArchiveStore;
  /** Stops init between slot files (Ctrl-C), leaving nothing behind. */
  signal?: AbortSignal;
}

export interface OpenOptions {
  store?: ArchiveStore;
  pool?: CompressionPool;
  clock?: () => number;
  /** Told when writes start waiting for the archive (default: written to stderr). */
  onStall?: (message: string) => void;
  /** Told what recovery had to drop, if anything (default: written to stderr). */
  onWarning?: (message: string) => void;
  /** Memory for rebuilt snapshot indexes and fetched archive chunks together (default 256 MiB). */
  cacheBytesMax?: number;
  /** Longest wait between retries of a failed archive upload (default 30 s). */
  retryDelayMsMax?: number;
  /** The segment slots' bytes (default: the files in `<dir>/slots/`); the fault simulation gives its own. */
  slotFiles?: SlotFiles;
  /** The key of an encrypted volume (default: read from the config's `encryptKeyFile`). */
  cipher?: ObjectCipher;
  /** Quiet time after the last write before copy-forward runs ahead (default 100 ms); the crash tests make it short. */
  copyAheadIdleMs?: number;
}


export const CACHE_BYTES_DEFAULT = 256 * 1024 * 1024;
/** Free-form facts of a synch point (host, agent, frozen filesystem) are small. */
const SYNCH_INFO_BYTES_MAX = 4096;

export interface SynchRequest {
  label?: string | null;
  info?: Record<string, string>;
}

/** What `salvo status` shows of a volume: segment states, archive lag, sizes. */
export interface VolumeStatus extends Pick<VolumeConfig, 'volumeId' | 'sizeBytes' | 'blockSizeBytes' | 'segmentSizeBytes' | 'workingSetSegments' | 'spareSegments'> {
  volume: string;
  /** Archived objects are sealed with the volume's key. */
  encrypted: boolean;
  segments: { current: number; active: number; inactive: number; recycle: number; archivedOnPrimary: number; currentSequence: number };
  bytesWritten: number;
  bytesCopiedForward: number;
  indexBytes: number;
  indexBytesPerBlock: number;
  cacheBytes: number;
  /** The bound on cacheBytes (`mount --cache`). */
  cacheBytesMax: number;
  synchPoints: number;
  latest: string | null;
  writesStalledSince: string | null;
  /** Stalls that ended since the volume was opened (writes waited for a free slot), and their total length. */
  writeStalls: { count: number; totalMs: number };
  archive: {
    location: string;
    segmentsArchived: number;
    tailsShipped: number;
    rawBytesArchived: number;
    storedBytesArchived: number;
    compressionRatio: number | null;
    pendingItems: number;
    /** The archiver is at work (shipping, or giving memory back after its queue emptied). */
    busy: boolean;
    /** Raw bytes not in the archive yet: the pieces queued and the current segment's part not queued. */
    bytesWaiting: number;
    /** Of those, the current segment's: queued at the next synch point, RPO tick or roll. */
    bytesInCurrentSegment: number;
    lastError: string | null;
    failingSince: string | null;
    /** The newest synch point the archive alone can restore. */
    recoveryPoint: string | null;
    oldestUnarchivedWriteAgeMs: number | null;
    requests: StoreStats;
  };
  snapshotReads: SourceStats;
}

/** Segments checked at once at open for being in the archive already. */
const SETTLE_CHECKS_MAX = 8;
/** Slot files init creates between two looks at the event loop (a signal, say). */
const SLOTS_BETWEEN_YIELDS = 256;

/** Blocks per scatter read: two iovecs each, within the kernel's 1024 (IOV_MAX). */
const SCATTER_BLOCKS_MAX = 256;

/** Quiet time after the last write before copy-forward runs ahead of the next retirement. */
const COPY_AHEAD_IDLE_MS = 100;
/** Copied forward per turn while idle: a write that arrives meanwhile waits for one batch (or one roll) at most. */
const COPY_AHEAD_BATCH_BYTES = 1024 * 1024;
/**
 * An idle spell copies at most this many segments' worth a roll it drains ahead: when the
 * oldest segments hold mostly live blocks, the rolls that make room for their copies bring
 * more segments due, and this bounds the chase.
 */
const COPY_AHEAD_SEGMENTS_A_ROLL = 2;
/** An idle spell drains as far ahead as the largest of this many recent bursts rolled. */
const COPY_AHEAD_BURSTS_REMEMBERED = 8;

export class Volume {
  private readonly mutex = new Mutex();
  private scratch = Buffer.alloc(0);
  /** CRCs of a whole-block run, as stored: read beside the blocks themselves. */
  private readonly crcs = Buffer.allocUnsafe(SCATTER_BLOCKS_MAX * BLOCK_CRC_SIZE);
  private lastSynchMs = 0;
  private closed = false;
  /** Quiet time before copy-forward runs ahead (OpenOptions.copyAheadIdleMs). */
  private copyAheadIdleMs = COPY_AHEAD_IDLE_MS;
  /** performance.now() of the last write, and the timer that waits for writes to pause (copyAheadWhenIdle). */
  private lastWriteMs = 0;
  private copyAheadTimer: NodeJS.Timeout | null = null;
  /**
   * The idle spell under way, if any: how many rolls ahead it drains and what it may still copy;
   * segmentsSealed less the rolls the writes made since the last spell that finished
   * (copyAheadWhenIdle: the spells' own rolls are not a burst's); and the rolls of the last
   * bursts, newest last.
   */
  private idleSpell: { horizon: number; budgetBytes: number } | null = null;
  private sealedNotByBurst = 0;
  private readonly recentBurstRolls: number[] = [];
  /** Past blocks: from primary storage while slots hold them, else from the archive. */
  readonly source: SegmentSource;
  readonly snapshots: SnapshotCache;

  private constructor(
    readonly dir: string,
    readonly config: VolumeConfig,
    readonly log: Log,
    readonly catalog: Catalog,
    readonly store: ArchiveStore,
    readonly pool: CompressionPool,
    readonly archiver: Archiver,
    private readonly lock: VolumeLock,
    private readonly ownsPool: boolean,
    private readonly clock: () => number,
    private readonly cacheBytesMax: number,
    readonly cipher: ObjectCipher | null,
  ) {
    this.lastSynchMs = catalog.latest?.timeMs ?? 0;
    // One bound for both caches: half for fetched archive data, half for rebuilt indexes.
    this.source = new SegmentSource(store, pool, log, cacheBytesMax / 2, config.volumeId, cipher);
    this.snapshots = new SnapshotCache(config, this.source, cacheBytesMax / 2);
  }

  /**
   * Creates a volume in `dir` (which must not exist or be empty) and registers it at the root
   * of its archive. Never overwrites a volume or an archive that holds one.
   */
  static async create(dir: string, options: CreateOptions, now = new Date()): Promise<VolumeConfig> {
    const policy = resolvePolicy(options);
    checkOpenFileLimit(policy, 'init', options.workingSetSegments !== undefined);
    if (fs.existsSync(configPath(dir))) {
      throw new VolumeError('EXISTS', `${dir} already holds a salvo volume`, { hint: 'choose another directory; init never overwrites a volume' });
    }
    const present = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    if (present.length === 1 && present[0] === 'slots') {
      // What an init killed before its end leaves (a Ctrl-C cleans up; kill -9 or a power cut cannot).
      throw new VolumeError('EXISTS', `${dir} holds the slot files of an init that did not finish (no volume.json)`, { hint: `remove them (rm -r ${slotsDirectory(dir)}) and run init again` });
    }
    if (present.length > 0) throw new VolumeError('EXISTS', `${dir} is not empty`, { hint: 'give init a new or empty directory' });
    const keyFile = options.encryptKeyFile === undefined ? undefined : path.resolve(options.encryptKeyFile);
    const encryption = keyFile === undefined ? undefined : { keyCheck: ObjectCipher.fromKeyFile(keyFile).keyCheck, keyFile };
    const config = newVolumeConfig(policy, options.archive, options.rpoSeconds ?? 0, now, options.s3, encryption);
    const store = options.store ?? (await openArchiveStore(options.archive, options.s3));
    const createdDir = !fs.existsSync(dir);
    let registered = false;
    try {
      // Refused before the slots are made, not after; the put below is what makes it atomic.
      if ((await store.head(ArchiveKeys.descriptor)) !== null) throw archiveHoldsAVolume(store);
      fs.mkdirSync(slotsDirectory(dir), { recursive: true, mode: 0o700 });
      const files = new FsSlotFiles(slotsDirectory(dir));
      for (let i = 0; i < policy.workingSetSegments + policy.spareSegments; i++) {
        files.create(i, policy.segmentSizeBytes);
        // Many slots take seconds: let a signal in, and stop there (cleaned up below).
        if (i % SLOTS_BETWEEN_YIELDS === SLOTS_BETWEEN_YIELDS - 1) await new Promise((resolve) => setImmediate(resolve));
        if (options.signal?.aborted) throw new VolumeError('INTERRUPTED', `init of ${dir} was interrupted; nothing was left behind`);
      }
      const { archive: _location, encryptKeyFile: _keyFile, ...descriptor } = config;
      try {
        await store.put(ArchiveKeys.descriptor, [Buffer.from(encodeVolumeConfig(descriptor))]);
        registered = true;
      } catch (err) {
        throw isVolumeError(err, 'ARCHIVE_CONFLICT') ? archiveHoldsAVolume(store) : err;
      }
      const temporary = `${configPath(dir)}.tmp`;
      fs.writeFileSync(temporary, encodeVolumeConfig(config), { mode: 0o600 });
      fs.renameSync(temporary, configPath(dir));
    } catch (err) {
      // Leave nothing behind that would make a second attempt fail.
      if (registered) await store.delete(ArchiveKeys.descriptor).catch(() => undefined);
      if (createdDir) fs.rmSync(dir, { recursive: true, force: true });
      else if (fs.existsSync(slotsDirectory(dir))) fs.rmSync(slotsDirectory(dir), { recursive: true, force: true });
      throw err;
    } finally {
      if (!options.store) await store.close();
    }
    return config;
  }

  /** Opens a volume, recovering from a crash if there was one, and takes its lock. */
  static async open(dir: string, options: OpenOptions = {}): Promise<Volume> {
    const config = readVolumeConfig(dir);
    if (!options.slotFiles) checkOpenFileLimit(config, 'open');
    if (!config.archive && !options.store) throw new VolumeError('CORRUPT_CONFIG', `${configPath(dir)} names no archive`);
    const cipher = cipherFor(config, options.cipher, `volume ${dir}`);
    const lock = VolumeLock.acquire(dir);
    const clock = options.clock ?? Date.now;
    let recovered;
    try {
      recovered = await recover(options.slotFiles ?? new FsSlotFiles(slotsDirectory(dir)), config, clock);
    } catch (err) {
      lock.release();
      throw err;
    }
    const store = options.store ?? (await openArchiveStore(config.archive!, { endpoint: config.s3Endpoint, pathStyle: config.s3PathStyle }));
    const pool = options.pool ?? new CompressionPool();
    const catalog = Catalog.load(dir);
    const logEnd = new Map(recovered.slots.filter((s) => s.sequence > 0).map((s) => [s.sequence, s.tail]));
    const oldestOnPrimary = Math.min(...logEnd.keys());
    // Points past the end of the recovered log were torn off with it; older ones live in the archive.
    catalog.reconcile(recovered.points, (p) => p.sequence < oldestOnPrimary || (logEnd.has(p.sequence) && p.offset < logEnd.get(p.sequence)!));
    const onStall = options.onStall ?? ((message: string) => process.stderr.write(`salvo: ${message}\n`));
    const log = new Log(config, recovered.slots, recovered.index, recovered.current, recovered.nextRecordSequence, null, { onStall }, clock);
    const archiver = new Archiver({
      store,
      pool,
      version: config.version,
      volumeId: config.volumeId,
      blockSizeBytes: config.blockSizeBytes,
      chunkSizeBytes: config.chunkSizeBytes,
      onArchived: (sequence) => log.markArchived(sequence),
      retryDelayMsMax: options.retryDelayMsMax,
      cipher,
    });
    log.setArchiver(archiver);
    const volume = new Volume(dir, config, log, catalog, store, pool, archiver, lock, !options.pool, clock, options.cacheBytesMax ?? CACHE_BYTES_DEFAULT, cipher);
    if (options.copyAheadIdleMs !== undefined) volume.copyAheadIdleMs = options.copyAheadIdleMs;
    const warn = options.onWarning ?? ((message: string) => process.stderr.write(`salvo: warning: ${message}\n`));
    if (recovered.dropped) warn(`recovery dropped the newest segment (never acknowledged as durable): ${recovered.dropped}`);
    if (recovered.cut) {
      warn(`recovery dropped the torn end of segment ${recovered.current.sequence} (${recovered.cut.bytes} bytes, never acknowledged as durable): ${recovered.cut.reason}`);
    }
    let listed: string[] | null;
    try {
      listed = await volume.checkArchiveIsOurs();
    } catch (err) {
      await volume.close();
      throw err;
    }
    const sealed = recovered.slots.filter((s) => s.state === 'active' || s.state === 'inactive').sort((a, b) => a.sequence - b.sequence);
    if (listed) await volume.adoptShippedTails(listed.filter((k) => k.startsWith('tails/')));
    await volume.queueUnarchived(sealed, new Set(listed ?? []));
    return volume;
  }

  /**
   * One listing of the archive at open: an archive holding a segment this volume has not
   * written yet belongs to another writer (a copy of this volume directory, say), and mounting
   * would make the two fight over its objects. Returns the tail keys, or null when the archive
   * cannot be listed now (the archiver will retry; the check is skipped).
   */
  private async checkArchiveIsOurs(): Promise<string[] | null> {
    let keys: string[];
    try {
      keys = [...(await this.store.list('segments/')), ...(await this.store.list('tails/'))];
    } catch (err) {
      debug('cannot list the archive at open (%s)', (err as Error).message);
      return null;
    }
    const current = this.log.current.sequence;
    for (const key of keys) {
      const sequence = ArchiveKeys.parseSegment(key) ?? ArchiveKeys.parseTail(key)?.sequence;
      if (sequence !== undefined && sequence !== null && (sequence > current || (sequence === current && key.startsWith('segments/')))) {
        throw new VolumeError('ARCHIVE_CONFLICT', `archive ${this.store.location} holds ${key}, newer than this volume's newest segment (${current})`, {
          hint: 'another copy of this volume is writing to the same archive; mount only one, and give a copied volume its own archive',
        });
      }
    }
    return keys;
  }

  /**
   * Queues the sealed segments on primary for the archive, but for those the archive already
   * holds whole (shipped before this open): they count as archived at once, so status tells the
   * truth from the start and nothing is shipped twice. Checked a few at a time.
   */
  private async queueUnarchived(sealed: SegmentSlot[], listed: Set<string>): Promise<void> {
    const settled = new Set<number>();
    const candidates = sealed.filter((s) => listed.has(ArchiveKeys.segment(s.sequence)));
    for (let i = 0; i < candidates.length; i += SETTLE_CHECKS_MAX) {
      const batch = candidates.slice(i, i + SETTLE_CHECKS_MAX);
      const held = await Promise.all(batch.map((slot) => this.archiver.settle(segmentItem(slot))));
      batch.forEach((slot, j) => held[j] && settled.add(slot.sequence));
    }
    for (const slot of sealed) if (!settled.has(slot.sequence)) this.archiver.enqueue(segmentItem(slot));
  }

  /**
   * Learns from the archive which tail pieces earlier runs shipped: where the current
   * segment's shipping resumes, and which pieces to delete once their segments are whole.
   * An unreachable archive only means the next tail starts from the segment's beginning.
   */
  private async adoptShippedTails(keys: string[]): Promise<void> {
    const bySequence = new Map<number, string[]>();
    for (const key of keys) {
      const tail = ArchiveKeys.parseTail(key);
      if (tail) bySequence.set(tail.sequence, [...(bySequence.get(tail.sequence) ?? []), key]);
    }
    for (const [sequence, tails] of bySequence) this.archiver.adoptTails(sequence, tails);
    const current = this.log.current;
    const chain = tailChain(bySequence.get(current.sequence) ?? [], SEGMENT_HEADER_SIZE);
    const last = chain.keys[chain.keys.length - 1];
    if (last && chain.end <= current.tail) {
      try {
        const shipped = await fetchArchiveIndex(this.store, last, this.cipher);
        current.shippedTo = chain.end;
        current.shippedRecordSequence = shipped.summary.nextRecordSequence;
      } catch (err) {
        debug('cannot read tail piece %s (%s); the next tail is shipped whole', last, (err as Error).message);
      }
    }
  }

  get sizeBytes(): number {
    return this.config.sizeBytes;
  }

  /** Changes whenever blocks may have changed (every record appended). */
  get appendStamp(): number {
    return this.log.appendStamp;
  }

  get index(): BlockIndex {
    return this.log.index;
  }

  /** Reads `target.length` bytes at `position` into `target`. CORRUPT_BLOCK if a block fails its checksum. */
  readInto(target: Buffer, position: number): void {
    this.checkOpen();
    this.checkRange(position, target.length);
    const bs = this.config.blockSizeBytes;
    const entrySize = BLOCK_CRC_SIZE + bs;
    const index = this.log.index;
    const end = position + target.length;
    let block = Math.floor(position / bs);
    while (block * bs < end) {
      const slot = index.slotOf(block);
      // Contiguous entries of consecutive blocks in one slot are read with one pread.
      let run = 1;
      if (slot >= 0) {
        const first = index.offsetOf(block);
        while ((block + run) * bs < end && index.slotOf(block + run) === slot && index.offsetOf(block + run) === first + run * entrySize) run++;
        const holder = this.log.slots[slot]!;
        if (block * bs >= position && (block + run) * bs <= end) this.readWholeBlocks(holder, first, block, run, target.subarray(block * bs - position, (block + run) * bs - position));
        else this.readPartialBlocks(holder, first, block, run, target, position);
      } else {
        const from = Math.max(block * bs, position);
        target.fill(0, from - position, Math.min((block + 1) * bs, end) - position);
      }
      block += run;
    }
  }

  /**
   * A run of whole blocks: one scatter read puts each block straight into `into` and its CRC
   * beside the others, so the bytes are copied once (page cache → caller), then checked, in two
   * calls into the addon whatever the run's length (a request is answered in ~60 µs here, and
   * each Buffer made or call made on its way counts).
   */
  private readWholeBlocks(holder: SegmentSlot, first: number, block: number, run: number, into: Buffer): void {
    const bs = this.config.blockSizeBytes;
    const entrySize = BLOCK_CRC_SIZE + bs;
    for (let done = 0; done < run; done += SCATTER_BLOCKS_MAX) {
      const n = Math.min(SCATTER_BLOCKS_MAX, run - done);
      const blocks = n === run ? into : into.subarray(done * bs, (done + n) * bs);
      holder.readEntriesAt(blocks, this.crcs, bs, first + done * entrySize);
      const bad = firstBadBlock(blocks, bs, this.crcs, holder.entrySeed);
      if (bad >= 0) throw corruptEntry({ where: holder.name, offset: first, block, seed: holder.entrySeed }, done + bad, bs);
    }
  }

  /** A run that starts or ends inside a block: whole entries into the scratch buffer, then the covered parts. */
  private readPartialBlocks(holder: SegmentSlot, first: number, block: number, run: number, target: Buffer, position: number): void {
    const entrySize = BLOCK_CRC_SIZE + this.config.blockSizeBytes;
    if (this.scratch.length < run * entrySize) this.scratch = Buffer.allocUnsafe(Math.max(run, 256) * entrySize);
    holder.readAt(this.scratch, 0, run * entrySize, first);
    copyCheckedEntries(this.scratch.subarray(0, run * entrySize), { where: holder.name, offset: first, block, seed: holder.entrySeed }, this.config.blockSizeBytes, target, position);
  }

  read(position: number, length: number): Buffer {
    const target = Buffer.allocUnsafe(length);
    this.readInto(target, position);
    return target;
  }

  /**
   * write() done at once when it can be: block-aligned, nothing else holds the engine, and no
   * roll or retirement is due. Returns false, having done nothing, otherwise (then call write).
   * Throws as write() rejects.
   */
  writeNow(data: Buffer, position: number): boolean {
    const bs = this.config.blockSizeBytes;
    if (this.mutex.busy || position % bs !== 0 || data.length % bs !== 0 || data.length === 0) return false;
    this.checkOpen();
    this.checkRange(position, data.length);
    if (!this.log.appendBlocksNow(position / bs, data)) return false;
    this.wrote();
    return true;
  }

  /** Writes `data` at `position` (any alignment); resolves once the bytes are in the OS. */
  write(data: Buffer, position: number): Promise<void> {
    return this.mutex.run(async () => {
      this.checkOpen();
      this.checkRange(position, data.length);
      if (data.length === 0) return;
      // Quiet time counts from the end of a write: a roll that takes longer than the idle
      // time is part of the burst, not a pause in it (copyAheadWhenIdle).
      try {
        await this.appendAt(data, position);
      } finally {
        this.wrote();
      }
    });
  }

  private appendAt(data: Buffer, position: number): Promise<void> {
    const bs = this.config.blockSizeBytes;
    const first = Math.floor(position / bs);
    if (position % bs === 0 && data.length % bs === 0) return this.log.appendBlocks(first, data);
    // Unaligned: read-modify-write of the blocks it touches.
    const last = Math.floor((position + data.length - 1) / bs);
    const merged = Buffer.allocUnsafe((last - first + 1) * bs);
    this.readInto(merged.subarray(0, bs), first * bs);
    if (last > first) this.readInto(merged.subarray(merged.length - bs), last * bs);
    data.copy(merged, position - first * bs);
    return this.log.appendBlocks(first, merged);
  }

  private wrote(): void {
    this.lastWriteMs = performance.now();
    this.idleSpell = null;
    if (this.copyAheadTimer) return;
    this.copyAheadTimer = setTimeout(() => this.copyAheadWhenIdle(), this.copyAheadIdleMs);
    this.copyAheadTimer.unref();
  }

  /**
   * Once writes pause, makes the copies that the next rolls' retirements would make under
   * writes (Log.copyAhead), a batch per turn, so that those rolls do not stall the writes that
   * come next. It reaches as many rolls ahead as the largest of the last bursts of writes made
   * (at least one): a burst like them then retires without copying, also when small bursts come
   * between big ones (the last burst alone left a big one after small ones copying under the
   * writes). The price: blocks copied ahead that the next burst overwrites before their segment
   * is due were copied for nothing (bench fuse-io, which rewrites one file job after job, one
   * run each: copies made 20% of the bytes written against 14%). Draining further than any
   * recent burst would copy cold blocks more often still.
   */
  private copyAheadWhenIdle(): void {
    this.copyAheadTimer = null;
    if (this.closed) return;
    const quietMs = performance.now() - this.lastWriteMs;
    const again = (ms: number) => {
      this.copyAheadTimer = setTimeout(() => this.copyAheadWhenIdle(), ms);
      this.copyAheadTimer.unref();
    };
    if (quietMs < this.copyAheadIdleMs) return again(this.copyAheadIdleMs - quietMs);
    if (!this.idleSpell) {
      const horizon = Math.min(Math.max(1, this.burstRolls(), ...this.recentBurstRolls), this.log.copyAheadHorizonMax);
      this.idleSpell = { horizon, budgetBytes: horizon * COPY_AHEAD_SEGMENTS_A_ROLL * this.config.segmentSizeBytes };
    }
    const spell = this.idleSpell;
    this.mutex
      .run(async () => {
        if (this.closed || spell !== this.idleSpell) return false;
        const sealed = this.log.counters.segmentsSealed;
        const copied = this.log.counters.bytesCopiedForward;
        const more = await this.log.copyAhead(Math.min(COPY_AHEAD_BATCH_BYTES, spell.budgetBytes), spell.horizon);
        this.sealedNotByBurst += this.log.counters.segmentsSealed - sealed;
        spell.budgetBytes -= this.log.counters.bytesCopiedForward - copied;
        if (more && spell.budgetBytes > 0) return true;
        this.recentBurstRolls.push(this.burstRolls());
        if (this.recentBurstRolls.length > COPY_AHEAD_BURSTS_REMEMBERED) this.recentBurstRolls.shift();
        this.sealedNotByBurst = this.log.counters.segmentsSealed;
        return false;
      })
      .then(
        (more) => {
          if (more && !this.copyAheadTimer) again(0);
        },
        // A failing copy (a full disk) fails the next write or roll the same way; that one reports it.
        (err: unknown) => debug('copy-forward ahead of retirement failed: %s', (err as Error).message),
      );
  }

  /** Rolls the writes made since the last idle spell finished (a write ends a spell before it can). */
  private burstRolls(): number {
    return this.log.counters.segmentsSealed - this.sealedNotByBurst;
  }

  /** Records a synch point: the volume's blocks are consistent now (claim 1). Durable when it resolves. */
  synch(request: SynchRequest = {}): Promise<SynchPoint> {
    const label = request.label ? checkLabel(request.label) : null;
    const infoBytes = Buffer.byteLength(JSON.stringify(request.info ?? {}));
    if (infoBytes > Math.min(SYNCH_INFO_BYTES_MAX, this.config.segmentSizeBytes / 8)) {
      return Promise.reject(VolumeError.badInput(`synch point info of ${infoBytes} bytes is too large`, `keep it under ${Math.min(SYNCH_INFO_BYTES_MAX, this.config.segmentSizeBytes / 8)} bytes`));
    }
    return this.mutex.run(async () => {
      this.checkOpen();
      const taken = label === null ? undefined : this.catalog.labelled(label);
      if (taken) throw duplicateLabel(label!, taken);
      // Times name snapshot files: keep them unique and increasing even within a millisecond.
      const timeMs = Math.max(this.clock(), this.lastSynchMs + 1);
      const info = { host: os.hostname(), ...request.info };
      const point = await this.log.appendSynch({ timeMs, label, info });
      this.lastSynchMs = timeMs;
      this.catalog.append(point);
      this.log.shipTail();
      debug('synch point %s%s', new Date(timeMs).toISOString(), label ? ` (${label})` : '');
      return point;
    });
  }

  /** Makes every acknowledged write durable (fdatasync). */
  flush(): Promise<void> {
    return this.mutex.run(async () => {
      this.checkOpen();
      await this.log.flushAsync();
    });
  }

  /** Ships the current segment's unarchived records now (the `--rpo` timer calls this). */
  shipTail(): Promise<void> {
    return this.mutex.run(() => {
      this.checkOpen();
      this.log.shipTail();
    });
  }

  /** The newest synch point the archive alone restores now, or null. */
  recoveryPoint(): SynchPoint | null {
    const pending = this.archiver.firstPending();
    const current = this.log.current;
    const through = pending ?? { sequence: current.sequence, rawStart: current.shippedTo };
    const points = this.catalog.all;
    for (let i = points.length - 1; i >= 0; i--) {
      const p = points[i]!;
      if (p.sequence < through.sequence || (p.sequence === through.sequence && p.offset < through.rawStart)) return p;
    }
    return null;
  }

  status(): VolumeStatus {
    const slots = this.log.slots;
    const count = (state: string) => slots.filter((s) => s.state === state).length;
    const a = this.archiver.stats;
    const recovery = this.recoveryPoint();
    const oldest = [this.log.unshippedSinceMs, this.archiver.oldestPendingSinceMs].filter((t): t is number => t !== null);
    const blocks = this.config.sizeBytes / this.config.blockSizeBytes;
    return {
      volume: this.dir,
      encrypted: this.cipher !== null,
      volumeId: this.config.volumeId,
      sizeBytes: this.config.sizeBytes,
      blockSizeBytes: this.config.blockSizeBytes,
      segmentSizeBytes: this.config.segmentSizeBytes,
      workingSetSegments: this.config.workingSetSegments,
      spareSegments: this.config.spareSegments,
      segments: {
        current: count('current'),
        active: count('active'),
        inactive: count('inactive'),
        recycle: count('recycle'),
        archivedOnPrimary: slots.filter((s) => s.archived && s.state !== 'recycle').length,
        currentSequence: this.log.current.sequence,
      },
      bytesWritten: this.log.counters.bytesWritten,
      bytesCopiedForward: this.log.counters.bytesCopiedForward,
      indexBytes: this.log.index.memoryBytes,
      indexBytesPerBlock: this.log.index.memoryBytes / blocks,
      cacheBytes: this.snapshots.bytes + this.source.cacheBytes,
      cacheBytesMax: this.cacheBytesMax,
      synchPoints: this.catalog.all.length,
      latest: this.catalog.latest ? new Date(this.catalog.latest.timeMs).toISOString() : null,
      writesStalledSince: this.log.stalledSince === null ? null : new Date(this.log.stalledSince).toISOString(),
      writeStalls: { count: this.log.counters.writeStalls, totalMs: this.log.counters.writeStalledMs },
      archive: {
        location: this.store.location,
        segmentsArchived: a.segmentsArchived,
        tailsShipped: a.tailsShipped,
        rawBytesArchived: a.rawBytesArchived,
        storedBytesArchived: a.storedBytesArchived,
        compressionRatio: a.storedBytesArchived > 0 ? a.rawBytesArchived / a.storedBytesArchived : null,
        pendingItems: a.pendingItems,
        busy: this.archiver.busy,
        bytesWaiting: a.bytesWaiting + this.log.unshippedBytes,
        bytesInCurrentSegment: this.log.unshippedBytes,
        lastError: a.lastError,
        failingSince: a.failingSinceMs === null ? null : new Date(a.failingSinceMs).toISOString(),
        recoveryPoint: recovery ? new Date(recovery.timeMs).toISOString() : null,
        oldestUnarchivedWriteAgeMs: oldest.length > 0 ? this.clock() - Math.min(...oldest) : null,
        requests: { ...this.store.stats },
      },
      snapshotReads: { ...this.source.stats },
    };
  }

  /** Flushes, stops archiving (what is left waits on primary for the next open), releases the lock. */
  close(): Promise<void> {
    return this.mutex.run(async () => {
      if (this.closed) return;
      this.log.flush();
      this.closed = true;
      if (this.copyAheadTimer) clearTimeout(this.copyAheadTimer);
      await this.archiver.stop();
      for (const slot of this.log.slots) slot.close();
      if (this.ownsPool) await this.pool.close();
      await this.store.close();
      this.lock.release();
    });
  }

  private checkOpen(): void {
    if (this.closed) throw new VolumeError('CLOSED', `volume ${this.dir} is closed`);
  }

  private checkRange(position: number, length: number): void {
    assert(Number.isSafeInteger(position) && Number.isSafeInteger(length) && position >= 0 && length >= 0);
    if (position + length > this.config.sizeBytes) {
      throw VolumeError.badInput(`${length} bytes at ${position} lie past the volume's end (${this.config.sizeBytes} bytes)`);
    }
  }
}

function archiveHoldsAVolume(store: ArchiveStore): VolumeError {
  return new VolumeError('ARCHIVE_CONFLICT', `archive ${store.location} already holds a volume`, {
    hint: 'give each volume its own archive directory or prefix',
  });
}
