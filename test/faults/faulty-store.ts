/**
 * A store that misbehaves on purpose, around a MemoryStore: puts that fail, reads that time
 * out, and reads that come back truncated or with a flipped byte (as a broken proxy or disk
 * would return them).
 */
import { VolumeError } from '../../lib/errors.js';
import type { ArchiveStore, ByteRange } from '../../lib/archive/archive-store.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';

export type ReadFault = 'none' | 'truncate' | 'corrupt' | 'timeout';

export class FaultyStore implements ArchiveStore {
  readonly inner = new MemoryStore('memory://faulty');
  readonly location = this.inner.location;
  /** Every n-th put fails (0: none). */
  failEveryPut = 0;
  readFault: ReadFault = 'none';
  readonly injected = { puts: 0, reads: 0 };
  private puts = 0;

  get stats() {
    return this.inner.stats;
  }

  async put(key: string, parts: readonly Buffer[]): Promise<void> {
    if (this.failEveryPut > 0 && ++this.puts % this.failEveryPut === 0) {
      this.injected.puts++;
      throw VolumeError.archiveUnavailable(`put ${key}: injected failure`);
    }
    return this.inner.put(key, parts);
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const bytes = await this.inner.get(key, range);
    if (this.readFault === 'none' || key === 'volume.json') return bytes;
    this.injected.reads++;
    switch (this.readFault) {
      case 'truncate':
        return bytes.subarray(0, Math.floor(bytes.length / 2));
      case 'corrupt': {
        const copy = Buffer.from(bytes);
        copy[Math.floor(copy.length / 2)]! ^= 0x10;
        return copy;
      }
      case 'timeout':
        await new Promise((r) => setTimeout(r, 20));
        throw VolumeError.archiveUnavailable(`get ${key}: timed out (injected)`);
    }
  }

  head(key: string): Promise<number | null> {
    return this.inner.head(key);
  }

  list(prefix: string, startAfter?: string): Promise<string[]> {
    return this.inner.list(prefix, startAfter);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  async close(): Promise<void> {}
}
