/**
 * What the kernel says of mounts. fuse-native tells its server nothing when the mount goes
 * from outside (`umount`, `fusermount -u`): libfuse's loop just ends, and libfuse closes its
 * descriptor of /dev/fuse. Salvo looks at /proc instead; and before it unmounts anything, it
 * checks there that the mount is its own.
 */
import fs from 'node:fs';
import path from 'node:path';

/** A line of /proc/self/mounts. */
export interface MountEntry {
  source: string;
  mountpoint: string;
  type: string;
}

/** salvo's mounts: `fuse.salvo` (the subtype it mounts with), or `fuse` with source `salvo` (mounts of salvo before the subtype). */
export const SALVO_FS_TYPE = 'fuse.salvo';

export function isSalvoMount(entry: MountEntry): boolean {
  return entry.type === SALVO_FS_TYPE || (entry.type === 'fuse' && entry.source === 'salvo');
}

export function mountTable(): MountEntry[] {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [source = '', mountpoint = '', type = ''] = line.split(' ').map(unescapeField);
      return { source, mountpoint, type };
    });
}

/** The filesystem mounted at `mountpoint` (absolute, without symlinks, as the kernel lists it), the topmost if stacked; null if none. */
export function mountedAt(mountpoint: string): MountEntry | null {
  return mountTable().filter((e) => e.mountpoint === mountpoint).pop() ?? null;
}

/** True when `mountpoint` (absolute, without symlinks) is a mountpoint now. */
export function isMountpoint(mountpoint: string): boolean {
  return mountedAt(mountpoint) !== null;
}

/** The filesystem that holds `file` (absolute, without symlinks): the mount with the longest mountpoint above it. */
export function filesystemOf(file: string): MountEntry | null {
  let best: MountEntry | null = null;
  for (const entry of mountTable()) {
    const above = entry.mountpoint === '/' || file === entry.mountpoint || file.startsWith(`${entry.mountpoint}/`);
    if (above && (!best || entry.mountpoint.length >= best.mountpoint.length)) best = entry;
  }
  return best;
}

/** The table writes a space, tab, newline or backslash in a path as an octal escape (`\040`). */
function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** This process's descriptors open on /dev/fuse: one a FUSE session, from its mount until libfuse ends it. */
export function fuseDeviceDescriptors(): number[] {
  const fds: number[] = [];
  for (const name of fs.readdirSync('/proc/self/fd')) {
    if (readLink(`/proc/self/fd/${name}`) === '/dev/fuse') fds.push(Number(name));
  }
  return fds;
}

/** True while descriptor `fd` is still open on /dev/fuse. */
export function isFuseDeviceOpen(fd: number): boolean {
  return readLink(`/proc/self/fd/${fd}`) === '/dev/fuse';
}

/**
 * Loop devices whose backing file lies under `dir` (absolute, without symlinks), read from
 * /sys: nothing under the mount is touched, so the mount's own process may ask.
 */
export function loopDevicesUnder(dir: string): { device: string; file: string }[] {
  const found: { device: string; file: string }[] = [];
  let names: string[];
  try {
    names = fs.readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n));
  } catch {
    return found;
  }
  for (const name of names) {
    let file: string;
    try {
      file = fs.readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim().replace(/ \(deleted\)$/, '');
    } catch {
      continue; // not attached
    }
    if (file.startsWith(`${dir}/`)) found.push({ device: `/dev/${name}`, file });
  }
  return found;
}

function readLink(file: string): string | null {
  try {
    return fs.readlinkSync(file);
  } catch {
    return null; // closed meanwhile
  }
}

/** The mount at `dir` as given on a command line (relative, through symlinks), or null if nothing is mounted there. */
export function mountAtPath(dir: string): MountEntry | null {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    real = path.resolve(dir); // a dead FUSE mount cannot be resolved; the path as given then
  }
  return mountedAt(real);
}
