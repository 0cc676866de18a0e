/**
 * Where salvo's time goes under one fio job, for work on its speed (an experiment, not one of the
 * benchmarks `npm run bench` runs):
 *
 *   node dist/bench/experiments/profile.js [randwrite|seqwrite|randread|seqread] [--dio] [--perf] [fuse-io's flags]
 *
 * salvo only, set up as fuse-io sets it up: fill, then the job for 5 s with the mount under
 * --cpu-prof; prints where the mount's main thread spent those 5 s (self time by function and
 * by file). With --perf, `perf record -a -g` of the whole machine instead (no --cpu-prof): every
 * thread of the mount, fio and the kernel's, kernel time included (perf-profile.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { attachLoop, fuseLoopUnavailable, mbps, num, runIfMain, withCleanup, type BenchOptions, type BenchResult, type Benchmark } from '../common.js';
import { runFio } from '../fio.js';
import { WORKLOADS, cycleSlots, fill, jobFor, settings, setUpTarget, type Settings, type Workload } from '../fuse-io.js';
import { monotonicUs, summarizeProfile } from './cpu-profile.js';
import { perfUnavailable, recordPerf, summarizePerf } from './perf-profile.js';

/** salvo alone: fill and cycle its slots, then the workload for a while under a profiler; where the time goes. */
async function profile(options: BenchOptions, s: Settings, w: Workload, perf: boolean): Promise<BenchResult> {
  const { log, workDir } = options;
  if (perf) {
    const unavailable = await perfUnavailable();
    if (unavailable) return { tables: [], skipped: unavailable };
  }
  const profileDir = path.join(workDir, 'profile');
  fs.mkdirSync(profileDir);
  const seconds = Math.max(5, s.runtimeSeconds * 4);
  // perf records the whole machine for all but the job's first and last half second.
  const perfSeconds = seconds - 1;
  const perfFile = path.join(profileDir, 'perf.data');
  let pid = 0;
  let window = { startUs: 0, endUs: 0 };
  const result = await withCleanup(log, async (cleanup) => {
    const t = await setUpTarget(cleanup, 'salvo', workDir, s, { nodeArgs: perf ? undefined : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] });
    pid = t.salvo!.pid;
    await fill([t], (x) => x.device, s.sizeBytes, log, 'profile');
    await cycleSlots([t], s, log);
    const device = s.dio ? (await attachLoop(cleanup, t.file, { directIo: true })).device : t.device;
    const startUs = monotonicUs();
    const job = runFio(jobFor(w, s.sizeBytes, seconds), device);
    const recorded = perf ? new Promise((r) => setTimeout(r, 500)).then(() => recordPerf(perfFile, perfSeconds)) : null;
    const r = await job;
    await recorded;
    window = { startUs, endUs: monotonicUs() };
    log(`profiled ${w.key}: ${w.unit === 'MB/s' ? `${mbps(r.bytesPerSecond)} MB/s` : `${num(r.iops)} IOPS`}`);
    return r;
  });
  const measured = `${w.label} on salvo's ${s.dio ? '--direct-io=on ' : ''}loop device${s.salvoCpu !== null ? `, mounted with --cpu ${s.salvoCpu}` : ''} (fill first, then ${seconds} s): ${w.unit === 'MB/s' ? `${mbps(result.bytesPerSecond)} MB/s` : `${num(result.iops)} IOPS`}`;
  if (perf) {
    return {
      tables: await summarizePerf(perfFile, pid, perfSeconds),
      notes: [`${measured}; perf recorded ${perfSeconds} s in the middle of the job.`, 'Shares are of all cores’ time; idle is time no thread wanted a core.'],
    };
  }
  const file = fs.readdirSync(profileDir).find((f) => f.includes(`.${pid}.`));
  if (!file) throw new Error(`no profile of the mount (pid ${pid}) in ${profileDir}`);
  return {
    tables: summarizeProfile(path.join(profileDir, file), 15, window),
    notes: [
      `${measured}; only samples taken while that job ran are counted.`,
      '(program) and (idle) are time outside JavaScript: in libfuse/fuse-native native code, syscalls made by native code, or waiting for requests.',
      'The profiler’s signals slow the mount and inflate its syscall time (`--perf` shows the whole machine without them).',
    ],
  };
}

export const bench: Benchmark = {
  name: 'profile',
  title: 'Where salvo’s time goes under one job',
  description: 'salvo alone, as fuse-io sets it up, profiled while one fio job runs on its loop device.',
  async run(options) {
    const unavailable = await fuseLoopUnavailable();
    if (unavailable) return { tables: [], skipped: unavailable };
    const args = [...options.args];
    const perf = args.includes('--perf');
    const dio = args.includes('--dio');
    const named = args.find((a) => WORKLOADS.some((w) => w.key === a));
    const w = WORKLOADS.find((x) => x.key === (named ?? 'randwrite'))!;
    const rest = args.filter((a) => a !== '--perf' && a !== named);
    const s = settings({ ...options, args: rest });
    if (!dio) s.dio = false;
    return profile(options, s, w, perf);
  },
};

runIfMain(import.meta.url, bench);
