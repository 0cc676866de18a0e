/**
 * fio through loop devices (direct=1, libaio) on five files of the same size, side by side:
 *
 *   plain   a sparse file on the local disk (the kernel alone: no FUSE)
 *   pass    bench/passthrough-fs.ts: a minimal fuse-native pass-through to a local file, with
 *           synchronous calls (the fastest a Node pass-through can be here)
 *   pool    the same pass-through with async fs calls through libuv's thread pool (how a Node
 *           FUSE server is usually written: a thread-pool round trip per request)
 *   memory  bench/memory-fs.ts: an in-memory fuse-native file (the crossing cost alone)
 *   salvo   <mnt>/live/volume.img of `salvo mount --daemon`
 *
 * Each file gets a loop device and is filled once with sequential 1 MiB writes, so reads
 * read data, not holes; salvo's is then written over until every segment slot has held a
 * segment once (a volume in use reuses its slots in place; a fresh one's first pass through
 * them is the first-fill row). Then rounds of jobs (seq write 1M with end_fsync, seq read 1M,
 * rand write 4k, rand read 4k; iodepth 16, time-based, counted after 1.5 s of warm-up) run on each target in turn, so every
 * ratio compares measurements of the same round. Three phases: the loop devices as
 * `losetup -f --show` makes them (buffered: reads come from the FUSE file's page cache);
 * second loop devices with --direct-io=on on the FUSE files (every request reaches the
 * server); ext4 made on the first devices. After each write job on salvo the
 * benchmark waits until its archive has caught up (the time is reported), so archiving
 * never runs during another target's measurement. Then the same on ext4 made on each device
 * (fio on a file of half the size).
 *
 *   node dist/bench/fuse-io.js [--quick] [--runs N] [--size 1G] [--runtime 1] [--ramp 1.5] [--no-dio] [--no-ext4]
 *                              [--targets plain,pass,pool,memory,salvo] [--workloads seqwrite,seqread,randwrite,randread]
 *                              [--cpu N] [--segments N (salvo's working set; default: init's)]
 *   node dist/bench/fuse-io.js --cpu N [...]
 *       salvo mounted with `--cpu N`: its event loop and libfuse threads kept on CPU N, so the
 *       two hand-offs of each request (libfuse thread → event loop → libfuse thread) never wake
 *       another CPU. On the VM the notes describe, such a wake-up is what a request waits on.
 *
 * Where salvo's time goes under one job: bench/experiments/profile.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { controlRequest } from '../lib/agent/control.js';
import { parseSize } from '../lib/cli/units.js';
import {
  Cleanup,
  DIST_DIR,
  GiB,
  MiB,
  archiveCatchUp,
  attachLoop,
  cell,
  exec,
  fuseLoopUnavailable,
  isMounted,
  makeExt4,
  mbps,
  mountFs,
  num,
  ratioCell,
  ratios,
  runIfMain,
  salvoMount,
  spawnReady,
  stopChild,
  summarize,
  withCleanup,
  type BenchOptions,
  type BenchResult,
  type Benchmark,
  type SalvoMount,
  type Table,
} from './common.js';
import { fioArgs, runFio, type FioJob, type FioResult } from './fio.js';

export type TargetKey = 'plain' | 'pass' | 'pool' | 'memory' | 'salvo';

export interface Target {
  key: TargetKey;
  label: string;
  /** The file the loop devices are on. */
  file: string;
  /** The loop device on it (buffered, as `losetup -f --show` makes it). */
  device: string;
  /** A second loop device with --direct-io=on, during that phase. */
  dioDevice?: string;
  salvo?: SalvoMount;
  /** The FUSE server's process (none for the plain file). */
  pid?: number;
}

export interface Workload {
  key: 'seqwrite' | 'seqread' | 'randwrite' | 'randread';
  label: string;
  rw: FioJob['rw'];
  blockSize: string;
  /** Report MB/s (sequential) or IOPS (random). */
  unit: 'MB/s' | 'IOPS';
}

export const WORKLOADS: Workload[] = [
  { key: 'seqwrite', label: 'seq write 1M (end_fsync)', rw: 'write', blockSize: '1M', unit: 'MB/s' },
  { key: 'seqread', label: 'seq read 1M', rw: 'read', blockSize: '1M', unit: 'MB/s' },
  { key: 'randwrite', label: 'rand write 4k', rw: 'randwrite', blockSize: '4k', unit: 'IOPS' },
  { key: 'randread', label: 'rand read 4k', rw: 'randread', blockSize: '4k', unit: 'IOPS' },
];
const IODEPTH = 16;

