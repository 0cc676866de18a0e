/**
 * An archive in memory: the test twin of the directory and S3 stores. `failing` makes every
 * request fail with ARCHIVE_UNAVAILABLE, as an unreachable store would.
 */
import { VolumeError } from '../errors.js';
import { emptyStats, type ArchiveStore, type ByteRange } from './archive-store.js';

export class MemoryStore implements ArchiveStore {
  readonly stats = emptyStats();
  readonly objects = new Map<string, Buffer>();
  failing = false;

  constructor(readonly location = 'memory://test') {}

  private check(what: string): void {
    if (this.failing) throw VolumeError.archiveUnavailable(`${what}: memory store is set to fail`);
  }

  async put(key: string, parts: readonly Buffer[]): Promise<void> {
    this.stats.puts++;
    this.check(`put ${key}`);
    if (this.objects.has(key)) throw new VolumeError('ARCHIVE_CONFLICT', `archive object ${key} already exists`);
    const bytes = Buffer.concat(parts);
    this.objects.set(key, bytes);
    this.stats.bytesPut += bytes.length;
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.stats.gets++;
    this.check(`get ${key}`);
    const bytes = this.objects.get(key);
    if (!bytes) throw new VolumeError('NOT_FOUND', `get ${key}: no such object`);
    const out = range ? bytes.subarray(Math.min(range.offset, bytes.length), range.offset + range.length) : bytes;
    this.stats.bytesGot += out.length;
    return Buffer.from(out);
  }

  async head(key: string): Promise<number | null> {
    this.stats.heads++;
    this.check(`head ${key}`);
    return this.objects.get(key)?.length ?? null;
  }

  async list(prefix: string, startAfter = ''): Promise<string[]> {
    this.stats.lists++;
    this.check(`list ${prefix}`);
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix) && k > startAfter).sort();
  }

  async delete(key: string): Promise<void> {
    this.stats.deletes++;
    this.check(`delete ${key}`);
    this.objects.delete(key);
  }

  async close(): Promise<void> {}
}
