/**
 * The modes a mount shows are the modes it enforces. With `--allow-other`, another user (nobody)
 * reads what the modes allow — the images, -rw-r--r-- and -r--r--r-- — and writes nothing: not
 * the live image, not a snapshot, not a new file. Without it, only the mounting user sees the
 * mount at all.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, must, run, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { initVolume, syncPoint } from '../helpers/cli.js';

/** Runs a shell command as nobody, outside the test runner's environment. */
function asNobody(script: string) {
  return run('env', ['-i', `PATH=${process.env.PATH}`, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '/bin/sh', '-c', script]);
}

t.test('permissions: with --allow-other another user reads what the modes allow and writes nothing', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-perm-');
  const cleanup = new Cleanup(t);
  const { volume, mnt } = await initVolume(root);
  await cleanup.salvoMount(volume, mnt, ['--allow-other']);
  const live = path.join(mnt, 'live/volume.img');
  const before = Buffer.from('salvo permissions test, written by root');
  fs.writeFileSync(path.join(root, 'first'), before);
  await must('dd', [`if=${path.join(root, 'first')}`, `of=${live}`, 'conv=notrunc,fsync', 'status=none']);
  const point = await syncPoint(mnt);
  const snapshot = path.join(mnt, 'snapshots', point.file);
  t.equal(fs.statSync(live).mode & 0o777, 0o644, 'the live image shows -rw-r--r--');
  t.equal(fs.statSync(snapshot).mode & 0o777, 0o444, 'a snapshot shows -r--r--r--');

  const listed = await asNobody(`ls ${path.join(mnt, 'snapshots')}`);
  t.equal(listed.code, 0, `nobody lists the snapshots: ${listed.stderr}`);
  t.match(listed.stdout, point.file);
  const read = await asNobody(`head -c ${before.length} ${live}`);
  t.equal(read.stdout, before.toString(), 'nobody reads the live image (r for others)');
  t.equal((await asNobody(`head -c ${before.length} ${snapshot}`)).stdout, before.toString(), 'and a snapshot');

  const write = await asNobody(`printf PWN | dd of=${live} bs=1 seek=0 conv=notrunc status=none`);
  t.not(write.code, 0, 'nobody cannot write the live image');
  t.match(write.stderr, /Permission denied/, 'the kernel refuses it: EACCES');
  t.equal(fs.readFileSync(live).subarray(0, before.length).toString(), before.toString(), 'and not a byte of it landed');
  const snap = await asNobody(`printf PWN | dd of=${snapshot} bs=1 conv=notrunc status=none`);
  t.not(snap.code, 0, 'nobody cannot write a snapshot');
  t.not((await asNobody(`touch ${path.join(mnt, 'snapshots/new.img')}`)).code, 0, 'nor add a file');
  t.not((await asNobody(`truncate -s 0 ${live}`)).code, 0, 'nor truncate the live image');

  const rootWrite = await run('dd', ['if=/dev/zero', `of=${live}`, 'bs=4k', 'count=1', 'seek=10', 'conv=notrunc,fsync', 'status=none']);
  t.equal(rootWrite.code, 0, 'the mounting user still writes the live image');
});

t.test('permissions: without --allow-other, only the mounting user sees the mount', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-perm-');
  const cleanup = new Cleanup(t);
  const { volume, mnt } = await initVolume(root);
  await cleanup.salvoMount(volume, mnt);
  const r = await asNobody(`ls ${mnt}; head -c 1 ${path.join(mnt, 'live/volume.img')}`);
  t.not(r.code, 0, 'nobody cannot look into the mount');
  t.match(r.stderr, /Permission denied/, 'EACCES');
  t.equal((await run('ls', [mnt])).code, 0, 'the mounting user can');
});