const LABELS: Record<TargetKey, string> = {
  plain: 'plain file',
  pass: 'pass-through FUSE',
  pool: 'pass-through FUSE, thread pool',
  memory: 'in-memory FUSE',
  salvo: 'salvo live',
};

export interface Settings {
  sizeBytes: number;
  runtimeSeconds: number;
  /**
   * Each job first runs this long uncounted: every FUSE target here is faster in a job's first
   * second or so after a pause, and faster by more for the shorter request paths (BENCHMARKS.md,
   * the fuse-io notes), so the counted part is the speed that lasts.
   */
  rampSeconds: number;
  /** Also run the FUSE targets through --direct-io=on loop devices. */
  dio: boolean;
  ext4: boolean;
  workloads: Workload['key'][];
  /** Through the buffered loop device, where reads come from the page cache: fewer jobs. */
  bufferedWorkloads: Workload['key'][];
  targets: TargetKey[];
  segmentSize: string;
  /** salvo's working set (null: what `salvo init` chooses, as a user who does not say gets). */
  segments: number | null;
  /** salvo's `--cpu` (null: none). */
  salvoCpu: number | null;
}

export function settings(options: BenchOptions): Settings {
  const s: Settings = options.quick
    ? { sizeBytes: 32 * MiB, runtimeSeconds: 0.2, rampSeconds: 0, dio: false, ext4: false, workloads: ['randwrite'], bufferedWorkloads: ['randwrite'], targets: ['memory', 'salvo'], segmentSize: '2M', segments: 40, salvoCpu: null }
    : { sizeBytes: 1 * GiB, runtimeSeconds: 1, rampSeconds: 1.5, dio: true, ext4: true, workloads: WORKLOADS.map((w) => w.key), bufferedWorkloads: ['seqwrite', 'randwrite', 'randread'], targets: ['plain', 'pass', 'pool', 'memory', 'salvo'], segmentSize: '64M', segments: null, salvoCpu: null };
  const a = options.args;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--size') s.sizeBytes = parseSize(a[++i]!, '--size');
    else if (a[i] === '--runtime') s.runtimeSeconds = Number(a[++i]);
    else if (a[i] === '--ramp') s.rampSeconds = Number(a[++i]);
    else if (a[i] === '--no-ext4') s.ext4 = false;
    else if (a[i] === '--no-dio') s.dio = false;
    else if (a[i] === '--dio') s.dio = true;
    else if (a[i] === '--workloads') s.workloads = s.bufferedWorkloads = a[++i]!.split(',') as Workload['key'][];
    else if (a[i] === '--targets') s.targets = a[++i]!.split(',') as TargetKey[];
    else if (a[i] === '--cpu') s.salvoCpu = Number(a[++i]);
    else if (a[i] === '--segments') s.segments = Number(a[++i]);
    else throw new Error(`fuse-io: unknown option ${a[i]}`);
  }
  if (s.salvoCpu !== null && !(Number.isInteger(s.salvoCpu) && s.salvoCpu >= 0)) throw new Error('--cpu takes a CPU number');
  if (s.segments !== null && !(Number.isInteger(s.segments) && s.segments > 0)) throw new Error('--segments takes a whole number');
  return s;
}

// --- targets

async function makeFile(file: string, sizeBytes: number): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const handle = await fs.promises.open(file, 'w');
  await handle.truncate(sizeBytes);
  await handle.close();
}

/** Starts a bench FUSE server; resolves with its pid once it has mounted. */
async function startChildMount(cleanup: Cleanup, script: string, args: string[], mountpoint: string, what: string): Promise<number> {
  fs.mkdirSync(mountpoint, { recursive: true });
  const child = await spawnReady(process.execPath, [path.join(DIST_DIR, script), ...args], what);
  cleanup.add(`stop ${what}`, async () => {
    await stopChild(child);
    if (isMounted(mountpoint)) await exec('umount', ['-l', mountpoint]);
  });
  return child.pid!;
}

