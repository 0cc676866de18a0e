/**
 * What a synch point costs the archive: at each point the part of the current segment not
 * yet archived is shipped as a tail piece. Measured: archive bytes and requests per point,
 * against what the application wrote since the previous point (raw and compressed).
 *
 *   node dist/bench/tails.js [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { cell, MiB, num, runIfMain, summarize, type BenchResult, type Benchmark, type BenchOptions, type Table } from './common.js';
import { createVolume, dataFor } from './history.js';

const SPACINGS_KIB = [4, 64, 1024, 8192];

async function perPoint(options: BenchOptions, spacingKiB: number, points: number): Promise<number[][]> {
  const base = mkdtempSync(path.join(options.workDir, `tails-${spacingKiB}-`));
  const { volume } = await createVolume(base, { sizeBytes: 256 * MiB, segmentSizeBytes: 64 * MiB, workingSetSegments: 8, spareSegments: 2 });
  const samples: number[][] = [];
  try {
    let n = 0;
    for (let p = 0; p < points; p++) {
      const before = { ...volume.store.stats };
      const bytes = spacingKiB * 1024;
      for (let written = 0; written < bytes; written += 128 * 1024) {
        const length = Math.min(128 * 1024, bytes - written);
        await volume.write(dataFor(n, length), ((n * 128 * 1024) % (255 * MiB)) & ~4095);
        n++;
      }
      await volume.synch();
      await volume.idle();
      const after = volume.store.stats;
      samples.push([after.bytesPut - before.bytesPut, after.puts - before.puts, after.heads - before.heads, bytes]);
    }
  } finally {
    await volume.close();
    rmSync(base, { recursive: true, force: true });
  }
  return samples;
}

export const bench: Benchmark = {
  name: 'tails',
  title: 'What a synch point costs the archive',
  description:
    'Archive bytes and requests per synch point (the tail piece shipped at each point), against the bytes the application wrote since the previous point. Engine level, a directory archive, data about 2:1 compressible.',
  async run(options): Promise<BenchResult> {
    const points = options.quick ? 3 : 20;
    const table: Table = {
      title: `per synch point (${points} points each; 128 KiB writes between them)`,
      columns: ['written since the last point', 'archive bytes per point', 'archive bytes / written', 'PUTs per point', 'HEADs per point'],
      rows: [],
    };
    for (const spacing of options.quick ? SPACINGS_KIB.slice(0, 2) : SPACINGS_KIB) {
      const samples = await perPoint(options, spacing, points);
      options.log(`tails: ${spacing} KiB between points done`);
      table.rows.push([
        spacing >= 1024 ? `${spacing / 1024} MiB` : `${spacing} KiB`,
        cell(summarize(samples.map((s) => s[0]!)), (v) => `${num(v / 1024)} KiB`),
        cell(summarize(samples.map((s) => s[0]! / s[3]!)), (v) => v.toFixed(2)),
        cell(summarize(samples.map((s) => s[1]!))),
        cell(summarize(samples.map((s) => s[2]!))),
      ]);
    }
    return {
      tables: [table],
      notes: [
        'one PUT (the tail piece) and one HEAD (its size confirmed) per point; a point costs the archive about what was written since the last one, compressed, plus the piece’s header, summary and chunk table.',
      ],
    };
  },
};

runIfMain(import.meta.url, bench);
