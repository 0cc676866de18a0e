/**
 * kill -9 of the mount process under load, repeated at random moments: fio (with verify)
 * writes through ext4 on the live image when the mount dies. After each remount ext4 is
 * clean once its journal is replayed, every file written before a synch point is intact on
 * the live volume, and every synch point taken so far is fsck-clean and holds its files.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { VolumeLock } from '../../lib/volume/volume-lock.js';
import { Cleanup, must, run, salvo, sha256, systemReady } from '../helpers/system.js';
import { prng, tempDir } from '../helpers/temp-volume.js';
import { figures } from './figures.js';

const ROUNDS = 3;

t.test('kill-mount: SIGKILL under fio load, repeatedly; ext4 clean, files and synch points intact', async (t) => {
  if (!systemReady(t)) return;
  const random = prng(Number(process.env.SEED ?? 11));
  const root = tempDir(t, 'salvo-kill-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const mnt = path.join(root, 'mnt');
  const live = path.join(mnt, 'live/volume.img');
  t.equal((await salvo(['init', volume, '--size', '128M', '--segment-size', '1M', '--segments', '200', '--archive', path.join(root, 'archive')])).code, 0);
  await cleanup.salvoMount(volume, mnt);
  let device = await cleanup.loop(live);
  await must('mkfs.ext4', ['-q', device]);
  let fsMount = await cleanup.mount(device, path.join(root, 'fs-0'));

  const files = new Map<string, string>(); // file → sha256, all written before some synch point
  const points: { file: string; files: string[] }[] = [];
  let checkedFiles = 0;
  let checkedPoints = 0;
  let lost = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const name = `before-${round}.dat`;
    await must('dd', ['if=/dev/urandom', `of=${fsMount}/${name}`, 'bs=64K', 'count=16', 'status=none']);
    files.set(name, sha256(path.join(fsMount, name)));
    const synch = await salvo(['sync', mnt, '--freeze', fsMount, '--label', `round-${round}`, '--json']);
    t.equal(synch.code, 0, `sync before kill ${round}: ${synch.stderr}`);
    points.push({ file: (JSON.parse(synch.stdout) as { file: string }).file, files: [...files.keys()] });

    const load = run('fio', ['--name=load', `--directory=${fsMount}`, '--rw=randwrite', '--bs=4k', '--size=24M', '--ioengine=psync', '--verify=crc32c', '--do_verify=1', '--fsync=64', '--verify_state_save=0']);
    await new Promise((r) => setTimeout(r, 300 + Math.floor(random() * 1500)));
    const pid = VolumeLock.owner(volume)!;
    process.kill(pid, 'SIGKILL');
    await load; // ends with I/O errors once the mount is gone
    await run('umount', ['-l', fsMount]);
    await run('losetup', ['--detach', device]);
    await run('fusermount', ['-u', '-z', mnt]);

    // The stale lock and the dead mountpoint must not block the next mount.
    await cleanup.salvoMount(volume, mnt);
    device = await cleanup.loop(live);
    fsMount = await cleanup.mount(device, path.join(root, `fs-${round + 1}`)); // replays the journal
    for (const [file, digest] of files) {
      checkedFiles++;
      if (sha256(path.join(fsMount, file)) !== digest) {
        lost++;
        t.fail(`round ${round}: ${file} changed on the live volume`);
      }
    }
    fs.rmSync(path.join(fsMount, 'load.0.0'), { force: true });
    await must('umount', [fsMount]);
    const fsck = await run('e2fsck', ['-f', '-n', device]);
    t.equal(fsck.code, 0, `round ${round}: ext4 is clean after journal replay${fsck.code ? `: ${fsck.stdout}` : ''}`);
    await must('mount', [device, fsMount]);

    for (const point of points) {
      checkedPoints++;
      const pastDevice = await cleanup.loop(path.join(mnt, 'snapshots', point.file), true);
      t.equal((await run('e2fsck', ['-f', '-n', pastDevice])).code, 0, `round ${round}: ${point.file} is fsck-clean`);
      const past = await cleanup.mount(pastDevice, path.join(root, `past-${round}-${checkedPoints}`), ['-o', 'ro,noload']);
      for (const file of point.files) {
        if (sha256(path.join(past, file)) !== files.get(file)) {
          lost++;
          t.fail(`round ${round}: ${file} changed in ${point.file}`);
        }
      }
      await must('umount', [past]);
      await must('losetup', ['--detach', pastDevice]);
    }
  }
  t.equal(lost, 0, 'nothing was lost');
  figures(t, 'kill-mount', { 'kills under fio load': ROUNDS, 'files checked': checkedFiles, 'synch points checked': checkedPoints, 'data lost': lost });
});
