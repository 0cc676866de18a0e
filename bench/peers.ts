/**
 * salvo against the tools a user would otherwise combine, end to end: one file history on an
 * ext4 volume (files added, changed and deleted, a synch point after each step) kept by
 *
 *   salvo      `salvo mount`, ext4 on a loop device on /live/volume.img, `salvo sync --freeze`
 *              at each point (the agent's library call, without the CLI's Node start-up), then
 *              waiting until the archive directory alone restores that point
 *   restic     ext4 on a loop device on a plain image file; at each point the filesystem is
 *   borg       frozen and `restic backup` / `borg create` back the image file up
 *   s3backer   ext4 on a loop device on s3backer's FUSE file on the same radosgw the S3 tests
 *              use: a block device on S3 with no history; at each point, a syncfs and waiting
 *              until its cache holds no dirty block
 *
 * Measured: archive size after the points, the work each point costs (wall time, the time the
 * application is frozen, the tool's CPU time), the write throughput the application sees, the
 * time to restore an old point to an image file, and the time to copy one file out of that old
 * point through FUSE (salvo's /snapshots image, `restic mount`, `borg mount`), checking that
 * the bytes copied and restored are the ones written.
 *
 * The history is deterministic (seeded): files of 4 KiB to 8 MiB (log-uniform) in 16
 * directories fill half the volume at point 1; each later point adds new files, rewrites,
 * patches in place or appends to existing ones, and deletes others, each about 2% of the volume.
 * File contents are unique (half AES-CTR keystream, nothing deduplicates by accident) and
 * compress about 2:1.
 *
 *   node dist/bench/peers.js [--quick] [--runs N] [--size 1G] [--points 20] [--tools salvo,restic,borg,s3backer]
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { controlRequest } from '../lib/agent/control.js';
import { takeSynchPoint } from '../lib/agent/sync.js';
import { parseSize } from '../lib/cli/units.js';
import type { VolumeStatus } from '../lib/volume/volume.js';
import { prng } from './history.js';
import { benchS3, benchS3Client } from './s3-server.js';
import {
  GiB,
  MiB,
  attachLoop,
  cell,
  commandExists,
  exec,
  fuseLoopUnavailable,
  isMounted,
  makeExt4,
  mbps,
  mountExisting,
  mountFs,
  num,
  runIfMain,
  salvo,
  stopChild,
  summarize,
  waitFor,
  withCleanup,
  type BenchOptions,
  type BenchResult,
  type Benchmark,
  type Cleanup,
  type Table,
} from './common.js';

const TOOLS = ['salvo', 'restic', 'borg', 's3backer'] as const;
type Tool = (typeof TOOLS)[number];

interface Settings {
  sizeBytes: number;
  points: number;
  tools: Tool[];
  /** `salvo init` policy flags: the defaults for the full run (what a user gets), small segments for the smoke run so it seals and archives some. */
  salvoPolicy: string[];
}

function settings(options: BenchOptions): Settings {
  const s: Settings = options.quick
    ? { sizeBytes: 64 * MiB, points: 2, tools: [...TOOLS], salvoPolicy: ['--segment-size', '4M', '--segments', '48'] }
    : { sizeBytes: GiB, points: 20, tools: [...TOOLS], salvoPolicy: [] };
  const a = options.args;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--size') s.sizeBytes = parseSize(a[++i] ?? '', '--size');
    else if (a[i] === '--points') s.points = Number(a[++i]);
    else if (a[i] === '--tools') s.tools = (a[++i] ?? '').split(',').filter(Boolean) as Tool[];
    else throw new Error(`peers: unknown option ${a[i]}`);
  }
  if (!(Number.isInteger(s.points) && s.points >= 2)) throw new Error('peers: --points takes a whole number ≥ 2');
  const unknown = s.tools.filter((t) => !TOOLS.includes(t));
  if (unknown.length > 0 || !s.tools.includes('salvo')) throw new Error(`peers: --tools takes salvo plus any of ${TOOLS.join(', ')}`);
  return s;
}

// --- the file history

const BLOCK = 4096;
const KEY = createHash('sha256').update('salvo peers bench').digest().subarray(0, 16);
const TEXT = Buffer.alloc(BLOCK / 2);
TEXT.fill('peers bench: a line of ordinary text, as in logs, configuration and documents.\n');

/** The bytes of write number `seed`: each 4 KiB is 2 KiB of keystream (unique) and 2 KiB of text, so zstd halves it and nothing dedups. */
function content(seed: number, length: number): Buffer {
  const blocks = Math.ceil(length / BLOCK);
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed, 0);
  const random = createCipheriv('aes-128-ctr', KEY, iv).update(Buffer.alloc((blocks * BLOCK) / 2));
  const out = Buffer.allocUnsafe(blocks * BLOCK);
  for (let b = 0; b < blocks; b++) {
    random.copy(out, b * BLOCK, (b * BLOCK) / 2, ((b + 1) * BLOCK) / 2);
    TEXT.copy(out, b * BLOCK + BLOCK / 2);
  }
  return out.subarray(0, length);
}

