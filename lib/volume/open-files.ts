/**
 * A mounted volume keeps every slot file open, so a policy needs that many descriptors from
 * the process's limit of open files (beside those of the archive, FUSE and Node). Checked at
 * init and before the slots are opened, so the limit is named for what it is, never taken for
 * a damaged volume.
 */
import fs from 'node:fs';
import { VolumeError } from '../errors.js';
import { formatBytes, formatSizeArgument } from '../format/units.js';
import { minimumWorkingSet, resolvePolicy, type PolicyInput } from '../format/volume-config.js';

/** Descriptors kept free for everything but the slots: the archive's files and sockets, FUSE, the workers. */
export const DESCRIPTORS_RESERVED = 256;

/** This process's limit of open files (Node raises the soft limit to the hard one at start), or null if unknown. */
export function openFilesLimit(): number | null {
  try {
    const line = /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1];
    return line === undefined || line === 'unlimited' ? null : Number(line);
  } catch {
    return null;
  }
}

/** Fails with what would work when `slots` slot files cannot all be open at once here. */
export function checkOpenFileLimit(policy: Required<PolicyInput>, when: 'init' | 'open', workingSetGiven = false): void {
  const limit = openFilesLimit();
  const slots = policy.workingSetSegments + policy.spareSegments;
  if (limit === null || slots + DESCRIPTORS_RESERVED <= limit) return;
  const what = `${slots} slot files (${policy.workingSetSegments} + ${policy.spareSegments} spare, of ${formatBytes(policy.segmentSizeBytes)}) needs ${slots + DESCRIPTORS_RESERVED} open files, and this process may open ${limit}`;
  const raise = 'raise the limit of open files (ulimit -n; LimitNOFILE= in a systemd unit)';
  if (when === 'open') throw new VolumeError('RESOURCE_LIMIT', `cannot open the volume: its ${what}`, { hint: raise });
  const way = fitting(policy, limit, workingSetGiven);
  throw new VolumeError('BAD_POLICY', `a volume of ${what}`, { hint: way ? `${way}, or ${raise}` : raise });
}

/** What would fit `limit`: a larger segment size with its default working set (unless one was given), else the shortest working set. */
function fitting(policy: Required<PolicyInput>, limit: number, workingSetGiven: boolean): string | null {
  const fits = (p: Required<PolicyInput>) => p.workingSetSegments + p.spareSegments + DESCRIPTORS_RESERVED <= limit;
  for (let size = policy.segmentSizeBytes * 2; !workingSetGiven && size <= 1024 ** 3; size *= 2) {
    try {
      const candidate = resolvePolicy({ ...policy, segmentSizeBytes: size, workingSetSegments: undefined });
      if (fits(candidate)) return `use --segment-size ${formatSizeArgument(size)} (${candidate.workingSetSegments + candidate.spareSegments} slot files)`;
    } catch {
      // not a policy init accepts; try the next size
    }
  }
  const shortest = minimumWorkingSet(policy.sizeBytes, policy.segmentSizeBytes, policy.blockSizeBytes);
  return shortest < policy.workingSetSegments && fits({ ...policy, workingSetSegments: shortest }) ? `use --segments ${shortest} (the shortest working set for this volume)` : null;
}
