/**
 * A sparse map from a block number (0 to 2^32 - 1) to where its entry is: a holder (the slot
 * in the live index, the window segment in a snapshot's) and a u32 raw offset. Its memory
 * follows the blocks set in it, not the volume's size, so that a 16 TiB volume with little
 * written costs little (BENCHMARKS.md, "Figures behind the code": the block map).
 *
 * The volume is cut into pages of 4096 blocks. A page with few blocks keeps them sorted, 8
 * bytes each (the block's low 12 bits and the holder in one u32, the offset in another), in a
 * slab of its size class; past 1024 blocks a page becomes a dense array of 8 bytes a block,
 * read without a search. What is empty costs 7 bytes a page (the directory).
 */
import assert from 'node:assert';

const PAGE_BITS = 12;
const PAGE_BLOCKS = 1 << PAGE_BITS;
const LOW_MASK = PAGE_BLOCKS - 1;
const HOLDER_BITS = 20;
const HOLDER_MASK = (1 << HOLDER_BITS) - 1;
/** The largest holder a map takes; the next value is reserved for `HOLE`. */
export const HOLDER_MAX = HOLDER_MASK - 1;
/** A holder meaning "seen, and reads as zeros": a ZERO record's blocks in a backward scan. */
export const HOLE = HOLDER_MASK;

/** Sparse page capacities, growing by about 1.5 so that a page wastes at most a third of its slab room. */
const CLASSES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024];
const SPARSE_MAX = CLASSES[CLASSES.length - 1]!;
const EMPTY = 0;
const DENSE = 255;
/** A slab's first chunk holds this many slots; each next one twice as many, up to ~16 KiB: a small map stays small. */
const FIRST_SLOTS = 4;
const CHUNK_WORDS_MAX = 1 << 12;
/** Slabs are compacted only past this much room given back (1 MiB), so small maps never pay for it. */
const COMPACT_MIN_BYTES = 1 << 20;

/** Room for pages of one size class: chunks of slots, grown by doubling and never by copying, and the slots given back. */
class Slab {
  private readonly chunks: Uint32Array[] = [];
  private readonly free: number[] = [];
  private next = 0;
  private allocatedBytes = 0;
  readonly words: number;
  /** Chunks before this one double; from it on they hold `bigSlots`. */
  private readonly doublings: number;
  private readonly doublingSlots: number;
  private readonly bigSlots: number;
  /** The chunk of the last `locate`. */
  located: Uint32Array = new Uint32Array(0);

  constructor(readonly capacity: number) {
    this.words = capacity * 2;
    this.doublings = Math.max(0, Math.floor(Math.log2(CHUNK_WORDS_MAX / this.words / FIRST_SLOTS)));
    this.bigSlots = FIRST_SLOTS << this.doublings;
    this.doublingSlots = FIRST_SLOTS * ((1 << this.doublings) - 1);
  }

  get bytes(): number {
    return this.allocatedBytes;
  }

  /** Bytes of the slots given back and not reused. */
  get freeBytes(): number {
    return this.free.length * this.words * 4;
  }

  allocate(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    const slot = this.next++;
    const chunk = this.chunkIndex(slot);
    if (chunk === this.chunks.length) {
      const slots = chunk < this.doublings ? FIRST_SLOTS << chunk : this.bigSlots;
      this.chunks.push(new Uint32Array(slots * this.words));
      this.allocatedBytes += slots * this.words * 4;
    }
    return slot;
  }

  release(slot: number): void {
    this.free.push(slot);
  }

  /** The word where `slot` starts in its chunk, which is left in `located`. */
  locate(slot: number): number {
    const chunk = this.chunkIndex(slot);
    this.located = this.chunks[chunk]!;
    const first = chunk < this.doublings ? FIRST_SLOTS * ((1 << chunk) - 1) : this.doublingSlots + (chunk - this.doublings) * this.bigSlots;
    return (slot - first) * this.words;
  }

  private chunkIndex(slot: number): number {
    if (slot < this.doublingSlots) return 31 - Math.clz32(Math.floor(slot / FIRST_SLOTS) + 1);
    return this.doublings + Math.floor((slot - this.doublingSlots) / this.bigSlots);
  }
}

export class BlockMap {
  /** Per page: EMPTY, a size class + 1 (sparse), or DENSE. */
  private readonly pageKind: Uint8Array;
  /** Per page: its slot in the slab of its class, or its index in `dense`. */
  private readonly pageSlot: Uint32Array;
  private readonly pageCount: Uint16Array;
  private slabs = CLASSES.map((capacity) => new Slab(capacity));
  /** Dense pages: per block, holder + 1 (0: not set) and offset. */
  private readonly dense: (Uint32Array | null)[] = [];
  private readonly denseFree: number[] = [];
  private blocksSet = 0;
  /** Where the block of the last `find` that returned true is. */
  holder = 0;
  offset = 0;

  constructor(readonly blocks: number) {
    assert(Number.isInteger(blocks) && blocks >= 0 && blocks <= 2 ** 32);
    const pages = Math.ceil(blocks / PAGE_BLOCKS);
    this.pageKind = new Uint8Array(pages);
    this.pageSlot = new Uint32Array(pages);
    this.pageCount = new Uint16Array(pages);
  }