/** `nodeArgs` go to salvo's mount process (a profiler's, say). */
export async function setUpTarget(cleanup: Cleanup, key: TargetKey, base: string, s: Settings, options: { nodeArgs?: string[] } = {}): Promise<Target> {
  const { nodeArgs } = options;
  const dir = path.join(base, key);
  fs.mkdirSync(dir, { recursive: true });
  switch (key) {
    case 'plain': {
      const file = path.join(dir, 'volume.img');
      await makeFile(file, s.sizeBytes);
      return { key, label: LABELS[key], file, device: (await attachLoop(cleanup, file)).device };
    }
    case 'pass':
    case 'pool': {
      const backing = path.join(dir, 'backing.img');
      await makeFile(backing, s.sizeBytes);
      const mnt = path.join(dir, 'mnt');
      const pid = await startChildMount(cleanup, 'passthrough-fs.js', [...(key === 'pool' ? ['--threadpool'] : []), backing, mnt], mnt, LABELS[key]);
      const file = path.join(mnt, 'volume.img');
      return { key, label: LABELS[key], file, device: (await attachLoop(cleanup, file)).device, pid };
    }
    case 'memory': {
      const mnt = path.join(dir, 'mnt');
      const pid = await startChildMount(cleanup, 'memory-fs.js', [mnt, String(s.sizeBytes)], mnt, LABELS[key]);
      const file = path.join(mnt, 'volume.img');
      return { key, label: LABELS[key], file, device: (await attachLoop(cleanup, file)).device, pid };
    }
    case 'salvo': {
      const mountArgs = s.salvoCpu !== null ? ['--cpu', String(s.salvoCpu)] : [];
      const mount = await salvoMount(cleanup, dir, { size: String(s.sizeBytes), segmentSize: s.segmentSize, segments: s.segments ?? undefined }, { nodeArgs, mountArgs });
      return { key, label: LABELS[key], file: mount.image, device: (await attachLoop(cleanup, mount.image)).device, salvo: mount, pid: mount.pid };
    }
  }
}

/** Bytes salvo has copied forward since it mounted (0 for the other targets). */
async function copiedForward(target: Target): Promise<number> {
  if (!target.salvo) return 0;
  return (await controlRequest<{ status: { bytesCopiedForward: number } }>(target.salvo.socket, { cmd: 'status' }, 10_000)).status.bytesCopiedForward;
}

/** Waits until the mount's archiver has nothing queued; returns the seconds it took (0 for the other targets). */
function archiveCaughtUp(target: Target): Promise<number> {
  return target.salvo ? archiveCatchUp(target.salvo.socket) : Promise.resolve(0);
}

// --- measurements

type Samples = Record<TargetKey, Record<Workload['key'], FioResult[]>>;

function emptySamples(keys: TargetKey[]): Samples {
  return Object.fromEntries(keys.map((k) => [k, { seqwrite: [], seqread: [], randwrite: [], randread: [] }])) as unknown as Samples;
}

/** How long a job runs, for table titles. */
function jobTime(s: Settings): string {
  return s.rampSeconds > 0 ? `${s.rampSeconds} s uncounted then ${s.runtimeSeconds} s per job` : `${s.runtimeSeconds} s per job`;
}

export function jobFor(w: Workload, sizeBytes: number, runtimeSeconds: number, options: Partial<FioJob> = {}): FioJob {
  return {
    name: `salvo-bench-${w.key}`,
    rw: w.rw,
    blockSize: w.blockSize,
    iodepth: IODEPTH,
    sizeBytes,
    runtimeSeconds,
    endFsync: w.key === 'seqwrite',
    ...options,
  };
}

