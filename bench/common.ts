/**
 * What every benchmark shares: options, repeated measurements summarised as median and
 * min–max, ratios taken run by run, tables printed as Markdown, child processes, and a
 * cleanup stack that releases loop devices, mounts and children whatever happens (an error,
 * Ctrl-C, SIGTERM).
 *
 * A benchmark is a module exporting a `Benchmark`; run.ts runs them all, and each one runs
 * alone through `runIfMain(import.meta.url, bench)`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../lib/agent/control.js';
import { errnoCode } from '../lib/errors.js';
import { isMountpoint } from '../lib/fuse/mount-table.js';

export interface BenchOptions {
  /** Tiny inputs, one run: a smoke test that the benchmark still works. */
  quick: boolean;
  /** Repetitions of each measurement. */
  runs: number;
  /** Scratch directory of this run; removed afterwards. */
  workDir: string;
  /** Progress lines (stderr), so stdout carries only tables. */
  log: (message: string) => void;
  /** Benchmark-specific flags after the common ones (e.g. `--profile`). */
  args: string[];
}

export interface Table {
  title: string;
  columns: string[];
  rows: string[][];
  notes?: string[];
}

export interface BenchResult {
  tables: Table[];
  /** Lines said once, under the tables (what was measured and how). */
  notes?: string[];
  /** Why the benchmark did not run (no /dev/fuse, not root, fio missing). */
  skipped?: string;
}

export interface Benchmark {
  name: string;
  title: string;
  /** What is measured, one paragraph (goes to BENCHMARKS.md). */
  description: string;
  run(options: BenchOptions): Promise<BenchResult>;
}

export const DIST_DIR = path.dirname(fileURLToPath(import.meta.url));
/** The compiled CLI, `dist/bin/salvo.js`. */
export const SALVO_CLI = path.resolve(DIST_DIR, '../bin/salvo.js');
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

// --- statistics

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

/** The p-th percentile (0–100), nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Ratios a[i] / b[i] of measurements taken in the same round, summarised. */
export function ratios(a: readonly number[], b: readonly number[]): Summary {
  return summarize(a.map((v, i) => v / b[i]!));
}

// --- formatting

/** Three significant digits, with k/M suffixes for large counts. */
export function num(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${sig(value / 1e6)}M`;
  if (abs >= 1e4) return `${sig(value / 1e3)}k`;
  return sig(value);
}

function sig(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  if (abs === 0) return '0';
  return value.toPrecision(2);
}

/** `median (min–max)`, or just the value for a single run. */
export function cell(s: Summary, format: (v: number) => string = num, unit = ''): string {
  if (s.n === 0) return '–';
  const u = unit ? ` ${unit}` : '';
  if (s.n === 1 || s.min === s.max) return `${format(s.median)}${u}`;
  return `${format(s.median)}${u} (${format(s.min)}–${format(s.max)})`;
}

export function ratioCell(s: Summary): string {
  if (s.n === 0 || !Number.isFinite(s.median)) return '–';
  const f = (v: number) => (v >= 10 ? v.toFixed(0) : v.toFixed(2));
  return s.n === 1 || s.min === s.max ? `${f(s.median)}×` : `${f(s.median)}× (${f(s.min)}–${f(s.max)})`;
}

export function mbps(bytesPerSecond: number): string {
  return num(bytesPerSecond / 1e6);
}

export function ms(milliseconds: number): string {
  return num(milliseconds);
}

export function renderTable(table: Table): string {
  const widths = table.columns.map((c, i) => Math.max(c.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [`### ${table.title}`, '', line(table.columns), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...table.rows.map(line)];
  if (table.notes?.length) out.push('', ...table.notes.map((n) => `- ${n}`));
  return out.join('\n');
}

export function renderResult(bench: Benchmark, result: BenchResult): string {
  const out = [`## ${bench.title} (\`${bench.name}\`)`, ''];
  if (result.skipped) return [...out, `Skipped: ${result.skipped}`].join('\n');
  for (const table of result.tables) out.push(renderTable(table), '');
  if (result.notes?.length) out.push(...result.notes.map((n) => `- ${n}`));
  return out.join('\n').trimEnd();
}

