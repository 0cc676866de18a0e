/**
 * A real Prometheus (Debian's) scrapes a mount every second while fio writes on a loop device
 * over the live image: its HTTP API gives back the figures the mount's status gives. Then the
 * archive (a tmpfs) fills up: salvo_archive_failing turns 1 in Prometheus, and the example
 * alert rule SalvoArchiveUnreachable (loaded with a `for:` of seconds) fires; writes go on until
 * every slot waits for the archive, and SalvoWritesStalled fires; room again, writes resume and
 * the stall is counted.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { freePort, prometheusReady, startPrometheus, type PrometheusServer } from '../helpers/prometheus.js';
import { Cleanup, must, ROOT, run, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';

/** The value of a query that yields one series, or null while it yields none. */
async function one(prometheus: PrometheusServer, expr: string): Promise<number | null> {
  const result = await prometheus.query(expr);
  if (result.length > 1) throw new Error(`${expr}: ${result.length} series`);
  return result.length === 0 ? null : Number(result[0]!.value[1]);
}

/** Polls until `expr` gives a value `ok` accepts (the scrapes and rule evaluations run every second). */
async function until(prometheus: PrometheusServer, expr: string, ok: (v: number | null) => boolean, timeoutMs = 60_000): Promise<number | null> {
  let value: number | null = null;
  for (let waited = 0; waited < timeoutMs; waited += 500) {
    value = await one(prometheus, expr);
    if (ok(value)) return value;
    await new Promise((r) => setTimeout(r, 500));
  }
  return value;
}

