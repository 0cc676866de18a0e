/**
 * salvo against restic and borg on the same image history: a volume image is filled, then
 * changed version by version; after each version salvo takes a synch point (its archive
 * catches up), and restic and borg back the same image up as a file (a new snapshot /
 * archive each time). Compared: the size of each archive after every version, the time of
 * the first (full) backup and of the later ones.
 *
 * Two histories: `scattered` (each version rewrites 1% of the blocks, 4 KiB at random:
 * a database's page writes) and `clustered` (each version rewrites one 8 MiB region: a
 * file rewritten in place). Block contents are unique (no two blocks alike, so nothing
 * dedups by accident) and compress about 2:1.
 *
 * The tools do different jobs: salvo keeps every write (continuous data protection) and
 * ships it as it happens; restic and borg keep the versions they are given, reading the
 * whole image each time. restic 0.14 runs with its default compression (auto) and, as it
 * always does, encrypts; borg runs unencrypted with zstd level 3 (salvo's level).
 *
 *   node dist/bench/peers.js [--quick]
 */
import fs from 'node:fs';
import path from 'node:path';
import { BLOCK_BYTES, createVolume, prng } from './history.js';
import { MiB, cell, commandExists, exec, num, runIfMain, summarize, type Benchmark, type BenchOptions, type BenchResult, type Table } from './common.js';

type Kind = 'scattered' | 'clustered';

interface Settings {
  sizeBytes: number;
  versions: number;
  kinds: Kind[];
}

function settings(options: BenchOptions): Settings {
  return options.quick ? { sizeBytes: 8 * MiB, versions: 1, kinds: ['scattered'] } : { sizeBytes: 256 * MiB, versions: 8, kinds: ['scattered', 'clustered'] };
}

/** Unique block contents: half pseudo-random (seeded by the block's serial number), half text. */
function uniqueBlocks(serial: number, count: number): Buffer {
  const out = Buffer.allocUnsafe(count * BLOCK_BYTES);
  const line = Buffer.from('peers bench: lorem ipsum dolor sit amet, consectetur adipiscing elit\n');
  for (let b = 0; b < count; b++) {
    const random = prng(serial * 65_537 + b);
    const at = b * BLOCK_BYTES;
    for (let i = 0; i < BLOCK_BYTES / 2; i += 4) out.writeUInt32LE((random() * 2 ** 32) >>> 0, at + i);
    for (let i = BLOCK_BYTES / 2; i < BLOCK_BYTES; i++) out[at + i] = line[(i + serial) % line.length]!;
  }
  return out;
}

async function duBytes(dir: string): Promise<number> {
  return Number((await exec('du', ['-sb', dir])).stdout.split(/\s/)[0]);
}