  /** Blocks set. */
  get size(): number {
    return this.blocksSet;
  }

  get memoryBytes(): number {
    let bytes = this.pageKind.byteLength + this.pageSlot.byteLength + this.pageCount.byteLength;
    for (const slab of this.slabs) bytes += slab.bytes;
    return bytes + (this.dense.length - this.denseFree.length) * PAGE_BLOCKS * 8;
  }

  /** True when the block is set; its holder and offset are then in `holder` and `offset`. */
  find(block: number): boolean {
    const page = block >>> PAGE_BITS;
    const kind = this.pageKind[page];
    if (kind === EMPTY || kind === undefined) return false;
    const low = block & LOW_MASK;
    if (kind === DENSE) {
      const words = this.dense[this.pageSlot[page]!]!;
      const h = words[low * 2]!;
      if (h === 0) return false;
      this.holder = h - 1;
      this.offset = words[low * 2 + 1]!;
      return true;
    }
    const slab = this.slabs[kind - 1]!;
    const slot = this.pageSlot[page]!;
    const base = slab.locate(slot);
    const words = slab.located;
    const i = search(words, base, this.pageCount[page]!, low);
    if (i < 0) return false;
    const at = base + i * 2;
    this.holder = words[at]! & HOLDER_MASK;
    this.offset = words[at + 1]!;
    return true;
  }

  /** True when the block is set to exactly (holder, offset). */
  is(block: number, holder: number, offset: number): boolean {
    return this.find(block) && this.holder === holder && this.offset === offset;
  }

  set(block: number, holder: number, offset: number): void {
    this.put(block, holder, offset, true);
  }

  /** Sets the block unless it is set already (a backward scan keeps the newest entry met); true if it was set now. */
  setIfAbsent(block: number, holder: number, offset: number): boolean {
    return this.put(block, holder, offset, false);
  }

  delete(block: number): void {
    const page = block >>> PAGE_BITS;
    const kind = this.pageKind[page]!;
    if (kind === EMPTY) return;
    const low = block & LOW_MASK;
    const count = this.pageCount[page]!;
    if (kind === DENSE) {
      const words = this.dense[this.pageSlot[page]!]!;
      if (words[low * 2] === 0) return;
      words[low * 2] = 0;
      this.blocksSet--;
      if (count === 1) this.freePage(page);
      else this.pageCount[page] = count - 1;
      return;
    }
    const slab = this.slabs[kind - 1]!;
    const slot = this.pageSlot[page]!;
    const base = slab.locate(slot);
    const words = slab.located;
    const i = search(words, base, count, low);
    if (i < 0) return;
    words.copyWithin(base + i * 2, base + (i + 1) * 2, base + count * 2);
    this.blocksSet--;
    this.pageCount[page] = count - 1;
    if (count === 1) this.freePage(page);
    else if (kind >= 3 && count - 1 <= CLASSES[kind - 3]!) this.moveSparse(page, kind - 2); // shrink two classes down, so a page on the edge does not move back and forth
  }

  /** Deletes every block whose holder is `holder` (the HOLE marks a recovery scan leaves). */
  deleteHolder(holder: number): void {
    const doomed: number[] = [];
    this.forEach((block, h) => {
      if (h === holder) doomed.push(block);
    });
    for (const block of doomed) this.delete(block);
  }

  /** Calls `visit` for every block set in [from, end), in block order; empty pages cost nothing but a look at the directory. */
  forEach(visit: (block: number, holder: number, offset: number) => void, from = 0, end = this.blocks): void {
    if (end <= from) return;
    for (let page = from >>> PAGE_BITS; page <= (end - 1) >>> PAGE_BITS; page++) {
      const kind = this.pageKind[page]!;
      if (kind === EMPTY) continue;
      const first = page * PAGE_BLOCKS;
      const lowFrom = Math.max(0, from - first);
      const lowEnd = Math.min(PAGE_BLOCKS, end - first);
      if (kind === DENSE) {
        const words = this.dense[this.pageSlot[page]!]!;
        for (let low = lowFrom; low < lowEnd; low++) if (words[low * 2] !== 0) visit(first + low, words[low * 2]! - 1, words[low * 2 + 1]!);
        continue;
      }
      const slab = this.slabs[kind - 1]!;
      const slot = this.pageSlot[page]!;
      const base = slab.locate(slot);
      const words = slab.located;
      for (let i = 0; i < this.pageCount[page]!; i++) {
        const key = words[base + i * 2]!;
        const low = key >>> HOLDER_BITS;
        if (low >= lowFrom && low < lowEnd) visit(first + low, key & HOLDER_MASK, words[base + i * 2 + 1]!);
      }
    }
  }

