/**
 * `salvo mount --metrics` for real: writes and reads through the live image, an fsync and a
 * synch point show up in the scrape, with the figures `salvo status` gives; the endpoint goes
 * away with the mount; a bad address or a port in use is one line, and nothing is mounted.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { initVolume, oneLine } from '../helpers/cli.js';
import { freePort, parseMetrics, sampleValue } from '../helpers/prometheus.js';
import { Cleanup, must, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';

const MiB = 1 << 20;

function mounted(dir: string): boolean {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir);
}

t.test('mount --metrics: writes, reads, fsync and a synch point in the scrape, as status tells them', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-metrics-');
  const cleanup = new Cleanup(t);
  const { volume, mnt } = await initVolume(root);
  const port = await freePort();
  await cleanup.salvoMount(volume, mnt, ['--metrics', `127.0.0.1:${port}`]);
  const live = path.join(mnt, 'live/volume.img');
  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    t.equal(res.status, 200, 'GET /metrics: 200');
    return parseMetrics(await res.text());
  };

  const first = await scrape();
  t.equal(sampleValue(first, 'salvo_written_bytes_total'), 0, 'nothing written yet');
  t.same([...new Set(first.map((s) => s.labels.volume))], [volume], 'every series labelled with the volume directory');

  await must('dd', ['if=/dev/urandom', `of=${live}`, 'bs=1M', 'count=4', 'conv=notrunc,fsync', 'status=none']);
  await must('dd', [`if=${live}`, 'of=/dev/null', 'bs=1M', 'count=2', 'iflag=direct', 'status=none']);
  const sync = await salvo(['sync', mnt]);
  t.equal(sync.code, 0, `salvo sync ${sync.stderr}`);
  const status = JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { bytesWritten: number; synchPoints: number; archive: { rawBytesArchived: number } };
  const after = await scrape();

  t.equal(sampleValue(after, 'salvo_written_bytes_total'), status.bytesWritten, `written bytes as status says (${status.bytesWritten})`);
  t.ok(sampleValue(after, 'salvo_written_bytes_total')! >= 4 * MiB, 'at least what dd wrote');
  t.ok(sampleValue(after, 'salvo_read_bytes_total', { image: 'live' })! >= 2 * MiB, `bytes read from the live image: ${sampleValue(after, 'salvo_read_bytes_total', { image: 'live' })}`);
  t.equal(sampleValue(after, 'salvo_synch_points_total'), 1, 'one synch point taken');
  t.equal(sampleValue(after, 'salvo_synch_points'), status.synchPoints, 'as many listed as status says');
  t.equal(sampleValue(after, 'salvo_synch_duration_seconds_count'), 1, 'its latency observed');
  const writes = sampleValue(after, 'salvo_fuse_request_duration_seconds_count', { op: 'write' })!;
  t.ok(writes >= (4 * MiB) / (128 * 1024), `FUSE writes timed: ${writes}`);
  t.ok(sampleValue(after, 'salvo_fuse_request_duration_seconds_count', { op: 'read' })! > 0, 'FUSE reads timed');
  t.ok(sampleValue(after, 'salvo_fuse_request_duration_seconds_count', { op: 'fsync' })! > 0, 'fsync timed');
  t.ok(sampleValue(after, 'salvo_fuse_request_duration_seconds_sum', { op: 'write' })! > 0, 'their time summed');
  t.ok(sampleValue(after, 'salvo_archived_bytes_total')! >= status.archive.rawBytesArchived, 'archived bytes');
  t.ok(Number.isFinite(sampleValue(after, 'salvo_recovery_point_age_seconds')!), 'a recovery point once the point shipped');
  t.ok(sampleValue(after, 'process_resident_memory_bytes')! > 0, 'process metrics');
  t.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404, 'anything but /metrics: 404');

  t.equal((await salvo(['unmount', mnt])).code, 0, 'unmounted');
  await t.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'the endpoint closes with the mount');
});

t.test('mount --metrics: a bad address or a port in use is one line, and nothing is mounted', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-metrics-bad-');
  const cleanup = new Cleanup(t);
  const { volume, mnt } = await initVolume(root);
  fs.mkdirSync(mnt);
  cleanup.add(async () => {
    if (mounted(mnt)) await must('fusermount', ['-u', '-z', mnt]);
  });
  for (const bad of ['9464', '127.0.0.1:0', 'localhost:99999', '300.0.0.1:9464']) {
    for (const daemon of [['--daemon'], []]) {
      const r = await salvo(['mount', volume, mnt, ...daemon, '--metrics', bad], { timeoutMs: 60_000 });
      t.not(r.code, 0, `--metrics ${bad} ${daemon.join('')}: refused`);
      oneLine(t, r.stderr, /^salvo: BAD_INPUT: --metrics '[^']*'.* — e\.g\. --metrics 127\.0\.0\.1:9464/, `--metrics ${bad} ${daemon.join('')}`);
      t.notOk(mounted(mnt), 'nothing mounted');
    }
  }

  const port = await freePort();
  const taken = net.createServer().listen(port, '127.0.0.1');
  await new Promise((r) => taken.once('listening', r));
  t.teardown(() => void taken.close());
  for (const daemon of [['--daemon'], []]) {
    const r = await salvo(['mount', volume, mnt, ...daemon, '--metrics', `127.0.0.1:${port}`], { timeoutMs: 60_000 });
    t.not(r.code, 0, `a port in use ${daemon.join('')}: refused`);
    oneLine(t, r.stderr, new RegExp(`^salvo: BAD_INPUT: --metrics 127\\.0\\.0\\.1:${port}: the address is in use — pick another port`), `a port in use ${daemon.join('')}`);
    t.notOk(mounted(mnt), 'nothing mounted');
  }
  // The volume was left as it was: it mounts.
  await cleanup.salvoMount(volume, mnt);
  t.ok(mounted(mnt), 'the volume mounts afterwards');
});

t.test('mount --metrics: a mount of an archive alone serves its reads of the past', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-metrics-archive-');
  const cleanup = new Cleanup(t);
  const { volume, archive, mnt } = await initVolume(root);
  await cleanup.salvoMount(volume, mnt);
  await must('dd', ['if=/dev/urandom', `of=${path.join(mnt, 'live/volume.img')}`, 'bs=1M', 'count=2', 'conv=notrunc,fsync', 'status=none']);
  t.equal((await salvo(['sync', mnt, '--label', 'a'])).code, 0);
  const archiveMnt = path.join(root, 'archive-mnt');
  const port = await freePort();
  await cleanup.salvoMount(archive, archiveMnt, ['--metrics', `127.0.0.1:${port}`]);
  await must('dd', [`if=${path.join(archiveMnt, 'snapshots/by-label/a.img')}`, 'of=/dev/null', 'bs=1M', 'count=2', 'status=none']);
  const samples = parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  t.same([...new Set(samples.map((s) => s.labels.volume))], [archive], 'labelled with the archive');
  t.ok(sampleValue(samples, 'salvo_read_bytes_total', { image: 'snapshot' })! >= 2 * MiB, 'snapshot bytes read');
  t.ok(sampleValue(samples, 'salvo_archive_fetched_bytes_total')! > 0, 'fetched from the archive');
  t.ok(sampleValue(samples, 'salvo_snapshot_cache_misses_total')! >= 1 && sampleValue(samples, 'salvo_snapshot_cache_hits_total')! >= 1, 'the snapshot index built once, then found');
  t.equal(sampleValue(samples, 'salvo_written_bytes_total'), undefined, 'no live volume: no write metrics');
});
