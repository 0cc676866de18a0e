/**
 * Prometheus for the metrics tests: the text format parsed back into samples, a free port, and a
 * real Prometheus server (Debian's package, which scripts/setup installs) started on 127.0.0.1
 * with its own configuration and data directory, stopped when the test ends.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { recordSkip } from './skips.js';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Tap {
  skip(message: string): void;
  fail(message: string): void;
  teardown(fn: () => unknown): void;
}

/** The samples of a scrape in Prometheus' text format (comments dropped). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    samples.push({ name: m[1]!, labels, value });
  }
  return samples;
}

/** The value of the one sample of `name` whose labels include `labels`; undefined if none. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** A TCP port free on 127.0.0.1 now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** True when prometheus and promtool are installed; a skip otherwise, a failure under SALVO_REQUIRE_FUSE=1 (CI). */
export function prometheusReady(t: Tap, tools: string[] = [PROMETHEUS, PROMTOOL]): boolean {
  const missing = tools.filter((tool) => !fs.existsSync(tool));
  if (missing.length === 0) return true;
  const reason = `needs ${missing.join(', ')} (apt-get install prometheus; scripts/setup does)`;
  if (process.env.SALVO_REQUIRE_FUSE === '1') t.fail(`${reason} (SALVO_REQUIRE_FUSE=1)`);
  else {
    t.skip(reason);
    recordSkip(reason);
  }
  return false;
}

export interface PrometheusServer {
  url: string;
  /** An instant query's result vector (/api/v1/query). */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** The alerts Prometheus holds now (/api/v1/alerts). */
  alerts(): Promise<{ labels: Record<string, string>; state: string }[]>;
  /** Resolves once a scrape of every target succeeded. */
  targetsUp(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts Prometheus on 127.0.0.1 scraping `targets` every second (and loading `ruleFiles`), stopped at the test's end. */
export async function startPrometheus(t: Tap, dir: string, targets: string[], ruleFiles: string[] = []): Promise<PrometheusServer> {
  const port = await freePort();
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      ...(ruleFiles.length > 0 ? ['rule_files:', ...ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)] : []),
      'scrape_configs:',
      '  - job_name: salvo',
      '    static_configs:',
      `      - targets: ${JSON.stringify(targets)}`,
      '',
    ].join('\n'),
  );
  const log = fs.openSync(path.join(dir, 'prometheus.log'), 'a');
  const child = spawn(PROMETHEUS, [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.on('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const stop = async () => {
    if (!exited) child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
    if (!exited) child.kill('SIGKILL');
    await gone;
  };
  t.teardown(stop);
  const url = `http://127.0.0.1:${port}`;
  const api = async <T>(what: string): Promise<T> => {
    const res = await fetch(`${url}${what}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${what}: ${body.error}`);
    return body.data;
  };
  for (let waited = 0; ; waited += 200) {
    if (exited) throw new Error(`prometheus exited: ${fs.readFileSync(path.join(dir, 'prometheus.log'), 'utf8')}`);
    if (await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)) break;
    if (waited > 30_000) throw new Error('prometheus did not become ready within 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    query: async (expr) => (await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    alerts: async () => (await api<{ alerts: { labels: Record<string, string>; state: string }[] }>('/api/v1/alerts')).alerts,
    targetsUp: async (timeoutMs = 30_000) => {
      for (let waited = 0; waited < timeoutMs; waited += 500) {
        const data = await api<{ activeTargets: { health: string }[] }>('/api/v1/targets');
        if (data.activeTargets.length === targets.length && data.activeTargets.every((a) => a.health === 'up')) return;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`prometheus's targets were not up within ${timeoutMs} ms`);
    },
    stop,
  };
}
