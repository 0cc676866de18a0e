/**
 * The whole story through real parts: FUSE mount, loop devices, ext4, fsfreeze. Files are
 * written, synch points taken with --freeze, the volume churned until the first points are
 * only in the archive; then every synch point is attached read-only, passes e2fsck -fn, and
 * holds the files with the checksums recorded when it was taken.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, must, run, salvo, sha256, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { s3TestLocation } from '../helpers/s3.js';

interface Taken {
  time: string;
  file: string;
  label: string;
  files: Record<string, string>;
}

async function story(t: Tap.Test, archiveAt: (root: string) => string): Promise<void> {
  const root = tempDir(t, 'salvo-story-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const archive = archiveAt(root);
  const mnt = path.join(root, 'mnt');
  await must(process.execPath, [path.resolve('dist/bin/salvo.js'), 'init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', archive]);
  await cleanup.salvoMount(volume, mnt);

  const live = path.join(mnt, 'live/volume.img');
  t.equal(fs.statSync(live).size, 64 * 1024 * 1024, 'the live image has the volume size');
  t.same(fs.readdirSync(path.join(mnt, 'snapshots')), ['by-label'], 'no snapshots yet');

  const device = await cleanup.loop(live);
  await must('mkfs.ext4', ['-q', device]);
  const fsMount = await cleanup.mount(device, path.join(root, 'fs'));

  const taken: Taken[] = [];
  const record = () =>
    Object.fromEntries(
      fs
        .readdirSync(fsMount)
        .filter((f) => f.endsWith('.dat'))
        .map((f) => [f, sha256(path.join(fsMount, f))]),
    );
  for (let round = 0; round < 4; round++) {
    await must('dd', ['if=/dev/urandom', `of=${fsMount}/file-${round}.dat`, 'bs=64K', `count=${8 + round * 8}`, 'status=none']);
    if (round > 0) fs.rmSync(path.join(fsMount, `file-${round - 1}.dat`));
    fs.appendFileSync(path.join(fsMount, 'log.dat'), `round ${round}\n`);
    const sync = await salvo(['sync', mnt, '--freeze', fsMount, '--label', `round-${round}`, '--json']);
    t.equal(sync.code, 0, `sync round ${round}: ${sync.stderr}`);
    const answer = JSON.parse(sync.stdout) as { time: string; file: string; label: string };
    t.match(answer, { time: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, file: /\.img$/, label: `round-${round}` });
    taken.push({ ...answer, files: record() });
  }

  // Churn: more than the working set, so the first points' windows leave primary storage.
  for (let i = 0; i < 3; i++) await must('dd', ['if=/dev/urandom', `of=${fsMount}/churn.bin`, 'bs=1M', 'count=40', 'conv=fsync', 'status=none']);
  fs.rmSync(path.join(fsMount, 'churn.bin'));

  const listed = JSON.parse((await salvo(['list', volume, '--json'])).stdout) as { time: string; label: string; archived: boolean }[];
  t.same(listed.map((p) => p.time), taken.map((p) => p.time), 'list shows every point, oldest first');
  t.ok(listed[0]!.archived, 'the first point is only in the archive now');

  const names = fs.readdirSync(path.join(mnt, 'snapshots'));
  for (const point of taken) t.ok(names.includes(point.file), `${point.file} is listed`);
  t.equal(fs.readlinkSync(path.join(mnt, 'snapshots/latest.img')), taken[taken.length - 1]!.file, 'latest.img points to the newest');
  t.equal(fs.readlinkSync(path.join(mnt, 'snapshots/by-label/round-0.img')), `../${taken[0]!.file}`, 'labels are symlinks');
  const stat = fs.statSync(path.join(mnt, 'snapshots', taken[0]!.file));
  t.equal(stat.mtime.toISOString(), taken[0]!.time, 'mtime is the synch time');
  t.equal(stat.mode & 0o777, 0o444, 'snapshots are read-only files');

  for (const point of taken) {
    const image = path.join(mnt, 'snapshots', point.file);
    const pastDevice = await cleanup.loop(image, true);
    const fsck = await run('e2fsck', ['-f', '-n', pastDevice]);
    t.equal(fsck.code, 0, `${point.label}: e2fsck -fn is clean${fsck.code ? `: ${fsck.stdout}` : ''}`);
    const past = await cleanup.mount(pastDevice, path.join(root, `past-${point.label}`), ['-o', 'ro,noload']);
    for (const [file, digest] of Object.entries(point.files)) t.equal(sha256(path.join(past, file)), digest, `${point.label}: ${file} as it was`);
    t.same(fs.readdirSync(past).filter((f) => f.endsWith('.dat')).sort(), Object.keys(point.files).sort(), `${point.label}: no other files`);
    await must('umount', [past]);
    await must('losetup', ['--detach', pastDevice]);
  }

  const write = await run('dd', ['if=/dev/zero', `of=${path.join(mnt, 'snapshots', taken[0]!.file)}`, 'bs=4k', 'count=1', 'conv=notrunc', 'status=none']);
  t.not(write.code, 0, 'writing a snapshot fails');
  t.match(write.stderr, /Read-only file system/, 'with EROFS');
  t.not((await run('touch', [path.join(mnt, 'snapshots/new.img')])).code, 0, 'nothing can be added to snapshots/');

  const copy = path.join(root, 'copy.img');
  await must('cp', [path.join(mnt, 'snapshots', taken[1]!.file), copy]);
  const restored = path.join(root, 'restored.img');
  const restore = await salvo(['restore', archive, '--at', 'round-1', restored]);
  t.equal(restore.code, 0, `restore from the archive alone: ${restore.stderr}`);
  t.equal(sha256(restored), sha256(copy), 'restore from the archive equals cp of the snapshot file');
  // And against what was written, not only against salvo's own snapshot: the files as they were.
  const restoredDevice = await cleanup.loop(restored, true);
  const fromArchive = await cleanup.mount(restoredDevice, path.join(root, 'restored'), ['-o', 'ro,noload']);
  for (const [file, digest] of Object.entries(taken[1]!.files)) t.equal(sha256(path.join(fromArchive, file)), digest, `restored round-1: ${file} as it was written`);
  await must('umount', [fromArchive]);
  await must('losetup', ['--detach', restoredDevice]);

  const fsckAll = await salvo(['verify', '--fsck', mnt]);
  t.equal(fsckAll.code, 0, `verify --fsck: ${fsckAll.stdout}${fsckAll.stderr}`);
  t.match(fsckAll.stdout, /4 synch points checked/);

  const busy = await salvo(['unmount', mnt]);
  t.equal(busy.code, 4, 'unmount while the live image is attached is refused');
  t.match(busy.stderr, /in use by \/dev\/loop/);
}

t.test('story: synch points taken with --freeze are fsck-clean and hold their files, archived ones too', async (t) => {
  if (!systemReady(t)) return;
  await story(t, (root) => path.join(root, 'archive'));
});

t.test('story: the same with the archive on S3 (radosgw)', async (t) => {
  if (!systemReady(t)) return;
  const location = await s3TestLocation(t, 'story');
  if (location) await story(t, () => location);
});
