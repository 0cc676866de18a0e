/**
 * Engine-level volumes and write histories for the benchmarks that drive lib/volume
 * directly (no FUSE): a volume in a scratch directory archiving to a local directory, block
 * contents that compress about 2:1 (like real volume data, unlike random bytes or zeros),
 * and the two histories the benchmarks compare: random 4 KiB writes and sequential 128 KiB
 * writes that wrap around the volume.
 */
import path from 'node:path';
import type { ArchiveStore } from '../lib/archive/archive-store.js';
import { DirectoryStore } from '../lib/archive/directory-store.js';
import { Volume } from '../lib/volume/volume.js';
import type { SynchPoint } from '../lib/volume/synch-point.js';

export const BLOCK_BYTES = 4096;
const POOL_BYTES = 16 * 1024 * 1024;

/** Deterministic pseudo-random numbers (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

let pool: Buffer | null = null;

/**
 * 16 MiB of block contents: each 4 KiB block is half random bytes, half a repeated text
 * line, so zstd compresses a 1 MiB chunk of it about 2:1. Writes take slices of it.
 */
export function dataPool(): Buffer {
  if (pool) return pool;
  pool = Buffer.allocUnsafe(POOL_BYTES);
  const random = prng(42);
  const line = Buffer.from('salvo bench: the quick brown fox jumps over the lazy dog 0123456789\n');
  for (let at = 0; at < POOL_BYTES; at += BLOCK_BYTES) {
    for (let i = 0; i < BLOCK_BYTES / 2; i += 4) pool.writeUInt32LE((random() * 2 ** 32) >>> 0, at + i);
    for (let i = BLOCK_BYTES / 2; i < BLOCK_BYTES; i++) pool[at + i] = line[i % line.length]!;
  }
  return pool;
}

/** `length` bytes of data for the n-th write (a slice of the pool; never all zeros). */
export function dataFor(n: number, length: number): Buffer {
  const p = dataPool();
  const start = ((n * 7919 * BLOCK_BYTES) % (POOL_BYTES - length + BLOCK_BYTES)) & ~(BLOCK_BYTES - 1);
  return p.subarray(start, start + length);
}

export interface Policy {
  sizeBytes: number;
  segmentSizeBytes: number;
  workingSetSegments: number;
  spareSegments: number;
}

export interface EngineVolume {
  dir: string;
  archive: string;
  volume: Volume;
}

/** Creates and opens a volume in `base`/volume archiving to `base`/archive (or to `store`). */
export async function createVolume(base: string, policy: Policy, extra: { store?: ArchiveStore } = {}): Promise<EngineVolume> {
  const dir = path.join(base, 'volume');
  const archive = path.join(base, 'archive');
  const store = extra.store ?? new DirectoryStore(archive);
  await Volume.create(dir, { blockSizeBytes: BLOCK_BYTES, archive: store.location, ...policy, store });
  const volume = await Volume.open(dir, { onStall: () => undefined, store });
  return { dir, archive, volume };
}

export type HistoryKind = 'rand4k' | 'seq128k';

export const HISTORY_LABELS: Record<HistoryKind, string> = {
  rand4k: 'random 4k writes',
  seq128k: 'sequential 128k writes',
};

/**
 * Writes `kind` history into the volume, one write at a time (FUSE hands salvo one write at
 * a time), until `done()` says stop (checked every write). Returns writes and bytes.
 */
export async function writeHistory(volume: Volume, kind: HistoryKind, done: (writes: number, bytes: number) => boolean, state = { n: 0, seed: 7 }): Promise<{ writes: number; bytes: number }> {
  const random = prng(state.seed + state.n);
  const blocks = volume.sizeBytes / BLOCK_BYTES;
  const length = kind === 'rand4k' ? BLOCK_BYTES : 128 * 1024;
  const perWrite = length / BLOCK_BYTES;
  let writes = 0;
  let bytes = 0;
  while (!done(writes, bytes)) {
    const n = state.n++;
    const block = kind === 'rand4k' ? Math.floor(random() * blocks) : (n * perWrite) % blocks; // sizes are multiples of 128 KiB
    await volume.write(dataFor(n, length), block * BLOCK_BYTES);
    writes++;
    bytes += length;
  }
  return { writes, bytes };
}

/** Writes until the current segment's sequence reaches `sequence`. */
export function untilSegment(volume: Volume, sequence: number): () => boolean {
  return () => volume.internals.log.current.sequence >= sequence;
}

/** Takes a synch point and returns it. */
export function synch(volume: Volume, label?: string): Promise<SynchPoint> {
  return volume.synch({ label: label ?? null, info: { agent: 'bench' } });
}
