/**
 * Discards through real parts (issue #29): ext4 on the live image via a loop device, `fstrim`,
 * `mount -o discard` and `blkdiscard` reach salvo as fallocate, and the freed blocks read as
 * zeros from then on while the points before keep them; a kill -9 right after a fstrim keeps it.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { VolumeLock } from '../../lib/volume/volume-lock.js';
import { initVolume, syncPoint } from '../helpers/cli.js';
import { Cleanup, must, run, salvo, sha256, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';

const FS_BLOCK = 4096;

interface Status {
  bytesDiscarded: number;
  discards: { supported: boolean; why: string };
  archive: { bytesInCurrentSegment: number };
}

async function status(mnt: string): Promise<Status> {
  return JSON.parse(await must(process.execPath, [path.resolve('dist/bin/salvo.js'), 'status', mnt, '--json'])) as Status;
}

/** The byte ranges of the disk that hold `file` (filefrag's physical extents, in 4 KiB blocks). */
async function extentsOf(file: string): Promise<[number, number][]> {
  const out = await must('filefrag', ['-e', '-b4096', file]);
  const extents = [...out.matchAll(/^\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.\s*(\d+):/gm)].map((m) => [Number(m[1]) * FS_BLOCK, (Number(m[2]) + 1) * FS_BLOCK] as [number, number]);
  if (extents.length === 0) throw new Error(`filefrag found no extents of ${file}: ${out}`);
  return extents;
}

function readRanges(image: string, ranges: [number, number][]): Buffer {
  const fd = fs.openSync(image, 'r');
  try {
    return Buffer.concat(
      ranges.map(([from, to]) => {
        const buf = Buffer.alloc(to - from);
        fs.readSync(fd, buf, 0, buf.length, from);
        return buf;
      }),
    );
  } finally {
    fs.closeSync(fd);
  }
}

const isZero = (buf: Buffer) => buf.every((b) => b === 0);

/** A mounted volume with its live image on a loop device: the parts every test here starts from. */
async function loopOnSalvo(t: Tap.Test) {
  const root = tempDir(t, 'salvo-discard-');
  const cleanup = new Cleanup(t);
  const { volume, mnt } = await initVolume(root);
  await cleanup.salvoMount(volume, mnt);
  const live = path.join(mnt, 'live/volume.img');
  const device = await cleanup.loop(live);
  return { root, cleanup, volume, mnt, live, device };
}

/** The same with ext4 on the device, mounted. */
async function ext4OnSalvo(t: Tap.Test, mountOptions: string[] = []) {
  const parts = await loopOnSalvo(t);
  await must('mkfs.ext4', ['-q', '-b', String(FS_BLOCK), parts.device]);
  const fsMount = await parts.cleanup.mount(parts.device, path.join(parts.root, 'fs'), mountOptions);
  return { ...parts, fsMount };
}

