/**
 * fuse-native as scripts/build-fuse-native builds it (native/fuse-native-fallocate.patch) binds
 * FUSE's fallocate: fallocate(2) on a file of a fuse-native mount reaches ops.fallocate with its
 * mode, its 64-bit offset and length, and the fd open returned — the path the loop driver's
 * discards (PUNCH_HOLE|KEEP_SIZE) and write-zeroes (ZERO_RANGE) take — and the op's answer
 * reaches the caller.
 */
import fs from 'node:fs';
import path from 'node:path';
import Fuse, { type Operations, type Stat } from 'fuse-native';
import t from 'tap';
import { Cleanup, run, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';

const GiB = 1024 ** 3;
const FILE = '/disk';
const FILE_SIZE = 8 * GiB;
const FD = 42;
// linux/falloc.h
const KEEP_SIZE = 0x01;
const PUNCH_HOLE = 0x02;
const ZERO_RANGE = 0x10;

interface Call {
  path: string;
  mode: number;
  offset: number;
  length: number;
  fd: number;
}

/** One 8 GiB file, /disk; fallocate records its calls and refuses plain allocation (mode 0). */
function filesystem(calls: Call[]): Operations {
  const now = new Date();
  const stat = (mode: number, size: number): Stat => ({ mode, size, uid: 0, gid: 0, nlink: 1, atime: now, mtime: now, ctime: now });
  return {
    getattr(p, cb) {
      if (p === '/') return cb(0, stat(0o40755, 4096));
      if (p === FILE) return cb(0, stat(0o100644, FILE_SIZE));
      return cb(Fuse.ENOENT);
    },
    readdir(p, cb) {
      if (p === '/') return cb(0, [FILE.slice(1)]);
      return cb(Fuse.ENOENT);
    },
    open(p, _flags, cb) {
      if (p === FILE) return cb(0, FD);
      return cb(Fuse.ENOENT);
    },
    release(_p, _fd, cb) {
      cb(0);
    },
    fallocate(p, mode, offset, length, fd, cb) {
      calls.push({ path: p, mode, offset, length, fd });
      cb(mode === 0 ? Fuse.EOPNOTSUPP : 0);
    },
  };
}

/** Mounts `ops` on a new directory under `root`, unmounted at the end (forcibly if need be). */
async function mount(cleanup: Cleanup, root: string, ops: Operations): Promise<string> {
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  const fuse = new Fuse(mnt, ops);
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
  cleanup.add(async () => {
    const err = await new Promise<Error | null>((resolve) => fuse.unmount(resolve));
    if (err || fs.readFileSync('/proc/mounts', 'utf8').includes(` ${mnt} `)) await run('fusermount', ['-u', '-z', mnt]);
  });
  return mnt;
}

t.test('fallocate-binding: the loaded fuse-native binds fallocate (built by scripts/build-fuse-native)', async (t) => {
  t.equal(Fuse.FALLOCATE, true, 'Fuse.FALLOCATE (if not: run bash scripts/build-fuse-native)');
  t.equal(Fuse.EOPNOTSUPP, -95, 'Fuse.EOPNOTSUPP');
});

t.test('fallocate-binding: fallocate(2) on a fuse-native file reaches ops.fallocate with mode, 64-bit offset and length, and fd', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-fallocate-');
  const cleanup = new Cleanup(t);
  const calls: Call[] = [];
  const file = path.join(await mount(cleanup, root, filesystem(calls)), FILE.slice(1));
  // Only asynchronous calls on the mount from here: this process serves it (a sync call would deadlock).
  t.equal((await fs.promises.stat(file)).size, FILE_SIZE, 'the file is 8 GiB');

  const cases: { args: string[]; mode: number; offset: number; length: number; what: string }[] = [
    { args: ['--punch-hole', '--keep-size', '-o', '8192', '-l', '12288'], mode: KEEP_SIZE | PUNCH_HOLE, offset: 8192, length: 12288, what: 'a discard (punch hole, keep size)' },
    { args: ['--zero-range', '-o', '4096', '-l', '4096'], mode: ZERO_RANGE, offset: 4096, length: 4096, what: 'a zero range' },
    { args: ['--zero-range', '--keep-size', '-o', '4096', '-l', '4096'], mode: ZERO_RANGE | KEEP_SIZE, offset: 4096, length: 4096, what: 'a zero range, keep size' },
    { args: ['--punch-hole', '--keep-size', '-o', String(5 * GiB + 8192), '-l', '12288'], mode: KEEP_SIZE | PUNCH_HOLE, offset: 5 * GiB + 8192, length: 12288, what: 'an offset above 4 GiB' },
    { args: ['--punch-hole', '--keep-size', '-o', String(GiB), '-l', String(5 * GiB + 4096)], mode: KEEP_SIZE | PUNCH_HOLE, offset: GiB, length: 5 * GiB + 4096, what: 'a length above 4 GiB' },
  ];
  for (const c of cases) {
    calls.length = 0;
    const r = await run('fallocate', [...c.args, file], { timeoutMs: 30_000 });
    t.equal(r.code, 0, `fallocate ${c.args.join(' ')} succeeds ${r.stderr.trim()}`);
    t.same(calls, [{ path: FILE, mode: c.mode, offset: c.offset, length: c.length, fd: FD }], `${c.what}: one call with mode 0x${c.mode.toString(16)}, offset ${c.offset}, length ${c.length}, the fd open returned`);
  }

  calls.length = 0;
  const refused = await run('fallocate', ['-o', '0', '-l', '4096', file], { timeoutMs: 30_000 });
  t.not(refused.code, 0, 'an error from the op fails the call');
  t.match(refused.stderr, /Operation not supported/, 'with the errno the op answered (EOPNOTSUPP)');
  t.same(calls.map((c) => c.mode), [0], 'after reaching the op with mode 0');
  t.equal((await fs.promises.stat(file)).size, FILE_SIZE, 'the file is still 8 GiB');
});
