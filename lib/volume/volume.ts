/**
 * The Volume: a block volume stored as a self-archiving log (ARCHITECTURE.md). Writes append to
 * the current segment and update the index; reads look blocks up in the index and read them
 * from the log; synch points are SYNCH records; sealed segments go to the archive.
 *
 * The engine knows nothing of FUSE, the CLI or how to reach an archive: its caller opens the
 * archive store and reads the key, and may give the files, the clock and the compression pool
 * (tests and the fault simulation give their own).
 */
import assert from 'node:assert';
import os from 'node:os';
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import { cipherFor, type ObjectCipher } from '../format/object-cipher.js';
import type { VolumeConfig } from '../format/volume-config.js';
import type { ArchiveStore } from '../archive/archive-store.js';
import { Archiver } from '../archive/archiver.js';
import { CompressionPool } from '../archive/compression-pool.js';
import { systemClock, type Clock, type Timer } from '../util/clock.js';
import { LatencyHistogram, SYNCH_BUCKETS } from '../util/latency-histogram.js';
import type { TroubleCause } from '../archive/archive-trouble.js';
import type { BlockIndex } from './block-index.js';
import { readConfig } from './config-file.js';
import { COPY_AHEAD_IDLE_MS, CopyAhead } from './copy-ahead.js';
import { createVolume, type CreateOptions } from './create.js';
import { FsVolumeFiles, type VolumeFiles } from './files.js';
import { Log } from './log.js';
import { Mutex } from './mutex.js';
import { DescriptorPool } from './descriptor-pool.js';
import { sharedDescriptorPool } from './open-files.js';
import { LiveReader } from './reader.js';
import { pointsOnlyInArchive, reconcileWithArchive } from './reconcile.js';
import { recover } from './recovery.js';
import type { SegmentSlot } from './segment-slot.js';
import { checkSlots, type Problem, type VerifyCounts } from './slot-check.js';
import { volumeStatus, type VolumeStatus } from './status.js';
import { Catalog, checkLabel, duplicateLabel, type SynchPoint } from './synch-point.js';
import { untilStalled } from './stall-wait.js';
import { VolumeLock } from './volume-lock.js';

const debug = createDebug('salvo:volume');

export type { CreateOptions } from './create.js';
export type { VolumeStatus } from './status.js';

export interface OpenOptions {
  /** The archive the volume's config names, opened by the caller, who also closes it. */
  store: ArchiveStore;
  /** The key, for an encrypted volume. */
  cipher?: ObjectCipher | null;
  /** Compression workers to share (default: the volume's own, closed with it). */
  pool?: CompressionPool;
  /** The volume's files (default: its directory on disk). */
  files?: VolumeFiles;
  /**
   * Slot files kept open at once, in a pool of the volume's own (default: the pool the process
   * shares, sized from its limit of open files). Not with `files`; tests make it small.
   */
  slotDescriptors?: number;
  /** Times, timers and random choices (default: the system's). */
  clock?: Clock;
  /** Told when writes start waiting for the archive (default: written to stderr). */
  onStall?: (message: string) => void;
  /** Told when such a wait ends, and how long it was. */
  onResume?: (ms: number) => void;
  /** Told of good news worth a line: the archive taking objects again after failures (default: as a warning). */
  onNotice?: (message: string) => void;
  /** Told what recovery had to drop, and of the archive's trouble (default: written to stderr). */
  onWarning?: (message: string) => void;
  /** Longest wait between retries of a failed archive upload (default 30 s). */
  retryDelayMsMax?: number;
  /** Quiet time after the last write before copy-forward runs ahead (default 100 ms); the crash tests make it short. */
  copyAheadIdleMs?: number;
  /** Ship writes to the archive at least this often while they arrive (default: the config's; 0: at synch points only). */
  rpoSeconds?: number;
}

export interface SynchRequest {
  label?: string | null;
  info?: Record<string, string>;
  /** Runs just before the SYNCH record is placed; throwing refuses the point (a freeze that ended: agent/freeze.ts). */
  check?: () => void;
}

