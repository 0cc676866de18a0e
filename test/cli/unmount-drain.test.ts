/**
 * `salvo unmount` and the archive, through the real mount: it waits until the archive has taken
 * every queued piece, so that once it says so the archive alone restores every synch point; when
 * the archive cannot take them (full), it still ends within seconds, exits 1 and names the points
 * on primary only; the mount's log says once why, status shows it, and the next mount ships them.
 * With writes stalled by a full archive, sync is refused with the reason and SIGTERM still ends
 * the mount within seconds. The same with radosgw stopped under an S3 archive.
 */
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { s3TestLocation } from '../helpers/s3.js';
import { Cleanup, must, ROOT, run, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { writeOnAndOn } from '../helpers/cli.js';

const SERVER = path.join(ROOT, 'scripts/s3-test-server');
const listArchive = async (archive: string) => (JSON.parse((await salvo(['list', archive, '--json'])).stdout) as { label: string | null }[]).map((p) => p.label);

/** A volume of 1 MiB segments (`init` options besides), mounted, archiving to a tmpfs of `archiveSize`. */
async function mountOnSmallArchive(t: Test, archiveSize: string, init: string[]) {
  const root = tempDir(t, 'salvo-small-archive-');
  const cleanup = new Cleanup(t);
  const small = await cleanup.mount('tmpfs', path.join(root, 'small'), ['-t', 'tmpfs', '-o', `size=${archiveSize}`]);
  const volume = path.join(root, 'volume');
  const archive = path.join(small, 'archive');
  const mnt = path.join(root, 'mnt');
  await must(process.execPath, [path.resolve('dist/bin/salvo.js'), 'init', volume, '--segment-size', '1M', ...init, '--archive', archive]);
  await cleanup.salvoMount(volume, mnt);
  return { cleanup, small, volume, archive, mnt, live: path.join(mnt, 'live/volume.img') };
}

t.test('unmount drains: every point acknowledged by sync is in the archive once unmount returns', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-drain-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const archive = path.join(root, 'archive');
  const mnt = path.join(root, 'mnt');
  await must(process.execPath, [path.resolve('dist/bin/salvo.js'), 'init', volume, '--size', '256M', '--segment-size', '128K', '--segments', '2644', '--archive', archive]);
  await cleanup.salvoMount(volume, mnt);
  const live = path.join(mnt, 'live/volume.img');
  for (let burst = 1; burst <= 8; burst++) {
    await must('dd', ['if=/dev/urandom', `of=${live}`, 'bs=1M', 'count=16', `seek=${burst * 16}`, 'conv=notrunc,fsync', 'status=none']);
    t.equal((await salvo(['sync', mnt, '--label', `p${burst}`])).code, 0, `p${burst}`);
  }
  const r = await salvo(['unmount', mnt], { timeoutMs: 120_000 });
  t.equal(r.code, 0, `unmount: ${r.stderr}`);
  t.match(r.stdout, /unmounted .*; the archive holds every synch point/);
  t.same(await listArchive(archive), ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8'], 'the archive alone lists every point');
  const restored = path.join(root, 'p8.img');
  t.equal((await salvo(['restore', archive, '--at', 'p8', restored])).code, 0, 'and restores the newest');
});

t.test('unmount with a full archive: ends within seconds, exits 1, names what is on primary only; the next mount ships it', async (t) => {
  if (!systemReady(t)) return;
  const { cleanup, small, volume, archive, mnt, live } = await mountOnSmallArchive(t, '6m', ['--size', '64M', '--segments', '100']);
  await must('dd', ['if=/dev/urandom', `of=${live}`, 'bs=1M', 'count=1', 'conv=notrunc,fsync', 'status=none']);
  t.equal((await salvo(['sync', mnt, '--label', 'fits'])).code, 0);
  await must('dd', ['if=/dev/urandom', `of=${live}`, 'bs=1M', 'count=24', 'seek=8', 'conv=notrunc,fsync', 'status=none']);
  t.equal((await salvo(['sync', mnt, '--label', 'too-big'])).code, 0, 'a point is taken: it is on primary storage');

  let status = '';
  for (let waited = 0; waited < 20_000 && !/FAILING/.test(status); waited += 500) {
    await new Promise((r) => setTimeout(r, 500));
    status = (await salvo(['status', mnt])).stdout;
  }
  t.match(status, /FAILING +since .* \(full\): .*ENOSPC/, 'status says the archive is failing, and why');
  t.match(status, /\n +the archive is full: .* or keep less history \(`salvo policy .*never drops a point the policy keeps/, 'and what to do: room, or a policy that keeps less');
  const log = fs.readFileSync(path.join(volume, 'mount.log'), 'utf8');
  t.equal(log.split('\n').filter((l) => /the archive is full/.test(l)).length, 1, 'the mount log says it once, not once per retry');

  const started = Date.now();
  const r = await salvo(['unmount', mnt, '--timeout', '5m'], { timeoutMs: 120_000 });
  t.ok(Date.now() - started < 30_000, `unmount ended within seconds (${Date.now() - started} ms)`);
  t.equal(r.code, 1, 'exit 1: not everything is off-site');
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, /^salvo: ARCHIVE_UNAVAILABLE: unmounted .*, but the archive did not take .* \(.*ENOSPC.*\): synch point .* \(too-big\) is on primary storage only — nothing is lost: it ships at the next `salvo mount`/);
  t.notOk(fs.existsSync(path.join(mnt, 'live')), 'the mount is gone');

  await must('mount', ['-o', 'remount,size=200m', small]);
  await cleanup.salvoMount(volume, mnt);
  const done = await salvo(['unmount', mnt], { timeoutMs: 120_000 });
  t.equal(done.code, 0, `the next mount ships it: ${done.stderr}`);
  t.same(await listArchive(archive), ['fits', 'too-big'], 'the archive alone lists both');
});

t.test('writes stalled by a full archive: sync is refused with the reason, SIGTERM ends the mount within seconds, nothing acknowledged is lost', async (t) => {
  if (!systemReady(t)) return;
  // 24 slots of 1 MiB: the working set and its spares fill after a few dozen MiB the archive cannot take.
  const { cleanup, small, volume, archive, mnt, live } = await mountOnSmallArchive(t, '4m', ['--size', '16M', '--segments', '24']);
  await must('dd', ['if=/dev/urandom', `of=${live}`, 'bs=1M', 'count=8', 'conv=notrunc,fsync', 'status=none']);
  t.equal((await salvo(['sync', mnt, '--label', 'acknowledged'])).code, 0, 'a point is taken before the archive fills');
  const expected = fs.readFileSync(live).subarray(0, 8 * 1024 * 1024);
  const { pid } = JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { pid: number };

  // Writes until they stall: dd blocks in the kernel, waiting for the mount.
  const stopWriting = writeOnAndOn(t, live);
  let status = { writesStalledSince: null as string | null };
  for (let waited = 0; waited < 60_000 && !status.writesStalledSince; waited += 500) {
    await new Promise((r) => setTimeout(r, 500));
    status = JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as typeof status;
  }
  t.ok(status.writesStalledSince, 'writes stall: every slot waits for the full archive');

  const started = Date.now();
  const sync = await salvo(['sync', mnt, '--label', 'behind-the-stall'], { timeoutMs: 60_000 });
  t.ok(Date.now() - started < 10_000, `sync answers within seconds (${Date.now() - started} ms)`);
  t.not(sync.code, 0, 'and fails');
  t.match(sync.stderr, /no synch point while writes wait for the archive, which is failing \(full\)/, 'saying why');

  const killed = Date.now();
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; waited < 30_000 && fs.existsSync(`/proc/${pid}`); waited += 100) await new Promise((r) => setTimeout(r, 100));
  t.notOk(fs.existsSync(`/proc/${pid}`), `SIGTERM ends the mount within seconds (${Date.now() - killed} ms)`);
  stopWriting();
  if ((await run('umount', [mnt])).code !== 0) await run('fusermount', ['-u', '-z', mnt]);

  await must('mount', ['-o', 'remount,size=200m', small]);
  await cleanup.salvoMount(volume, mnt);
  t.ok(fs.readFileSync(live).subarray(0, 8 * 1024 * 1024).equals(expected), 'what was acknowledged is all there');
  const done = await salvo(['unmount', mnt], { timeoutMs: 120_000 });
  t.equal(done.code, 0, `the next mount ships what waited: ${done.stderr}`);
  t.same(await listArchive(archive), ['acknowledged'], 'the refused point was never taken; the acknowledged one is in the archive');
});

t.test('unmount with radosgw stopped: ends within seconds, exits 1, names the point on primary only; the next mount ships it', async (t) => {
  if (!systemReady(t)) return;
  const location = await s3TestLocation(t, 'unmount-down');
  if (!location) return;
  const state = process.env.S3_TEST_STATE;
  if (!state) return t.fail('S3_TEST_STATE is not set: scripts/test names the server to stop and start');
  const root = tempDir(t, 'salvo-s3-down-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const mnt = path.join(root, 'mnt');
  await must(process.execPath, [path.resolve('dist/bin/salvo.js'), 'init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', location]);
  await cleanup.salvoMount(volume, mnt);
  const live = path.join(mnt, 'live/volume.img');
  await must('dd', ['if=/dev/urandom', `of=${live}`, 'bs=1M', 'count=1', 'conv=notrunc,fsync', 'status=none']);
  t.equal((await salvo(['sync', mnt, '--label', 'before'])).code, 0);
  let archived: (string | null)[] = [];
  for (let waited = 0; waited < 30_000 && !archived.includes('before'); waited += 250) {
    await new Promise((r) => setTimeout(r, 250));
    archived = await listArchive(location);
  }
  t.same(archived, ['before'], 'the first point reaches S3');

  await must(SERVER, ['stop', state], { timeoutMs: 120_000 });
  let running = false;
  t.teardown(async () => {
    if (!running) await must(SERVER, ['start', state], { timeoutMs: 300_000 });
  });
  await must('dd', ['if=/dev/urandom', `of=${live}`, 'bs=1M', 'count=4', 'seek=8', 'conv=notrunc,fsync', 'status=none']);
  t.equal((await salvo(['sync', mnt, '--label', 'during'])).code, 0, 'a point is taken while the archive is down: it is on primary storage');
  const started = Date.now();
  const r = await salvo(['unmount', mnt, '--timeout', '5m'], { timeoutMs: 180_000 });
  t.ok(Date.now() - started < 60_000, `unmount ended within seconds (${Date.now() - started} ms)`);
  t.equal(r.code, 1, 'exit 1: not everything is off-site');
  t.match(r.stderr, /synch point .* \(during\) is on primary storage only — nothing is lost: it ships at the next `salvo mount`/, 'naming the point');
  t.notMatch(r.stderr, /\(before\)/, 'and not the one S3 holds already (in a tail piece of a segment not yet archived whole)');

  await must(SERVER, ['start', state], { timeoutMs: 300_000 });
  running = true;
  await cleanup.salvoMount(volume, mnt);
  const done = await salvo(['unmount', mnt], { timeoutMs: 120_000 });
  t.equal(done.code, 0, `the next mount ships it: ${done.stderr}`);
  t.same(await listArchive(location), ['before', 'during'], 'S3 alone lists both');
});
