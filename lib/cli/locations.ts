/**
 * Where `salvo init` may put a volume directory or an archive directory, checked before
 * anything is created: on a real filesystem (not /proc or /sys, where creating a directory
 * never ends), under directories (not files), outside any salvo mount, and the archive apart
 * from the volume (its point is to outlive the loss of primary storage).
 */
import fs from 'node:fs';
import path from 'node:path';
import { VolumeError, errnoCode } from '../errors.js';
import { filesystemOf, isSalvoMount } from '../fuse/mount-table.js';

/** Kernel filesystems that hold no files of ours. */
const PSEUDO_FILESYSTEMS = new Set([
  'proc', 'sysfs', 'devpts', 'cgroup', 'cgroup2', 'debugfs', 'tracefs', 'securityfs', 'bpf', 'configfs', 'efivarfs',
  'pstore', 'fusectl', 'binfmt_misc', 'mqueue', 'hugetlbfs', 'nsfs', 'selinuxfs', 'autofs', 'rpc_pipefs',
]);

/**
 * The path `target` will have once created, symlinks resolved, after checking that it can be
 * created there. `what` names it in messages ("volume directory", "archive").
 */
export function checkNewLocation(target: string, what: string): string {
  const absolute = path.resolve(target);
  // The nearest part of the path that exists must be a directory; the rest is created.
  let existing = absolute;
  const missing: string[] = [];
  for (;;) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(existing);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOTCONN') throw VolumeError.badInput(`${what} ${target}: ${existing} is a salvo mount whose process is gone`, `clear it with \`salvo unmount ${existing}\``);
      if (code === 'EACCES') throw VolumeError.badInput(`${what} ${target}: this user may not look into ${path.dirname(existing)}`, 'run as a user who may (or root), or choose another place');
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      missing.unshift(path.basename(existing));
      existing = path.dirname(existing);
      continue;
    }
    if (!stat.isDirectory()) {
      throw VolumeError.badInput(`${what} ${target}: ${existing} is a file, not a directory`, 'give a directory path');
    }
    break;
  }
  const real = path.join(fs.realpathSync(existing), ...missing);
  const filesystem = filesystemOf(fs.realpathSync(existing));
  if (filesystem && PSEUDO_FILESYSTEMS.has(filesystem.type)) {
    throw VolumeError.badInput(`${what} ${target} is on a ${filesystem.type} filesystem (${filesystem.mountpoint}), which holds no files`, `put the ${what} on a disk`);
  }
  if (filesystem && isSalvoMount(filesystem)) {
    throw VolumeError.badInput(`${what} ${target} is inside the salvo mount at ${filesystem.mountpoint}`, `put the ${what} on a disk`);
  }
  try {
    fs.accessSync(existing, fs.constants.W_OK);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EROFS') throw VolumeError.badInput(`${what} ${target} is on a read-only filesystem (${filesystem?.mountpoint ?? existing})`, `put the ${what} where salvo can write`);
    if (code === 'EACCES' || code === 'EPERM') throw VolumeError.badInput(`${what} ${target}: this user may not write in ${existing}`, 'run as a user who may (or root), or choose another place');
    throw err;
  }
  return real;
}

/** True when `inner` is `outer` or lies inside it (both absolute, without symlinks). */
export function isWithin(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
}

/** The volume directory and a directory archive must be apart: neither inside the other. */
export function checkApart(volume: string, archive: string): void {
  if (isWithin(archive, volume)) {
    throw VolumeError.badInput(`the archive ${archive} is ${archive === volume ? 'the volume directory itself' : `inside the volume directory ${volume}`}`, 'put the archive elsewhere, ideally on another disk or machine: it must outlive primary storage');
  }
  if (isWithin(volume, archive)) {
    throw VolumeError.badInput(`the volume directory ${volume} is inside the archive ${archive}`, 'give the volume and its archive separate directories');
  }
}
