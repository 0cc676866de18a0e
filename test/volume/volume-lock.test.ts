/**
 * The volume's lock is the kernel's (flock): two processes that start at once cannot both take
 * it (the pid file it replaced let both take over a stale lock), and a killed holder leaves it
 * free, with no pid to judge.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { FsVolumeFiles, LOCK_FILE } from '../../lib/volume/files.js';
import { VolumeLock } from '../../lib/volume/volume-lock.js';
import { tempDir } from '../helpers/temp-volume.js';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../dist/lib/volume');

/** A process that takes the volume's lock at `startAt` (salvo's own code, as built: `npm test` builds first), says whether it got it, and holds it until killed. */
function contender(dir: string, startAt: number): { answer: Promise<string>; kill: () => void } {
  // All spin to the same moment, then take the lock: their takeovers overlap, as at boot.
  const script = `
    const { VolumeLock } = await import(${JSON.stringify(path.join(dist, 'volume-lock.js'))});
    const { FsVolumeFiles } = await import(${JSON.stringify(path.join(dist, 'files.js'))});
    const files = new FsVolumeFiles(${JSON.stringify(dir)});
    while (Date.now() < ${startAt});
    try {
      VolumeLock.acquire(files);
      process.stdout.write('held\\n');
      setInterval(() => {}, 1000);
    } catch (err) {
      process.stdout.write(err.code + '\\n');
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const answer = new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
  return { answer, kill: () => child.kill('SIGKILL') };
}

t.test('lock: of processes starting at once over a killed mount\'s lock exactly one holds the volume; killed, it leaves the lock free', async (t) => {
  const dir = tempDir(t, 'salvo-lock-');
  // A killed mount's file, naming a process long gone: with a pid file, each contender took it over.
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => gone.once('exit', resolve));
  fs.writeFileSync(path.join(dir, LOCK_FILE), `${gone.pid}\n`);
  const startAt = Date.now() + 2000;
  const contenders = Array.from({ length: 8 }, () => contender(dir, startAt));
  t.teardown(() => contenders.forEach((c) => c.kill()));
  const answers = await Promise.all(contenders.map((c) => c.answer));
  t.equal(answers.filter((a) => a === 'held').length, 1, `one of 8 holds it (${answers.join(' ')})`);
  t.equal(answers.filter((a) => a === 'LOCKED').length, 7, 'the others are refused');
  const holder = contenders[answers.indexOf('held')]!;
  const files = new FsVolumeFiles(dir);
  t.throws(() => VolumeLock.acquire(files), { code: 'LOCKED', message: /is in use by process \d+/ }, 'this process is refused, the holder named');
  holder.kill();
  await new Promise((r) => setTimeout(r, 200));
  t.ok(fs.existsSync(path.join(dir, LOCK_FILE)), 'the killed holder left its file');
  const lock = VolumeLock.acquire(files);
  t.equal(VolumeLock.owner(files), process.pid, 'and the lock is free to take: the file names this process now');
  t.throws(() => VolumeLock.check(dir), { code: 'LOCKED' }, 'held, another open of the lock is refused, in this process too');
  lock.release();
  t.notOk(fs.existsSync(path.join(dir, LOCK_FILE)), 'released, the file is gone');
  t.doesNotThrow(() => VolumeLock.check(dir), 'and the volume is free');
});
