/**
 * Discards (issue #29): what the blocks a filesystem freed cost salvo, with and without telling
 * it. Three volumes of the same size (init's default working set), each with ext4 on its live
 * image through a loop device: files fill most of the filesystem, a synch point, the files are
 * deleted; then nothing (`kept`), `fstrim` (`fstrim`), or the filesystem was mounted with
 * `-o discard` from the start (`mount -o discard`). Then one file of a tenth of the volume is
 * rewritten in place until the log has come round about twice, and the archive catches up.
 *
 * Measured per volume: bytes copied forward and bytes archived (compressed) during the rewrites,
 * the rewrites' time, and what the discards freed; then the ratios against `kept`.
 *
 *   node dist/bench/discard.js [--quick]
 */
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { controlRequest } from '../lib/agent/control.js';
import { MiB, archiveCatchUp, attachLoop, exec, fuseLoopUnavailable, makeExt4, mountFs, num, runIfMain, salvo, salvoMount, withCleanup, type Benchmark, type BenchResult } from './common.js';

interface Settings {
  size: string;
  sizeBytes: number;
  segmentSize: string;
  /** Absent: init's default working set (what a user gets); the smoke run's is short, so its log comes round soon. */
  segments?: number;
}

const VARIANTS = ['kept', 'fstrim', 'mount -o discard'] as const;
type Variant = (typeof VARIANTS)[number];

interface Figures {
  copiedForward: number;
  archived: number;
  discarded: number;
  seconds: number;
  trimmed: string;
}

interface MountStatus {
  bytesCopiedForward: number;
  bytesDiscarded: number;
  workingSetSegments: number;
  segmentSizeBytes: number;
  archive: { storedBytesArchived: number };
}

async function statusOf(socket: string): Promise<MountStatus> {
  return (await controlRequest<{ status: MountStatus }>(socket, { cmd: 'status' }, 10_000)).status;
}

/** Random bytes, half of them text (zstd about halves it, as in peers.ts). */
async function writeFile(file: string, bytes: number, inPlace = false): Promise<void> {
  const piece = Buffer.concat([Buffer.alloc(MiB / 2), Buffer.alloc(MiB / 2, 'a line of ordinary text, as in logs and documents.\n')]);
  const fd = fs.openSync(file, inPlace && fs.existsSync(file) ? 'r+' : 'w');
  try {
    for (let at = 0; at < bytes; at += MiB) {
      randomFillSync(piece, 0, MiB / 2);
      fs.writeSync(fd, piece, 0, Math.min(MiB, bytes - at));
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function runVariant(variant: Variant, base: string, s: Settings, log: (m: string) => void): Promise<Figures> {
  return withCleanup(log, async (cleanup) => {
    const mount = await salvoMount(cleanup, base, { size: s.size, segmentSize: s.segmentSize, segments: s.segments });
    const loop = await attachLoop(cleanup, mount.image);
    await makeExt4(loop.device);
    const fsDir = path.join(base, 'fs');
    await mountFs(cleanup, loop.device, fsDir, variant === 'mount -o discard' ? ['discard'] : []);

    // Files over about 70 % of the volume, a point, then all deleted.
    const fileBytes = Math.floor((s.sizeBytes * 0.07) / MiB) * MiB;
    for (let i = 0; i < 10; i++) await writeFile(path.join(fsDir, `old-${i}.dat`), fileBytes);
    await exec('sync', ['-f', fsDir]);
    await salvo(['sync', mount.mountpoint, '--freeze', fsDir]);
    for (let i = 0; i < 10; i++) fs.rmSync(path.join(fsDir, `old-${i}.dat`));
    await exec('sync', ['-f', fsDir]);
    const trimmed = variant === 'fstrim' ? (await exec('fstrim', ['-v', fsDir])).stdout.trim() : '';

    const before = await statusOf(mount.socket);
    const logBytes = before.workingSetSegments * before.segmentSizeBytes;
    const started = performance.now();
    // A tenth of the volume rewritten in place (as a database does) until the log has come round about twice:
    // the filesystem allocates nothing, so the deleted files' blocks stay as they are, freed or not.
    const rewrite = Math.floor(s.sizeBytes / 10 / MiB) * MiB;
    for (let written = 0; written < 2 * logBytes; written += rewrite) await writeFile(path.join(fsDir, 'busy.dat'), rewrite, true);
    const seconds = (performance.now() - started) / 1000;
    await archiveCatchUp(mount.socket);
    const after = await statusOf(mount.socket);
    log(`discard: ${variant}: ${num((after.bytesCopiedForward - before.bytesCopiedForward) / MiB)} MiB copied forward`);
    return {
      copiedForward: after.bytesCopiedForward - before.bytesCopiedForward,
      archived: after.archive.storedBytesArchived - before.archive.storedBytesArchived,
      discarded: after.bytesDiscarded,
      seconds,
      trimmed,
    };
  });
}

export const bench: Benchmark = {
  name: 'discard',
  title: 'Discards: what freed blocks cost, with and without fstrim',
  description:
    'ext4 on salvo’s live image through a loop device: files over about 70 % of the volume, a synch point, all deleted; then nothing, fstrim, or mount -o discard from the start. One file of a tenth of the volume is then rewritten in place (as a database does) until the log has come round about twice: bytes copied forward and archived during the rewrites, their time, and what the discards freed.',
  async run(options): Promise<BenchResult> {
    const unavailable = await fuseLoopUnavailable();
    if (unavailable) return { tables: [], skipped: unavailable };
    const s: Settings = options.quick ? { size: '32M', sizeBytes: 32 * MiB, segmentSize: '1M', segments: 48 } : { size: '1G', sizeBytes: 1024 * MiB, segmentSize: '16M' };
    const figures = new Map<Variant, Figures>();
    for (const variant of VARIANTS) {
      const base = path.join(options.workDir, variant.replace(/\W+/g, '-'));
      fs.mkdirSync(base, { recursive: true });
      options.log(`discard: ${variant}`);
      figures.set(variant, await runVariant(variant, base, s, options.log));
      fs.rmSync(base, { recursive: true, force: true });
    }
    const kept = figures.get('kept')!;
    const mib = (b: number) => num(b / MiB);
    return {
      tables: [
        {
          title: `${s.size} volume of ${s.segmentSize} segments (${s.segments ?? 'init’s'} working set), ext4; about 70 % of it deleted before the rewrites`,
          columns: ['after the deletes', 'freed by discards, whole run (MiB)', 'copied forward (MiB)', 'archived (MiB)', 'rewrites (s)', 'copied forward ÷ kept', 'archived ÷ kept'],
          rows: VARIANTS.map((v) => {
            const f = figures.get(v)!;
            return [v, mib(f.discarded), mib(f.copiedForward), mib(f.archived), num(f.seconds), num(f.copiedForward / Math.max(1, kept.copiedForward)), num(f.archived / Math.max(1, kept.archived))];
          }),
        },
      ],
      notes: [`fstrim said: ${figures.get('fstrim')!.trimmed}`],
    };
  },
};

runIfMain(import.meta.url, bench);
