/**
 * An ArchiveStore wrapper that waits a fixed time before every request, as a remote object
 * store would (S3 first-byte latency is tens of milliseconds). Requests in flight wait in
 * parallel, so the result shows how well a reader overlaps its fetches.
 */
import type { ArchiveStore, ByteRange, StoreStats } from '../lib/archive/archive-store.js';

export class DelayStore implements ArchiveStore {
  constructor(
    private readonly inner: ArchiveStore,
    private readonly delayMs: number,
  ) {}

  get location(): string {
    return `${this.inner.location} (+${this.delayMs} ms a request)`;
  }

  get stats(): StoreStats {
    return this.inner.stats;
  }

  private wait(): Promise<void> {
    return new Promise((r) => setTimeout(r, this.delayMs));
  }

  async put(key: string, parts: readonly Buffer[]): Promise<void> {
    await this.wait();
    return this.inner.put(key, parts);
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    await this.wait();
    return this.inner.get(key, range);
  }

  async head(key: string): Promise<number | null> {
    await this.wait();
    return this.inner.head(key);
  }

  async list(prefix: string, startAfter?: string): Promise<string[]> {
    await this.wait();
    return this.inner.list(prefix, startAfter);
  }

  async delete(key: string): Promise<void> {
    await this.wait();
    return this.inner.delete(key);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