interface Extent {
  seed: number;
  offset: number;
  length: number;
}

type Op = { kind: 'write'; file: string; truncate: boolean; extent: Extent } | { kind: 'delete'; file: string };

interface Workload {
  points: Op[][];
  dirs: string[];
  /** Index of the old point that is restored and copied from. */
  old: number;
  /** A file of the old point that later points changed or deleted, with its bytes at the old point. */
  target: { file: string; bytes: Buffer };
  /** File bytes in the filesystem after the last point, and bytes written over the whole history. */
  liveBytes: number;
  writtenBytes: number;
}

function replay(extents: readonly Extent[], size: number): Buffer {
  const out = Buffer.alloc(size);
  for (const e of extents) content(e.seed, e.length).copy(out, e.offset);
  return out;
}

function workload(sizeBytes: number, points: number): Workload {
  const random = prng(7);
  const dirs = Array.from({ length: 16 }, (_, i) => `d${String(i).padStart(2, '0')}`);
  const files = new Map<string, { size: number; extents: Extent[] }>();
  const names: string[] = [];
  const maxFile = Math.min(8 * MiB, sizeBytes / 64);
  const fileSize = () => Math.round(Math.exp(Math.log(BLOCK) + random() * Math.log(maxFile / BLOCK)));
  let seed = 0;
  let serial = 0;
  let writtenBytes = 0;
  const old = Math.max(0, Math.floor(points / 4) - 1);
  let oldFiles = new Map<string, { size: number; extents: Extent[] }>();
  const plan: Op[][] = [];
  for (let p = 0; p < points; p++) {
    const ops: Op[] = [];
    const write = (file: string, truncate: boolean, offset: number, length: number) => {
      const extent = { seed: ++seed, offset, length };
      ops.push({ kind: 'write', file, truncate, extent });
      const f = files.get(file)!;
      f.extents = truncate ? [extent] : [...f.extents, extent];
      f.size = truncate ? length : Math.max(f.size, offset + length);
      writtenBytes += length;
      return length;
    };
    const add = (budget: number) => {
      for (let added = 0; added < budget; ) {
        const file = `${dirs[Math.floor(random() * dirs.length)]}/f${String(serial++).padStart(6, '0')}`;
        files.set(file, { size: 0, extents: [] });
        names.push(file);
        added += write(file, true, 0, fileSize());
      }
    };
    if (p === 0) add(sizeBytes / 2);
    else {
      const budget = sizeBytes / 50;
      add(budget);
      for (let changed = 0; changed < budget; ) {
        const file = names[Math.floor(random() * names.length)]!;
        const { size } = files.get(file)!;
        const how = random();
        if (how < 1 / 3) changed += write(file, true, 0, fileSize()); // rewritten whole
        else if (how < 2 / 3) {
          const length = Math.min(size, BLOCK + Math.floor(random() * Math.min(size, MiB)));
          changed += write(file, false, Math.floor(random() * (size - length + 1)), length); // patched in place
        } else changed += write(file, false, size, BLOCK + Math.floor(random() * 512 * 1024)); // appended to
      }
      for (let deleted = 0; deleted < budget && names.length > 1; ) {
        const file = names.splice(Math.floor(random() * names.length), 1)[0]!;
        deleted += files.get(file)!.size;
        files.delete(file);
        ops.push({ kind: 'delete', file });
      }
    }
    plan.push(ops);
    if (p === old) oldFiles = new Map([...files].map(([name, f]) => [name, { size: f.size, extents: [...f.extents] }]));
  }
  // The largest file of the old point whose bytes the newest state no longer has: reading the present instead of the past shows.
  const candidates = [...oldFiles].filter(([name, f]) => files.get(name)?.extents.at(-1) !== f.extents.at(-1));
  if (candidates.length === 0) throw new Error('peers: the history changed no file of the old point (too few points)');
  const [file, f] = candidates.reduce((a, b) => (b[1].size > a[1].size ? b : a));
  const liveBytes = [...files.values()].reduce((sum, x) => sum + x.size, 0);
  return { points: plan, dirs, old, target: { file, bytes: replay(f.extents, f.size) }, liveBytes, writtenBytes };
}

function label(point: number): string {
  return `p${point + 1}`;
}

