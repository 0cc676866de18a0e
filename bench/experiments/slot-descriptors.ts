/**
 * What opening slot files on demand costs (issue #25): random 4 KiB reads through
 * Volume.readInto over a 512 MiB volume of 1 MiB segments whose blocks lie in 512 slot files
 * (1033 in all), with a pool of descriptors holding every slot and with smaller ones, alternated
 * round by round; and Volume.open's time with each. A pool smaller than the slots a workload
 * touches reopens a slot on each miss (an open, and the close of the least recently used).
 *
 * To compare with another build, run this compiled file from that build's dist/ (a build before
 * the pool ignores `slotDescriptors` and keeps every slot open): BENCHMARKS.md, engine notes,
 * "Slot files opened on demand".
 *
 *   node dist/bench/experiments/slot-descriptors.js [--quick] [--runs N] [--pools 4096,256,64,16]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DirectoryStore } from '../../lib/archive/directory-store.js';
import { Volume } from '../../lib/volume/volume.js';
import { BLOCK_BYTES, prng, writeHistory } from '../history.js';

const MiB = 1024 * 1024;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  // --quick: tiny inputs, so that the smoke test sees it still runs.
  const quick = argv.includes('--quick');
  const SIZE = (quick ? 16 : 512) * MiB;
  const READS = quick ? 2000 : 200_000;
  const runs = Number(arg('--runs') ?? (quick ? 1 : 3));
  const pools = (arg('--pools') ?? (quick ? '4096,4' : '4096,256,64,16')).split(',').map(Number);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'salvo-slot-descriptors-'));
  try {
    const dir = path.join(base, 'volume');
    const store = new DirectoryStore(path.join(base, 'archive'));
    await Volume.create(dir, { sizeBytes: SIZE, blockSizeBytes: BLOCK_BYTES, segmentSizeBytes: MiB, spareSegments: 8, archive: store.location, store });
    let volume = await Volume.open(dir, { store, onStall: () => undefined });
    // Sequential 128 KiB writes over the whole volume: each 1 MiB segment holds ~1 MiB of it.
    await writeHistory(volume, 'seq128k', (_w, bytes) => bytes >= SIZE);
    await volume.idle();
    const slots = volume.config.workingSetSegments + volume.config.spareSegments;
    await volume.close();
    const results = new Map(pools.map((p) => [p, { reads: [] as number[], open: [] as number[] }]));
    const target = Buffer.allocUnsafe(BLOCK_BYTES);
    for (let run = 0; run < runs; run++) {
      for (const pool of pools) {
        let started = process.hrtime.bigint();
        volume = await Volume.open(dir, { store, onStall: () => undefined, slotDescriptors: pool });
        const openMs = Number(process.hrtime.bigint() - started) / 1e6;
        const random = prng(run + 1);
        const blocks = SIZE / BLOCK_BYTES;
        started = process.hrtime.bigint();
        for (let i = 0; i < READS; i++) volume.readInto(target, Math.floor(random() * blocks) * BLOCK_BYTES);
        const perSecond = READS / (Number(process.hrtime.bigint() - started) / 1e9);
        await volume.close();
        results.get(pool)!.reads.push(perSecond);
        results.get(pool)!.open.push(openMs);
        process.stderr.write(`run ${run + 1}, pool ${pool}: ${Math.round(perSecond)} reads/s, open ${openMs.toFixed(0)} ms\n`);
      }
    }
    process.stdout.write(`slot descriptors: ${slots} slot files, blocks in ~${SIZE / MiB} of them; ${READS} random 4k reads a run, ${runs} runs (median, min–max)\n`);
    for (const [pool, r] of results) {
      const k = (v: number) => `${(v / 1000).toFixed(0)}k`;
      process.stdout.write(
        `pool ${pool}: ${k(median(r.reads))} (${k(Math.min(...r.reads))}–${k(Math.max(...r.reads))}) reads/s; open ${median(r.open).toFixed(0)} ms (${Math.min(...r.open).toFixed(0)}–${Math.max(...r.open).toFixed(0)})\n`,
      );
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

await main(process.argv.slice(2));