/** Free-form facts of a synch point (host, agent, frozen filesystem) are small. */
const SYNCH_INFO_BYTES_MAX = 4096;

/** The parts an opened volume is made of (Volume.open wires them). */
interface Parts {
  dir: string;
  config: VolumeConfig;
  files: VolumeFiles;
  log: Log;
  catalog: Catalog;
  store: ArchiveStore;
  pool: CompressionPool;
  ownsPool: boolean;
  archiver: Archiver;
  lock: VolumeLock;
  clock: Clock;
  cipher: ObjectCipher | null;
}

export class Volume {
  readonly dir: string;
  readonly config: VolumeConfig;
  readonly catalog: Catalog;
  readonly store: ArchiveStore;
  readonly pool: CompressionPool;
  readonly cipher: ObjectCipher | null;
  private readonly log: Log;
  private readonly archiver: Archiver;
  private readonly parts: Parts;
  private readonly mutex = new Mutex();
  private readonly reader: LiveReader;
  private readonly copyAhead: CopyAhead;
  /** Time from the request of each synch point taken to its acknowledgement (`mount --metrics`). */
  readonly synchTimes = new LatencyHistogram(SYNCH_BUCKETS);
  private rpoTimer: Timer | null = null;
  private rpoSeconds = 0;
  private lastSynchMs: number;
  private closed = false;
  /** The background look at the archive's catalog for points catalog.jsonl lost (adoptArchivedPoints). */
  private adopting: Promise<void> = Promise.resolve();

  private constructor(parts: Parts, copyAheadIdleMs: number) {
    this.parts = parts;
    ({ dir: this.dir, config: this.config, catalog: this.catalog, store: this.store, pool: this.pool, cipher: this.cipher, log: this.log, archiver: this.archiver } = parts);
    this.reader = new LiveReader(this.config.blockSizeBytes, this.log.index, this.log.slots);
    this.copyAhead = new CopyAhead(this.log, this.mutex, parts.clock, copyAheadIdleMs);
    this.lastSynchMs = this.catalog.latest?.timeMs ?? 0;
  }

  /**
   * Creates a volume in `dir` (which must not exist or be empty) and registers it at the root
   * of its archive. Never overwrites a volume or an archive that holds one.
   */
  static create(dir: string, options: CreateOptions, now = new Date()): Promise<VolumeConfig> {
    return createVolume(dir, options, now);
  }