/** Applies one point's operations to the filesystem at `fsDir` and syncs it (syncfs): bytes written and the time it took, contents made beforehand. */
async function applyPoint(fsDir: string, ops: readonly Op[]): Promise<{ bytes: number; seconds: number }> {
  const data = ops.map((op) => (op.kind === 'write' ? content(op.extent.seed, op.extent.length) : null));
  let bytes = 0;
  const started = process.hrtime.bigint();
  for (const [i, op] of ops.entries()) {
    const file = path.join(fsDir, op.file);
    if (op.kind === 'delete') {
      await fs.promises.unlink(file);
      continue;
    }
    const handle = await fs.promises.open(file, op.truncate ? 'w' : 'r+');
    try {
      const { bytesWritten } = await handle.write(data[i]!, 0, op.extent.length, op.extent.offset);
      if (bytesWritten !== op.extent.length) throw new Error(`short write to ${file}: ${bytesWritten} of ${op.extent.length} bytes`);
    } finally {
      await handle.close();
    }
    bytes += op.extent.length;
  }
  await exec('sync', ['-f', fsDir]);
  return { bytes, seconds: secondsSince(started) };
}

async function prepareFs(fsDir: string, w: Workload): Promise<void> {
  for (const d of w.dirs) await fs.promises.mkdir(path.join(fsDir, d));
}

// --- measuring

function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return secondsSince(started);
}

/** User + system CPU seconds of a running process, all its threads (USER_HZ is 100 on Linux). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs a command to completion: wall seconds and the CPU seconds of it and its children (the shell's `times`). */
async function timedChild(file: string, args: readonly string[], options: { env: NodeJS.ProcessEnv; cwd?: string }): Promise<{ seconds: number; cpu: number }> {
  const started = process.hrtime.bigint();
  const { stderr } = await exec('sh', ['-c', '"$@"; status=$?; times >&2; exit $status', 'sh', file, ...args], options);
  const seconds = secondsSince(started);
  const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s\s*$/.exec(stderr);
  if (!m) throw new Error(`no CPU times from ${file}: ${stderr.slice(-200)}`);
  return { seconds, cpu: Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) };
}

async function apparentBytes(target: string): Promise<number> {
  return Number((await exec('du', ['-sb', target])).stdout.split(/\s/)[0]);
}

/** Disk space really used (sparse files count what they hold). */
async function allocatedBytes(target: string): Promise<number> {
  return Number((await exec('du', ['-s', '--block-size=1', target])).stdout.split(/\s/)[0]);
}

/** Reads `file` out of an ext4 image without mounting it and checks it holds the old point's bytes. */
async function checkImage(image: string, w: Workload, what: string): Promise<void> {
  const out = `${image}.check`;
  await exec('debugfs', ['-R', `dump /${w.target.file} ${out}`, image]);
  const bytes = await fs.promises.readFile(out).catch(() => Buffer.alloc(0));
  await fs.promises.rm(out, { force: true });
  if (!bytes.equals(w.target.bytes)) throw new Error(`${what}: /${w.target.file} in the restored image is not what point ${label(w.old)} held`);
}

async function checkCopy(copy: string, w: Workload, what: string): Promise<void> {
  const bytes = await fs.promises.readFile(copy);
  await fs.promises.rm(copy);
  if (!bytes.equals(w.target.bytes)) throw new Error(`${what}: the copy of /${w.target.file} is not what point ${label(w.old)} held`);
}

/** Loop-attaches an old point's image read-only, mounts its ext4 (ro, noload: no journal replay) and copies the target file out. */
async function copyOut(cleanup: Cleanup, image: string, dir: string, w: Workload): Promise<string> {
  const loop = await attachLoop(cleanup, image, { readOnly: true });
  const past = path.join(dir, 'past');
  await mountFs(cleanup, loop.device, past, ['ro', 'noload']);
  const copy = path.join(dir, 'copy');
  await exec('cp', [path.join(past, w.target.file), copy]);
  return copy;
}

/** Starts a FUSE daemon in the foreground (its own process) and waits until `ready` exists under its mount; unmounting and stopping it is registered. */
async function fuseDaemon(cleanup: Cleanup, file: string, args: readonly string[], env: NodeJS.ProcessEnv, mountpoint: string, ready: string): Promise<number> {
  fs.mkdirSync(mountpoint, { recursive: true });
  const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let exited = false;
  child.once('exit', () => (exited = true));
  cleanup.add(`unmount ${mountpoint} (${file})`, async () => {
    if (isMounted(mountpoint)) await exec('umount', [mountpoint]).catch(() => exec('umount', ['-l', mountpoint]));
    // It flushes on unmount (s3backer writes its dirty blocks) and exits by itself; stopped if it does not.
    await waitFor(`${file} to exit`, () => exited, 60_000).catch(() => undefined);
    await stopChild(child);
  });
  await waitFor(
    `${file} to serve ${ready}`,
    async () => {
      if (exited) throw new Error(`${file} exited before it served ${mountpoint}: ${stderr.trim().split('\n').slice(-3).join(' / ')}`);
      return fs.promises.access(ready).then(
        () => true,
        () => false,
      );
    },
    120_000,
    20,
  );
  return child.pid!;
}

