/**
 * An archive mounted on its own (`salvo mount <archive> <mountpoint>`), through real parts:
 * while the volume's own mount writes ext4 files and takes synch points, the archive mount
 * serves /snapshots read-only without /live, a new point appears at `ls`, every point's image
 * is byte-identical to the volume mount's, an archived point loop-attaches and mounts with
 * `-o ro,noload`, and `cp` of a file out of it matches. For a directory archive and for S3.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, must, run, salvo, sha256, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { s3TestLocation } from '../helpers/s3.js';

async function archiveMount(t: Tap.Test, archiveAt: (root: string) => string): Promise<void> {
  const root = tempDir(t, 'salvo-archive-mount-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const archive = archiveAt(root);
  const mnt = path.join(root, 'mnt');
  const amnt = path.join(root, 'amnt');
  await must(process.execPath, [path.resolve('dist/bin/salvo.js'), 'init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', archive]);
  await cleanup.salvoMount(volume, mnt);
  const device = await cleanup.loop(path.join(mnt, 'live/volume.img'));
  await must('mkfs.ext4', ['-q', device]);
  const fsMount = await cleanup.mount(device, path.join(root, 'fs'));

  await must('dd', ['if=/dev/urandom', `of=${fsMount}/first.dat`, 'bs=1M', 'count=12', 'status=none']);
  const firstDigest = sha256(path.join(fsMount, 'first.dat'));
  t.equal((await salvo(['sync', mnt, '--freeze', fsMount, '--label', 'first'])).code, 0, 'first point');

  await cleanup.salvoMount(archive, amnt);
  t.same(fs.readdirSync(amnt).sort(), ['.salvo.json', 'snapshots'], 'the archive mount has no live image');
  t.ok(fs.readdirSync(path.join(amnt, 'snapshots/by-label')).includes('first.img'), 'the first point is there');
  const status = await salvo(['status', amnt]);
  t.equal(status.code, 0, `status of the archive mount: ${status.stderr}`);
  t.match(status.stdout, /archive .* mounted on /);

  // The volume's mount goes on writing; its next point appears in the archive mount at `ls`.
  await must('dd', ['if=/dev/urandom', `of=${fsMount}/second.dat`, 'bs=1M', 'count=20', 'status=none']);
  const secondDigest = sha256(path.join(fsMount, 'second.dat'));
  t.equal((await salvo(['sync', mnt, '--freeze', fsMount, '--label', 'second'])).code, 0, 'second point');
  let listed: string[] = [];
  for (let waited = 0; waited < 5000 && !listed.includes('second.img'); waited += 250) {
    await new Promise((r) => setTimeout(r, 250));
    listed = fs.readdirSync(path.join(amnt, 'snapshots/by-label'));
  }
  t.ok(listed.includes('second.img'), 'a new point appears at ls');

  const write = await run('dd', ['if=/dev/zero', `of=${path.join(amnt, 'snapshots/by-label/first.img')}`, 'bs=4k', 'count=1', 'conv=notrunc', 'status=none']);
  t.match(write.stderr, /Read-only file system/, 'the archive mount is read-only');
  const sync = await salvo(['sync', amnt]);
  t.equal(sync.code, 2, 'sync on an archive mount is refused');
  t.match(sync.stderr, /serves the archive .* read-only — take synch points on the volume's own mount/);

  for (const label of ['first', 'second']) {
    const fromVolume = fs.realpathSync(path.join(mnt, `snapshots/by-label/${label}.img`));
    const fromArchive = fs.realpathSync(path.join(amnt, `snapshots/by-label/${label}.img`));
    t.equal(path.basename(fromArchive), path.basename(fromVolume), `${label}: the same snapshot name`);
    t.equal(sha256(fromArchive), sha256(fromVolume), `${label}: byte-identical to the volume mount's image`);
  }

  const pastDevice = await cleanup.loop(path.join(amnt, 'snapshots/by-label/second.img'), true);
  const past = await cleanup.mount(pastDevice, path.join(root, 'past'), ['-o', 'ro,noload']);
  await must('cp', [path.join(past, 'second.dat'), path.join(root, 'copied.dat')]);
  t.equal(sha256(path.join(root, 'copied.dat')), secondDigest, 'cp out of ext4 on the archive-mounted point matches');
  t.equal(sha256(path.join(past, 'first.dat')), firstDigest, 'and the older file too');
  await must('umount', [past]);
  await must('losetup', ['--detach', pastDevice]);

  const stopped = await salvo(['unmount', amnt]);
  t.equal(stopped.code, 0, `unmount of the archive mount: ${stopped.stderr}`);
  t.notOk(fs.readdirSync(amnt).includes('snapshots'), 'unmounted');
}

t.test('archive mount: a directory archive served on its own while the volume writes', async (t) => {
  if (!systemReady(t)) return;
  await archiveMount(t, (root) => path.join(root, 'archive'));
});

t.test('archive mount: the same from S3 (radosgw)', async (t) => {
  if (!systemReady(t)) return;
  const location = await s3TestLocation(t, 'archive-mount');
  if (location) await archiveMount(t, () => location);
});
