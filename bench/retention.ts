/**
 * Retention (issue #28): one volume history — blocks rewritten between hourly synch points, in
 * runs of 1 to 64 blocks, with content that zstd halves (as peers.ts writes it) — kept by salvo
 * (the engine with a directory archive, the points' times from its clock) and by restic and borg
 * backing up the volume's image file at each point (with the point's time). Then one policy,
 * `--keep-within 1h --keep-hourly 24 --keep-daily 7`, applied by each: `salvo forget --prune`
 * (prune and compaction), `restic forget --prune`, `borg prune` + `borg compact`.
 *
 * Measured: archive (repository) size before and after, against the bytes the kept points need
 * (each distinct block version any kept point holds, once, uncompressed); salvo's prune time and
 * the memory it added; the time to open the oldest kept point from the archive alone and read it
 * whole, before and after. Every kept point of salvo's archive is read back and compared with the
 * model's image.
 *
 *   node dist/bench/retention.js [--quick]
 */
import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DirectoryStore } from '../lib/archive/directory-store.js';
import { selectPoints, type RetentionPolicy } from '../lib/format/retention-policy.js';
import { ArchiveView } from '../lib/history/archive-view.js';
import { applyForget, planForget } from '../lib/retention/forget.js';
import { prune } from '../lib/retention/prune.js';
import { systemClock, type Clock } from '../lib/util/clock.js';
import type { SynchPoint } from '../lib/volume/synch-point.js';
import { Volume } from '../lib/volume/volume.js';
import { prng } from './history.js';
import { MiB, commandExists, exec, num, runIfMain, withCleanup, type BenchOptions, type BenchResult, type Benchmark, type Table } from './common.js';

const BS = 4096;
const HOUR = 3_600_000;
const POLICY: RetentionPolicy = { withinMs: HOUR, hourly: 24, daily: 7 };
const KEEP = { restic: ['--keep-within', '1h', '--keep-hourly', '24', '--keep-daily', '7'], borg: ['--keep-within', '1H', '--keep-hourly', '24', '--keep-daily', '7'] };
const KEY = createHash('sha256').update('salvo retention bench').digest().subarray(0, 16);
const TEXT = Buffer.alloc(BS / 2, 'retention bench: a line of ordinary text, as in logs and documents.\n');

interface Settings {
  sizeBytes: number;
  segmentSizeBytes: number;
  /** The working set: init's default for the full run (what a user gets); the shortest allowed for the smoke run, so it prunes. */
  workingSetSegments?: number;
  points: number;
  rewriteBytes: number;
}

function settings(quick: boolean): Settings {
  return quick
    ? { sizeBytes: 16 * MiB, segmentSizeBytes: MiB, workingSetSegments: 22, points: 30, rewriteBytes: MiB }
    : { sizeBytes: 64 * MiB, segmentSizeBytes: MiB, points: 5 * 24, rewriteBytes: 8 * MiB };
}

/** Block version `version`: 2 KiB of keystream (nothing dedups by accident) and 2 KiB of text (zstd halves it). */
function blockOf(version: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(version, 0);
  return Buffer.concat([createCipheriv('aes-128-ctr', KEY, iv).update(Buffer.alloc(BS / 2)), TEXT]);
}

interface History {
  archive: string;
  image: string;
  points: { point: SynchPoint; versions: Uint32Array }[];
  repos: { restic?: string; borg?: string };
  env: { restic: NodeJS.ProcessEnv; borg: NodeJS.ProcessEnv };
}

const stamp = (ms: number) => new Date(ms).toISOString().slice(0, 19);

