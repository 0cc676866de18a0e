/**
 * Where the machine's CPU time goes while a job runs, from `perf record -a -g`: every thread
 * of every process, kernel time included. Used by `fuse-io --profile <job> --perf`.
 *
 * The mount's own `--cpu-prof` (cpu-profile.ts) sees only JavaScript on the main thread, and
 * its sampling signals inflate syscall time there (a 128 KiB slot write showed up ~5× longer
 * under it than under perf, and throughput fell by a third). perf sees the compression
 * workers, the libuv thread pool, the FUSE thread and the kernel threads beside them: on a
 * two-core machine what limits the one request in flight is often another thread's CPU.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { exec, num, type Table } from '../common.js';

/** Records the whole machine with `perf record` for `seconds`; resolves when `file` is written. */
export function recordPerf(file: string, seconds: number): Promise<void> {
  const child = spawn('perf', ['record', '-a', '-g', '-o', file, '--', 'sleep', String(seconds)], { stdio: 'ignore' });
  return new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`perf record exited with ${code}`))));
  });
}

/** perf is there and may sample the whole machine (root, or a permissive perf_event_paranoid). */
export async function perfUnavailable(): Promise<string | null> {
  try {
    await exec('perf', ['record', '-a', '-o', '/dev/null', '--', 'true']);
    return null;
  } catch (err) {
    return `perf cannot sample the machine here (${(err as Error).message.split('\n')[0]}); apt-get install linux-perf, run as root`;
  }
}

interface Sample {
  pid: number;
  tid: number;
  comm: string;
  /** Leaf first. */
  frames: string[];
}

function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  let current: Sample | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current) samples.push(current);
      current = null;
    } else if (!line.startsWith('\t')) {
      // "comm  pid/tid" (comm may hold spaces)
      const m = /^\s*(.*?)\s+(\d+)\/(\d+)\s*$/.exec(line);
      current = m ? { comm: m[1]!, pid: Number(m[2]), tid: Number(m[3]), frames: [] } : null;
    } else if (current) {
      const sym = line.trim().split(/\s+/).slice(1).join(' ');
      current.frames.push(sym || '[unknown]');
    }
  }
  if (current) samples.push(current);
  return samples;
}

/** What a thread is, from its process and its stack. */
function classify(s: Sample, mountPid: number): string {
  if (s.pid === 0) return 'idle';
  if (s.pid !== mountPid) {
    if (s.comm.startsWith('kworker') || s.comm.startsWith('ksoftirqd') || s.comm.startsWith('jbd2') || s.comm.startsWith('loop')) return 'kernel threads (writeback, loop, journal)';
    return s.comm === 'fio' ? 'fio' : 'other processes';
  }
  if (s.tid === mountPid) return 'mount: main thread (JavaScript, slot I/O, FUSE replies)';
  const has = (part: string) => s.frames.some((f) => f.includes(part));
  if (has('node::worker::Worker')) return 'mount: compression workers (nice 10)';
  if (has('fuse_')) return 'mount: FUSE thread (libfuse, fuse-native)';
  if (s.frames[s.frames.length - 2] === 'worker' || has('uv__fs_work') || has('uv__work')) return 'mount: libuv thread pool (async fs: archive, slot reads, fdatasync)';
  return 'mount: other threads (V8 GC, profiler)';
}

/** The syscall a kernel stack is in, if any. */
function syscall(frames: string[]): string | null {
  for (const f of frames) {
    const m = /^__(?:x64|se)_sys_(\w+)/.exec(f) ?? /^do_(pwritev|writev|preadv|readv)\b/.exec(f);
    if (m) return m[1]!;
  }
  return null;
}

/** Tables of a `perf record` file: see summarizeSamples. */
export async function summarizePerf(file: string, mountPid: number, seconds: number): Promise<Table[]> {
  // To a file: a few seconds of call graphs of a whole machine are tens of MB of text.
  await exec('sh', ['-c', 'perf script -i "$0" -F comm,pid,tid,ip,sym > "$0.txt"', file]);
  return summarizeSamples(fs.readFileSync(`${file}.txt`, 'utf8'), mountPid, seconds, availableParallelism());
}

/**
 * Tables from `perf script -F comm,pid,tid,ip,sym` text: CPU by kind of thread, and for each
 * busy kind its top functions (self time) and system calls.
 */
export function summarizeSamples(text: string, mountPid: number, seconds: number, cores: number, top = 8): Table[] {
  const samples = parse(text);
  if (samples.length === 0) throw new Error('perf recorded no samples');
  // perf samples every core at a fixed rate, idle ones too (as pid 0): a share of the samples is a share of all cores.
  const cpuSeconds = (n: number) => num((n / samples.length) * seconds * cores);
  const byClass = new Map<string, Sample[]>();
  for (const s of samples) {
    const c = classify(s, mountPid);
    byClass.set(c, [...(byClass.get(c) ?? []), s]);
  }
  const classes = [...byClass.entries()].sort((a, b) => b[1].length - a[1].length);
  const share = (n: number) => `${((100 * n) / samples.length).toFixed(1)}%`;
  const tables: Table[] = [
    {
      title: `CPU time of the whole machine while the job ran (perf record -a -g, ${seconds} s, all cores = 100%)`,
      columns: ['thread', 'share', 'CPU-seconds'],
      rows: classes.map(([c, list]) => [c, share(list.length), cpuSeconds(list.length)]),
    },
  ];
  for (const [c, list] of classes) {
    if (c === 'idle' || list.length < samples.length / 50) continue;
    const leaves = new Map<string, number>();
    const calls = new Map<string, number>();
    for (const s of list) {
      leaves.set(s.frames[0] ?? '[unknown]', (leaves.get(s.frames[0] ?? '[unknown]') ?? 0) + 1);
      const call = syscall(s.frames) ?? '(not in a system call)';
      calls.set(call, (calls.get(call) ?? 0) + 1);
    }
    const rows = (m: Map<string, number>) =>
      [...m.entries()]
        .filter(([, n]) => n >= samples.length / 1000)
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([k, n]) => [k.slice(0, 70), share(n)]);
    tables.push({ title: `${c}: where its time goes (share of the whole machine)`, columns: ['self: function', 'share'], rows: rows(leaves) });
    tables.push({ title: `${c}: by system call`, columns: ['in', 'share'], rows: rows(calls) });
  }
  return tables;
}
