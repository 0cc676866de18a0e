/**
 * `mount --metrics` without a mount: the address it takes, the registry read from a volume's own
 * counters (names, types, the volume label, values that move, the archive's failures by cause),
 * the HTTP endpoint, and the contrib files: every metric the dashboard and the alert rules name
 * is one the mount serves, and the rules pass their promtool tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { isVolumeError } from '../../lib/errors.js';
import type { VolumeMount } from '../../lib/fuse/mount.js';
import { parseMetricsAddress } from '../../lib/metrics/address.js';
import { MountMetrics } from '../../lib/metrics/mount-metrics.js';
import { MetricsServer } from '../../lib/metrics/server.js';
import { LatencyHistogram, REQUEST_BUCKETS } from '../../lib/util/latency-histogram.js';
import { PROMTOOL, freePort, parseMetrics, prometheusReady, sampleValue, type Sample } from '../helpers/prometheus.js';
import { ROOT, run } from '../helpers/system.js';
import { createTempVolume, historyOf, tempDir } from '../helpers/temp-volume.js';

const BS = 4096;

/** What MountMetrics reads of a mount: its request times and bytes read. */
function fakeMount(): VolumeMount {
  const times = () => new LatencyHistogram(REQUEST_BUCKETS);
  return { requestTimes: { read: times(), write: times(), fsync: times(), fallocate: times() }, bytesRead: { live: 0, snapshot: 0 } } as unknown as VolumeMount;
}

