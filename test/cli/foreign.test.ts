/**
 * salvo acts only on what salvo made: `unmount` refuses a tmpfs, an ext4, another FUSE
 * filesystem (live or dead) and a salvo mount whose snapshot a loop device holds; `mount`
 * refuses to clear another program's dead FUSE mount; `init` refuses places where it would
 * mix with or hang on what is there (the archive inside the volume, /proc, a file on the way,
 * a read-only filesystem), quickly, and a policy or a limit of open files it cannot serve,
 * leaving nothing behind.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CLI, Cleanup, ROOT, must, run, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { initVolume, oneLine, SMALL_VOLUME, syncPoint } from '../helpers/cli.js';

function mounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);
}

/** Another program's FUSE file system (bench's pass-through), mounted on `mnt` until the test ends. */
async function foreignFuse(cleanup: Cleanup, root: string, mnt: string): Promise<number> {
  const backing = path.join(root, 'backing.img');
  fs.writeFileSync(backing, Buffer.alloc(1024 * 1024));
  fs.mkdirSync(mnt, { recursive: true });
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/bench/passthrough-fs.js'), backing, mnt], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.add(async () => {
    child.kill('SIGKILL');
    await run('fusermount', ['-u', '-z', mnt]);
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`pass-through exited ${code}`)));
  });
  return child.pid!;
}

t.test('unmount refuses what is not a salvo mount, and leaves it as it was', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-foreign-');
  const cleanup = new Cleanup(t);

  const tmpfs = path.join(root, 'tmpfs');
  await cleanup.mount('tmpfs', tmpfs, ['-t', 'tmpfs']);
  fs.writeFileSync(path.join(tmpfs, 'data'), 'keep');
  let r = await salvo(['unmount', tmpfs]);
  t.equal(r.code, 2, 'a tmpfs: refused as bad input');
  oneLine(t, r.stderr, /is not a salvo mount \(it is a tmpfs filesystem from tmpfs\); salvo unmounts only its own — use umount/, 'a tmpfs: one line');
  t.ok(mounted(tmpfs) && fs.readFileSync(path.join(tmpfs, 'data'), 'utf8') === 'keep', 'a tmpfs: still mounted, its file there');

  const image = path.join(root, 'ext4.img');
  fs.writeFileSync(image, Buffer.alloc(16 * 1024 * 1024));
  await must('mkfs.ext4', ['-q', image]);
  const ext4 = await cleanup.mount(await cleanup.loop(image), path.join(root, 'ext4'));
  fs.writeFileSync(path.join(ext4, 'data'), 'keep');
  r = await salvo(['umount', ext4]);
  t.equal(r.code, 2, 'an ext4 (through the umount alias): refused');
  oneLine(t, r.stderr, /is not a salvo mount \(it is a ext4 filesystem from \/dev\/loop\d+\)/, 'an ext4: one line');
  t.ok(mounted(ext4) && fs.readFileSync(path.join(ext4, 'data'), 'utf8') === 'keep', 'an ext4: still mounted, its file there');

  const fuse = path.join(root, 'fuse');
  const pid = await foreignFuse(cleanup, root, fuse);
  r = await salvo(['unmount', fuse]);
  t.equal(r.code, 2, 'another FUSE file system: refused');
  oneLine(t, r.stderr, /is not a salvo mount \(it is a fuse filesystem from bench\)/, 'another FUSE file system: one line');
  t.ok(mounted(fuse), 'another FUSE file system: still mounted');
  process.kill(pid, 'SIGKILL');
  await new Promise((resolve) => setTimeout(resolve, 200));
  r = await salvo(['unmount', fuse]);
  t.equal(r.code, 2, 'another FUSE file system, its process killed: still refused');
  t.ok(mounted(fuse), 'and left mounted');
  const { volume } = await initVolume(root);
  r = await salvo(['mount', volume, fuse], { timeoutMs: 20_000 }); // a foreground mount that wrongly went ahead would never return
  t.equal(r.code, 2, 'mount refuses to clear another program’s dead mount to mount over it');
  oneLine(t, r.stderr, /mountpoint .*fuse is a fuse mount whose process is gone — unmount it first/, 'and says so');
  t.ok(mounted(fuse), 'which is left as it was');

  r = await salvo(['unmount', path.join(root, 'nothing-here')]);
  t.equal(r.code, 2, 'a path where nothing is mounted: bad input');
  oneLine(t, r.stderr, /NOT_FOUND: .*nothing-here is not mounted/, 'with one line');
});

t.test('unmount refuses while a loop device holds a snapshot image, and goes once it is detached', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-foreign-');
  const cleanup = new Cleanup(t);
  const { volume, mnt } = await initVolume(root);
  await cleanup.salvoMount(volume, mnt);
  await must('dd', ['if=/dev/urandom', `of=${path.join(mnt, 'live/volume.img')}`, 'bs=1M', 'count=2', 'conv=notrunc,fsync', 'status=none']);
  const point = await syncPoint(mnt);
  const device = await cleanup.loop(path.join(mnt, 'snapshots', point.file), true);
  const r = await salvo(['unmount', mnt]);
  t.equal(r.code, 4, 'refused: in use');
  oneLine(t, r.stderr, new RegExp(`LOCKED: .* is in use by ${device} — detach first: losetup -d ${device}`), 'naming the device');
  t.ok(mounted(mnt), 'the mount stays');
  t.equal((await run('dd', [`if=${device}`, 'of=/dev/null', 'bs=1M', 'count=2', 'status=none'])).code, 0, 'and the snapshot still reads through the device');
  await must('losetup', ['--detach', device]);
  t.equal((await salvo(['unmount', mnt])).code, 0, 'once detached, unmount goes');
  t.notOk(mounted(mnt), 'and the mount is gone');
});

