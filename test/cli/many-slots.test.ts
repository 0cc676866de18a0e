/**
 * A volume of more slot files than the process may open (issue #25: a 16 TiB volume has
 * 20,000–33,000 of them, where `ulimit -n` is often 20,000): init and mount under a limit of
 * 600 open files, a 1 GiB volume of 1 MiB segments (2057 slot files), written and read back
 * through the live image across more slots than the mount keeps open, a synch point, and the
 * same bytes after a remount (recovery under the same limit) and in the snapshot.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { prng } from '../../bench/history.js';
import { Cleanup, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { syncPoint } from '../helpers/cli.js';

const NOFILE = 600;
const MiB = 1024 * 1024;
/** Written through the live image: 512 segments' worth, each in its own slot, with the pool at 600 - 256 = 344. */
const WRITTEN = 512 * MiB;

/** The image as written: 1 MiB chunks from a seeded generator, then `overwrites` (4 KiB blocks: position, fill) in order, zeros after. */
class Written {
  readonly overwrites: [number, number][] = [];

  /** The chunk at `at` before the overwrites; calls in order of `at` from 0 replay the generator. */
  static chunks(seed: number): (chunk: Buffer) => void {
    const random = prng(seed);
    return (chunk) => {
      for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((random() * 2 ** 32) >>> 0, i);
    };
  }

  static block(i: number): Buffer {
    const block = Buffer.alloc(4096, i % 251);
    block.writeUInt32LE(i, 0);
    return block;
  }

  /** The sha256 of the whole image as it should read. */
  hash(seed: number, imageBytes: number): string {
    const hash = createHash('sha256');
    const next = Written.chunks(seed);
    const chunk = Buffer.allocUnsafe(MiB);
    for (let at = 0; at < imageBytes; at += MiB) {
      if (at < WRITTEN) {
        next(chunk);
        this.overwrites.forEach(([position, i]) => position >= at && position < at + MiB && Written.block(i).copy(chunk, position - at));
      } else chunk.fill(0);
      hash.update(chunk);
    }
    return hash.digest('hex');
  }
}

/** The sha256 of `file`, read 1 MiB at a time. */
function hashOf(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(MiB);
    for (let at = 0; ; at += MiB) {
      const n = fs.readSync(fd, buf, 0, MiB, at);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Descriptors the mount process holds, and how many of them are slot files. */
function descriptorsOf(pid: number): { all: number; slots: number } {
  const targets = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
  return { all: targets.length, slots: targets.filter((f) => f.endsWith('.slot')).length };
}

t.test('many slots: a volume of more slot files than the limit of open files inits, mounts, writes, reads and recovers', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-many-slots-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const mnt = path.join(root, 'mnt');
  const init = await salvo(['init', volume, '--size', '1G', '--segment-size', '1M', '--archive', path.join(root, 'archive')], { nofile: NOFILE });
  t.equal(init.code, 0, `init under a limit of ${NOFILE} open files: ${init.stderr}`);
  const slots = fs.readdirSync(path.join(volume, 'slots')).filter((f) => f.endsWith('.slot')).length;
  t.ok(slots > NOFILE, `${slots} slot files, more than the ${NOFILE} the process may open`);

  await cleanup.salvoMount(volume, mnt, [], NOFILE);
  const live = path.join(mnt, 'live', 'volume.img');
  const pid = (JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { pid: number }).pid;
  t.match(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'), new RegExp(`Max open files\\s+${NOFILE}\\s`), 'the mount runs under that limit');

  // Sequential 1 MiB writes, one segment each, then random 4 KiB ones over them.
  const written = new Written();
  const random = prng(26);
  const fd = fs.openSync(live, 'r+');
  try {
    const next = Written.chunks(25);
    const chunk = Buffer.allocUnsafe(MiB);
    for (let at = 0; at < WRITTEN; at += MiB) {
      next(chunk);
      fs.writeSync(fd, chunk, 0, MiB, at);
    }
    for (let i = 0; i < 2000; i++) {
      const position = Math.floor(random() * (WRITTEN / 4096)) * 4096;
      fs.writeSync(fd, Written.block(i), 0, 4096, position);
      written.overwrites.push([position, i]);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const expected = written.hash(25, 1024 * MiB);
  const open = descriptorsOf(pid);
  t.ok(open.slots <= NOFILE - 256, `the mount holds ${open.slots} slot files open (${open.all} descriptors in all)`);
  t.ok(open.all < NOFILE, 'within the limit');

  t.equal(hashOf(live), expected, 'the live image reads back what was written, across more slots than are open');
  const point = await syncPoint(mnt, ['--label', 'many']);
  t.equal(hashOf(path.join(mnt, 'snapshots', point.file)), expected, 'the synch point reads the same');

  const unmount = await salvo(['unmount', mnt], { timeoutMs: 120_000 });
  t.equal(unmount.code, 0, `unmount: ${unmount.stderr}`);
  await cleanup.salvoMount(volume, mnt, [], NOFILE);
  t.equal(hashOf(live), expected, 'after a remount (recovery over every slot file, under the same limit) the same');
});
