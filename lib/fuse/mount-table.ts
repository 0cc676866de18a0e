/**
 * What the kernel says of salvo's mounts. fuse-native tells its server nothing when the mount
 * goes from outside (`umount`, `fusermount -u`): libfuse's loop just ends, and libfuse closes
 * its descriptor of /dev/fuse. Salvo looks at /proc instead.
 */
import fs from 'node:fs';

/** True when `mountpoint` (absolute, without symlinks, as the kernel lists it) is a mountpoint now. */
export function isMountpoint(mountpoint: string): boolean {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((line) => unescapeField(line.split(' ')[1] ?? '') === mountpoint);
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

function readLink(file: string): string | null {
  try {
    return fs.readlinkSync(file);
  } catch {
    return null; // closed meanwhile
  }
}