/** Rounds of every workload on every target; returns samples and salvo's archive catch-up times. */
async function rounds(
  targets: Target[],
  filenameOf: (t: Target) => string,
  sizeBytes: number,
  s: Settings,
  runs: number,
  log: (m: string) => void,
  what: string,
  workloads: Workload['key'][] = s.workloads,
): Promise<{ samples: Samples; catchUp: number[]; seqWrites: SalvoJob[] }> {
  const samples = emptySamples(targets.map((t) => t.key));
  const catchUp: number[] = [];
  const seqWrites: SalvoJob[] = [];
  for (let run = 0; run < runs; run++) {
    for (const w of WORKLOADS.filter((x) => workloads.includes(x.key))) {
      for (const t of targets) {
        const copiedBefore = await copiedForward(t);
        const settled = await settle();
        if (settled > 0.1) log(`${what}: sync before ${w.key} on ${t.key} took ${settled.toFixed(2)} s`);
        const result = await runFio(jobFor(w, sizeBytes, s.runtimeSeconds, { rampSeconds: s.rampSeconds }), filenameOf(t));
        samples[t.key][w.key].push(result);
        // salvo's copy-forward during the job (retirements it had to make): a job that copies runs slower.
        const copiedBytes = t.salvo ? (await copiedForward(t)) - copiedBefore : 0;
        if (t.salvo && w.key === 'seqwrite') seqWrites.push({ bytesPerSecond: result.bytesPerSecond, copiedBytes });
        const copied = t.salvo ? `, copied forward ${num(copiedBytes / MiB)} MiB` : '';
        log(`${what} run ${run + 1}/${runs} ${w.key} ${t.key}: ${w.unit === 'MB/s' ? `${mbps(result.bytesPerSecond)} MB/s` : `${num(result.iops)} IOPS`}${copied}`);
        if (t.salvo && w.rw.includes('write')) catchUp.push(await archiveCaughtUp(t));
      }
    }
  }
  return { samples, catchUp, seqWrites };
}

/**
 * Writes back what the jobs before left dirty, machine-wide, and returns how long it took (s),
 * so that no job shares the disk with the writeback of another (salvo's archive and fdatasyncs
 * use the same disk). Measured here: at most 0.3 s, after the plain file's jobs.
 */
async function settle(): Promise<number> {
  const start = performance.now();
  await exec('sync', []);
  return (performance.now() - start) / 1000;
}

/** One of salvo's sequential write jobs: its rate, and the live data its retirements copied forward meanwhile. */
interface SalvoJob {
  bytesPerSecond: number;
  copiedBytes: number;
}

/**
 * Sequential write jobs split by copy-forward: a job that overwrites only part of the volume
 * leaves the rest live in older segments, and when those retire it is written to the log (and
 * the archive) again, on the same disk.
 */
function copyForwardNote(jobs: SalvoJob[]): string[] {
  const copying = jobs.filter((j) => j.copiedBytes > 0);
  if (copying.length === 0) return [];
  const rate = (js: SalvoJob[]) => cell(summarize(js.map((j) => j.bytesPerSecond / 1e6)));
  const others = copying.length < jobs.length ? `; the others ${rate(jobs.filter((j) => j.copiedBytes === 0))} MB/s` : '';
  return [
    `salvo's seq write jobs during which retirements copied live blocks forward (blocks the jobs do not overwrite, written to the log again): ${copying.length} of ${jobs.length}, ${cell(summarize(copying.map((j) => j.copiedBytes / MiB)), num, 'MiB')} each, ${rate(copying)} MB/s${others}`,
  ];
}

/**
 * Sequential passes over salvo's device until its log has gone round every slot once: from
 * then on each segment reuses a slot's blocks and cached pages, as in a volume in use (the
 * first pass through fresh, sparse slots is what the first-fill row shows).
 */
export async function cycleSlots(targets: Target[], s: Settings, log: (m: string) => void): Promise<void> {
  const t = targets.find((x) => x.key === 'salvo');
  if (!t) return;
  const { status } = await controlRequest<{ status: { workingSetSegments: number; segmentSizeBytes: number } }>(t.salvo!.socket, { cmd: 'status' }, 10_000);
  const slotBytes = status.workingSetSegments * status.segmentSizeBytes;
  for (let written = s.sizeBytes; written < slotBytes; written += s.sizeBytes) {
    const r = await runFio(jobFor(WORKLOADS[0]!, s.sizeBytes, 0, { runtimeSeconds: undefined, fallocateNone: true }), t.device);
    log(`cycling salvo's slots: ${mbps(r.bytesPerSecond)} MB/s`);
    await archiveCaughtUp(t);
  }
}

/** Sequential 1 MiB writes over the whole file once: reads then read data, not holes. */
export async function fill(targets: Target[], filenameOf: (t: Target) => string, sizeBytes: number, log: (m: string) => void, what: string): Promise<Map<TargetKey, FioResult>> {
  const out = new Map<TargetKey, FioResult>();
  for (const t of targets) {
    const r = await runFio(jobFor(WORKLOADS[0]!, sizeBytes, 0, { runtimeSeconds: undefined, fallocateNone: true }), filenameOf(t));
    out.set(t.key, r);
    log(`${what} fill ${t.key}: ${mbps(r.bytesPerSecond)} MB/s`);
    await archiveCaughtUp(t);
  }
  return out;
}

