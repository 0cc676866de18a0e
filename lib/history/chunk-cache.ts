/**
 * Raw archived chunks a segment source has fetched, in two tiers: memory (an LRU bounded in
 * bytes, the source's share of `mount --cache`) and, under it, the disk spill (chunk-spill.ts)
 * that takes what memory evicts. A chunk is named `${piece.key}#${chunk}` in both, so neither
 * can answer for another chunk.
 *
 * It is its own LRU rather than util/lru-cache.ts because eviction must hand the chunk on to
 * the spill, which that cache does not report.
 *
 * Only chunks set or marked to keep on disk go to the spill when memory evicts them: the owner
 * says which will likely be read again (segment-source.ts). A chunk larger than the whole memory
 * bound goes to the spill at once.
 */
import { ChunkSpill, type SpillOptions } from './chunk-spill.js';

export class ChunkCache {
  /** In least-recently-used order (a hit moves a chunk to the end). */
  private readonly memory = new Map<string, { raw: Buffer; spill: boolean }>();
  private memoryBytes = 0;
  readonly spill: ChunkSpill;

  constructor(
    private readonly bytesMax: number,
    spill: SpillOptions = {},
  ) {
    this.spill = new ChunkSpill(spill);
  }

  /** Bytes held in memory (the spill's are on disk). */
  get bytes(): number {
    return this.memoryBytes;
  }

  /** True when a read of chunk `name` needs no fetch. */
  has(name: string): boolean {
    return this.memory.has(name) || this.spill.has(name);
  }

  /** The whole chunk when memory holds it (made the most recently used). */
  get(name: string): Buffer | undefined {
    const entry = this.memory.get(name);
    if (entry) {
      this.memory.delete(name);
      this.memory.set(name, entry);
    }
    return entry?.raw;
  }

  /**
   * Bytes [within, within + length) of chunk `name` into `target` at `at`, from memory or else
   * the spill; which tier answered, or null when neither holds them.
   */
  readInto(name: string, within: number, length: number, target: Buffer, at: number): 'memory' | 'spill' | null {
    const raw = this.get(name);
    if (raw) {
      if (within + length > raw.length) return null;
      raw.copy(target, at, within, within + length);
      return 'memory';
    }
    return this.spill.readInto(name, within, length, target, at) ? 'spill' : null;
  }

  /** Keeps a chunk just fetched; when memory evicts it, it goes to the spill if `keepOnDisk` (or marked so since). */
  set(name: string, raw: Buffer, keepOnDisk = true): void {
    const old = this.memory.get(name);
    if (old) {
      this.memory.delete(name);
      this.memoryBytes -= old.raw.length;
    }
    if (raw.length > this.bytesMax) {
      this.spill.put(name, raw);
      return;
    }
    this.memory.set(name, { raw, spill: keepOnDisk });
    this.memoryBytes += raw.length;
    for (const [oldest, entry] of this.memory) {
      if (this.memoryBytes <= this.bytesMax) break;
      this.memory.delete(oldest);
      this.memoryBytes -= entry.raw.length;
      // Never written twice (a fetch that raced a spill of the same chunk).
      if (entry.spill && !this.spill.has(oldest)) this.spill.put(oldest, entry.raw);
    }
  }

  /** Marks chunk `name`, if memory holds it, to go to the spill when evicted. */
  keepOnDisk(name: string): void {
    const entry = this.memory.get(name);
    if (entry) entry.spill = true;
  }

  /** Drops both tiers and closes the spill's file. */
  close(): void {
    this.memory.clear();
    this.memoryBytes = 0;
    this.spill.close();
  }
}
