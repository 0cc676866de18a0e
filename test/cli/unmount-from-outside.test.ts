/**
 * A mount unmounted with `umount` instead of `salvo unmount`: libfuse's loop ends without a word
 * to the server, so the mount process watches for libfuse closing /dev/fuse. It must then close
 * the volume and exit (not hold the volume's lock for nothing), but not while a loop device
 * still writes through a lazily unmounted mount.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { openVolume } from '../../lib/cli/volume-access.js';
import { isProcessAlive } from '../../bench/common.js';
import { Cleanup, must, run, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';

async function mountPid(mountpoint: string): Promise<number> {
  return (JSON.parse((await salvo(['status', mountpoint, '--json'])).stdout) as { pid: number }).pid;
}

async function exitsWithin(pid: number, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    if (!isProcessAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !isProcessAlive(pid);
}

async function newVolume(t: Tap.Test): Promise<{ root: string; volume: string; mnt: string }> {
  const root = tempDir(t, 'salvo-umount-');
  const volume = path.join(root, 'volume');
  const r = await salvo(['init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', path.join(root, 'archive')]);
  t.equal(r.code, 0, r.stderr);
  return { root, volume, mnt: path.join(root, 'mnt') };
}

t.test('umount from outside: the mount process closes the volume and exits, and the volume mounts again', async (t) => {
  if (!systemReady(t)) return;
  const { volume, mnt } = await newVolume(t);
  const cleanup = new Cleanup(t); // after the directory: teardowns run last first
  await cleanup.salvoMount(volume, mnt);
  const pid = await mountPid(mnt);
  await must('umount', [mnt]);
  t.ok(await exitsWithin(pid, 10_000), 'the process exits');
  t.match(fs.readFileSync(path.join(volume, 'mount.log'), 'utf8'), /was unmounted from outside salvo; closing the volume/, 'and says why in its log');
  await t.resolves(cleanup.salvoMount(volume, mnt), 'the lock is free: the volume mounts again');
});

t.test('umount -l while a loop device holds the live image: served until the device lets go, nothing lost', async (t) => {
  if (!systemReady(t)) return;
  const { root, volume, mnt } = await newVolume(t);
  const cleanup = new Cleanup(t);
  await cleanup.salvoMount(volume, mnt);
  const pid = await mountPid(mnt);
  const device = await cleanup.loop(path.join(mnt, 'live', 'volume.img'));
  const data = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  const source = path.join(root, 'data');
  fs.writeFileSync(source, data.subarray(0, 1024 * 1024));
  await must('dd', [`if=${source}`, `of=${device}`, 'bs=1M', 'oflag=direct', 'status=none']);
  t.not((await run('umount', [mnt])).code, 0, 'a plain umount is refused while the device is attached');
  await must('umount', ['-l', mnt]);
  await new Promise((r) => setTimeout(r, 2500));
  t.ok(isProcessAlive(pid), 'after a lazy unmount the process still serves the device');
  fs.writeFileSync(source, data.subarray(1024 * 1024));
  await must('dd', [`if=${source}`, `of=${device}`, 'bs=1M', 'seek=1', 'oflag=direct', 'status=none']);
  await must('losetup', ['--detach', device]);
  t.ok(await exitsWithin(pid, 10_000), 'and exits once the device lets go');
  const reopened = await openVolume(volume);
  t.teardown(() => reopened.close());
  t.ok(reopened.volume.read(0, data.length).equals(data), 'every write made through the detached mount is in the volume');
});