t.test('discard: fstrim frees deleted files in salvo; the point before keeps them, the next reads zeros', async (t) => {
  if (!systemReady(t)) return;
  const { root, cleanup, volume, mnt, live, device, fsMount } = await ext4OnSalvo(t);
  const support = (await status(mnt)).discards;
  t.ok(support.supported, `the mount says discards are on: ${support.why}`);

  const files: Record<string, { digest: string; extents: [number, number][] }> = {};
  for (const name of ['a.dat', 'b.dat', 'keep.dat']) {
    const file = path.join(fsMount, name);
    await must('dd', ['if=/dev/urandom', `of=${file}`, 'bs=64K', 'count=32', 'conv=fsync', 'status=none']);
    files[name] = { digest: sha256(file), extents: await extentsOf(file) };
  }
  const before = await syncPoint(mnt, ['--freeze', fsMount, '--label', 'before']);

  fs.rmSync(path.join(fsMount, 'a.dat'));
  fs.rmSync(path.join(fsMount, 'b.dat'));
  await must('sync', ['-f', fsMount]);
  const freedBefore = (await status(mnt)).bytesDiscarded;
  const trim = await run('fstrim', ['-v', fsMount]);
  t.equal(trim.code, 0, `fstrim succeeds: ${trim.stderr}`);
  const trimmed = Number(/\((\d+) bytes\) trimmed/.exec(trim.stdout)?.[1]);
  t.ok(trimmed >= 4 * 1024 * 1024, `fstrim -v reports what it trimmed: ${trim.stdout.trim()}`);
  const freed = (await status(mnt)).bytesDiscarded - freedBefore;
  t.ok(freed >= 4 * 1024 * 1024 && freed <= trimmed, `salvo freed the deleted files' blocks (${freed} bytes), only blocks that held data`);
  const after = await syncPoint(mnt, ['--freeze', fsMount, '--label', 'after']);

  for (const name of ['a.dat', 'b.dat']) {
    t.ok(isZero(readRanges(live, files[name]!.extents)), `${name}'s blocks read as zeros on the live image`);
    t.ok(isZero(readRanges(path.join(mnt, 'snapshots', after.file), files[name]!.extents)), `and in the point after the fstrim`);
    t.notOk(isZero(readRanges(path.join(mnt, 'snapshots', before.file), files[name]!.extents)), `the point before still holds them`);
  }
  t.notOk(isZero(readRanges(live, files['keep.dat']!.extents)), 'the file not deleted keeps its blocks');

  // The point before, attached as any disk: the deleted files are there as they were.
  const pastDevice = await cleanup.loop(path.join(mnt, 'snapshots', before.file), true);
  t.equal((await run('e2fsck', ['-f', '-n', pastDevice])).code, 0, 'the point before is fsck-clean');
  const past = await cleanup.mount(pastDevice, path.join(root, 'past'), ['-o', 'ro,noload']);
  for (const [name, { digest }] of Object.entries(files)) t.equal(sha256(path.join(past, name)), digest, `the point before has ${name} as it was`);
  await must('umount', [past]);
  const laterDevice = await cleanup.loop(path.join(mnt, 'snapshots', after.file), true);
  t.equal((await run('e2fsck', ['-f', '-n', laterDevice])).code, 0, 'the point after is fsck-clean');

  // A second fstrim of the same free space (a remount forgets what ext4 trimmed) writes nothing.
  await must('umount', [fsMount]);
  await must('mount', [device, fsMount]);
  await syncPoint(mnt, ['--freeze', fsMount]);
  const idle = await status(mnt);
  const again = await run('fstrim', ['-v', fsMount]);
  t.ok(Number(/\((\d+) bytes\) trimmed/.exec(again.stdout)?.[1]) > 0, `ext4 sends the free space again: ${again.stdout.trim()}`);
  const later = await status(mnt);
  t.equal(later.bytesDiscarded, idle.bytesDiscarded, 'salvo frees nothing more');
  t.equal(later.archive.bytesInCurrentSegment, idle.archive.bytesInCurrentSegment, 'and the log did not grow');

  // kill -9 right after a fstrim: the discard was durable when fstrim returned.
  const doomed = path.join(fsMount, 'doomed.dat');
  await must('dd', ['if=/dev/urandom', `of=${doomed}`, 'bs=64K', 'count=16', 'conv=fsync', 'status=none']);
  const doomedExtents = await extentsOf(doomed);
  const point = await syncPoint(mnt, ['--freeze', fsMount, '--label', 'doomed']);
  fs.rmSync(doomed);
  await must('sync', ['-f', fsMount]);
  t.equal((await run('fstrim', [fsMount])).code, 0, 'fstrim after the delete');
  process.kill(VolumeLock.owner(volume)!, 'SIGKILL');
  await run('umount', ['-l', fsMount]);
  await run('losetup', ['--detach', device]);
  await run('fusermount', ['-u', '-z', mnt]);
  await cleanup.salvoMount(volume, mnt);
  t.ok(isZero(readRanges(live, doomedExtents)), 'after kill -9 and recovery the trimmed blocks still read as zeros');
  t.notOk(isZero(readRanges(path.join(mnt, 'snapshots', point.file), doomedExtents)), 'and the point before the delete still has them');
});

t.test('discard: mount -o discard frees a deleted file at once', async (t) => {
  if (!systemReady(t)) return;
  const { mnt, live, fsMount } = await ext4OnSalvo(t, ['-o', 'discard']);
  const file = path.join(fsMount, 'gone.dat');
  await must('dd', ['if=/dev/urandom', `of=${file}`, 'bs=64K', 'count=32', 'conv=fsync', 'status=none']);
  const extents = await extentsOf(file);
  const freedBefore = (await status(mnt)).bytesDiscarded;
  fs.rmSync(file);
  await must('sync', ['-f', fsMount]); // the journal commit sends the discards
  const freed = (await status(mnt)).bytesDiscarded - freedBefore;
  t.ok(freed >= 2 * 1024 * 1024, `the file's 2 MiB were freed (${freed} bytes)`);
  t.ok(isZero(readRanges(live, extents)), "the file's blocks read as zeros");
});

t.test('discard: blkdiscard of an unaligned range zeroes exactly that range', async (t) => {
  if (!systemReady(t)) return;
  const { mnt, live, device } = await loopOnSalvo(t);
  await must('dd', ['if=/dev/urandom', `of=${device}`, 'bs=64K', 'count=16', 'oflag=direct', 'status=none']);
  const image = readRanges(live, [[0, 1024 * 1024]]);
  const [offset, length] = [3 * 4096 + 512, 40 * 4096 + 1024];
  const r = await run('blkdiscard', ['-o', String(offset), '-l', String(length), device]);
  t.equal(r.code, 0, `blkdiscard succeeds: ${r.stderr}`);
  const now = readRanges(live, [[0, 1024 * 1024]]);
  t.ok(isZero(now.subarray(offset, offset + length)), 'the range reads as zeros');
  t.ok(now.subarray(0, offset).equals(image.subarray(0, offset)), 'the bytes before it are kept, to the sector');
  t.ok(now.subarray(offset + length).equals(image.subarray(offset + length)), 'and the bytes after it');
  t.ok((await status(mnt)).bytesDiscarded >= 39 * 4096, 'the whole blocks inside were freed');
  const zero = await run('blkdiscard', ['--zeroout', '-o', '524288', '-l', '65536', device]);
  t.equal(zero.code, 0, `blkdiscard --zeroout (write zeroes) succeeds: ${zero.stderr}`);
  t.ok(isZero(readRanges(live, [[524288, 524288 + 65536]])), 'and zeroes its range');
  const preallocate = await run('fallocate', ['-o', '0', '-l', '4096', live]);
  t.match(preallocate, { code: 1, stderr: /not supported/ }, 'preallocation (fallocate mode 0) is not a discard: EOPNOTSUPP');
});