function value(w: Workload, r: FioResult): number {
  return w.unit === 'MB/s' ? r.bytesPerSecond / 1e6 : r.iops;
}

function resultTable(title: string, targets: Target[], samples: Samples, fills: Map<TargetKey, FioResult>, notes: string[]): Table {
  const refs: TargetKey[] = ['pass', 'pool', 'memory', 'plain'];
  const columns = ['workload', ...targets.map((t) => t.label), ...refs.filter((r) => targets.some((t) => t.key === r)).map((r) => `salvo/${r}`)];
  const rows: string[][] = [];
  if (fills.size > 0) {
    const fillRow = ['first fill, seq write 1M (MB/s)', ...targets.map((t) => (fills.has(t.key) ? mbps(fills.get(t.key)!.bytesPerSecond) : '–'))];
    const salvoFill = fills.get('salvo');
    for (const r of refs) {
      if (!targets.some((t) => t.key === r)) continue;
      const ref = fills.get(r);
      fillRow.push(salvoFill && ref ? `${(salvoFill.bytesPerSecond / ref.bytesPerSecond).toFixed(2)}×` : '–');
    }
    rows.push(fillRow);
  }
  for (const w of WORKLOADS) {
    if (samples[targets[0]!.key][w.key].length === 0) continue;
    const row = [`${w.label} (${w.unit})`];
    for (const t of targets) row.push(cell(summarize(samples[t.key][w.key].map((r) => value(w, r)))));
    const salvo = samples.salvo?.[w.key].map((r) => value(w, r));
    for (const ref of refs) {
      if (!targets.some((t) => t.key === ref)) continue;
      row.push(salvo ? ratioCell(ratios(salvo, samples[ref][w.key].map((r) => value(w, r)))) : '–');
    }
    rows.push(row);
  }
  return { title, columns, rows, notes };
}

function latencyTable(title: string, targets: Target[], samples: Samples): Table {
  const rows: string[][] = [];
  for (const w of WORKLOADS.filter((x) => x.unit === 'IOPS' && samples[targets[0]!.key][x.key].length > 0)) {
    for (const [p, pick] of [['p50', (r: FioResult) => r.latencyP50Us], ['p99', (r: FioResult) => r.latencyP99Us]] as const) {
      rows.push([`${w.label} ${p} (µs)`, ...targets.map((t) => cell(summarize(samples[t.key][w.key].map(pick))))]);
    }
  }
  return { title, columns: ['completion latency, QD16', ...targets.map((t) => t.label)], rows };
}

