/**
 * What the slot files may take of the process's limit of open files. They share one pool of
 * descriptors (descriptor-pool.ts) sized from that limit, so a volume of any number of slot
 * files opens under any limit that leaves the pool a few descriptors; below that, the limit is
 * named for what it is, never taken for a damaged volume.
 */
import fs from 'node:fs';
import { RAISE_OPEN_FILES, VolumeError } from '../errors.js';
import { DescriptorPool } from './descriptor-pool.js';

/** Descriptors kept free for everything but the slots: the archive's files and sockets, FUSE, the workers. */
export const DESCRIPTORS_RESERVED = 256;

/**
 * Slot files kept open at most: plenty for the hot ones (the current slot, copy-forward's source,
 * what reads hit), and a miss costs only an open and a close (BENCHMARKS.md, engine notes, "Slot
 * files opened on demand").
 */
export const SLOT_DESCRIPTORS_MAX = 4096;

/** Fewer than this, and the current slot, copy-forward's source and a few readers would evict each other on every request. */
export const SLOT_DESCRIPTORS_MIN = 16;

/** This process's limit of open files (Node raises the soft limit to the hard one at start), or null if unknown. */
export function openFilesLimit(): number | null {
  try {
    const line = /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1];
    return line === undefined || line === 'unlimited' ? null : Number(line);
  } catch {
    return null;
  }
}

/** How many slot files may be open at once under `limit`; RESOURCE_LIMIT when it leaves fewer than SLOT_DESCRIPTORS_MIN. */
export function slotDescriptors(limit = openFilesLimit()): number {
  if (limit === null) return SLOT_DESCRIPTORS_MAX;
  const available = Math.min(SLOT_DESCRIPTORS_MAX, limit - DESCRIPTORS_RESERVED);
  if (available < SLOT_DESCRIPTORS_MIN) {
    throw new VolumeError(
      'RESOURCE_LIMIT',
      `this process may open ${limit} files, and a volume needs ${DESCRIPTORS_RESERVED + SLOT_DESCRIPTORS_MIN} (${SLOT_DESCRIPTORS_MIN} for its slot files, ${DESCRIPTORS_RESERVED} for the archive, FUSE and the workers)`,
      { hint: RAISE_OPEN_FILES },
    );
  }
  return available;
}

let shared: DescriptorPool | undefined;

/** The pool every volume of this process opens its slot files through, unless it is given its own. */
export function sharedDescriptorPool(): DescriptorPool {
  return (shared ??= new DescriptorPool(slotDescriptors()));
}