// --- results

interface PointCosts {
  /** Archive bytes after each point. */
  sizes: number[];
  /** Wall seconds each point cost, from the writes being synced to the point being safe in the archive. */
  seconds: number[];
  /** Seconds the filesystem was frozen for the point. */
  frozen: number[];
  /** CPU seconds of the tool at the point, and while the point's writes ran (null: the tool did not run then). */
  cpu: number[];
  cpuDuringWrites: number[] | null;
}

interface ToolResult extends PointCosts {
  tool: Tool;
  /** Local disk the volume takes besides the archive. */
  primaryBytes: number;
  restore: number[];
  copy: number[];
  /** Why the FUSE copy could not be measured. */
  copyFailure?: string;
}

interface WriteResult {
  what: string;
  tools: string;
  bytes: number[];
  mbps: number[];
}

interface Run {
  results: ToolResult[];
  writes: WriteResult[];
}

function emptyCosts(withWrites: boolean): PointCosts {
  return { sizes: [], seconds: [], frozen: [], cpu: [], cpuDuringWrites: withWrites ? [] : null };
}

// --- salvo

async function runSalvo(options: BenchOptions, s: Settings, w: Workload, run: Run): Promise<void> {
  const { log } = options;
  const base = path.join(options.workDir, 'salvo');
  const dir = path.join(base, 'volume');
  const archive = path.join(base, 'archive');
  const mnt = path.join(base, 'mnt');
  fs.mkdirSync(base, { recursive: true });
  await salvo(['init', dir, '--size', `${s.sizeBytes / MiB}M`, ...s.salvoPolicy, '--archive', archive]);
  const costs = emptyCosts(true);
  const writes: WriteResult = { what: 'ext4 on a loop device on salvo’s /live/volume.img', tools: 'salvo', bytes: [], mbps: [] };
  const snapshots: string[] = [];
  await withCleanup(log, async (cleanup) => {
    const mount = await mountExisting(cleanup, dir, mnt, archive);
    const loop = await attachLoop(cleanup, mount.image);
    await makeExt4(loop.device);
    const fsDir = path.join(base, 'fs');
    await mountFs(cleanup, loop.device, fsDir);
    await prepareFs(fsDir, w);
    for (let p = 0; p < s.points; p++) {
      const cpuBefore = cpuSeconds(mount.pid);
      const written = await applyPoint(fsDir, w.points[p]!);
      const cpuAtPoint = cpuSeconds(mount.pid);
      const started = process.hrtime.bigint();
      const point = await takeSynchPoint(mount.mountpoint, { label: label(p), freeze: fsDir });
      costs.frozen.push(secondsSince(started));
      const archived = async () => (await controlRequest<{ status: VolumeStatus }>(mount.socket, { cmd: 'status' })).status.archive.recoveryPoint === point.time;
      await waitFor(`the archive to restore ${label(p)}`, archived, 600_000, 20);
      costs.seconds.push(secondsSince(started));
      costs.cpu.push(cpuSeconds(mount.pid) - cpuAtPoint);
      costs.cpuDuringWrites!.push(cpuAtPoint - cpuBefore);
      costs.sizes.push(await apparentBytes(archive));
      snapshots.push(point.file);
      writes.bytes.push(written.bytes);
      writes.mbps.push(written.bytes / written.seconds);
      log(`salvo ${label(p)}: wrote ${num(written.bytes / MiB)} MiB at ${mbps(written.bytes / written.seconds)} MB/s, point safe in the archive after ${num(costs.seconds.at(-1)!)} s, archive ${num(costs.sizes.at(-1)! / MiB)} MiB`);
    }
  });
  const result: ToolResult = { tool: 'salvo', ...costs, primaryBytes: await allocatedBytes(dir), restore: [], copy: [] };
  const out = path.join(base, 'restored.img');
  for (let r = 0; r < options.runs; r++) {
    await fs.promises.rm(out, { force: true });
    result.restore.push(await timed(() => salvo(['restore', archive, '--at', label(w.old), out])));
    if (r === 0) await checkImage(out, w, 'salvo restore');
  }
  await fs.promises.rm(out, { force: true });
  // Each copy from a fresh mount (no cached indexes or chunks); the mount's start is not timed, as a user's salvo mount is already running.
  for (let r = 0; r < options.runs; r++) {
    await withCleanup(log, async (cleanup) => {
      await mountExisting(cleanup, dir, mnt, archive);
      let copy = '';
      result.copy.push(await timed(async () => (copy = await copyOut(cleanup, path.join(mnt, 'snapshots', snapshots[w.old]!), base, w))));
      await checkCopy(copy, w, 'salvo snapshot');
    });
  }
  run.results.push(result);
  run.writes.push(writes);
}