t.test('metrics: --metrics takes host:port, and refuses anything else in one line', async (t) => {
  t.same(parseMetricsAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  t.same(parseMetricsAddress('[::1]:9464'), { host: '::1', port: 9464 });
  t.same(parseMetricsAddress('localhost:1'), { host: 'localhost', port: 1 });
  t.same(parseMetricsAddress('0.0.0.0:65535'), { host: '0.0.0.0', port: 65535 });
  for (const bad of ['9464', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '300.1.1.1:9464', '[zz]:1', 'host:port', '::1:9464', 'http://127.0.0.1:9464', '']) {
    let refusal: unknown = null;
    try {
      parseMetricsAddress(bad);
    } catch (err) {
      refusal = err;
    }
    t.ok(isVolumeError(refusal, 'BAD_INPUT') && /--metrics/.test(refusal.message) && refusal.hint !== undefined, `refused: '${bad}' (${(refusal as Error | null)?.message})`);
  }
});

t.test('metrics: the registry reads the volume’s counters at scrape time, every series labelled with the volume', async (t) => {
  const { volume, store } = await createTempVolume(t, {}, { retryDelayMsMax: 20, onWarning: () => undefined });
  const mount = fakeMount();
  const metrics = new MountMetrics({ label: volume.dir, volume, history: historyOf(volume), mount });
  const scrape = async () => parseMetrics(await metrics.metrics());

  const before = await scrape();
  t.ok(before.length > 50, `${before.length} samples`);
  t.same(before.filter((s) => s.labels.volume !== volume.dir).map((s) => s.name), [], 'every sample, process_* too, has the volume label');
  t.equal(sampleValue(before, 'salvo_written_bytes_total'), 0);
  t.equal(sampleValue(before, 'salvo_recovery_point_age_seconds'), Infinity, 'no recovery point yet: +Inf');
  t.equal(sampleValue(before, 'salvo_recovery_point_timestamp_seconds'), undefined, 'and no time of one');
  t.ok(sampleValue(before, 'process_resident_memory_bytes')! > 0, 'process metrics come along');

  for (let i = 0; i < 8; i++) await volume.write(Buffer.alloc(BS, i + 1), i * BS);
  mount.requestTimes.write.record(0.00003);
  mount.requestTimes.write.record(0.2);
  mount.bytesRead.live += 3 * BS;
  const point = await volume.synch({ label: 'a' });
  await volume.idle();
  const after = await scrape();
  t.equal(sampleValue(after, 'salvo_written_bytes_total'), 8 * BS, 'bytes written');
  t.equal(sampleValue(after, 'salvo_read_bytes_total', { image: 'live' }), 3 * BS, 'bytes read, live');
  t.equal(sampleValue(after, 'salvo_read_bytes_total', { image: 'snapshot' }), 0, 'and of snapshots');
  t.equal(sampleValue(after, 'salvo_synch_points_total'), 1, 'one synch point taken');
  t.equal(sampleValue(after, 'salvo_synch_points'), 1, 'one listed');
  t.equal(sampleValue(after, 'salvo_synch_duration_seconds_count'), 1, 'its latency observed');
  t.ok(sampleValue(after, 'salvo_archived_bytes_total')! >= 8 * BS, 'the archive took the writes');
  t.ok(sampleValue(after, 'salvo_archive_stored_bytes_total')! > 0, 'and stored them');
  t.equal(sampleValue(after, 'salvo_archive_pending_bytes'), 0, 'nothing waits');
  t.equal(sampleValue(after, 'salvo_archive_lag_seconds'), 0, 'no lag');
  t.equal(sampleValue(after, 'salvo_recovery_point_timestamp_seconds'), point.timeMs / 1000, 'the recovery point is the point taken');
  const age = sampleValue(after, 'salvo_recovery_point_age_seconds')!;
  t.ok(age >= 0 && age < 60, `its age: ${age} s`);
  t.ok(sampleValue(after, 'salvo_archive_requests_total', { kind: 'put' })! >= 1, 'puts counted');
  t.equal(sampleValue(after, 'salvo_archive_failing'), 0);
  t.equal(sampleValue(after, 'salvo_fuse_request_duration_seconds_count', { op: 'write' }), 2, 'FUSE writes timed');
  t.equal(sampleValue(after, 'salvo_fuse_request_duration_seconds_bucket', { op: 'write', le: '0.00005' }), 1, 'buckets are cumulative');
  t.equal(sampleValue(after, 'salvo_fuse_request_duration_seconds_bucket', { op: 'write', le: '0.25' }), 2);
  t.equal(sampleValue(after, 'salvo_fuse_request_duration_seconds_bucket', { op: 'write', le: '+Inf' }), 2);
  t.equal(sampleValue(after, 'salvo_fuse_request_duration_seconds_count', { op: 'fsync' }), 0, 'every op has its series');
  t.ok(sampleValue(after, 'salvo_primary_filesystem_size_bytes')! > 0, 'the filesystem under the volume');
  t.ok(sampleValue(after, 'salvo_primary_capacity_bytes')! > 0, 'what the slots may take');

  // The archive fails: the cause is counted, failing is 1 until it ships again.
  store.failing = true;
  await volume.write(Buffer.alloc(BS, 9), 0);
  await volume.synch();
  while (store.stats.puts < 10) await new Promise((r) => setTimeout(r, 10));
  const failing = await scrape();
  t.equal(sampleValue(failing, 'salvo_archive_failing'), 1, 'failing while puts fail');
  t.ok(sampleValue(failing, 'salvo_archive_put_failures_total', { cause: 'unreachable' })! >= 1, `failures by cause: ${sampleValue(failing, 'salvo_archive_put_failures_total', { cause: 'unreachable' })}`);
  t.equal(sampleValue(failing, 'salvo_archive_put_failures_total', { cause: 'full' }), 0, 'every cause has its series');
  t.ok(sampleValue(failing, 'salvo_archive_lag_seconds')! >= 0 && sampleValue(failing, 'salvo_archive_pending_bytes')! > 0, 'writes wait');
  store.failing = false;
  await volume.idle();
  t.equal(sampleValue(await scrape(), 'salvo_archive_failing'), 0, 'back to 0 once it ships');

  const text = await metrics.metrics();
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  const misnamed = [...types].filter(([name, type]) => name.startsWith('salvo_') && (type === 'counter') !== name.endsWith('_total'));
  t.same(misnamed, [], 'counters, and only counters, end in _total');
  t.ok([...types.keys()].filter((n) => n.startsWith('salvo_')).every((n) => /^salvo_[a-z_]+$/.test(n)), 'snake-case names');
});

t.test('metrics: the endpoint serves GET /metrics once the mount is ready, and nothing else', async (t) => {
  const port = await freePort();
  const server = await MetricsServer.listen({ host: '127.0.0.1', port });
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${port}`;
  t.equal((await fetch(`${url}/metrics`)).status, 503, 'not ready yet: 503');
  server.serve({ contentType: 'text/plain; version=0.0.4; charset=utf-8', metrics: async () => 'salvo_up 1\n' });
  const res = await fetch(`${url}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  t.equal(await res.text(), 'salvo_up 1\n');
  t.equal((await fetch(`${url}/`)).status, 404, 'another path: 404');
  t.equal((await fetch(`${url}/metrics`, { method: 'POST' })).status, 405, 'another method: 405');
  const inUse = await MetricsServer.listen({ host: '127.0.0.1', port }).then(
    () => null,
    (err: unknown) => err,
  );
  t.ok(isVolumeError(inUse, 'BAD_INPUT') && /^BAD_INPUT: --metrics 127\.0\.0\.1:\d+: the address is in use$/.test(inUse.message), `a port in use: one clear error (${(inUse as Error | null)?.message})`);
  await server.close();
  await t.rejects(fetch(`${url}/metrics`), 'closed: nothing listens');
});

/** The metric names a scrape of a volume's registry shows. */
async function servedNames(t: Tap): Promise<Set<string>> {
  const { volume } = await createTempVolume(t);
  const metrics = new MountMetrics({ label: volume.dir, volume, history: historyOf(volume), mount: fakeMount() });
  await volume.synch();
  return new Set(parseMetrics(await metrics.metrics()).map((s: Sample) => s.name));
}
type Tap = Parameters<Parameters<typeof t.test>[1]>[0];

/** Names of series an expression reads (its identifiers that are metric names, not functions or labels). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:salvo|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

t.test('metrics: the dashboard and the alert rules name only metrics the mount serves', async (t) => {
  const served = await servedNames(t);
  const dashboard = JSON.parse(fs.readFileSync(path.join(ROOT, 'contrib/grafana/salvo-dashboard.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((target) => ({ panel: p.title, expr: target.expr })));
  t.ok(exprs.length > 20, `${exprs.length} queries in the dashboard`);
  const unknown = exprs.flatMap(({ panel, expr }) => metricNames(expr).filter((n) => !served.has(n)).map((n) => `${panel}: ${n}`));
  t.same(unknown, [], 'every metric the dashboard queries is served');
  t.ok(exprs.every(({ expr }) => expr.includes('volume=~"$volume"')), 'every query follows the volume picker');

  const rules = fs.readFileSync(path.join(ROOT, 'contrib/prometheus/salvo-alerts.yml'), 'utf8');
  const ruleExprs = [...rules.matchAll(/^\s+expr: (.*)$/gm)].map((m) => m[1]!);
  t.equal(ruleExprs.length, 4, 'four alert rules');
  t.same(ruleExprs.flatMap(metricNames).filter((n) => !served.has(n)), [], 'every metric the rules read is served');
});

t.test('metrics: promtool checks the alert rules, their tests and the example configuration', async (t) => {
  if (!prometheusReady(t, [PROMTOOL])) return;
  const dir = path.join(ROOT, 'contrib/prometheus');
  const tested = await run(PROMTOOL, ['test', 'rules', path.join(dir, 'salvo-alerts.test.yml')]);
  t.equal(tested.code, 0, `promtool test rules: each alert fires for one volume and not another\n${tested.stdout}${tested.stderr}`);
  const checked = await run(PROMTOOL, ['check', 'rules', path.join(dir, 'salvo-alerts.yml')]);
  t.equal(checked.code, 0, `promtool check rules\n${checked.stdout}${checked.stderr}`);
  // The example points at /etc/prometheus; checked here with the rules where they are.
  const config = path.join(tempDir(t, 'salvo-promconfig-'), 'prometheus.yml');
  fs.writeFileSync(config, fs.readFileSync(path.join(dir, 'prometheus.yml'), 'utf8').replace('/etc/prometheus/salvo-alerts.yml', path.join(dir, 'salvo-alerts.yml')));
  const example = await run(PROMTOOL, ['check', 'config', config]);
  t.equal(example.code, 0, `promtool check config of the example\n${example.stdout}${example.stderr}`);
});
