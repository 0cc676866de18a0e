/**
 * The simulation's archive: a MemoryStore behind the faults a real one shows, drawn from a seed.
 * The weather says how often each fault strikes and changes as the simulation goes:
 * - a put refused before anything is stored (unreachable, full, access denied), or slow;
 * - a put stored whole but never confirmed (the connection dropped after the upload);
 * - a put cut short: a prefix stored, then an error (a disk that filled, a writer that died);
 * - a read that fails, comes back truncated, or with a byte flipped (a broken proxy or disk);
 * - a listing that lags, missing the newest objects (an eventually consistent store);
 * - an outage: the next `outage` requests of any kind fail, long enough for writes to stall;
 * - an object that rots at rest (`rot`), which only a checksum can tell.
 * A prefix shorter than an object's header is never stored: salvo cannot tell whose such an
 * object is and leaves it for the admin (archiver.ts), which no retry would end.
 */
import { VolumeError } from '../../lib/errors.js';
import type { ArchiveStore, ByteRange } from '../../lib/archive/archive-store.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { ARCHIVE_HEADER_SIZE } from '../../lib/format/archive-object.js';
import type { SimClock } from './sim-clock.js';

export interface Weather {
  refused: number;
  full: number;
  denied: number;
  slow: number;
  unconfirmed: number;
  cutShort: number;
  readFails: number;
  readTruncated: number;
  readCorrupt: number;
  staleList: number;
}

export const CALM: Weather = { refused: 0, full: 0, denied: 0, slow: 0, unconfirmed: 0, cutShort: 0, readFails: 0, readTruncated: 0, readCorrupt: 0, staleList: 0 };

/** One to three kinds of fault, each striking a tenth to a half of the requests. */
export function randomWeather(random: () => number): Weather {
  const weather = { ...CALM };
  const kinds = Object.keys(CALM) as (keyof Weather)[];
  for (let n = 1 + Math.floor(random() * 3); n > 0; n--) weather[kinds[Math.floor(random() * kinds.length)]!] = 0.1 + random() * 0.4;
  return weather;
}

export type FaultKind = keyof Weather | 'rot' | 'outage';

export class SimStore implements ArchiveStore {
  readonly inner = new MemoryStore('memory://simulated-archive');
  readonly location = this.inner.location;
  weather: Weather = CALM;
  /** Requests still to fail in the outage under way (0: none). */
  outage = 0;
  /** Keys in the order they were stored: a lagging listing leaves out the newest. */
  private readonly stored: string[] = [];
  /** Objects stored cut short and not yet deleted: a read of one fails until the archiver replaces it. */
  readonly cut = new Set<string>();
  /** Faults injected, by kind: the figures, and what a check may blame a failed read on. */
  readonly injected = new Map<FaultKind, number>();

  constructor(
    private readonly random: () => number,
    private readonly clock: SimClock,
  ) {}

  get stats() {
    return this.inner.stats;
  }

  /** Faults a read may meet, injected so far: a read may fail only when this grew while it ran. */
  get readFaults(): number {
    return (['readFails', 'readTruncated', 'readCorrupt', 'outage'] as const).reduce((n, k) => n + (this.injected.get(k) ?? 0), 0);
  }

  /** Whether an object rotted: reads of it fail from then on. */
  get rotten(): boolean {
    return this.injected.has('rot');
  }