// --- restic and borg on a plain image

const RESTIC = ['--no-cache'];

async function runPlain(options: BenchOptions, s: Settings, w: Workload, run: Run, tools: ('restic' | 'borg')[]): Promise<void> {
  const { log } = options;
  const base = path.join(options.workDir, 'plain');
  const image = path.join(base, 'volume.img');
  const repo = { restic: path.join(base, 'restic'), borg: path.join(base, 'borg') };
  fs.mkdirSync(base, { recursive: true });
  const env = {
    restic: { ...process.env, RESTIC_PASSWORD: 'bench' },
    // No cache or security state in the user's home.
    borg: { ...process.env, BORG_BASE_DIR: path.join(base, 'borg-home'), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' },
  };
  await fs.promises.writeFile(image, '');
  await fs.promises.truncate(image, s.sizeBytes);
  if (tools.includes('restic')) await exec('restic', ['init', '-r', repo.restic, '--quiet', ...RESTIC], { env: env.restic });
  if (tools.includes('borg')) await exec('borg', ['init', '--encryption=none', repo.borg], { env: env.borg });
  const costs = { restic: emptyCosts(false), borg: emptyCosts(false) };
  const writes: WriteResult = { what: 'ext4 on a loop device on a plain image file', tools: tools.join(', '), bytes: [], mbps: [] };
  await withCleanup(log, async (cleanup) => {
    const loop = await attachLoop(cleanup, image);
    await makeExt4(loop.device);
    const fsDir = path.join(base, 'fs');
    await mountFs(cleanup, loop.device, fsDir);
    await prepareFs(fsDir, w);
    for (let p = 0; p < s.points; p++) {
      const written = await applyPoint(fsDir, w.points[p]!);
      writes.bytes.push(written.bytes);
      writes.mbps.push(written.bytes / written.seconds);
      // Frozen, the image file is consistent (ext4 flushed, the loop device's writes are in the file) for as long as the backups read it.
      await exec('fsfreeze', ['--freeze', fsDir]);
      try {
        for (const tool of tools) {
          const r =
            tool === 'restic'
              ? await timedChild('restic', ['-r', repo.restic, 'backup', image, '--tag', label(p), '--host', 'bench', '--quiet', ...RESTIC], { env: env.restic })
              : await timedChild('borg', ['create', '--compression', 'zstd,3', `${repo.borg}::${label(p)}`, image], { env: env.borg });
          costs[tool].seconds.push(r.seconds);
          costs[tool].frozen.push(r.seconds);
          costs[tool].cpu.push(r.cpu);
          costs[tool].sizes.push(await apparentBytes(repo[tool]));
        }
      } finally {
        await exec('fsfreeze', ['--unfreeze', fsDir]);
      }
      log(`plain ${label(p)}: wrote ${num(written.bytes / MiB)} MiB at ${mbps(written.bytes / written.seconds)} MB/s; ${tools.map((t) => `${t} ${num(costs[t].seconds.at(-1)!)} s, ${num(costs[t].sizes.at(-1)! / MiB)} MiB`).join('; ')}`);
    }
  });
  run.writes.push(writes);
  const primaryBytes = await allocatedBytes(image);
  for (const tool of tools) {
    const result: ToolResult = { tool, ...costs[tool], primaryBytes, restore: [], copy: [] };
    const target = path.join(base, `restore-${tool}`);
    // The image inside the restored tree / the mounted archive: both tools keep the absolute path (borg without its leading slash).
    const restored = path.join(target, image);
    let id = '';
    if (tool === 'restic') {
      const snapshots = JSON.parse((await exec('restic', ['-r', repo.restic, 'snapshots', '--json', '--tag', label(w.old), ...RESTIC], { env: env.restic })).stdout) as { id: string; short_id: string }[];
      id = snapshots[0]!.short_id;
    }
    for (let r = 0; r < options.runs; r++) {
      await fs.promises.rm(target, { recursive: true, force: true });
      await fs.promises.mkdir(target);
      result.restore.push(
        tool === 'restic'
          ? await timed(() => exec('restic', ['-r', repo.restic, 'restore', id, '--target', target, ...RESTIC], { env: env.restic }))
          : await timed(() => exec('borg', ['extract', '--sparse', `${repo.borg}::${label(w.old)}`], { env: env.borg, cwd: target })),
      );
      if (r === 0) await checkImage(restored, w, `${tool} restore`);
    }
    await fs.promises.rm(target, { recursive: true, force: true });
    // Timed from starting the tool's FUSE mount: a user has none running.
    const mnt = path.join(base, `mnt-${tool}`);
    try {
      for (let r = 0; r < options.runs; r++) {
        await withCleanup(log, async (cleanup) => {
          let copy = '';
          const seconds = await timed(async () => {
            if (tool === 'restic') {
              const file = path.join(mnt, 'ids', id, image);
              await fuseDaemon(cleanup, 'restic', ['-r', repo.restic, 'mount', mnt, ...RESTIC], env.restic, mnt, file);
              copy = await copyOut(cleanup, file, base, w);
            } else {
              const file = path.join(mnt, image);
              await fuseDaemon(cleanup, 'borg', ['mount', '-f', `${repo.borg}::${label(w.old)}`, mnt], env.borg, mnt, file);
              copy = await copyOut(cleanup, file, base, w);
            }
          });
          await checkCopy(copy, w, `${tool} mount`);
          result.copy.push(seconds);
        });
      }
    } catch (err) {
      if (/is not what point/.test((err as Error).message)) throw err;
      result.copyFailure = (err as Error).message;
      log(`${tool}: copying out through its FUSE mount failed: ${result.copyFailure}`);
    }
    run.results.push(result);
  }
}

// --- s3backer on radosgw

/**
 * Flags that work with radosgw: --baseURL with the bucket in the path (no --region: it turns on
 * virtual-host addressing), aws4 signing (the default), credentials from a file (not the
 * command line); 256 KiB blocks (4096 objects for 1 GiB), compressed (deflate) as the other
 * tools compress; --listBlocks so blocks never written are known to be zeros without a GET.
 * Its block cache is write-back (250 ms delay, 1000 blocks) and its fsync does not flush it.
 */
function s3backerArgs(endpoint: string, accessFile: string, sizeBytes: number, prefix: string): string[] {
  return ['-f', `--baseURL=http://${endpoint}/`, `--accessFile=${accessFile}`, `--size=${sizeBytes / MiB}M`, '--blockSize=256k', '--compress', `--prefix=${prefix}`, '--listBlocks'];
}

async function bucketBytes(client: S3Client, bucket: string, prefix: string): Promise<number> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  let bytes = 0;
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) bytes += o.Size ?? 0;
    token = page.NextContinuationToken;
  } while (token);
  return bytes;
}

