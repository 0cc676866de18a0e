/**
 * Counts of durations in fixed buckets, as a Prometheus histogram holds them: what the FUSE
 * requests and the synch points record where they happen, and what `mount --metrics` exports.
 * Recording allocates nothing and costs a few comparisons: it runs on every FUSE request.
 */

/** Upper bounds in seconds for FUSE requests: from a write answered in its turn to one stalled behind the archive. */
export const REQUEST_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** Upper bounds in seconds for synch points: from an idle volume's to one behind a stalled archive. */
export const SYNCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

export class LatencyHistogram {
  /** Counts per bucket, not cumulative; the last one past every bound (+Inf). */
  readonly counts: Float64Array;
  count = 0;
  /** Seconds, all observations together. */
  sum = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  record(seconds: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += seconds;
  }

  /** Records the time since `startedMs`, a reading of performance.now(). */
  since(startedMs: number): void {
    this.record((performance.now() - startedMs) / 1000);
  }
}