// --- processes

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (async: the benchmark process may be serving nothing, but never blocks). */
export function exec(file: string, args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: options.timeoutMs ?? 600_000, maxBuffer: 64 * MiB, env: options.env ?? process.env, cwd: options.cwd }, (err, stdout, stderr) => {
      if (err) {
        const detail = (stderr || stdout || '').trim().split('\n').slice(-3).join(' / ');
        reject(new Error(`${file} ${args.join(' ')} failed: ${err.message.split('\n')[0]}${detail ? ` (${detail})` : ''}`));
      } else resolve({ stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs the compiled salvo CLI. */
export function salvo(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cli?: string } = {}): Promise<ExecResult> {
  return exec(process.execPath, [options.cli ?? SALVO_CLI, ...args], options);
}

export async function commandExists(name: string): Promise<boolean> {
  return exec('sh', ['-c', `command -v ${name}`]).then(
    () => true,
    () => false,
  );
}

/** Why FUSE and loop-device benchmarks cannot run here, or null when they can. */
export async function fuseLoopUnavailable(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'needs root (loop devices, mount)';
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse';
  if (!fs.existsSync('/dev/loop-control')) return 'no /dev/loop-control';
  if (!(await commandExists('fio'))) return 'fio is not installed (apt-get install fio)';
  return null;
}

/** Starts a child that prints `ready` on stdout once it serves; rejects if it exits first. */
export async function spawnReady(file: string, args: readonly string[], what: string, options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ChildProcess> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready within ${timeoutMs} ms: ${stderr.trim()}`)), timeoutMs);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? signal}) before it was ready: ${stderr.trim()}`));
    });
  });
  child.removeAllListeners('exit');
  return child;
}

/** Sends SIGTERM and waits (SIGKILL after `graceMs`). */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export function isMounted(mountpoint: string): boolean {
  return isMountpoint(path.resolve(mountpoint));
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, stepMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

export function sleep(milliseconds: number): Promise<void> {
  return new Promise((r) => setTimeout(r, milliseconds));
}

/** Waits until a mount's archiver has nothing queued and is at rest (asked on its control socket); returns the seconds it took. */
export async function archiveCatchUp(socket: string): Promise<number> {
  const started = Date.now();
  await waitFor(
    'the archive to catch up',
    async () => {
      const reply = await controlRequest<{ status: { archive: { pendingItems: number; busy: boolean } } }>(socket, { cmd: 'status' }, 10_000);
      // busy also covers the pages the archiver gives back after its queue empties (bench/memory reads RSS next).
      return reply.status.archive.pendingItems === 0 && !reply.status.archive.busy;
    },
    600_000,
    100,
  );
  return (Date.now() - started) / 1000;
}

/** Resident set size (and its peak) of a process, from /proc/<pid>/status, in bytes. */
export function residentBytes(pid: number | 'self'): { rss: number; hwm: number } {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

// --- cleanup

type CleanupFn = () => unknown;

/**
 * A stack of things to undo, run last-in first-out: register a loop device after the mount
 * it lives on, and it is detached before the mount goes. Each step runs even if one before
 * it failed. SIGINT/SIGTERM run the stack, then exit.
 */
export class Cleanup {
  private readonly steps: { what: string; fn: CleanupFn }[] = [];
  private running: Promise<void> | null = null;

  constructor(private readonly log: (message: string) => void = () => undefined) {}

  /** Registers `fn`; returns a function that runs it now (and removes it from the stack). */
  add(what: string, fn: CleanupFn): () => Promise<void> {
    const step = { what, fn };
    this.steps.push(step);
    return async () => {
      const i = this.steps.indexOf(step);
      if (i < 0) return;
      this.steps.splice(i, 1);
      await step.fn();
    };
  }

  async run(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length > 0) {
        const step = this.steps.pop()!;
        try {
          await step.fn();
        } catch (err) {
          this.log(`cleanup: ${step.what}: ${(err as Error).message}`);
        }
      }
    })();
    await this.running;
    this.running = null;
  }
}

let activeCleanups: Set<Cleanup> | null = null;