async function runS3backer(options: BenchOptions, s: Settings, w: Workload, run: Run): Promise<string | null> {
  const { log } = options;
  if (!(await commandExists('s3backer'))) return 's3backer is not installed (scripts/setup installs it)';
  const base = path.join(options.workDir, 's3backer');
  fs.mkdirSync(base, { recursive: true });
  return withCleanup(log, async (cleanup) => {
    const s3 = await benchS3(cleanup, 'peers', log);
    if ('skipped' in s3) return s3.skipped;
    const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(s3.url)!;
    const prefix = `${key}/`;
    const accessFile = path.join(base, 'passwd');
    await fs.promises.writeFile(accessFile, `${s3.env.AWS_ACCESS_KEY_ID}:${s3.env.AWS_SECRET_ACCESS_KEY}\n`, { mode: 0o600 });
    const client = await benchS3Client(s3.env);
    cleanup.add('S3 client', () => client.destroy());
    const mnt = path.join(base, 'mnt');
    const file = path.join(mnt, 'file');
    const pid = await fuseDaemon(cleanup, 's3backer', [...s3backerArgs(s3.endpoint, accessFile, s.sizeBytes, prefix), bucket!, mnt], process.env, mnt, file);
    const loop = await attachLoop(cleanup, file);
    await makeExt4(loop.device);
    const fsDir = path.join(base, 'fs');
    await mountFs(cleanup, loop.device, fsDir);
    await prepareFs(fsDir, w);
    const costs = emptyCosts(true);
    const writes: WriteResult = { what: 'ext4 on a loop device on s3backer’s FUSE file', tools: 's3backer', bytes: [], mbps: [] };
    const clean = async () => /block_cache_dirty_ratio\s+0\.0+\s/.test(await fs.promises.readFile(path.join(mnt, 'stats'), 'utf8'));
    for (let p = 0; p < s.points; p++) {
      const cpuBefore = cpuSeconds(pid);
      const written = await applyPoint(fsDir, w.points[p]!);
      const cpuAtPoint = cpuSeconds(pid);
      const started = process.hrtime.bigint();
      await waitFor(`s3backer to write its dirty blocks (${label(p)})`, clean, 600_000, 20);
      costs.seconds.push(secondsSince(started));
      costs.frozen.push(0);
      costs.cpu.push(cpuSeconds(pid) - cpuAtPoint);
      costs.cpuDuringWrites!.push(cpuAtPoint - cpuBefore);
      costs.sizes.push(await bucketBytes(client, bucket!, prefix));
      writes.bytes.push(written.bytes);
      writes.mbps.push(written.bytes / written.seconds);
      log(`s3backer ${label(p)}: wrote ${num(written.bytes / MiB)} MiB at ${mbps(written.bytes / written.seconds)} MB/s, on S3 after ${num(costs.seconds.at(-1)!)} s, bucket ${num(costs.sizes.at(-1)! / MiB)} MiB`);
    }
    run.results.push({ tool: 's3backer', ...costs, primaryBytes: 0, restore: [], copy: [] });
    run.writes.push(writes);
    return null;
  });
}

