/**
 * The mount's log (lib/cli/event-log.ts): one line per event, with its level and its volume —
 * mounted, synch points, writes stalled by a full archive and resumed, the archive's trouble
 * and its end, unmounted — in mount.log with the time, and with the syslog priority journald
 * reads when stderr is the journal (JOURNAL_STREAM, as systemd sets it).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { EventLog } from '../../lib/cli/event-log.js';
import { initVolume, writeOnAndOn } from '../helpers/cli.js';
import { CLI, Cleanup, must, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';

t.test('event log: one line an event, the time or the journal priority first', async (t) => {
  const lines: string[] = [];
  const at = new Date('2026-12-07T10:00:00.000Z');
  new EventLog('/var/lib/salvo/db', (l) => lines.push(l), {}, () => at).warning('archive /backup: full\nsecond line');
  new EventLog('/var/lib/salvo/db', (l) => lines.push(l), { JOURNAL_STREAM: '8:1234' }).error('a block failed its checksum');
  new EventLog('/var/lib/salvo/db', (l) => lines.push(l), { JOURNAL_STREAM: '8:1234' }).info('mounted');
  t.same(lines, [
    '2026-12-07T10:00:00.000Z salvo: warning: /var/lib/salvo/db: archive /backup: full second line\n',
    '<3>salvo: error: /var/lib/salvo/db: a block failed its checksum\n',
    '<6>salvo: info: /var/lib/salvo/db: mounted\n',
  ]);
});

t.test('event log: a mount logs what happens to it, stall and trouble included', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-events-');
  const cleanup = new Cleanup(t);
  const small = await cleanup.mount('tmpfs', path.join(root, 'small'), ['-t', 'tmpfs', '-o', 'size=4m']);
  const volume = path.join(root, 'volume');
  const archive = path.join(small, 'archive');
  const mnt = path.join(root, 'mnt');
  await must(process.execPath, [CLI, 'init', volume, '--size', '16M', '--segment-size', '1M', '--segments', '24', '--archive', archive]);
  await cleanup.salvoMount(volume, mnt);
  const live = path.join(mnt, 'live/volume.img');
  await must('dd', ['if=/dev/urandom', `of=${live}`, 'bs=1M', 'count=2', 'conv=notrunc,fsync', 'status=none']);
  t.equal((await salvo(['sync', mnt, '--label', 'first'])).code, 0, 'a point is taken');

  // Writes until they stall on the full archive, then room: they resume, and the archive ships again.
  const stopWriting = writeOnAndOn(t, live);
  type Status = { writesStalledSince: string | null; writeStalls: { count: number } };
  const status = async () => JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as Status;
  let now = await status();
  for (let waited = 0; waited < 60_000 && !now.writesStalledSince; waited += 500) {
    await new Promise((r) => setTimeout(r, 500));
    now = await status();
  }
  t.ok(now.writesStalledSince, 'writes stall: the archive is full');
  await must('mount', ['-o', 'remount,size=200m', small]);
  for (let waited = 0; waited < 60_000 && now.writeStalls.count === 0; waited += 500) {
    await new Promise((r) => setTimeout(r, 500));
    now = await status();
  }
  stopWriting();
  t.ok(now.writeStalls.count > 0, 'and resume once the archive has room');
  t.equal((await salvo(['unmount', mnt], { timeoutMs: 120_000 })).code, 0, 'unmounted, the archive drained');

  const log = fs.readFileSync(path.join(volume, 'mount.log'), 'utf8').split('\n').filter((l) => / salvo: [a-z]+: /.test(l));
  const has = (level: string, what: RegExp, message: string) => t.ok(log.some((l) => l.includes(` salvo: ${level}: ${volume}: `) && what.test(l)), message);
  t.ok(log.every((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z salvo: (error|warning|notice|info): \//.test(l)), `every event line has the time, the level and the volume:\n${log.join('\n')}`);
  has('info', /mounted on .*mnt \(pid \d+\), opened in \d+ ms/, 'mounted');
  has('info', /synch point \S+Z \(first\), asked by salvo sync/, 'the synch point');
  has('warning', /archive .* full/, 'the archive full, as a warning');
  has('warning', /writes stalled: every segment slot is in use/, 'the stall');
  has('notice', /writes resume after \d+\.\d s/, 'and its end');
  has('notice', /shipping again after \d+ s of failures/, 'the archive shipping again');
  has('info', /closed, unmounted from/, 'unmounted');
});

t.test('event log: under systemd (JOURNAL_STREAM) lines carry the syslog priority', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-journal-');
  const cleanup = new Cleanup(t);
  const { volume, mnt } = await initVolume(root);
  fs.mkdirSync(mnt);
  const child = spawn(process.execPath, [CLI, 'mount', volume, mnt], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, JOURNAL_STREAM: '8:4242' } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  cleanup.add(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  for (let waited = 0; waited < 30_000 && !stderr.includes('mounted on'); waited += 100) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGTERM');
  await exited;
  t.match(stderr, new RegExp(`^<6>salvo: info: ${volume}: mounted on `, 'm'), 'info lines start with <6>');
  t.match(stderr, new RegExp(`^<6>salvo: info: ${volume}: closed, unmounted from `, 'm'), 'and the stop is logged');
});
