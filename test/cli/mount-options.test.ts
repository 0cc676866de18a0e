/**
 * `salvo mount` checks every option before it mounts anything, and `--daemon` reports the
 * mount's own error: one line and the exit code that says which kind (LOCKED is 4 whether the
 * volume was mounted already or another mount took the lock a moment earlier).
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { initVolume, oneLine } from '../helpers/cli.js';

function mounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);
}

t.test('mount: a bad option is refused before anything is mounted, in the foreground and with --daemon', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-mountopt-');
  const cleanup = new Cleanup(t);
  const { volume, archive, mnt } = await initVolume(root);
  fs.mkdirSync(mnt);
  cleanup.add(() => salvo(['unmount', mnt]));
  const cases: [string[], RegExp][] = [
    [['--rpo', 'xyz'], /BAD_INPUT: --rpo 'xyz' is not a whole number of seconds up to 24 days — e\.g\. --rpo 30s/],
    [['--rpo', '1.5s'], /--rpo '1\.5s' is not a whole number of seconds/],
    [['--cache', 'abc'], /BAD_INPUT: --cache 'abc' is not a size/],
    [['--cpu', '4096'], /BAD_INPUT: --cpu 4096 is not a CPU this process may run on/],
  ];
  for (const [options, pattern] of cases) {
    for (const daemon of [[], ['--daemon']]) {
      const r = await salvo(['mount', volume, mnt, ...options, ...daemon], { timeoutMs: 30_000 });
      const what = `${options.join(' ')}${daemon.length ? ' --daemon' : ''}`;
      t.equal(r.code, 2, `${what}: exit 2`);
      oneLine(t, r.stderr, pattern, `${what}: one line`);
      t.notOk(mounted(mnt), `${what}: nothing mounted`);
      t.notOk(fs.existsSync(path.join(volume, 'control.sock')) || fs.existsSync(path.join(volume, 'lock')), `${what}: no control socket or lock left`);
    }
  }
  const r = await salvo(['mount', archive, mnt, '--daemon', '--rpo', '30s']);
  t.equal(r.code, 2, 'an archive mount with --rpo: refused');
  oneLine(t, r.stderr, /--rpo is for the mount of a volume; an archive is mounted read-only — leave out --rpo/, 'one line that says so');
  t.notOk(mounted(mnt), 'nothing mounted');
  const mountedArchive = await salvo(['mount', archive, mnt, '--daemon']);
  t.equal(mountedArchive.code, 0, `an archive mounts on its own, read-only: ${mountedArchive.stderr}`);
  t.notOk(fs.existsSync(path.join(archive, 'mount.log')), 'and no mount.log is written into the archive');
  t.equal((await salvo(['unmount', mnt])).code, 0);

  // What only the background mount finds (fuse-native refuses the root of another mount) comes back as its own line and code.
  const tmpfs = await cleanup.mount('tmpfs', path.join(root, 'tmpfs'), ['-t', 'tmpfs']);
  const inUse = await salvo(['mount', volume, tmpfs, '--daemon']);
  t.equal(inUse.code, 2, 'the mount’s own error keeps its exit code through --daemon');
  oneLine(t, inUse.stderr, /^salvo: BAD_INPUT: cannot mount on .*tmpfs: Mountpoint in use — the mountpoint must be an empty directory/, 'and its one line');

  t.equal((await salvo(['mount', volume, mnt, '--daemon', '--rpo', '0'])).code, 0, '--rpo 0 is accepted');
  const status = JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { rpoSeconds: number };
  t.equal(status.rpoSeconds, 0, 'and means: only at synch points');
});

t.test('mount --daemon: already mounted, or beaten to the lock, exits 4 with the mount’s own one line', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-mountopt-');
  const cleanup = new Cleanup(t);
  const { volume, mnt } = await initVolume(root);
  const second = path.join(root, 'second');
  fs.mkdirSync(second);
  fs.mkdirSync(mnt);
  cleanup.add(() => salvo(['unmount', mnt]));
  cleanup.add(() => salvo(['unmount', second]));
  // Two at the same moment: both find the volume free, one child takes the lock.
  const [a, b] = await Promise.all([salvo(['mount', volume, mnt, '--daemon']), salvo(['mount', volume, second, '--daemon'])]);
  t.same([a.code, b.code].sort(), [0, 4], `one mounts, the other exits 4 (${a.code}: ${a.stderr} / ${b.code}: ${b.stderr})`);
  const loser = a.code === 4 ? a : b;
  oneLine(t, loser.stderr, /^salvo: LOCKED: volume .* is in use by process \d+ — unmount it first/, 'the loser says why, in one line');
  const winner = a.code === 0 ? mnt : second;
  const r = await salvo(['mount', volume, winner === mnt ? second : mnt, '--daemon']);
  t.equal(r.code, 4, 'mounting a mounted volume again: 4');
  oneLine(t, r.stderr, /LOCKED: volume .* is in use by process \d+/, 'one line');
});
