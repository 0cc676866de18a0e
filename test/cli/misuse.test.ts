/**
 * CLI misuse: each mistake gets one clear line on stderr (what is wrong — what to do) and a
 * non-zero exit code that says which kind of mistake it was.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, run, salvo, systemReady, CLI } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { oneLine } from '../helpers/cli.js';

t.test('cli: bad input to init, list, restore and sync is refused with one line and exit 2 (1 for a volume not mounted)', async (t) => {
  const root = tempDir(t, 'salvo-cli-');
  const volume = path.join(root, 'volume');
  let r = await salvo(['init', volume, '--size', '12Q']);
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /^salvo: BAD_INPUT: --size '12Q' is not a size — write a number/, 'a size like 12Q');
  r = await salvo(['init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '10']);
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /BAD_POLICY: .* — use --segments 82/, 'a working set too small for the volume');
  t.notOk(fs.existsSync(volume), 'a refused init leaves nothing behind');
  r = await salvo(['init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', path.join(root, 'archive')]);
  t.equal(r.code, 0, r.stderr);
  r = await salvo(['init', volume, '--size', '64M']);
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /EXISTS: .* already holds a salvo volume/, 'init over a volume');
  r = await salvo(['init', path.join(root, 'other'), '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', path.join(root, 'archive')]);
  t.equal(r.code, 1);
  oneLine(t, r.stderr, /ARCHIVE_CONFLICT: .* already holds a volume — give each volume its own/, 'a second volume on the same archive');
  r = await salvo(['init', path.join(root, 'v3'), '--size', '64M', '--archive', 'ftp://x/y']);
  oneLine(t, r.stderr, /unknown scheme/, 'an archive URL salvo cannot use');
  r = await salvo(['list', path.join(root, 'nowhere')]);
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /NOT_FOUND: .*nowhere does not exist/, 'a wrong path');
  r = await salvo(['list', root]);
  oneLine(t, r.stderr, /neither a salvo volume nor a salvo archive/, 'a directory that is neither');
  r = await salvo(['restore', volume, '--at', 'no-such-label', path.join(root, 'x.img')]);
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /NOT_FOUND: no synch point 'no-such-label' — give latest, a label or a time \(`salvo list` shows them\)/, 'an unknown synch point');
  r = await salvo(['sync', root]);
  t.equal(r.code, 2, 'a wrong path is bad input, not "in use"');
  oneLine(t, r.stderr, /NOT_FOUND: .* neither a salvo mountpoint nor a volume directory/, 'sync on something else');
  r = await salvo(['sync', volume]);
  t.equal(r.code, 1, 'a volume not mounted: the sync failed');
  oneLine(t, r.stderr, /NOT_MOUNTED: no salvo mount answers .* — mount the volume first/, 'sync on a volume that is not mounted');
  r = await salvo(['sync', volume, '--label', 'bad label!']);
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /label 'bad label!' is not allowed/, 'a label that cannot be a file name');
  r = await salvo(['frobnicate']);
  t.equal(r.code, 2, 'an unknown command exits 2');
  r = await salvo(['init', volume]);
  t.equal(r.code, 2);
  t.match(r.stderr, /required option '--size <size>' not specified/, 'a missing option');
  r = await salvo(['--help']);
  t.equal(r.code, 0);
  for (const command of ['init', 'mount', 'unmount', 'sync', 'list', 'status', 'restore', 'verify', 'demo']) t.match(r.stdout, new RegExp(`\\n  ${command}`), `--help lists ${command}`);
  r = await salvo(['sync', '--help']);
  t.match(r.stdout, /Examples:\n  salvo sync/, 'each command has examples');
});

t.test('cli: missing permissions give one line and exit 2', async (t) => {
  if (!systemReady(t)) return; // root, to run the command as nobody
  const root = tempDir(t, 'salvo-cli-');
  fs.chmodSync(root, 0o755);
  const volume = path.join(root, 'volume');
  t.equal((await salvo(['init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', path.join(root, 'archive')])).code, 0);
  fs.chmodSync(volume, 0o700);
  // env -i: not the test runner's child-process hooks, which would try to write as nobody.
  const r = await run('env', ['-i', `PATH=${process.env.PATH}`, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'restore', volume, '--at', 'latest', '/tmp/x.img']);
  t.equal(r.code, 2, r.stderr);
  oneLine(t, r.stderr, /^salvo: EACCES: permission denied, .* — run as the owner of the volume/, 'a volume the user may not read');
});

t.test('cli: mount refuses a busy volume, a non-empty or missing mountpoint; the mount exits cleanly on SIGTERM', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-cli-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  t.equal((await salvo(['init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', path.join(root, 'archive')])).code, 0);
  const full = path.join(root, 'full');
  fs.mkdirSync(full);
  fs.writeFileSync(path.join(full, 'file'), 'x');
  let r = await salvo(['mount', volume, full]);
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /mountpoint .* is not empty — mount on an empty directory/, 'a non-empty mountpoint');
  r = await salvo(['mount', volume, path.join(root, 'missing')]);
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /mountpoint .* does not exist — create it/, 'a missing mountpoint');
  // --daemon refuses the same in the command itself, before it starts the background mount.
  r = await salvo(['mount', volume, full, '--daemon']);
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /mountpoint .* is not empty — mount on an empty directory/, '--daemon: a non-empty mountpoint');
  r = await salvo(['mount', path.join(root, 'nowhere'), path.join(root, 'missing'), '--daemon']);
  t.equal(r.code, 2);
  oneLine(t, r.stderr, /NOT_FOUND: .*nowhere does not exist — give a volume directory, an archive directory, or s3:\/\/bucket\/prefix/, '--daemon: a path that is not a volume');
  t.notOk(fs.existsSync(path.join(root, 'nowhere')), 'and leaves nothing there');

  const mnt = path.join(root, 'mnt');
  await cleanup.salvoMount(volume, mnt);
  const second = path.join(root, 'mnt2');
  fs.mkdirSync(second);
  r = await salvo(['mount', volume, second]);
  t.equal(r.code, 4);
  oneLine(t, r.stderr, /LOCKED: volume .* is in use by process \d+ — unmount it first/, 'a volume that is mounted');
  r = await salvo(['restore', volume, '--at', 'latest', path.join(root, 'x.img')]);
  t.equal(r.code, 4);
  oneLine(t, r.stderr, /LOCKED: .* is mounted — read its archive instead/, 'restore from a mounted volume directory');
  const status = JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { segments: { current: number }; mountpoint: string; pid: number };
  t.equal(status.mountpoint, mnt, 'status answers from the running mount');

  // A foreground mount stops on SIGTERM, unmounted and with exit 0.
  const fg = path.join(root, 'fg');
  fs.mkdirSync(fg);
  t.equal((await salvo(['unmount', mnt])).code, 0, 'unmount');
  t.throws(() => process.kill(status.pid, 0), { code: 'ESRCH' }, 'unmount returns once the mount process has closed the volume and exited');
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [CLI, 'mount', volume, fg], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.add(async () => child.kill('SIGKILL'));
  await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('mounted') && resolve()));
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  t.equal(code, 0, 'the mount exits 0 on SIGTERM');
  t.notOk(fs.readFileSync('/proc/mounts', 'utf8').includes(fg), 'and is unmounted');
});
