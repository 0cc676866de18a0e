/**
 * A full primary disk: with the volume directory on a small tmpfs, writes through FUSE fail
 * with ENOSPC and the mount logs a clear line; reads and snapshots keep working; once space
 * returns, writes resume and nothing acknowledged was lost.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, must, run, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { figures } from './figures.js';

t.test('full-disk: ENOSPC through FUSE, reads and snapshots go on, writes resume when space returns', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-full-');
  const cleanup = new Cleanup(t);
  const disk = path.join(root, 'disk');
  fs.mkdirSync(disk);
  await must('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', disk]);
  cleanup.add(() => run('umount', ['-l', disk]));
  const volume = path.join(disk, 'volume');
  const mnt = path.join(root, 'mnt');
  t.equal((await salvo(['init', volume, '--size', '16M', '--segment-size', '1M', '--segments', '24', '--spare', '2', '--archive', path.join(root, 'archive')])).code, 0);
  await cleanup.salvoMount(volume, mnt);
  const live = path.join(mnt, 'live/volume.img');

  await must('dd', ['if=/dev/urandom', `of=${live}`, 'bs=1M', 'count=4', 'conv=notrunc,fsync', 'status=none']);
  const before = fs.readFileSync(live).subarray(0, 4 << 20);
  const synch = JSON.parse((await salvo(['sync', mnt, '--json'])).stdout) as { file: string };

  // Leave the filesystem under the volume almost no room.
  const filler = path.join(disk, 'filler');
  const free = () => {
    const s = fs.statfsSync(disk);
    return s.bavail * s.bsize;
  };
  await run('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64K', `count=${Math.floor((free() - (1 << 20)) / 65536)}`, 'status=none']);

  let failures = 0;
  let lastError = '';
  for (let i = 0; i < 40 && failures === 0; i++) {
    const r = await run('dd', ['if=/dev/urandom', `of=${live}`, 'bs=256K', 'count=4', `seek=${16 + (i % 32)}`, 'conv=notrunc,fsync', 'status=none']);
    if (r.code !== 0) {
      failures++;
      lastError = r.stderr;
    }
  }
  t.ok(failures > 0, 'writes fail once the disk is full');
  t.match(lastError, /No space left on device/, 'with ENOSPC');
  const log = fs.readFileSync(path.join(volume, 'mount.log'), 'utf8');
  t.match(log, /primary storage is full/, 'and the mount log says why, in one line');

  t.ok(fs.readFileSync(live).subarray(0, 4 << 20).equals(before), 'the live volume still reads');
  const past = fs.readFileSync(path.join(mnt, 'snapshots', synch.file));
  t.ok(past.subarray(0, 4 << 20).equals(before), 'snapshots still read');
  const status = await salvo(['status', mnt, '--json']);
  t.equal(status.code, 0, 'status still answers');

  fs.rmSync(filler);
  const again = await run('dd', ['if=/dev/urandom', `of=${live}`, 'bs=256K', 'count=16', 'seek=20', 'conv=notrunc,fsync', 'status=none']);
  t.equal(again.code, 0, `writes resume once space returns ${again.stderr}`);
  const intact = fs.readFileSync(live).subarray(0, 4 << 20).equals(before);
  t.ok(intact, 'nothing acknowledged was lost');
  figures(t, 'full-disk', { 'writes refused with ENOSPC': failures, 'MiB checked after': 4, 'data lost (MiB)': intact ? 0 : 4 });
});