// --- tables

function tables(s: Settings, w: Workload, run: Run): Table[] {
  const last = s.points - 1;
  const mid = Math.floor(s.points / 2) - 1;
  const at = [...new Set([0, mid, last])];
  const salvoSize = run.results.find((r) => r.tool === 'salvo')!.sizes[last]!;
  const mib = (bytes: number) => num(bytes / MiB);
  const sizes: Table = {
    title: `archive size (MiB): a ${mib(s.sizeBytes)} MiB ext4 volume, ${s.points} synch points`,
    columns: ['tool', ...at.map((p) => `after ${label(p)}`), 'growth per later point', `${label(last)} against salvo`, 'local disk besides the archive'],
    rows: run.results.map((r) => [
      r.tool,
      ...at.map((p) => mib(r.sizes[p]!)),
      cell(summarize(r.sizes.slice(1).map((size, i) => (size - r.sizes[i]!) / MiB))),
      `${(r.sizes[last]! / salvoSize).toFixed(2)}×`,
      r.tool === 's3backer' ? '0 (cache in memory)' : mib(r.primaryBytes),
    ]),
    notes: [
      `${label(0)} fills half the volume (${mib(w.points[0]!.reduce((n, op) => n + (op.kind === 'write' ? op.extent.length : 0), 0))} MiB of files); each later point writes about ${mib(s.sizeBytes / 25)} MiB (new files, rewrites, in-place patches, appends) and deletes about ${mib(s.sizeBytes / 50)} MiB; ${mib(w.writtenBytes)} MiB written in all, ${mib(w.liveBytes)} MiB of files at the end.`,
      'salvo: the archive directory (every write since the start, compressed, and the synch points); restic, borg: the repository (every point’s image, deduplicated by content-defined chunks, compressed); s3backer: the bytes in its bucket, i.e. the current image only (compressed blocks; blocks of zeros are not stored).',
      'local disk besides the archive: salvo’s segment slots (the working set, allocated bytes); for restic and borg the image file they back up; s3backer keeps its cache in memory.',
    ],
  };
  const timeCell = (values: readonly number[]) => cell(summarize(values), num);
  const work: Table = {
    title: 'work per synch point (s): the first point (after the fill), and the median (min–max) of the later ones',
    columns: ['tool', 'what a point is', 'first point', 'later points', 'app frozen (later)', 'tool CPU at a later point', 'tool CPU during a later point’s writes'],
    rows: run.results.map((r) => [
      r.tool,
      {
        salvo: 'fsfreeze, synch request, thaw; until the archive alone restores the point',
        restic: 'fsfreeze, `restic backup` of the image, thaw',
        borg: 'fsfreeze, `borg create` of the image, thaw',
        s3backer: 'until its cache holds no dirty block (no point is kept)',
      }[r.tool],
      num(r.seconds[0]!),
      timeCell(r.seconds.slice(1)),
      r.tool === 's3backer' ? '–' : timeCell(r.frozen.slice(1)),
      timeCell(r.cpu.slice(1)),
      r.cpuDuringWrites ? timeCell(r.cpuDuringWrites.slice(1)) : '–',
    ]),
    notes: [
      'every tool’s point starts after the point’s writes have been synced (syncfs) into its volume.',
      `restic and borg read the whole image at every point; the filesystem stays frozen while they read (no device-mapper snapshot here)${run.results.filter((r) => r.tool === 'restic' || r.tool === 'borg').length === 2 ? ', and in this run both backed up the same freeze one after the other, so the application waited for the sum' : ''}.`,
      'tool CPU: user + system seconds of the salvo mount process (FUSE serving, compression, archiving), of `restic backup` / `borg create`, of the s3backer process. salvo and s3backer also work during the writes, as they are in the write path.',
    ],
  };
  const throughput: Table = {
    title: 'write throughput seen by the application (MB/s): the point’s writes and a syncfs',
    columns: ['volume', 'kept by', `${label(0)} (fill)`, 'later points'],
    rows: run.writes.map((wr) => [wr.what, wr.tools, `${mbps(wr.mbps[0]!)} (${mib(wr.bytes[0]!)} MiB)`, `${cell(summarize(wr.mbps.slice(1)), (v) => mbps(v))} (${mib(summarize(wr.bytes.slice(1)).median)} MiB each)`]),
    notes: [
      'the same files written by the same process (whole-file writes of up to 8 MiB), then `sync -f` on the filesystem; contents generated beforehand.',
      'restic and borg are not in the write path: their volume is a plain loop device. s3backer’s write-back cache acknowledges the syncfs before the data is on S3 (its point column shows how long that takes).',
    ],
  };
  const old = label(w.old);
  const ago = s.points - 1 - w.old;
  const past: Table = {
    title: `the old point ${old} (${ago} point${ago === 1 ? '' : 's'} before the last): restore it, copy one file out of it (s)`,
    columns: ['tool', 'restore to an image file', 'copy one file through FUSE'],
    rows: run.results.map((r) =>
      r.tool === 's3backer'
        ? ['s3backer', 'n/a: keeps only the current state', 'n/a: keeps only the current state']
        : [r.tool, timeCell(r.restore), r.copyFailure ? `failed: ${r.copyFailure}` : timeCell(r.copy)],
    ),
    notes: [
      `restore: \`salvo restore <archive> --at ${old} out.img\` (the archive alone; sparse), \`restic restore <id> --target <dir>\` (writes the whole image: restic 0.14 has no --sparse), \`borg extract --sparse <repo>::${old}\`.`,
      `copy: losetup -r on the point’s image, mount -o ro,noload, cp of /${w.target.file} (${num(w.target.bytes.length / MiB)} MiB, changed or deleted since) — salvo from /snapshots/<time>.img of its mount (started fresh before each run, not timed: it is already running in use); restic and borg timed from starting \`restic mount\` / \`borg mount\`, which a user has to do first.`,
      'restored images and copies are checked byte for byte against what the history wrote into that file up to the point. Repository and archive files are in the page cache for every tool.',
    ],
  };
  return [sizes, work, throughput, past];
}

