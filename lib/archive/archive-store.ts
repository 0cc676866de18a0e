/**
 * Backing storage for archived objects. The engine talks only to this interface; a local
 * directory, an S3 bucket and an in-memory twin for tests implement it.
 *
 * Contract (every implementation, checked by test/archive/archive-store-conformance.ts):
 * - `put` creates an object and resolves only once it is durable; it never overwrites: an
 *   existing key fails with ARCHIVE_CONFLICT and leaves the old object as it was.
 * - `get` returns the whole object, or the range clipped to the object's end; a missing key
 *   fails with NOT_FOUND; a range starting at or past the end returns an empty buffer.
 * - `head` returns the size, or null for a missing key.
 * - `list` returns every key under the prefix, sorted as strings; with `startAfter`, only the
 *   keys after it (S3's StartAfter: a reader that knows the older keys asks for the new ones).
 * - `delete` removes a key; deleting a missing key is not an error.
 * - A store that cannot be reached fails with ARCHIVE_UNAVAILABLE (worth retrying).
 */

export interface ByteRange {
  offset: number;
  length: number;
}

/** Requests and bytes, for `salvo status` and the benchmarks. */
export interface StoreStats {
  puts: number;
  gets: number;
  heads: number;
  lists: number;
  deletes: number;
  bytesPut: number;
  bytesGot: number;
}

export interface ArchiveStore {
  /** Where the store is, for messages: a path or an s3:// URL (never a secret). */
  readonly location: string;
  readonly stats: StoreStats;
  /**
   * Stores the concatenation of `parts` under `key`, never over an existing object. Once the
   * promise settles the store holds no reference to `parts`: the archiver reuses their memory.
   */
  put(key: string, parts: readonly Buffer[]): Promise<void>;
  get(key: string, range?: ByteRange): Promise<Buffer>;
  head(key: string): Promise<number | null>;
  list(prefix: string, startAfter?: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /** Releases connections; the store is not used afterwards. */
  close(): Promise<void>;
}

export function emptyStats(): StoreStats {
  return { puts: 0, gets: 0, heads: 0, lists: 0, deletes: 0, bytesPut: 0, bytesGot: 0 };
}

/** Object keys, zero-padded hex so that a lexical listing comes back in log order. */
export const ArchiveKeys = {
  descriptor: 'volume.json',
  segment: (sequence: number): string => `segments/${hex(sequence, 16)}.seg`,
  /** A tail piece names its raw range, so a listing alone tells which pieces chain up. */
  tail: (sequence: number, rawStart: number, rawEnd: number): string => `tails/${hex(sequence, 16)}-${hex(rawStart, 8)}-${hex(rawEnd, 8)}.tail`,
  tailPrefix: (sequence: number): string => `tails/${hex(sequence, 16)}-`,
  parseSegment(key: string): number | null {
    const m = /^segments\/([0-9a-f]{16})\.seg$/.exec(key);
    return m ? parseInt(m[1]!, 16) : null;
  },
  parseTail(key: string): { sequence: number; rawStart: number; rawEnd: number } | null {
    const m = /^tails\/([0-9a-f]{16})-([0-9a-f]{8})-([0-9a-f]{8})\.tail$/.exec(key);
    return m ? { sequence: parseInt(m[1]!, 16), rawStart: parseInt(m[2]!, 16), rawEnd: parseInt(m[3]!, 16) } : null;
  },
};

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, '0');
}

/**
 * The tail pieces that chain up from the segment's first record: from each end, the piece
 * starting there that reaches furthest. Pieces off the chain (overlapping re-sends after a
 * restart) are left out; a gap ends the chain, and the points before it still restore.
 */
export function tailChain(keys: readonly string[], firstOffset: number): { keys: string[]; end: number } {
  const pieces = keys.map((key) => ({ key, range: ArchiveKeys.parseTail(key) })).filter((p) => p.range !== null);
  const chain: string[] = [];
  let end = firstOffset;
  for (;;) {
    const next = pieces.filter((p) => p.range!.rawStart === end).sort((a, b) => b.range!.rawEnd - a.range!.rawEnd)[0];
    if (!next || next.range!.rawEnd <= end) return { keys: chain, end };
    chain.push(next.key);
    end = next.range!.rawEnd;
  }
}