async function makeHistory(options: BenchOptions, s: Settings, tools: ('restic' | 'borg')[]): Promise<History> {
  const dir = options.workDir;
  const archive = path.join(dir, 'archive');
  const image = path.join(dir, 'volume.img');
  fs.writeFileSync(image, '');
  fs.truncateSync(image, s.sizeBytes);
  const repos = { restic: tools.includes('restic') ? path.join(dir, 'restic') : undefined, borg: tools.includes('borg') ? path.join(dir, 'borg') : undefined };
  const env = {
    restic: { ...process.env, TZ: 'UTC', RESTIC_PASSWORD: 'bench' },
    borg: { ...process.env, TZ: 'UTC', BORG_BASE_DIR: path.join(dir, 'borg-home'), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' },
  };
  if (repos.restic) await exec('restic', ['init', '-r', repos.restic, '--quiet'], { env: env.restic });
  if (repos.borg) await exec('borg', ['init', '--encryption=none', repos.borg], { env: env.borg });
  let nowMs = Date.parse('2026-01-05T00:30:00Z');
  const clock: Clock = { ...systemClock, now: () => nowMs };
  const store = new DirectoryStore(archive);
  await Volume.create(path.join(dir, 'volume'), { sizeBytes: s.sizeBytes, blockSizeBytes: BS, segmentSizeBytes: s.segmentSizeBytes, workingSetSegments: s.workingSetSegments, spareSegments: 8, archive, store });
  const volume = await Volume.open(path.join(dir, 'volume'), { store, clock, onStall: () => undefined });
  const blocks = s.sizeBytes / BS;
  const versions = new Uint32Array(blocks);
  const random = prng(28);
  const fd = fs.openSync(image, 'r+');
  const points: History['points'] = [];
  let version = 0;
  try {
    for (let p = 0; p < s.points; p++) {
      // The first point finds the volume half full; each later one rewrote rewriteBytes of it.
      for (let written = 0; written < (p === 0 ? s.sizeBytes / 2 : s.rewriteBytes); ) {
        const run = 1 + Math.floor(random() * 64);
        const first = Math.floor(random() * (blocks - run));
        const data = Buffer.concat(Array.from({ length: run }, (_, i) => blockOf((versions[first + i] = ++version))));
        await volume.write(data, first * BS);
        fs.writeSync(fd, data, 0, data.length, first * BS);
        written += data.length;
      }
      nowMs += HOUR;
      points.push({ point: await volume.synch(), versions: versions.slice() });
      if (repos.restic) await exec('restic', ['-r', repos.restic, 'backup', image, '--time', stamp(nowMs).replace('T', ' '), '--host', 'bench', '--quiet'], { env: env.restic });
      if (repos.borg) await exec('borg', ['create', '--compression', 'zstd,3', '--timestamp', stamp(nowMs), `${repos.borg}::p${p + 1}`, image], { env: env.borg });
      if ((p + 1) % 24 === 0) options.log(`retention: ${p + 1} of ${s.points} points`);
    }
    await volume.idle();
  } finally {
    fs.closeSync(fd);
    await volume.close();
    await store.close();
  }
  return { archive, image, points, repos, env };
}

async function bytesOf(target: string): Promise<number> {
  return Number((await exec('du', ['-sb', target])).stdout.split(/\s/)[0]);
}

/** Opens the archive alone and reads `point` whole; checks it against the model. Milliseconds. */
async function openAndRead(archive: string, point: SynchPoint, versions: Uint32Array): Promise<number> {
  const started = performance.now();
  const view = await ArchiveView.open(new DirectoryStore(archive));
  try {
    const image = await (await view.snapshots.open(view.catalog.find(new Date(point.timeMs).toISOString()))).read(0, versions.length * BS);
    const elapsed = performance.now() - started;
    for (let b = 0; b < versions.length; b++) {
      const expected = versions[b] ? blockOf(versions[b]!) : Buffer.alloc(BS);
      if (!image.subarray(b * BS, (b + 1) * BS).equals(expected)) throw new Error(`retention: block ${b} of point ${point.recordSequence} reads other than it was written`);
    }
    return elapsed;
  } finally {
    await view.close();
  }
}

export const bench: Benchmark = {
  name: 'retention',
  title: 'Keeping less: a retention policy applied by salvo, restic and borg',
  description:
    'One volume history (blocks rewritten in runs between hourly synch points, content that zstd halves) kept by salvo and by restic and borg backing up the image at each point; then --keep-within 1h --keep-hourly 24 --keep-daily 7 applied by each (salvo forget --prune with compaction, restic forget --prune, borg prune + compact): archive size before and after against the bytes the kept points need, salvo’s prune time and memory, and the time to open and read the oldest kept point from the archive alone.',
  async run(options): Promise<BenchResult> {
    const s = settings(options.quick);
    const tools: ('restic' | 'borg')[] = [];
    const skipped: string[] = [];
    for (const tool of ['restic', 'borg'] as const) {
      if (!(await commandExists(tool))) skipped.push(`${tool}: not installed`);
      // restic derives its key with scrypt at every command (about a second here): the smoke run leaves it out.
      else if (tool === 'restic' && options.quick) skipped.push('restic: left out of --quick (its key derivation costs seconds per command)');
      else tools.push(tool);
    }
    const zone = process.env.TZ;
    process.env.TZ = 'UTC'; // the policy's buckets, as restic and borg are given them
    return withCleanup(options.log, async () => {
      const h = await makeHistory(options, s, tools);
      const decisions = selectPoints(h.points.map((m) => m.point), POLICY);
      const kept = h.points.filter((_, i) => decisions[i]!.keep);
      const versions = new Set<number>();
      for (const { versions: v } of kept) for (const x of v) if (x) versions.add(x);
      const needed = versions.size * BS;
      const oldest = kept[0]!;

      const before = { salvo: await bytesOf(h.archive), restic: h.repos.restic ? await bytesOf(h.repos.restic) : NaN, borg: h.repos.borg ? await bytesOf(h.repos.borg) : NaN };
      const readBefore = await openAndRead(h.archive, oldest.point, oldest.versions);
      const view = await ArchiveView.open(new DirectoryStore(h.archive));
      let peak = process.memoryUsage().rss;
      const base = peak;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const started = performance.now();
      let result;
      try {
        await applyForget(view, await planForget(view, POLICY), Date.now());
        result = await prune(view, { graceMs: 0, undoMs: 0, compact: true, now: () => Date.now(), sleep: async () => undefined });
      } finally {
        clearInterval(sampler);
        await view.close();
      }
      const pruneSeconds = (performance.now() - started) / 1000;
      const readAfter = await openAndRead(h.archive, oldest.point, oldest.versions);
      for (const { point, versions: v } of kept) await openAndRead(h.archive, point, v);

      const times: Record<string, number> = {};
      if (h.repos.restic) {
        const t0 = performance.now();
        await exec('restic', ['-r', h.repos.restic, 'forget', ...KEEP.restic, '--prune', '--quiet'], { env: h.env.restic });
        times.restic = (performance.now() - t0) / 1000;
      }
      if (h.repos.borg) {
        const t0 = performance.now();
        await exec('borg', ['prune', ...KEEP.borg, h.repos.borg], { env: h.env.borg });
        await exec('borg', ['compact', h.repos.borg], { env: h.env.borg });
        times.borg = (performance.now() - t0) / 1000;
      }
      const after = { salvo: await bytesOf(h.archive), restic: h.repos.restic ? await bytesOf(h.repos.restic) : NaN, borg: h.repos.borg ? await bytesOf(h.repos.borg) : NaN };
      const mib = (b: number) => num(b / MiB);
      const table: Table = {
        title: `${h.points.length} hourly points on a ${mib(s.sizeBytes)} MiB volume, ${mib(s.rewriteBytes)} MiB rewritten between points; ${kept.length} kept, needing ${mib(needed)} MiB (distinct block versions, uncompressed)`,
        columns: ['tool', 'before (MiB)', 'after (MiB)', 'after / kept points’ bytes', 'forget + prune (s)'],
        rows: (['salvo', 'restic', 'borg'] as const)
          .filter((tool) => Number.isFinite(before[tool]))
          .map((tool) => [tool, mib(before[tool]), mib(after[tool]), num(after[tool] / needed), num(tool === 'salvo' ? pruneSeconds : times[tool]!)]),
      };
      const detail: Table = {
        title: 'salvo’s prune, and the oldest kept point read from the archive alone',
        columns: ['segments pruned', 'segments compacted', 'compacted (MiB before → after)', 'memory added (MiB)', 'open + read before (ms)', 'after (ms)'],
        rows: [[String(result.segments), String(result.compacted.segments), `${mib(result.compacted.bytesBefore)} → ${mib(result.compacted.bytesAfter)}`, mib(peak - base), num(readBefore), num(readAfter)]],
      };
      return {
        tables: [table, detail],
        notes: [
          'before/after: `du -sb` of salvo’s archive directory, restic’s and borg’s repositories. Kept points’ bytes: every distinct 4 KiB block version any kept point holds, once, uncompressed (the content compresses about 2:1, so about 0.5 is what a perfect store needs).',
          'salvo keeps the newest window whole (every point to come needs it): that is most of what it holds above the kept points’ bytes on a history this short.',
          ...skipped,
        ],
      };
    }).finally(() => {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    });
  },
};

runIfMain(import.meta.url, bench);