export const bench: Benchmark = {
  name: 'peers',
  title: 'Against restic, borg and s3backer: one file history on an ext4 volume',
  description:
    'The same history (files added, changed and deleted on a 1 GiB ext4 volume, 20 synch points) kept by salvo, by restic and by borg backing up the frozen volume image at each point, and by s3backer (a block device on S3, no history) on radosgw: archive size, work per point, write throughput seen by the application, time to restore an old point, time to copy one file out of it through FUSE.',
  async run(options): Promise<BenchResult> {
    const unavailable = await fuseLoopUnavailable();
    if (unavailable) return { tables: [], skipped: unavailable };
    const s = settings(options);
    const w = workload(s.sizeBytes, s.points);
    const run: Run = { results: [], writes: [] };
    const skipped: string[] = [];
    const plain: ('restic' | 'borg')[] = [];
    for (const tool of ['restic', 'borg'] as const) {
      if (!s.tools.includes(tool)) continue;
      if (!(await commandExists(tool))) skipped.push(`${tool}: not installed (scripts/setup installs it)`);
      // restic derives its key with scrypt at every command (about a second here): the smoke run leaves it to borg.
      else if (tool === 'restic' && options.quick && s.tools.includes('borg') && (await commandExists('borg'))) skipped.push('restic: left out of --quick (its key derivation costs seconds per command)');
      else plain.push(tool);
    }
    await runSalvo(options, s, w, run);
    if (plain.length > 0) await runPlain(options, s, w, run, plain);
    if (s.tools.includes('s3backer')) {
      // Starting radosgw takes ~20 s: the smoke run uses s3backer only against a server already running (npm test's).
      const why = options.quick && !process.env.S3_TEST_URL ? '--quick without a running S3 server (S3_TEST_URL)' : await runS3backer(options, s, w, run);
      if (why) skipped.push(`s3backer: ${why}`);
    }
    const versions = await Promise.all(
      run.results
        .filter((r) => r.tool !== 'salvo')
        .map((r) => exec(r.tool, [r.tool === 'restic' ? 'version' : '--version']).then((v) => (v.stdout || v.stderr).trim().split('\n')[0]!)), // s3backer prints it on stderr
    );
    const notes = [
      `salvo \`init --size ${s.sizeBytes / MiB}M${s.salvoPolicy.length ? ` ${s.salvoPolicy.join(' ')}` : ''}\` (${s.salvoPolicy.length ? 'small segments' : 'default policy: 64 segments of 64 MiB'}), archive in a directory; restic with its default compression and (always) encryption, --no-cache; borg --encryption=none, zstd,3; s3backer ${s3backerArgs('HOST:PORT', 'FILE', s.sizeBytes, 'PREFIX/').slice(1).join(' ')}.`,
      ...(versions.length ? [`tools: ${versions.join('; ')}`] : []),
      ...skipped.map((why) => `skipped: ${why}`),
    ];
    return { tables: tables(s, w, run), notes };
  },
};

runIfMain(import.meta.url, bench);
