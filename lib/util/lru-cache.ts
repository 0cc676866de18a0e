/**
 * A least-recently-used cache bounded by bytes, not entries: rebuilt snapshot indexes and
 * fetched archive chunks vary in size by orders of magnitude. Map keeps insertion order, so
 * re-inserting on every hit makes its first key the least recently used.
 */
export class LruCache<K, V> {
  private readonly entries = new Map<K, { value: V; bytes: number }>();
  private bytesUsed = 0;

  constructor(
    /** Upper bound on the sum of the entries' sizes. An entry larger than this is not kept, unless: */
    readonly bytesMax: number,
    /**
     * It is kept alone (the others go), so that what is being used is never dropped and rebuilt
     * at every request: a snapshot index of a big volume read under a small cache.
     */
    private readonly keepOversized = false,
  ) {}

  get bytes(): number {
    return this.bytesUsed;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: K, value: V, bytes: number): void {
    this.delete(key);
    if (bytes > this.bytesMax) {
      if (!this.keepOversized) return;
      this.clear();
    }
    this.entries.set(key, { value, bytes });
    this.bytesUsed += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.bytesUsed <= this.bytesMax || oldest === key) break;
      this.entries.delete(oldest);
      this.bytesUsed -= entry.bytes;
    }
  }

  delete(key: K): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytesUsed -= entry.bytes;
  }

  clear(): void {
    this.entries.clear();
    this.bytesUsed = 0;
  }
}
