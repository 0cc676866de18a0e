/**
 * What systemd and /etc/fstab rely on, on real mounts: `salvo mount` in the foreground tells
 * $NOTIFY_SOCKET READY=1 once it serves (salvo-mount@.service is Type=notify) and STOPPING=1 when
 * SIGTERM stops it; and mount.salvo lets mount(8) mount a volume (`mount -t salvo`, or a line of
 * an fstab) with its options, which a plain `umount` unmounts, the salvo process then exiting.
 * Node binds no datagram socket of family AF_UNIX: python3 listens on systemd's behalf.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { isProcessAlive } from '../../bench/common.js';
import { CLI, Cleanup, must, run, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { initVolume, oneLine } from '../helpers/cli.js';

const LISTEN = `
import socket, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + sys.argv[1][1:] if sys.argv[1].startswith("@") else sys.argv[1])
print(json.dumps("bound"), flush=True)
while True:
    print(json.dumps(s.recv(4096).decode()), flush=True)
`;

function mounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);
}

async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  for (let waited = 0; !check(); waited += 50) {
    if (waited > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The datagrams python3 received on `socket`, each with whether the mount served when it arrived. */
async function listen(t: Tap.Test, socket: string, mnt: string): Promise<{ messages: { text: string; serving: boolean }[] }> {
  const received: { messages: { text: string; serving: boolean }[] } = { messages: [] };
  const child = spawn('python3', ['-c', LISTEN, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill());
  let buffered = '';
  let bound = false;
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const text = JSON.parse(buffered.slice(0, nl)) as string;
      buffered = buffered.slice(nl + 1);
      if (text === 'bound') bound = true;
      else received.messages.push({ text, serving: fs.existsSync(path.join(mnt, '.salvo.json')) });
    }
  });
  await until('python3 to bind the socket', () => bound, 10_000);
  return received;
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

t.test('salvo mount tells NOTIFY_SOCKET READY=1 once it serves and STOPPING=1 on SIGTERM, then exits 0', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-notify-');
  const { volume, mnt } = await initVolume(root);
  fs.mkdirSync(mnt);
  for (const socket of [path.join(root, 'notify.sock'), `@salvo-test-notify-${process.pid}`]) {
    const received = await listen(t, socket, mnt);
    const child = spawn(process.execPath, [CLI, 'mount', volume, mnt], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NOTIFY_SOCKET: socket } });
    t.teardown(async () => {
      if (mounted(mnt)) await run('fusermount', ['-u', '-z', mnt]);
      child.kill('SIGKILL');
    });
    await until('READY=1', () => received.messages.length > 0);
    const ready = received.messages[0]!;
    t.equal(ready.text, `READY=1\nMAINPID=${child.pid}\nSTATUS=serving ${mnt}`, `${socket}: READY=1 with the main pid and a status`);
    t.ok(ready.serving, 'sent once the mount serves');
    child.kill('SIGTERM');
    t.equal(await exited(child), 0, 'SIGTERM: the mount exits 0');
    await until('STOPPING=1', () => received.messages.length > 1, 5000).catch(() => undefined);
    t.same(received.messages.slice(1).map((m) => m.text), ['STOPPING=1'], 'having said STOPPING=1, and nothing else');
    t.notOk(mounted(mnt), 'and the mountpoint is unmounted');
  }
});

/** Puts the helper `salvo install-units` writes at /sbin/mount.salvo, for mount(8); removed (or the one there put back) at the end. */
async function installHelper(t: Tap.Test, cleanup: Cleanup): Promise<void> {
  const staging = tempDir(t, 'salvo-helper-');
  const r = await salvo(['install-units', '--root', staging]);
  if (r.code !== 0) throw new Error(`install-units failed: ${r.stderr}`);
  const target = '/sbin/mount.salvo';
  const before = fs.existsSync(target) ? fs.readFileSync(target) : null;
  cleanup.add(async () => (before ? fs.writeFileSync(target, before, { mode: 0o755 }) : fs.rmSync(target, { force: true })));
  fs.copyFileSync(path.join(staging, 'sbin/mount.salvo'), target);
  fs.chmodSync(target, 0o755);
}

async function mountPid(mnt: string): Promise<number> {
  const r = await salvo(['status', mnt, '--json']);
  if (r.code !== 0) throw new Error(`salvo status ${mnt}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { pid: number }).pid;
}

t.test('mount -t salvo and an fstab line mount a volume with its options; umount unmounts it and the process exits', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-fstab-');
  const cleanup = new Cleanup(t);
  await installHelper(t, cleanup);
  const { volume, mnt } = await initVolume(root);
  fs.mkdirSync(mnt);
  cleanup.add(async () => {
    if (mounted(mnt) && (await salvo(['unmount', mnt], { timeoutMs: 60_000 })).code !== 0) await run('fusermount', ['-u', '-z', mnt]);
  });

  const bad = await run('mount', ['-t', 'salvo', '-o', 'rpo=30s,bogus', volume, mnt]);
  t.not(bad.code, 0, 'an unknown option: mount fails');
  oneLine(t, bad.stderr, /^salvo: BAD_INPUT: unknown mount option bogus — /, 'an unknown option');
  t.notOk(mounted(mnt), 'and mounts nothing');

  await must('mount', ['-t', 'salvo', '-o', 'rpo=30s,cache=64M,_netdev,nofail', volume, mnt]);
  const status = JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { mountpoint: string; pid: number };
  t.equal(status.mountpoint, mnt, 'mount -t salvo: salvo status shows the mount');
  t.match(await must('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', mnt]), /^fuse\.salvo\s/, 'of type fuse.salvo');
  const argv = fs.readFileSync(`/proc/${status.pid}/cmdline`, 'utf8').split('\0');
  t.same(argv.slice(argv.indexOf('mount')), ['mount', volume, mnt, '--cache', '64M', '--rpo', '30s', ''], 'served with the options given (rpo, cache), without those for mount(8)');
  await must('umount', [mnt]);
  await until('the mount process to exit', () => !isProcessAlive(status.pid));
  t.pass('umount: the salvo process exits');

  const fstab = path.join(root, 'fstab');
  fs.writeFileSync(fstab, `${volume}  ${mnt}  salvo  rpo=30s,cache=64M,_netdev,nofail,x-systemd.requires=network-online.target  0 0\n`);
  await must('mount', ['--fstab', fstab, mnt]);
  const pid = await mountPid(mnt);
  t.ok(mounted(mnt), 'a line of an fstab (mount --fstab <file> <mountpoint>): mounted');
  await must('umount', [mnt]);
  await until('the mount process to exit', () => !isProcessAlive(pid));
  t.notOk(mounted(mnt), 'umount: unmounted, and the process exits');
});