/** Runs `work` with a cleanup stack that is emptied afterwards, and on SIGINT/SIGTERM. */
export async function withCleanup<T>(log: (message: string) => void, work: (cleanup: Cleanup) => Promise<T>): Promise<T> {
  const cleanup = new Cleanup(log);
  if (!activeCleanups) {
    activeCleanups = new Set();
    const onSignal = (signal: NodeJS.Signals) => {
      process.stderr.write(`\n${signal}: cleaning up…\n`);
      // Newest stack first, one at a time: mounts go before the scratch directory they live in.
      void (async () => {
        for (const c of [...activeCleanups!].reverse()) await c.run();
      })().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  activeCleanups.add(cleanup);
  try {
    return await work(cleanup);
  } finally {
    await cleanup.run();
    activeCleanups.delete(cleanup);
  }
}

// --- loop devices and mounts (each registered for cleanup)

export interface LoopDevice {
  device: string;
  /** Detaches it now (and takes it off the cleanup stack, so a later cleanup never detaches a reused number). */
  detach(): Promise<void>;
}

export async function attachLoop(cleanup: Cleanup, file: string, options: { readOnly?: boolean; directIo?: boolean } = {}): Promise<LoopDevice> {
  const args = ['-f', '--show', ...(options.readOnly ? ['-r'] : []), ...(options.directIo ? ['--direct-io=on'] : []), file];
  const device = (await exec('losetup', args)).stdout.trim();
  const detach = cleanup.add(`losetup -d ${device}`, () => detachLoop(device));
  return { device, detach };
}

export async function detachLoop(device: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await exec('losetup', ['-d', device]);
      return;
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(100); // udev or a closing opener may still hold it for a moment
    }
  }
}

export async function makeExt4(device: string): Promise<void> {
  // Inode tables and the journal written now, not by a background thread during measurements.
  await exec('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', device]);
}

export async function mountFs(cleanup: Cleanup, device: string, mountpoint: string, options: string[] = []): Promise<void> {
  fs.mkdirSync(mountpoint, { recursive: true });
  await exec('mount', [...(options.length ? ['-o', options.join(',')] : []), device, mountpoint]);
  cleanup.add(`umount ${mountpoint}`, async () => {
    await exec('fsfreeze', ['--unfreeze', mountpoint]).catch(() => undefined); // in case a sync was interrupted
    await exec('umount', [mountpoint]).catch(() => exec('umount', ['-l', mountpoint]));
  });
}

// --- salvo volumes served by `salvo mount --daemon`

export interface SalvoMount {
  dir: string;
  archive: string;
  mountpoint: string;
  image: string;
  pid: number;
  socket: string;
  /** Unmounts (loop devices on it must be detached first). */
  unmount(): Promise<void>;
}

/** `salvo init` + `salvo mount --daemon`; the unmount (and a kill if it hangs) is registered for cleanup. */
export async function salvoMount(
  cleanup: Cleanup,
  base: string,
  /** `segments` absent: init's default working set. */
  init: { size: string; segmentSize: string; segments?: number; spare?: number },
  options: MountOptions = {},
): Promise<SalvoMount> {
  const dir = path.join(base, 'volume');
  const archive = path.join(base, 'archive');
  const mountpoint = path.join(base, 'mnt');
  fs.mkdirSync(mountpoint, { recursive: true });
  const spare = ['--spare', String(init.spare ?? 8)];
  const segments = init.segments !== undefined ? ['--segments', String(init.segments)] : [];
  await salvo(['init', dir, '--size', init.size, '--segment-size', init.segmentSize, ...segments, ...spare, '--archive', archive], { cli: options.cli });
  return mountExisting(cleanup, dir, mountpoint, archive, options);
}

export interface MountOptions {
  /**
   * Node flags for the mount process (e.g. --cpu-prof, which NODE_OPTIONS refuses): the
   * mount then runs as this process's child, in the foreground, instead of `--daemon`.
   */
  nodeArgs?: string[];
  /** The mount process's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** More options for `salvo mount` (e.g. --cpu 0). */
  mountArgs?: string[];
  /** Another build's `dist/bin/salvo.js`, to compare builds side by side (default: this one's). */
  cli?: string;
}