  async put(key: string, parts: readonly Buffer[]): Promise<void> {
    this.down(`put ${key}`);
    // Slow, not hung: within the few seconds unmount's drain gives an archive that is failing.
    if (this.strikes('slow')) await this.clock.sleep(100 + Math.floor(this.random() * 2000));
    if (this.strikes('refused')) throw VolumeError.archiveUnavailable(`put ${key}: connection refused (simulated)`);
    if (this.strikes('full')) throw VolumeError.archiveUnavailable(`put ${key}: ENOSPC: no space left on device (simulated)`);
    if (this.strikes('denied')) throw VolumeError.archiveUnavailable(`put ${key}: AccessDenied (simulated)`);
    const bytes = Buffer.concat(parts);
    if (bytes.length > ARCHIVE_HEADER_SIZE && this.strikes('cutShort')) {
      const kept = ARCHIVE_HEADER_SIZE + Math.floor(this.random() * (bytes.length - ARCHIVE_HEADER_SIZE));
      await this.inner.put(key, [bytes.subarray(0, kept)]);
      this.stored.push(key);
      this.cut.add(key);
      throw VolumeError.archiveUnavailable(`put ${key}: connection reset after ${kept} of ${bytes.length} bytes (simulated)`);
    }
    await this.inner.put(key, [bytes]);
    this.stored.push(key);
    if (this.strikes('unconfirmed')) throw VolumeError.archiveUnavailable(`put ${key}: timed out waiting for the reply (simulated)`);
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.down(`get ${key}`);
    if (this.strikes('readFails')) throw VolumeError.archiveUnavailable(`get ${key}: timed out (simulated)`);
    const bytes = await this.inner.get(key, range);
    // The descriptor is read before anything else and checked by its own parser; its faults are the fuzzers' business.
    if (key === 'volume.json' || bytes.length === 0) return bytes;
    if (this.strikes('readTruncated')) return bytes.subarray(0, Math.floor(this.random() * bytes.length));
    if (this.strikes('readCorrupt')) return flipped(bytes, this.random);
    return bytes;
  }

  async head(key: string): Promise<number | null> {
    this.down(`head ${key}`);
    if (this.strikes('readFails')) throw VolumeError.archiveUnavailable(`head ${key}: timed out (simulated)`);
    return this.inner.head(key);
  }

  async list(prefix: string, startAfter?: string): Promise<string[]> {
    this.down(`list ${prefix}`);
    if (this.strikes('readFails')) throw VolumeError.archiveUnavailable(`list ${prefix}: timed out (simulated)`);
    const keys = await this.inner.list(prefix, startAfter);
    if (!this.strikes('staleList')) return keys;
    const newest = new Set(this.stored.slice(-1 - Math.floor(this.random() * 4)));
    return keys.filter((k) => !newest.has(k));
  }

  async delete(key: string): Promise<void> {
    this.down(`delete ${key}`);
    if (this.strikes('refused')) throw VolumeError.archiveUnavailable(`delete ${key}: connection refused (simulated)`);
    this.cut.delete(key);
    return this.inner.delete(key);
  }

  async close(): Promise<void> {}

  /**
   * A byte of a random archived object goes bad at rest, past its header (whose damage makes the
   * object no one's, left for the admin); the key, or null when there is none.
   */
  rot(): string | null {
    const keys = [...this.inner.objects.keys()].filter((k) => k !== 'volume.json' && this.inner.objects.get(k)!.length > ARCHIVE_HEADER_SIZE);
    if (keys.length === 0) return null;
    const key = keys[Math.floor(this.random() * keys.length)]!;
    const bytes = this.inner.objects.get(key)!;
    const copy = Buffer.from(bytes);
    copy[ARCHIVE_HEADER_SIZE + Math.floor(this.random() * (bytes.length - ARCHIVE_HEADER_SIZE))]! ^= 1 << Math.floor(this.random() * 8);
    this.inner.objects.set(key, copy);
    this.count('rot');
    return key;
  }

  private down(what: string): void {
    if (this.outage === 0) return;
    this.outage--;
    this.count('outage');
    throw VolumeError.archiveUnavailable(`${what}: connection refused (simulated outage)`);
  }

  private strikes(kind: keyof Weather): boolean {
    if (this.weather[kind] === 0 || this.random() >= this.weather[kind]) return false;
    this.count(kind);
    return true;
  }

  private count(kind: FaultKind): void {
    this.injected.set(kind, (this.injected.get(kind) ?? 0) + 1);
  }
}

function flipped(bytes: Buffer, random: () => number): Buffer {
  const copy = Buffer.from(bytes);
  copy[Math.floor(random() * copy.length)]! ^= 1 << Math.floor(random() * 8);
  return copy;
}
