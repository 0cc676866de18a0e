/**
 * fio jobs as the benchmarks use them: direct I/O through libaio on a loop device or a file,
 * and the JSON report boiled down to throughput, IOPS and completion-latency percentiles.
 */
import { spawn } from 'node:child_process';
import { exec } from './common.js';

export interface FioJob {
  name: string;
  rw: 'write' | 'read' | 'randwrite' | 'randread';
  blockSize: string;
  iodepth: number;
  /** Bytes of the device or file the job covers. */
  sizeBytes: number;
  /** Run for this long (looping over the size); else once over the size. */
  runtimeSeconds?: number;
  /** Run this long first without counting it (with runtimeSeconds). */
  rampSeconds?: number;
  endFsync?: boolean;
  direct?: boolean;
  /** Lay a file out with real writes, not fallocate (reads of unwritten extents never reach the device). */
  fallocateNone?: boolean;
}

export interface FioResult {
  bytesPerSecond: number;
  iops: number;
  /** Completion latency in microseconds. */
  latencyP50Us: number;
  latencyP99Us: number;
  seconds: number;
}

/** The fio command line for `job` on `filename` (also printed in reports, to reproduce). */
export function fioArgs(job: FioJob, filename: string): string[] {
  const args = [
    `--name=${job.name}`,
    `--filename=${filename}`,
    `--rw=${job.rw}`,
    `--bs=${job.blockSize}`,
    `--iodepth=${job.iodepth}`,
    '--ioengine=libaio',
    `--direct=${job.direct === false ? 0 : 1}`,
    `--size=${job.sizeBytes}`,
    '--randrepeat=0',
    '--norandommap',
    '--group_reporting',
  ];
  if (job.runtimeSeconds !== undefined) args.push('--time_based', `--runtime=${Math.round(job.runtimeSeconds * 1000)}ms`);
  if (job.rampSeconds) args.push(`--ramp_time=${Math.round(job.rampSeconds * 1000)}ms`);
  if (job.endFsync) args.push('--end_fsync=1');
  if (job.fallocateNone) args.push('--fallocate=none');
  return args;
}

export async function runFio(job: FioJob, filename: string, timeoutMs = 300_000): Promise<FioResult> {
  const { stdout } = await exec('fio', [...fioArgs(job, filename), '--output-format=json'], { timeoutMs });
  const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
    jobs: {
      job_runtime: number;
      read: FioSide;
      write: FioSide;
      sync?: { total_ios?: number; lat_ns?: { mean?: number } };
    }[];
  };
  const j = report.jobs[0]!;
  const side = job.rw.includes('write') ? j.write : j.read;
  const pct = side.clat_ns?.percentile ?? {};
  return {
    bytesPerSecond: side.bw_bytes,
    iops: side.iops,
    latencyP50Us: (pct['50.000000'] ?? NaN) / 1000,
    latencyP99Us: (pct['99.000000'] ?? NaN) / 1000,
    seconds: j.job_runtime / 1000,
  };
}

interface FioSide {
  bw_bytes: number;
  iops: number;
  clat_ns?: { percentile?: Record<string, number> };
}

/** Starts fio in the background (a busy filesystem); `stop` ends that fio process (by its pid) and waits for it. */
export function fioInBackground(job: FioJob, filename: string): { stop: () => Promise<void> } {
  const child = spawn('fio', [...fioArgs(job, filename), '--output-format=json'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT'); // fio ends its jobs and exits
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
