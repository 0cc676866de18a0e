/**
 * Retention through real parts, on radosgw: ext4 on the live image, a history of points whose
 * files are written and deleted; `salvo forget --prune` runs while writes go on and while an
 * archive mount on another mountpoint holds an old kept point open through a loop device. The
 * old point still reads byte for byte, the archive mount stops listing the forgotten points,
 * the archive restores and verifies, and the volume's points pass fsck.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, must, run, salvo, sha256, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { s3TestLocation } from '../helpers/s3.js';
import { syncPoint } from '../helpers/cli.js';

const listed = async (target: string) => (JSON.parse((await salvo(['list', target, '--json'])).stdout) as { time: string; label: string | null }[]).map((p) => p.label ?? p.time);

t.test('retention on S3: forget --prune while writes go on and an archive mount reads an old kept point', async (t) => {
  if (!systemReady(t)) return;
  const location = await s3TestLocation(t, 'retention');
  if (!location) return;
  const root = tempDir(t, 'salvo-retention-s3-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const mnt = path.join(root, 'mnt');
  const amnt = path.join(root, 'amnt');
  // 16 MiB in 1 MiB segments with the shortest working set it allows (22): a short history has segments to prune.
  const init = await salvo(['init', volume, '--size', '16M', '--segment-size', '1M', '--segments', '22', '--archive', location]);
  t.equal(init.code, 0, `init ${init.stderr}`);
  await cleanup.salvoMount(volume, mnt);
  const device = await cleanup.loop(path.join(mnt, 'live/volume.img'));
  await must('mkfs.ext4', ['-q', device]);
  const fsMount = await cleanup.mount(device, path.join(root, 'fs'));

  await must('dd', ['if=/dev/urandom', `of=${fsMount}/early.dat`, 'bs=1M', 'count=2', 'status=none']);
  const earlyDigest = sha256(path.join(fsMount, 'early.dat'));
  await syncPoint(mnt, ['--freeze', fsMount, '--label', 'early']);
  const times: string[] = [];
  for (let i = 0; i < 10; i++) {
    fs.rmSync(path.join(fsMount, `step-${i - 1}.dat`), { force: true });
    await must('dd', ['if=/dev/urandom', `of=${fsMount}/step-${i}.dat`, 'bs=1M', 'count=4', 'status=none']);
    times.push((await syncPoint(mnt, ['--freeze', fsMount])).time);
  }

  // An archive mount holds the early point open, through a loop device and ext4.
  await cleanup.salvoMount(location, amnt);
  const pastDevice = await cleanup.loop(path.join(amnt, 'snapshots/by-label/early.img'), true);
  const past = await cleanup.mount(pastDevice, path.join(root, 'past'), ['-o', 'ro,noload']);

  const writer = run('sh', ['-c', `for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=${fsMount}/busy.dat bs=1M count=2 conv=fsync status=none; done`]);
  const forget = await salvo(['forget', volume, '--keep-last', '2', '--prune', '--grace', '2s'], { timeoutMs: 300_000 });
  t.equal(forget.code, 0, `forget --keep-last 2 --prune while writes go on ${forget.stderr}`);
  t.match(forget.stdout, /pruned [1-9]\d* segments(, compacted \d+ \(.*\))?, freed /, `it pruned: ${forget.stdout.split('\n').slice(-2).join(' ')}`);
  t.equal((await writer).code, 0, 'the writes went on');
  await syncPoint(mnt, ['--freeze', fsMount, '--label', 'after']);

  const kept = ['early', times[8]!, times[9]!, 'after'];
  t.same(await listed(location), kept, 'the archive lists the labelled, the last 2 and the new point');
  t.same(await listed(volume), kept, 'and so does the volume');
  let shown: string[] = [];
  for (let waited = 0; waited < 40_000; waited += 500) {
    shown = fs.readdirSync(path.join(amnt, 'snapshots')).filter((n) => n.endsWith('Z.img'));
    if (shown.length === kept.length) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  t.equal(shown.length, kept.length, `the archive mount lists only the kept points (${shown.length})`);
  t.equal(sha256(path.join(past, 'early.dat')), earlyDigest, 'the early point, held open through it all, reads as it was');
  await must('cp', [path.join(past, 'early.dat'), path.join(root, 'early-copy.dat')]);
  t.equal(sha256(path.join(root, 'early-copy.dat')), earlyDigest, 'cp out of it matches');

  const restored = path.join(root, 'early.img');
  const restore = await salvo(['restore', location, '--at', 'early', restored]);
  t.equal(restore.code, 0, `restore of the early point from the pruned archive ${restore.stderr}`);
  t.equal((await run('e2fsck', ['-fn', restored])).code, 0, 'its filesystem is clean');
  const verify = await salvo(['verify', location], { timeoutMs: 300_000 });
  t.equal(verify.code, 0, `verify of the pruned archive: ${verify.stdout.trim()} ${verify.stderr}`);
  const fsck = await salvo(['verify', '--fsck', mnt, '--json'], { timeoutMs: 300_000 });
  t.equal(fsck.code, 0, `fsck of every point the volume shows ${fsck.stderr}`);
});
