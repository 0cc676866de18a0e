/**
 * kill -9 of the mount process during a write-heavy run through ext4: after remounting,
 * ext4 is clean once its journal is replayed, and every synch point taken before the kill
 * still holds its files.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { VolumeLock } from '../../lib/volume/volume-lock.js';
import { Cleanup, must, run, salvo, sha256, systemReady } from '../helpers/system.js';
import { prng, tempDir } from '../helpers/temp-volume.js';

t.test('kill-mount: SIGKILL under load, then remount: ext4 clean and earlier points intact', async (t) => {
  if (!systemReady(t)) return;
  const random = prng(Number(process.env.SEED ?? 11));
  const root = tempDir(t, 'salvo-kill-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const mnt = path.join(root, 'mnt');
  await must(process.execPath, [path.resolve('dist/bin/salvo.js'), 'init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', path.join(root, 'archive')]);
  await cleanup.salvoMount(volume, mnt);
  const live = path.join(mnt, 'live/volume.img');
  let device = await cleanup.loop(live);
  await must('mkfs.ext4', ['-q', device]);
  let fsMount = await cleanup.mount(device, path.join(root, 'fs'));
  await must('dd', ['if=/dev/urandom', `of=${fsMount}/before.dat`, 'bs=64K', 'count=32', 'status=none']);
  const digest = sha256(path.join(fsMount, 'before.dat'));
  const synch = await salvo(['sync', mnt, '--freeze', fsMount, '--label', 'before', '--json']);
  t.equal(synch.code, 0, `sync before the kill ${synch.stderr}`);
  const point = JSON.parse(synch.stdout) as { file: string };

  // Load, then kill -9 the mount process at a random moment in it.
  const load = run('dd', ['if=/dev/urandom', `of=${fsMount}/load.dat`, 'bs=256K', 'count=160', 'status=none']);
  await new Promise((r) => setTimeout(r, 200 + Math.floor(random() * 800)));
  const pid = VolumeLock.owner(volume)!;
  t.ok(pid > 0, `the mount runs as pid ${pid}`);
  process.kill(pid, 'SIGKILL');
  await load; // fails with I/O errors once the mount is gone
  await run('umount', ['-l', fsMount]);
  await run('losetup', ['--detach', device]);
  await run('fusermount', ['-u', '-z', mnt]);

  // A stale lock and a dead mountpoint must not block the next mount.
  await cleanup.salvoMount(volume, mnt);
  device = await cleanup.loop(live);
  fsMount = await cleanup.mount(device, path.join(root, 'fs2')); // replays the journal
  t.equal(sha256(path.join(fsMount, 'before.dat')), digest, 'the file from before the kill is intact on the live volume');
  await must('umount', [fsMount]);
  const fsck = await run('e2fsck', ['-f', '-n', device]);
  t.equal(fsck.code, 0, `ext4 is clean after journal replay${fsck.code ? `: ${fsck.stdout}` : ''}`);

  const pastDevice = await cleanup.loop(path.join(mnt, 'snapshots', point.file), true);
  t.equal((await run('e2fsck', ['-f', '-n', pastDevice])).code, 0, 'the synch point from before the kill is fsck-clean');
  const past = await cleanup.mount(pastDevice, path.join(root, 'past'), ['-o', 'ro,noload']);
  t.equal(sha256(path.join(past, 'before.dat')), digest, 'and holds its file');
  t.ok(fs.existsSync(path.join(mnt, 'snapshots/by-label/before.img')), 'its label survives');
});