async function measure(options: BenchOptions, s: Settings): Promise<BenchResult> {
  const { log, runs, workDir } = options;
  return withCleanup(log, async (cleanup) => {
    const targets: Target[] = [];
    for (const key of s.targets) targets.push(await setUpTarget(cleanup, key, workDir, s));
    log(`targets: ${targets.map((t) => `${t.key}=${t.device}`).join(' ')}`);
    const experiment = s.salvoCpu !== null ? ` — salvo mounted with --cpu ${s.salvoCpu}` : '';
    const tables: Table[] = [];
    const fills = await fill(targets, (t) => t.device, s.sizeBytes, log, 'raw');
    await cycleSlots(targets, s, log);
    const raw = await rounds(targets, (t) => t.device, s.sizeBytes, s, runs, log, 'raw', s.bufferedWorkloads);
    const catchUpNote = (c: number[]): string => `salvo's archive caught up ${cell(summarize(c), num, 's')} after each write job (not counted in the job's time; nothing else was measured meanwhile)`;
    tables.push(
      resultTable(`fio on a loop device (buffered, as \`losetup -f --show\` makes it), ${num(s.sizeBytes / MiB)} MiB, direct=1, libaio, iodepth ${IODEPTH}, ${jobTime(s)}${experiment}`, targets, raw.samples, fills, [
        catchUpNote(raw.catchUp),
        ...copyForwardNote(raw.seqWrites),
        'a buffered loop device reads its file through the page cache: how many reads reach a FUSE server depends on what the kernel kept of the file (it varies from run to run; this is what a user of the default `losetup` gets); the --direct-io=on table below measures the servers’ read paths.',
      ]),
    );
    tables.push(latencyTable(`fio completion latency on the loop device${experiment}`, targets, raw.samples));

    if (s.dio) {
      // The same with loop devices that open their file O_DIRECT: reads no longer come from the
      // FUSE file's page cache, so every request reaches the server (the plain file would measure the disk).
      const fuseTargets = targets.filter((t) => t.key !== 'plain');
      const dioLoops = [];
      for (const t of fuseTargets) {
        const loop = await attachLoop(cleanup, t.file, { directIo: true });
        t.dioDevice = loop.device;
        dioLoops.push(loop);
      }
      const dio = await rounds(fuseTargets, (t) => t.dioDevice!, s.sizeBytes, s, runs, log, 'dio');
      for (const loop of dioLoops) await loop.detach();
      tables.push(
        resultTable(`the same with \`losetup --direct-io=on\`: every request reaches the FUSE server${experiment}`, fuseTargets, dio.samples, new Map(), [catchUpNote(dio.catchUp), ...copyForwardNote(dio.seqWrites)]),
      );
      tables.push(latencyTable(`completion latency with --direct-io=on loop devices${experiment}`, fuseTargets, dio.samples));
    }

    if (s.ext4) {
      const fileBytes = Math.floor(s.sizeBytes / 4 / MiB) * MiB;
      for (const t of targets) {
        await makeExt4(t.device);
        await mountFs(cleanup, t.device, path.join(workDir, t.key, 'fs'));
      }
      const fileOf = (t: Target) => path.join(workDir, t.key, 'fs', 'fio.dat');
      const extFills = await fill(targets, fileOf, fileBytes, log, 'ext4');
      const ext = await rounds(targets, fileOf, fileBytes, s, runs, log, 'ext4');
      tables.push(
        resultTable(`fio on a ${num(fileBytes / MiB)} MiB file in ext4 on each loop device, direct=1, libaio, iodepth ${IODEPTH}, ${jobTime(s)}${experiment}`, targets, ext.samples, extFills, [
          catchUpNote(ext.catchUp),
          ...copyForwardNote(ext.seqWrites),
        ]),
      );
    }
    const notes: string[] = [];
    const salvo = targets.find((t) => t.key === 'salvo')?.salvo;
    if (salvo) {
      type Status = { status: { workingSetSegments: number; bytesWritten: number; bytesCopiedForward: number; writeStalls: { count: number; totalMs: number }; archive: { rawBytesArchived: number; storedBytesArchived: number } } };
      const st = (await controlRequest<Status>(salvo.socket, { cmd: 'status' })).status;
      notes.push(
        `salvo policy: --size ${num(s.sizeBytes / MiB)}M --segment-size ${s.segmentSize} --segments ${st.workingSetSegments}${s.segments === null ? ' (init’s default)' : ''}; archive a directory on the same disk. Over the whole run salvo took ${num(st.bytesWritten / MiB)} MiB of writes, copied forward ${num(st.bytesCopiedForward / MiB)} MiB, archived ${num(st.archive.rawBytesArchived / MiB)} MiB raw as ${num(st.archive.storedBytesArchived / MiB)} MiB. Writes waited for a free slot (every spare one full, its segment not yet archived) ${st.writeStalls.count} times, ${num(st.writeStalls.totalMs / 1000)} s in all.`,
      );
    }
    return {
      tables,
      notes: [
        ...notes,
        'cells: median (min–max) over the runs; ratios are taken run by run against the reference measured in the same round, then summarised.',
        `reproduce one cell: losetup -f --show <file>; fio ${fioArgs(jobFor(WORKLOADS[2]!, s.sizeBytes, s.runtimeSeconds, { rampSeconds: s.rampSeconds }), '/dev/loopN').join(' ')}`,
      ],
    };
  });
}

export const bench: Benchmark = {
  name: 'fuse-io',
  title: 'Live image I/O against the ceilings',
  description:
    'fio (direct=1, libaio, iodepth 16) through loop devices on five files of the same size: a plain file (kernel only), a minimal fuse-native pass-through to a local file twice (with synchronous calls, the fastest a Node pass-through can be here; and with async calls through libuv’s thread pool, as a Node FUSE server is usually written), an in-memory fuse-native file (all with 128 KiB requests and no per-request timer), and salvo’s live image; then the same through ext4 made on each device. Every job starts after a sync.',
  async run(options) {
    const unavailable = await fuseLoopUnavailable();
    if (unavailable) return { tables: [], skipped: unavailable };
    return measure(options, settings(options));
  },
};

runIfMain(import.meta.url, bench);