t.test('prometheus: scrapes a mount under fio; an archive stall shows and fires the alert rule', async (t) => {
  if (!systemReady(t) || !prometheusReady(t)) return;
  const root = tempDir(t, 'salvo-prometheus-');
  const cleanup = new Cleanup(t);
  const small = await cleanup.mount('tmpfs', path.join(root, 'archive-disk'), ['-t', 'tmpfs', '-o', 'size=256m']);
  const volume = path.join(root, 'volume');
  const mnt = path.join(root, 'mnt');
  // 32 slots of 1 MiB: writes stall after ~32 MiB the archive does not take.
  t.equal((await salvo(['init', volume, '--size', '16M', '--segment-size', '1M', '--segments', '24', '--spare', '8', '--archive', path.join(small, 'archive')])).code, 0, 'init');
  const port = await freePort();
  await cleanup.salvoMount(volume, mnt, ['--metrics', `127.0.0.1:${port}`]);

  // The example rules, with `for:` in seconds so that the test sees them fire.
  const rules = path.join(root, 'salvo-alerts.yml');
  fs.writeFileSync(rules, fs.readFileSync(path.join(ROOT, 'contrib/prometheus/salvo-alerts.yml'), 'utf8').replace(/for: \d+m/g, 'for: 2s'));
  const prometheus = await startPrometheus(t, path.join(root, 'prometheus'), [`127.0.0.1:${port}`], [rules]);
  await prometheus.targetsUp();
  const sel = `{volume="${volume}"}`;

  const device = await cleanup.loop(path.join(mnt, 'live/volume.img'));
  t.equal((await salvo(['sync', mnt])).code, 0, 'a first synch point');
  const fio = await run('fio', ['--name=load', `--filename=${device}`, '--rw=randwrite', '--bs=4k', '--size=16M', '--ioengine=psync', '--direct=1', '--time_based', '--runtime=6', '--rate=8m', '--fsync=64', '--output-format=json']);
  t.equal(fio.code, 0, `fio ran ${fio.stderr}`);
  const fioBytes = (JSON.parse(fio.stdout) as { jobs: { write: { io_bytes: number } }[] }).jobs[0]!.write.io_bytes;
  t.ok(fioBytes > 1 << 20, `fio wrote ${fioBytes} bytes`);

  // Once writes stop, Prometheus' last scrape holds what status says.
  const status = JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { bytesWritten: number };
  const written = await until(prometheus, `salvo_written_bytes_total${sel}`, (v) => v === status.bytesWritten, 15_000);
  t.equal(written, status.bytesWritten, `salvo_written_bytes_total in Prometheus is status' bytesWritten (${status.bytesWritten})`);
  t.ok(written! >= fioBytes, `and at least what fio wrote (${fioBytes})`);
  const rate = await one(prometheus, `max_over_time(rate(salvo_written_bytes_total${sel}[3s])[30s:1s])`);
  t.ok(rate !== null && rate > 0.5e6 && rate < 64e6, `rate() saw fio's ~8 MB/s: ${rate}`);
  const requests = await one(prometheus, `sum(salvo_fuse_request_duration_seconds_count{volume="${volume}",op="write"})`);
  t.ok(requests !== null && requests >= fioBytes / (128 * 1024), `FUSE writes counted: ${requests}`);
  const p99 = await one(prometheus, `histogram_quantile(0.99, sum by (le) (salvo_fuse_request_duration_seconds_bucket{volume="${volume}",op="write"}))`);
  t.ok(p99 !== null && p99 > 0 && p99 <= 10, `p99 of FUSE writes: ${p99} s`);
  t.ok((await one(prometheus, `salvo_fuse_request_duration_seconds_count{volume="${volume}",op="fsync"}`))! > 0, 'fsyncs counted');
  t.equal(await one(prometheus, `salvo_archive_failing${sel}`), 0, 'the archive takes everything');
  const age = await until(prometheus, `salvo_recovery_point_age_seconds${sel}`, (v) => v !== null && Number.isFinite(v));
  t.ok(age !== null && age >= 0 && age < 120, `the recovery point is ${age} s old`);

  // The archive's disk fills up: what the next synch point ships cannot be put.
  await run('dd', ['if=/dev/zero', `of=${path.join(small, 'filler')}`, 'bs=1M', 'status=none']);
  await must('dd', ['if=/dev/urandom', `of=${device}`, 'bs=1M', 'count=2', 'oflag=direct', 'status=none']);
  t.equal((await salvo(['sync', mnt])).code, 0, 'a synch point while the archive is full');
  t.equal(await until(prometheus, `salvo_archive_failing${sel}`, (v) => v === 1), 1, 'salvo_archive_failing is 1 in Prometheus');
  t.ok((await one(prometheus, `salvo_archive_put_failures_total{volume="${volume}",cause="full"}`))! >= 1, 'the put failures, cause full');
  let firing = false;
  for (let waited = 0; waited < 30_000 && !firing; waited += 500) {
    firing = (await prometheus.alerts()).some((a) => a.labels.alertname === 'SalvoArchiveUnreachable' && a.labels.volume === volume && a.state === 'firing');
    if (!firing) await new Promise((r) => setTimeout(r, 500));
  }
  t.ok(firing, 'the alert rule SalvoArchiveUnreachable fires');
  t.ok((await until(prometheus, `salvo_archive_lag_seconds${sel}`, (v) => v !== null && v > 0))! > 0, 'the archive lags');


  // Writes go on into the slots the archive has not emptied, then wait.
  // Three passes over the 16 MiB device: 48 MiB, more than the 32 slots hold.
  const dd = spawn('sh', ['-c', `for pass in 1 2 3; do dd if=/dev/urandom of=${device} bs=1M count=16 oflag=direct status=none || exit 1; done`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let ddErr = '';
  dd.stderr!.on('data', (d: Buffer) => (ddErr += d.toString()));
  const ddDone = new Promise<number | null>((resolve) => dd.on('exit', resolve));
  t.teardown(() => void dd.kill('SIGKILL'));
  t.equal(await until(prometheus, `salvo_write_stalled${sel}`, (v) => v === 1), 1, 'salvo_write_stalled is 1 in Prometheus');
  let stalled = false;
  for (let waited = 0; waited < 30_000 && !stalled; waited += 500) {
    stalled = (await prometheus.alerts()).some((a) => a.labels.alertname === 'SalvoWritesStalled' && a.labels.volume === volume && a.state === 'firing');
    if (!stalled) await new Promise((r) => setTimeout(r, 500));
  }
  t.ok(stalled, 'the alert rule SalvoWritesStalled fires');
  t.ok((await until(prometheus, `salvo_write_stall_seconds_total${sel}`, (v) => v !== null && v > 1))! > 1, 'the stall counts its seconds while it lasts');

  fs.rmSync(path.join(small, 'filler'));
  t.equal(await ddDone, 0, `room again: the writes complete ${ddErr}`);
  t.equal(await until(prometheus, `salvo_write_stalled${sel}`, (v) => v === 0), 0, 'no longer stalled');
  t.equal(await until(prometheus, `salvo_archive_failing${sel}`, (v) => v === 0, 90_000), 0, 'the archive takes writes again: back to 0');
  t.ok((await one(prometheus, `salvo_write_stalls_total${sel}`))! >= 1, 'the stall is counted');
});