  /**
   * Opens a volume, recovering from a crash if there was one, and takes its lock. A failure at
   * any step releases what the steps before it took: the lock, the slot files, the workers.
   */
  static async open(dir: string, options: OpenOptions): Promise<Volume> {
    assert(!(options.files && options.slotDescriptors !== undefined), 'slotDescriptors sizes the files Volume.open makes, not given ones');
    const files = options.files ?? new FsVolumeFiles(dir, options.slotDescriptors === undefined ? sharedDescriptorPool() : new DescriptorPool(options.slotDescriptors));
    const clock = options.clock ?? systemClock;
    const config = readConfig(files);
    const cipher = cipherFor(config, options.cipher, `volume ${dir}`);
    const undo: (() => unknown)[] = [];
    try {
      const lock = VolumeLock.acquire(files);
      undo.push(() => lock.release());
      const recovered = await recover(files, config, () => clock.now());
      undo.push(() => recovered.slots.forEach((slot) => slot.close()));
      const pool = options.pool ?? new CompressionPool();
      if (!options.pool) undo.push(() => pool.close());
      const catalog = Catalog.load(files);
      const logEnd = new Map(recovered.slots.filter((s) => s.sequence > 0).map((s) => [s.sequence, s.tail]));
      // A segment before the current one on no slot was archived before its slot was recycled.
      // Not the ones older than the oldest on primary: slots are not always recycled in log order.
      const inArchiveOnly = (sequence: number) => sequence < recovered.current.sequence && !logEnd.has(sequence);
      // Points past the end of the recovered log were torn off with it; the others live on primary or in the archive.
      catalog.reconcile(recovered.points, (p) => inArchiveOnly(p.sequence) || (logEnd.has(p.sequence) && p.offset < logEnd.get(p.sequence)!));
      const warn = options.onWarning ?? ((message: string) => process.stderr.write(`salvo: warning: ${message}\n`));
      const onStall = options.onStall ?? ((message: string) => process.stderr.write(`salvo: ${message}\n`));
      let log: Log | undefined;
      const archiver = new Archiver({
        store: options.store,
        pool,
        version: config.version,
        volumeId: config.volumeId,
        blockSizeBytes: config.blockSizeBytes,
        chunkSizeBytes: config.chunkSizeBytes,
        // Nothing is queued before the log exists, so nothing is confirmed before either.
        onArchived: (sequence) => log!.markArchived(sequence),
        retryDelayMsMax: options.retryDelayMsMax,
        cipher,
        clock,
        report: (message, level) => (level === 'notice' ? (options.onNotice ?? warn)(message) : warn(message)),
      });
      undo.push(() => archiver.stop());
      log = new Log(config, recovered.slots, recovered.index, recovered.current, recovered.nextRecordSequence, archiver, { onStall, onResume: options.onResume }, clock);
      const parts: Parts = { dir, config, files, log, catalog, store: options.store, pool, ownsPool: !options.pool, archiver, lock, clock, cipher };
      const volume = new Volume(parts, options.copyAheadIdleMs ?? COPY_AHEAD_IDLE_MS);
      undo.push(() => volume.copyAhead.stop());
      if (recovered.dropped) warn(`recovery dropped the newest segment (never acknowledged as durable): ${recovered.dropped}`);
      if (recovered.cut) {
        warn(`recovery dropped the torn end of segment ${recovered.current.sequence} (${recovered.cut.bytes} bytes, never acknowledged as durable): ${recovered.cut.reason}`);
      }
      const sealed = recovered.slots.filter((s) => s.state === 'active' || s.state === 'inactive').sort((a, b) => a.sequence - b.sequence);
      await reconcileWithArchive({ store: options.store, archiver, cipher, current: recovered.current, sealed });
      // What the current segment holds past what the archive has (the tail a crash or an unmount
      // left unshipped, acknowledged points among it) ships now, not at the next synch point.
      log.shipTail();
      volume.shipTailsEvery(options.rpoSeconds ?? config.rpoSeconds);
      volume.adopting = volume.adoptArchivedPoints(inArchiveOnly, warn);
      return volume;
    } catch (err) {
      for (const step of undo.reverse()) await Promise.resolve(step()).catch((e: unknown) => debug('releasing after a failed open: %s', (e as Error).message));
      throw err;
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

  /** Times and timers (the system's, or a simulation's): what waits on the volume waits by them. */
  get clock(): Clock {
    return this.parts.clock;
  }

  /** Counts since the volume was opened: bytes written and copied forward, segments sealed, retired and recycled, write stalls. */
  get counters(): Readonly<Log['counters']> {
    return this.log.counters;
  }

  /** Failed attempts to ship a piece of the log to the archive, by cause, since the volume was opened. */
  get archiveFailures(): Readonly<Record<TroubleCause, number>> {
    return this.archiver.stats.failures;
  }

  /**
   * The engine's parts, for the tests that examine them (each says why) and the benchmarks that
   * measure them; the commands, the mount and the agent use the methods of the volume.
   */
  get internals(): { readonly log: Log; readonly archiver: Archiver } {
    return { log: this.log, archiver: this.archiver };
  }

  /** The slot holding segment `sequence` on primary storage, if one still does (the history reads the past from it). */
  slotHolding(sequence: number): SegmentSlot | undefined {
    return this.log.slotHolding(sequence);
  }

  /** Reads `target.length` bytes at `position` into `target`. CORRUPT_BLOCK if a block fails its checksum. */
  readInto(target: Buffer, position: number): void {
    this.checkOpen();
    this.checkRange(position, target.length);
    this.reader.readInto(target, position);
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
    this.copyAhead.wrote();
    return true;
  }

  /** Writes `data` at `position` (any alignment); resolves once the bytes are in the OS. */
  write(data: Buffer, position: number): Promise<void> {
    return this.mutex.run(async () => {
      this.checkOpen();
      this.checkRange(position, data.length);
      if (data.length === 0) return;
      // Quiet time counts from the end of a write: a roll that takes longer than the idle time
      // is part of the burst, not a pause in it (copy-ahead.ts).
      try {
        await this.appendAt(data, position);
      } finally {
        this.copyAhead.wrote();
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
    this.reader.readInto(merged.subarray(0, bs), first * bs);
    if (last > first) this.reader.readInto(merged.subarray(merged.length - bs), last * bs);
    data.copy(merged, position - first * bs);
    return this.log.appendBlocks(first, merged);
  }

  /**
   * Makes [position, position + length) read as zeros from this point of the history on (a
   * discard: fstrim, blkdiscard, `mount -o discard`); durable when it resolves. Whole blocks
   * that hold data become ZERO records (Log.discardBlocks); partial blocks at the ends that
   * hold data are written with zeros. Points taken before keep the old data.
   */
  discard(position: number, length: number): Promise<void> {
    return this.mutex.run(async () => {
      this.checkOpen();
      this.checkRange(position, length);
      const bs = this.config.blockSizeBytes;
      const end = position + length;
      const [first, last] = [Math.ceil(position / bs), Math.floor(end / bs)];
      const partials = first > last ? [[position, end]] : [[position, first * bs], [last * bs, end]].filter(([from, to]) => to! > from!);
      let wrote = false;
      try {
        for (const [from, to] of partials) {
          if (this.index.slotOf(Math.floor(from! / bs)) === -1) continue;
          await this.appendAt(Buffer.alloc(to! - from!), from!);
          wrote = true;
        }
        if (last > first && (await this.log.discardBlocks(first, last - first)) > 0) wrote = true;
      } finally {
        if (wrote) this.copyAhead.wrote();
      }
      if (wrote) await this.log.flushAsync();
    });
  }

  /** Records a synch point: the volume's blocks are consistent now. Durable when it resolves. */
  synch(request: SynchRequest = {}): Promise<SynchPoint> {
    const label = request.label ? checkLabel(request.label) : null;
    const infoBytes = Buffer.byteLength(JSON.stringify(request.info ?? {}));
    if (infoBytes > Math.min(SYNCH_INFO_BYTES_MAX, this.config.segmentSizeBytes / 8)) {
      return Promise.reject(VolumeError.badInput(`synch point info of ${infoBytes} bytes is too large`, `keep it under ${Math.min(SYNCH_INFO_BYTES_MAX, this.config.segmentSizeBytes / 8)} bytes`));
    }
    let refused: VolumeError | null = null;
    const check = () => {
      if (refused) throw refused;
      request.check?.();
    };
    const started = this.parts.clock.monotonic();
    const taking = this.mutex.run(async () => {
      this.checkOpen();
      if (refused) throw refused;
      const taken = label === null ? undefined : this.catalog.labelled(label);
      if (taken) throw duplicateLabel(label!, taken);
      // Times name snapshot files: keep them unique and increasing even within a millisecond.
      const timeMs = Math.max(this.parts.clock.now(), this.lastSynchMs + 1);
      const info = { host: os.hostname(), ...request.info };
      const point = await this.log.appendSynch({ timeMs, label, info }, check);
      this.lastSynchMs = timeMs;
      this.catalog.append(point);
      this.log.shipTail();
      debug('synch point %s%s', new Date(timeMs).toISOString(), label ? ` (${label})` : '');
      return point;
    });
    void taking.then(() => this.synchTimes.record((this.parts.clock.monotonic() - started) / 1000), () => undefined);
    // Behind writes that wait for a failing archive, the point would wait as long as it fails:
    // it is refused instead (and never placed later), with the archive's trouble.
    return untilStalled(this.log, this.parts.clock, taking, () => {
      const { failingCause, lastError } = this.archiver.stats;
      if (failingCause === null) return null;
      refused = new VolumeError('ARCHIVE_UNAVAILABLE', `no synch point while writes wait for the archive, which is failing (${failingCause}): ${lastError}`, {
        hint: '`salvo status` shows the archive’s trouble; take the point once writes resume',
      });
      return Promise.reject(refused);
    });
  }

  /** Makes every acknowledged write durable (fdatasync). */
  flush(): Promise<void> {
    const flushing = this.mutex.run(async () => {
      this.checkOpen();
      await this.log.flushAsync();
    });
    // A write waiting for a blank slot holds the lock as long as the archive takes; every
    // acknowledged write is in a slot already, so the flush syncs them without the lock.
    return untilStalled(this.log, this.parts.clock, flushing, () => this.log.flushAsync());
  }

  /** Ships the current segment's records not yet in the archive, now. */
  shipTail(): Promise<void> {
    return this.mutex.run(() => {
      this.checkOpen();
      this.log.shipTail();
    });
  }

  /**
   * While writes arrive, ships them at least every `seconds` (`--rpo`; 0: only at synch points
   * and rolls), looking a few times within that span.
   */
  private shipTailsEvery(seconds: number): void {
    this.rpoTimer?.cancel();
    this.rpoTimer = null;
    this.rpoSeconds = seconds;
    if (seconds <= 0) return;
    const { clock } = this.parts;
    const look = () => {
      const since = this.log.unshippedSinceMs;
      if (since !== null && clock.now() - since >= seconds * 1000) void this.shipTail().catch((err: unknown) => debug('rpo: %s', (err as Error).message));
      this.rpoTimer = clock.after(Math.min(1000, seconds * 250), look, { background: true });
    };
    this.rpoTimer = clock.after(Math.min(1000, seconds * 250), look, { background: true });
  }

  /**
   * Adds the points catalog.jsonl lost (the file deleted, or cut short) that the archive holds in
   * segments gone from primary storage: recovery finds only the points of the log on primary.
   */
  private async adoptArchivedPoints(inArchiveOnly: (sequence: number) => boolean, warn: (message: string) => void): Promise<void> {
    const lost = await pointsOnlyInArchive(this.parts, this.catalog, inArchiveOnly);
    if (lost.length === 0) return;
    await this.mutex.run(() => {
      if (this.closed) return;
      this.catalog.reconcile(lost, () => true);
      warn(`${lost.length} synch points missing from ${this.dir}/catalog.jsonl were restored from the archive`);
    });
  }

  /** Resolves when everything queued is in the archive (or the archiver stopped). */
  idle(): Promise<void> {
    return this.archiver.idle();
  }

  /** `salvo verify`'s check of primary storage: every record and block of the segments the slots hold. */
  verifySlots(counts: VerifyCounts): Promise<Problem[]> {
    return checkSlots(this.log.slots, this.config.blockSizeBytes, counts);
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
    return volumeStatus({ ...this.parts, rpoSeconds: this.rpoSeconds, recoveryPoint: this.recoveryPoint() });
  }

  /** Flushes, stops archiving (what is left waits on primary for the next open), releases the lock. */
  async close(): Promise<void> {
    await this.adopting;
    // A write stalled for a blank slot (the archive away) holds the engine: it fails, and the close goes on.
    this.log.roster.abandon(new VolumeError('CLOSED', `volume ${this.dir} closed while writes waited for the archive to free a segment slot; those writes were not acknowledged`));
    return this.mutex.run(async () => {
      if (this.closed) return;
      this.log.flush();
      this.closed = true;
      this.copyAhead.stop();
      this.rpoTimer?.cancel();
      await this.archiver.stop();
      for (const slot of this.log.slots) slot.close();
      if (this.parts.ownsPool) await this.pool.close();
      this.parts.lock.release();
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