export async function mountExisting(cleanup: Cleanup, dir: string, mountpoint: string, archive: string, options: MountOptions = {}): Promise<SalvoMount> {
  try {
    fs.mkdirSync(mountpoint, { recursive: true });
  } catch (err) {
    // A dead FUSE mount that a killed salvo left behind: `salvo mount` takes it over.
    if (!['ENOTCONN', 'ECONNABORTED'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
  if (options.nodeArgs) {
    const child = spawn(process.execPath, [...options.nodeArgs, options.cli ?? SALVO_CLI, 'mount', dir, mountpoint, ...(options.mountArgs ?? [])], { stdio: ['ignore', 'ignore', 'inherit'], env: options.env ?? process.env });
    let exited = false;
    child.once('exit', () => (exited = true));
    const ready = () => fs.promises.access(path.join(mountpoint, '.salvo.json')).then(() => true, () => false);
    await waitFor('the mount', async () => {
      if (exited) throw new Error('salvo mount exited before it was ready');
      return ready();
    });
  } else {
    await salvo(['mount', dir, mountpoint, '--daemon', ...(options.mountArgs ?? [])], { env: options.env, cli: options.cli });
  }
  const control = JSON.parse(await fs.promises.readFile(path.join(mountpoint, '.salvo.json'), 'utf8')) as { pid: number; socket: string };
  const unmount = async () => {
    if (!isMounted(mountpoint)) return;
    try {
      await salvo(['unmount', mountpoint], { timeoutMs: 120_000, cli: options.cli });
    } catch (err) {
      // A mount that cannot unmount cleanly is stopped and detached, so the next run finds nothing busy.
      try {
        process.kill(control.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await waitFor('the mount to exit', () => !isProcessAlive(control.pid), 10_000).catch(() => undefined);
      if (isMounted(mountpoint)) await exec('umount', ['-l', mountpoint]).catch(() => undefined);
      throw err;
    }
    await waitFor('the mount process to exit', () => !isProcessAlive(control.pid), 30_000).catch(() => undefined);
  };
  const run = cleanup.add(`salvo unmount ${mountpoint}`, unmount);
  return { dir, archive, mountpoint, image: path.join(mountpoint, 'live/volume.img'), pid: control.pid, socket: control.socket, unmount: run };
}

// --- machine and entry points

export async function machineInfo(): Promise<Record<string, string>> {
  const fio = await exec('fio', ['--version']).then((r) => r.stdout.trim(), () => 'not installed');
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  return {
    date: new Date().toISOString(),
    nproc: String(os.availableParallelism()),
    cpu,
    memory: `${(os.totalmem() / GiB).toFixed(1)} GiB`,
    kernel: os.release(),
    node: process.version,
    fio,
  };
}

export function parseCommonArgs(argv: readonly string[]): { quick: boolean; runs: number | null; rest: string[] } {
  let quick = false;
  let runs: number | null = null;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--runs') runs = Number(argv[++i]);
    else rest.push(a);
  }
  if (runs !== null && !(Number.isInteger(runs) && runs > 0)) throw new Error('--runs takes a whole number > 0');
  return { quick, runs, rest };
}

export function makeWorkDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `salvo-bench-${name}-`));
}

/** Runs one benchmark with its own scratch directory; removes it afterwards. */
export async function runBenchmark(bench: Benchmark, options: { quick: boolean; runs: number | null; args: string[] }): Promise<BenchResult> {
  const workDir = makeWorkDir(bench.name);
  const log = (message: string) => process.stderr.write(`[${bench.name}] ${message}\n`);
  return withCleanup(log, async (cleanup) => {
    cleanup.add(`rm -r ${workDir}`, () => fs.promises.rm(workDir, { recursive: true, force: true }));
    return bench.run({ quick: options.quick, runs: options.runs ?? (options.quick ? 1 : 3), workDir, log, args: options.args });
  });
}

/** `node dist/bench/<name>.js [--quick] [--runs N]`: runs the benchmark when its module is the program, or its `child` when given the child's flag. */
export function runIfMain(moduleUrl: string, bench: Benchmark, child?: { flag: string; run: (args: string[]) => Promise<unknown> }): void {
  const at = child ? process.argv.indexOf(child.flag) : -1;
  if (child && at >= 0) {
    // A benchmark's own child process (a fresh heap): its report as JSON on stdout.
    child.run(process.argv.slice(at + 1)).then(
      (report) => {
        process.stdout.write(JSON.stringify(report));
        process.exit(0);
      },
      (err) => {
        process.stderr.write(`${(err as Error).stack}\n`);
        process.exit(1);
      },
    );
    return;
  }
  const main = process.argv[1];
  if (!main || path.resolve(main) !== fileURLToPath(moduleUrl)) return;
  const { quick, runs, rest } = parseCommonArgs(process.argv.slice(2));
  runBenchmark(bench, { quick, runs, args: rest }).then(
    (result) => {
      process.stdout.write(renderResult(bench, result) + '\n');
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`${bench.name}: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}

/** Whether process `pid` runs (another user's counts). A killed mount may linger as a zombie until its parent reaps it: that does not count as alive. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