const RESTIC_ENV = { ...process.env, RESTIC_PASSWORD: 'bench' };
const BORG_ENV = { ...process.env, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

interface KindResult {
  kind: Kind;
  written: number[];
  sizes: Record<'salvo' | 'restic' | 'borg', number[]>;
  times: Record<'salvo' | 'restic' | 'borg', number[]>;
}

async function runKind(options: BenchOptions, s: Settings, kind: Kind, tools: { restic: boolean; borg: boolean }): Promise<KindResult> {
  const base = path.join(options.workDir, kind);
  const { volume, archive } = await createVolume(base, { sizeBytes: s.sizeBytes, segmentSizeBytes: 16 * MiB, workingSetSegments: 32, spareSegments: 4 });
  const image = path.join(base, 'image.img');
  const resticRepo = path.join(base, 'restic');
  const borgRepo = path.join(base, 'borg');
  const fd = fs.openSync(image, 'w+');
  const result: KindResult = { kind, written: [], sizes: { salvo: [], restic: [], borg: [] }, times: { salvo: [], restic: [], borg: [] } };
  try {
    fs.ftruncateSync(fd, s.sizeBytes);
    if (tools.restic) await exec('restic', ['init', '-r', resticRepo, '--quiet', '--no-cache'], { env: RESTIC_ENV });
    if (tools.borg) await exec('borg', ['init', '--encryption=none', borgRepo], { env: BORG_ENV });
    const blocks = s.sizeBytes / BLOCK_BYTES;
    const random = prng(17);
    let serial = 0;
    let startedWrites = process.hrtime.bigint();
    const write = async (block: number, count: number) => {
      const data = uniqueBlocks(serial, count);
      serial += count;
      fs.writeSync(fd, data, 0, data.length, block * BLOCK_BYTES);
      await volume.write(data, block * BLOCK_BYTES);
    };
    for (let v = 0; v <= s.versions; v++) {
      let bytes = 0;
      startedWrites = process.hrtime.bigint();
      if (v === 0) {
        for (let b = 0; b < blocks; b += 32) await write(b, 32);
        bytes = s.sizeBytes;
      } else if (kind === 'scattered') {
        const count = Math.max(1, Math.floor(blocks / 100));
        for (let i = 0; i < count; i++) await write(Math.floor(random() * blocks), 1);
        bytes = count * BLOCK_BYTES;
      } else {
        const region = (8 * MiB) / BLOCK_BYTES;
        const first = Math.floor(random() * (blocks / region)) * region;
        for (let b = first; b < first + region; b += 32) await write(b, 32);
        bytes = region * BLOCK_BYTES;
      }
      fs.fsyncSync(fd);
      // salvo: the writes themselves (archiving runs meanwhile), the synch point, and the archive catching up.
      const writesSeconds = Number(process.hrtime.bigint() - startedWrites) / 1e9;
      const synchSeconds = await timed(async () => {
        await volume.synch({ label: `v${v}`, info: {} });
        await volume.archiver.idle();
      });
      result.written.push(bytes);
      result.times.salvo.push(writesSeconds + synchSeconds);
      result.sizes.salvo.push(await duBytes(archive));
      if (tools.restic) {
        result.times.restic.push(await timed(() => exec('restic', ['-r', resticRepo, 'backup', image, '--quiet', '--no-cache'], { env: RESTIC_ENV })));
        result.sizes.restic.push(await duBytes(resticRepo));
      }
      if (tools.borg) {
        result.times.borg.push(await timed(() => exec('borg', ['create', '--compression', 'zstd,3', `${borgRepo}::v${v}`, image], { env: BORG_ENV })));
        result.sizes.borg.push(await duBytes(borgRepo));
      }
      options.log(`${kind} v${v}: salvo ${num(result.sizes.salvo.at(-1)! / MiB)} MiB, restic ${num((result.sizes.restic.at(-1) ?? NaN) / MiB)} MiB, borg ${num((result.sizes.borg.at(-1) ?? NaN) / MiB)} MiB`);
    }
    return result;
  } finally {
    fs.closeSync(fd);
    await volume.close();
  }
}

function tablesFor(s: Settings, results: KindResult[], tools: { restic: boolean; borg: boolean }): Table[] {
  const names = (['salvo', 'restic', 'borg'] as const).filter((t) => t === 'salvo' || tools[t]);
  const sizes: Table = {
    title: `archive size after each version (MiB): ${num(s.sizeBytes / MiB)} MiB image, ${s.versions} versions after the first fill`,
    columns: ['history', 'version', 'written (MiB)', ...names.map((n) => `${n}`), ...names.filter((n) => n !== 'salvo').map((n) => `salvo/${n}`)],
    rows: [],
  };
  const times: Table = {
    title: 'backup time (s): the first (full) one, and the median (min–max) of the later ones',
    columns: ['history', ...names.flatMap((n) => [`${n} first`, `${n} later`])],
    rows: [],
  };
  for (const r of results) {
    r.written.forEach((w, v) => {
      if (v !== 0 && v !== 1 && v !== r.written.length - 1 && v % 2 === 1) return; // every other version, first and last kept
      sizes.rows.push([
        r.kind,
        v === 0 ? '0 (fill)' : String(v),
        num(w / MiB),
        ...names.map((n) => num(r.sizes[n][v]! / MiB)),
        ...names.filter((n) => n !== 'salvo').map((n) => `${(r.sizes.salvo[v]! / r.sizes[n][v]!).toFixed(2)}×`),
      ]);
    });
    times.rows.push([r.kind, ...names.flatMap((n) => [num(r.times[n][0]!), cell(summarize(r.times[n].slice(1)))])]);
  }
  sizes.notes = [
    'scattered: each version writes 1% of the blocks, 4 KiB each at random places; clustered: each version rewrites one 8 MiB region.',
    'salvo’s archive holds every write (and copy-forward), not only the versions; restic and borg chunk the image file by content (restic ~1 MiB average chunks, borg ~2 MiB), so a changed 4 KiB block costs them a whole chunk.',
  ];
  times.notes = [
    'salvo: the time to apply the version’s writes with archiving running, plus the synch point and the archive catching up; restic/borg: `restic backup` / `borg create` of the image file, which read all of it every time.',
    'one history per run (sizes are deterministic; times are single measurements).',
  ];
  return [sizes, times];
}

export const bench: Benchmark = {
  name: 'peers',
  title: 'Archive size and backup time against restic and borg',
  description:
    'The same image history backed up by salvo (synch point after each version), restic and borg (a backup of the image file after each version): archive sizes and backup times, for scattered 4 KiB writes and for clustered rewrites.',
  async run(options): Promise<BenchResult> {
    // restic derives its key with scrypt on every call (seconds here): the smoke test leaves it out when borg can stand in.
    const borg = await commandExists('borg');
    const tools = { restic: (!options.quick || !borg) && (await commandExists('restic')), borg };
    if (!tools.restic && !tools.borg) return { tables: [], skipped: 'neither restic nor borg is installed (apt-get install restic borgbackup)' };
    const s = settings(options);
    const results: KindResult[] = [];
    for (const kind of s.kinds) results.push(await runKind(options, s, kind, tools));
    const versions = await Promise.all([
      tools.restic ? exec('restic', ['version']).then((r) => r.stdout.trim()) : 'restic: not installed',
      tools.borg ? exec('borg', ['--version']).then((r) => r.stdout.trim()) : 'borg: not installed',
    ]);
    return { tables: tablesFor(s, results, tools), notes: [`tools: ${versions.join('; ')}`] };
  },
};

runIfMain(import.meta.url, bench);
