/**
 * A 16 TiB volume (2^32 blocks of 4 KiB, sparse here) with the default policy, through the real
 * CLI, mount and a loop device: writes at the start and the end of the device, a synch point
 * read back through /snapshots, restored from the archive and verified, then kill -9 of the
 * mount and recovery, and a discard of the whole device. What a user with a big disk does
 * first; each step once.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { VolumeLock } from '../../lib/volume/volume-lock.js';
import { Cleanup, must, run, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';

const SIZE = 2 ** 44;
const PIECE = 48 * 2 ** 20;

/** `length` bytes of `file` at `position`. */
function readAt(file: string, position: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const bytes = Buffer.alloc(length);
    const n = fs.readSync(fd, bytes, 0, length, position);
    if (n !== length) throw new Error(`${file}: ${n} bytes at ${position}, not ${length}`);
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

t.test('big volume: 16 TiB, default policy: write both ends, synch, read the past, restore, kill -9 and recover, discard it all', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-big-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const archive = path.join(root, 'archive');
  const mnt = path.join(root, 'mnt');
  const live = path.join(mnt, 'live/volume.img');

  const init = await salvo(['init', volume, '--size', '16T', '--archive', archive, '--json']);
  t.equal(init.code, 0, `init: ${init.stderr}`);
  const config = JSON.parse(init.stdout) as { sizeBytes: number; segmentSizeBytes: number; workingSetSegments: number };
  t.same([config.sizeBytes, config.segmentSizeBytes], [SIZE, 2 ** 30], 'the default policy: 1 GiB segments');

  await cleanup.salvoMount(volume, mnt);
  t.equal(fs.statSync(live).size, SIZE, 'the live image is 16 TiB');
  const status = async () =>
    JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { indexBytes: number; indexedBlocks: number; primary: { allocatedBytes: number; slotBytes: number } };
  t.ok((await status()).indexBytes < 16 * 2 ** 20, 'the live index of an empty 16 TiB volume takes less than 16 MiB');

  const first = randomBytes(PIECE);
  const last = randomBytes(PIECE);
  const device = await cleanup.loop(live);
  t.equal(Number((await must('blockdev', ['--getsize64', device])).trim()), SIZE, 'the loop device is 16 TiB');
  const write = (bytes: Buffer, position: number) => {
    const fd = fs.openSync(device, 'r+');
    try {
      fs.writeSync(fd, bytes, 0, bytes.length, position);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  };
  write(first, 0);
  write(last, SIZE - PIECE);
  const after = await status();
  t.equal(after.indexedBlocks, (2 * PIECE) / 4096, 'the index holds the blocks written');
  t.ok(after.indexBytes < 24 * 2 ** 20, `and follows them (${after.indexBytes} bytes)`);
  const slots = config.workingSetSegments + 8;
  t.equal(after.primary.slotBytes, slots * 2 ** 30, `status: the ${slots} slot files may take 32 TiB once used`);
  t.ok(after.primary.allocatedBytes >= 2 * PIECE && after.primary.allocatedBytes < 4 * PIECE, `and take what was written (${after.primary.allocatedBytes} bytes): sparse until used`);

  const synch = await salvo(['sync', mnt, '--label', 'ends', '--json']);
  t.equal(synch.code, 0, `sync: ${synch.stderr}`);
  const past = path.join(mnt, 'snapshots/by-label/ends.img');
  t.ok(readAt(past, 0, PIECE).equals(first), 'the point reads back its first blocks');
  t.ok(readAt(past, SIZE - PIECE, PIECE).equals(last), 'and its last');
  t.ok(readAt(past, SIZE / 2, 4096).equals(Buffer.alloc(4096)), 'and zeros between');

  // ext4 files stop 4 KiB short of 16 TiB: said in one line; tmpfs holds the sparse image.
  const tooBig = await salvo(['restore', archive, path.join(root, 'on-ext4.img'), '--at', 'ends']);
  if ((await must('stat', ['-f', '-c', '%T', root])).trim() === 'ext2/ext3') {
    t.equal(tooBig.code, 2, 'a restore onto ext4 is refused');
    t.match(tooBig.stderr, /^salvo: BAD_INPUT: the filesystem of .* cannot hold a file of 16\.0 TiB — restore onto xfs, btrfs or tmpfs/);
  }
  const roomy = path.join(root, 'tmpfs');
  fs.mkdirSync(roomy);
  await must('mount', ['-t', 'tmpfs', '-o', 'size=1g', 'salvo-test', roomy]);
  cleanup.add(() => run('umount', [roomy]));
  const restored = path.join(roomy, 'restored.img');
  const restore = await salvo(['restore', archive, restored, '--at', 'ends']);
  t.equal(restore.code, 0, `restore from the archive alone: ${restore.stderr}`);
  const stat = fs.statSync(restored);
  t.equal(stat.size, SIZE, 'the restored image is 16 TiB');
  t.ok(stat.blocks * 512 < 4 * PIECE, 'and sparse: only the data takes room');
  t.ok(readAt(restored, 0, PIECE).equals(first) && readAt(restored, SIZE - PIECE, PIECE).equals(last), 'with both ends');

  const verify = await salvo(['verify', archive]);
  t.equal(verify.code, 0, `verify of the archive: ${verify.stdout.slice(-500)}${verify.stderr}`);

  // Written after the point: kept by the log, acknowledged by the fsync.
  const newer = randomBytes(PIECE);
  write(newer, SIZE - 2 * PIECE);
  process.kill(VolumeLock.owner(volume)!, 'SIGKILL');
  await run('losetup', ['--detach', device]);
  await run('fusermount', ['-u', '-z', mnt]);
  await cleanup.salvoMount(volume, mnt);
  t.ok(readAt(live, SIZE - 2 * PIECE, PIECE).equals(newer), 'after kill -9 and recovery, the newest write is there');
  t.ok(readAt(live, 0, PIECE).equals(first) && readAt(live, SIZE - PIECE, PIECE).equals(last), 'and the older ones');
  t.ok(readAt(past, SIZE - PIECE, PIECE).equals(last), 'and the synch point still reads');

  // A discard of the whole 16 TiB: it walks only what was written.
  const again = await cleanup.loop(live);
  const discard = await run('blkdiscard', [again], { timeoutMs: 60_000 });
  t.equal(discard.code, 0, `blkdiscard of the whole device: ${discard.stderr}`);
  await run('losetup', ['--detach', again]);
  t.equal((await status()).indexedBlocks, 0, 'leaves the index empty');
  t.ok([0, SIZE - 2 * PIECE, SIZE - PIECE].every((at) => readAt(live, at, PIECE).equals(Buffer.alloc(PIECE))), 'the live image reads zeros');
  t.ok(readAt(past, SIZE - PIECE, PIECE).equals(last), 'and the synch point still has its data');
  t.equal((await salvo(['unmount', mnt])).code, 0, 'unmounted');
  const verifyVolume = await salvo(['verify', volume]);
  t.equal(verifyVolume.code, 0, `verify of the volume, unmounted: ${verifyVolume.stdout.slice(-500)}${verifyVolume.stderr}`);
});
