/**
 * LatencyHistograms (lib/util) as Prometheus histograms in a prom-client registry. The FUSE
 * requests record into their own fixed buckets without allocating, where prom-client's observe
 * builds a label key per call (BENCHMARKS.md, "Figures behind the code": timing every FUSE
 * request); this turns those counts into prom-client's values at scrape time: cumulative
 * `_bucket{le}`, `_sum` and `_count`.
 */
import type { Metric, Registry } from 'prom-client';
import type { LatencyHistogram } from '../util/latency-histogram.js';

interface Value {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** A series of the histogram: its labels (beside the registry's default ones) and its counts. */
export interface HistogramSeries {
  labels: Record<string, string>;
  histogram: LatencyHistogram;
}

/** Registers histogram `name`, whose series `series()` gives at each scrape. */
export function registerHistogram(registry: Registry, name: string, help: string, series: () => readonly HistogramSeries[]): void {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values: series().flatMap((s) => values(name, s)) }),
  };
  // The registry formats any metric whose get() answers as prom-client's own do.
  registry.registerMetric(metric as unknown as Metric);
}

function values(name: string, { labels, histogram }: HistogramSeries): Value[] {
  const out: Value[] = [];
  let cumulative = 0;
  histogram.bounds.forEach((bound, i) => {
    cumulative += histogram.counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: bound }, value: cumulative });
  });
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: histogram.count });
  out.push({ metricName: `${name}_sum`, labels: { ...labels }, value: histogram.sum });
  out.push({ metricName: `${name}_count`, labels: { ...labels }, value: histogram.count });
  return out;
}