t.test('init refuses places that are not its to use, at once, and leaves nothing behind', async (t) => {
  if (!systemReady(t)) return; // root: a read-only tmpfs
  const root = tempDir(t, 'salvo-foreign-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const cases: [string, string[], RegExp][] = [
    ['the archive is the volume directory', ['--archive', volume], /the archive .*volume is the volume directory itself — put the archive elsewhere/],
    ['the archive is inside the volume directory', ['--archive', path.join(volume, 'archive')], /the archive .* is inside the volume directory .*volume — put the archive elsewhere/],
    ['the volume directory is inside the archive', ['--archive', root], /the volume directory .*volume is inside the archive/],
    ['an archive under /proc', ['--archive', '/proc/salvo-archive'], /archive \/proc\/salvo-archive is on a proc filesystem \(\/proc\)/],
  ];
  for (const [what, args, pattern] of cases) {
    const r = await salvo(['init', volume, ...SMALL_VOLUME, ...args], { timeoutMs: 20_000 });
    t.equal(r.code, 2, `${what}: refused`);
    oneLine(t, r.stderr, pattern, `${what}: one line`);
    t.notOk(fs.existsSync(volume), `${what}: nothing created`);
  }
  let r = await salvo(['init', '/proc/salvo-volume', ...SMALL_VOLUME], { timeoutMs: 20_000 });
  t.equal(r.code, 2, 'a volume under /proc: refused (mkdir -p there never returns)');
  oneLine(t, r.stderr, /volume directory \/proc\/salvo-volume is on a proc filesystem/, 'one line');
  const file = path.join(root, 'a-file');
  fs.writeFileSync(file, '');
  for (const target of [file, path.join(file, 'volume')]) {
    r = await salvo(['init', target, ...SMALL_VOLUME]);
    t.equal(r.code, 2, `${path.relative(root, target)}: a file on the way is refused`);
    oneLine(t, r.stderr, /a-file is a file, not a directory/, 'in one line, not ENOTDIR');
  }
  const readOnly = path.join(root, 'ro');
  await cleanup.mount('tmpfs', readOnly, ['-t', 'tmpfs', '-o', 'ro']);
  r = await salvo(['init', volume, ...SMALL_VOLUME, '--archive', path.join(readOnly, 'archive')]);
  t.equal(r.code, 2, 'an archive on a read-only filesystem: refused');
  oneLine(t, r.stderr, /archive .* is on a read-only filesystem/, 'one line, with no hint that writes will wait');
  t.notOk(fs.existsSync(volume), 'nothing created');

  r = await salvo(['init', volume, '--size', '64M', '--segments', '1000000000'], { timeoutMs: 20_000 });
  t.equal(r.code, 2, 'a working set of a billion segments: refused at once');
  oneLine(t, r.stderr, /BAD_POLICY: a working set of 1000000000 segments is more than .* — use --segments 64/, 'saying what would do');
  // More slot files than the limit of open files is fine (they share a pool of descriptors:
  // test/cli/many-slots.test.ts mounts one); a limit too low for any volume is refused at init.
  r = await salvo(['init', volume, ...SMALL_VOLUME], { nofile: 271 });
  t.equal(r.code, 1, 'a limit of 271 open files: refused at init, not at mount');
  oneLine(t, r.stderr, /RESOURCE_LIMIT: this process may open 271 files, and a volume needs 272 .* — raise the limit of open files \(ulimit -n; LimitNOFILE= in a systemd unit\)/, 'naming the limit');
  t.notOk(fs.existsSync(volume), 'nothing created');
});

t.test('init stopped by Ctrl-C leaves nothing behind, and the next init works', async (t) => {
  const root = tempDir(t, 'salvo-foreign-');
  const volume = path.join(root, 'volume');
  const archive = path.join(root, 'archive');
  const child = spawn(process.execPath, [CLI, 'init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '19000', '--archive', archive], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const poll = setInterval(() => {
    if (fs.existsSync(path.join(volume, 'slots'))) {
      clearInterval(poll);
      child.kill('SIGINT');
    }
  }, 1);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(poll);
  t.equal(code, 130, 'init exits 130 on SIGINT');
  oneLine(t, stderr, /INTERRUPTED: init of .*volume was interrupted; nothing was left behind/, 'and says so');
  t.notOk(fs.existsSync(volume), 'the volume directory is gone');
  t.notOk(fs.existsSync(path.join(archive, 'volume.json')), 'the archive holds no volume');
  const again = await salvo(['init', volume, ...SMALL_VOLUME, '--archive', archive]);
  t.equal(again.code, 0, `a second init works: ${again.stderr}`);
});

t.test('init killed with -9 leaves slot files that the next init names, with what to do', async (t) => {
  const root = tempDir(t, 'salvo-foreign-');
  const volume = path.join(root, 'volume');
  fs.mkdirSync(path.join(volume, 'slots'), { recursive: true });
  fs.writeFileSync(path.join(volume, 'slots', '0000.slot'), ''); // as a killed init leaves it
  const r = await salvo(['init', volume, ...SMALL_VOLUME, '--archive', path.join(root, 'archive')]);
  t.equal(r.code, 2, 'refused');
  oneLine(t, r.stderr, /EXISTS: .*volume holds the slot files of an init that did not finish \(no volume\.json\) — remove them \(rm -r .*volume\/slots\) and run init again/, 'saying what they are and what to do');
  t.ok(fs.existsSync(path.join(volume, 'slots', '0000.slot')), 'and removing nothing itself');
});