  private put(block: number, holder: number, offset: number, replace: boolean): boolean {
    assert(block >= 0 && block < this.blocks && holder >= 0 && holder <= HOLE);
    const page = block >>> PAGE_BITS;
    const low = block & LOW_MASK;
    let kind = this.pageKind[page]!;
    if (kind === EMPTY) {
      kind = 1;
      this.pageKind[page] = kind;
      this.pageSlot[page] = this.slabs[0]!.allocate();
      this.pageCount[page] = 0;
    }
    const count = this.pageCount[page]!;
    if (kind === DENSE) {
      const words = this.dense[this.pageSlot[page]!]!;
      const present = words[low * 2] !== 0;
      if (present && !replace) return false;
      words[low * 2] = holder + 1;
      words[low * 2 + 1] = offset;
      if (!present) {
        this.pageCount[page] = count + 1;
        this.blocksSet++;
      }
      return true;
    }
    let slab = this.slabs[kind - 1]!;
    let slot = this.pageSlot[page]!;
    let base = slab.locate(slot);
    let words = slab.located;
    const found = search(words, base, count, low);
    if (found >= 0) {
      if (!replace) return false;
      words[base + found * 2] = (low << HOLDER_BITS) | holder;
      words[base + found * 2 + 1] = offset;
      return true;
    }
    if (count === slab.capacity) {
      if (count === SPARSE_MAX) {
        this.makeDense(page);
        return this.put(block, holder, offset, replace);
      }
      this.moveSparse(page, kind + 1);
      kind++;
      slab = this.slabs[kind - 1]!;
      slot = this.pageSlot[page]!;
      base = slab.locate(slot);
      words = slab.located;
    }
    const i = ~found;
    words.copyWithin(base + (i + 1) * 2, base + i * 2, base + count * 2);
    words[base + i * 2] = (low << HOLDER_BITS) | holder;
    words[base + i * 2 + 1] = offset;
    this.pageCount[page] = count + 1;
    this.blocksSet++;
    return true;
  }

  /**
   * Rehomes every sparse page into new slabs once the slots given back reach half of those in
   * use: pages that grow together (random writes spread evenly) leave each smaller class empty
   * at once, and slabs never shrink otherwise. Amortized: it runs after at least half as many
   * bytes were given back as it copies.
   */
  private compactIfWasteful(): void {
    let free = 0;
    let total = 0;
    for (const slab of this.slabs) {
      free += slab.freeBytes;
      total += slab.bytes;
    }
    if (free < COMPACT_MIN_BYTES || 2 * free < total - free) return;
    const old = this.slabs;
    this.slabs = CLASSES.map((capacity) => new Slab(capacity));
    for (let page = 0; page < this.pageKind.length; page++) {
      const kind = this.pageKind[page]!;
      if (kind === EMPTY || kind === DENSE) continue;
      const from = old[kind - 1]!;
      const to = this.slabs[kind - 1]!;
      const slot = this.pageSlot[page]!;
      const start = from.locate(slot);
      const next = to.allocate();
      const at = to.locate(next);
      to.located.set(from.located.subarray(start, start + this.pageCount[page]! * 2), at);
      this.pageSlot[page] = next;
    }
  }

  /** Moves a sparse page's entries to a slot of class `kind` (1-based). */
  private moveSparse(page: number, kind: number): void {
    const from = this.slabs[this.pageKind[page]! - 1]!;
    const to = this.slabs[kind - 1]!;
    const oldSlot = this.pageSlot[page]!;
    const slot = to.allocate();
    const count = this.pageCount[page]!;
    const start = from.locate(oldSlot);
    const at = to.locate(slot);
    to.located.set(from.located.subarray(start, start + count * 2), at);
    from.release(oldSlot);
    this.pageKind[page] = kind;
    this.pageSlot[page] = slot;
    this.compactIfWasteful();
  }

  private makeDense(page: number): void {
    const slab = this.slabs[this.pageKind[page]! - 1]!;
    const slot = this.pageSlot[page]!;
    const base = slab.locate(slot);
    const source = slab.located;
    const words = new Uint32Array(PAGE_BLOCKS * 2);
    for (let i = 0; i < this.pageCount[page]!; i++) {
      const key = source[base + i * 2]!;
      const low = key >>> HOLDER_BITS;
      words[low * 2] = (key & HOLDER_MASK) + 1;
      words[low * 2 + 1] = source[base + i * 2 + 1]!;
    }
    slab.release(slot);
    const reused = this.denseFree.pop();
    const index = reused ?? this.dense.length;
    if (reused === undefined) this.dense.push(words);
    else this.dense[index] = words;
    this.pageKind[page] = DENSE;
    this.pageSlot[page] = index;
    this.compactIfWasteful();
  }

  private freePage(page: number): void {
    const kind = this.pageKind[page]!;
    if (kind === DENSE) {
      this.dense[this.pageSlot[page]!] = null;
      this.denseFree.push(this.pageSlot[page]!);
    } else {
      this.slabs[kind - 1]!.release(this.pageSlot[page]!);
    }
    this.pageKind[page] = EMPTY;
    this.pageCount[page] = 0;
    this.compactIfWasteful();
  }
}

/** Binary search of a sparse page for the block's low bits: its index, or ~(where it would go). */
function search(words: Uint32Array, base: number, count: number, low: number): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const key = words[base + mid * 2]! >>> HOLDER_BITS;
    if (key === low) return mid;
    if (key < low) lo = mid + 1;
    else hi = mid;
  }
  return ~lo;
}
