/**
 * `verify --fsck`: proof that a synch point is usable, not only intact. Each snapshot image
 * is attached read-only to a loop device and checked by its filesystem's own checker, in
 * no-change mode; the loop device is detached whatever happens.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { VolumeError, errnoCode } from '../errors.js';
import { isSalvoMount, mountAtPath } from '../fuse/mount-table.js';

const run = promisify(execFile);

export interface FsckResult {
  file: string;
  fsType: string | null;
  ok: boolean;
  output: string;
}

/** Snapshot files under `<mountpoint>/snapshots`, oldest first (their names sort by time). */
export async function snapshotFiles(mountpoint: string): Promise<string[]> {
  const mount = mountAtPath(mountpoint);
  if (!mount || !isSalvoMount(mount)) {
    throw new VolumeError('NOT_FOUND', `${mountpoint} is not a salvo mount${mount ? ` (it is a ${mount.type} mount)` : ''}`, { hint: 'give the mountpoint of `salvo mount`' });
  }
  const dir = path.join(mountpoint, 'snapshots');
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOTCONN') throw new VolumeError('NOT_MOUNTED', `${mountpoint} is a salvo mount whose process is gone`, { hint: `clear it with \`salvo unmount ${mountpoint}\`, then mount again` });
    throw err;
  }
  return names.filter((n) => /^\d{4}-.*Z\.img$/.test(n)).sort().map((n) => path.join(dir, n));
}

/** The checker for a filesystem type, in no-change mode. */
function checker(fsType: string, device: string): [string, string[]] | null {
  if (fsType.startsWith('ext')) return ['e2fsck', ['-f', '-n', device]];
  if (fsType === 'xfs') return ['xfs_repair', ['-n', device]];
  if (fsType === 'btrfs') return ['btrfs', ['check', '--readonly', device]];
  return null;
}

export async function fsckSnapshot(file: string): Promise<FsckResult> {
  const { stdout } = await run('losetup', ['--read-only', '--find', '--show', file]);
  const device = stdout.trim();
  try {
    let fsType: string | null = null;
    try {
      fsType = (await run('blkid', ['-o', 'value', '-s', 'TYPE', device])).stdout.trim() || null;
    } catch {
      return { file, fsType: null, ok: false, output: 'no filesystem found' };
    }
    const command = fsType ? checker(fsType, device) : null;
    if (!command) return { file, fsType, ok: false, output: `no checker for filesystem type ${fsType}` };
    try {
      const { stdout: out, stderr } = await run(command[0], command[1], { maxBuffer: 16 * 1024 * 1024 });
      return { file, fsType, ok: true, output: (out + stderr).trim() };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      return { file, fsType, ok: false, output: ((e.stdout ?? '') + (e.stderr ?? '') || e.message).trim() };
    }
  } finally {
    await run('losetup', ['--detach', device]).catch(() => undefined);
  }
}
