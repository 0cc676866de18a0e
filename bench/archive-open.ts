/**
 * Opening an archive on its own against the length of its history (issue #26): archives of
 * 100, 1,000 and 10,000 segments, each segment object with one synch point, and the catalog the
 * archiver keeps (CatalogWriter, flushed every 16 objects as the archiver does). For each:
 * `ArchiveView.open` (what `salvo list <archive>`, `restore` and the archive mount do first) with
 * the catalog, and without it (its objects deleted: every summary fetched, as before catalogs):
 * time and requests. A directory archive, and S3 (radosgw on 127.0.0.1) when it runs.
 *
 * The segment objects are made by the format's encoder with a small summary and one 4 KiB chunk
 * each (opening reads summaries, never chunks), so a 10,000-segment history takes seconds to make.
 *
 *   node dist/bench/archive-open.js [--quick]
 */
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveKeys, type ArchiveStore } from '../lib/archive/archive-store.js';
import { CatalogWriter } from '../lib/archive/archive-catalog.js';
import { DirectoryStore } from '../lib/archive/directory-store.js';
import { openArchiveStore } from '../lib/archive/open-store.js';
import { encodeArchiveObject } from '../lib/format/archive-object.js';
import { SEGMENT_HEADER_SIZE } from '../lib/format/segment-header.js';
import { SegmentSummary } from '../lib/format/summary.js';
import { ArchiveView } from '../lib/history/archive-view.js';
import { Volume } from '../lib/volume/volume.js';
import { benchS3 } from './s3-server.js';
import { cell, ms, num, runIfMain, summarize, withCleanup, type BenchOptions, type BenchResult, type Benchmark, type Table } from './common.js';

const BS = 4096;
const PUTS_AT_ONCE = 16;

/** An archive of `segments` segment objects with a synch point in each, and its catalog; its descriptor from a real `Volume.create`. */
async function makeArchive(options: BenchOptions, store: ArchiveStore, segments: number): Promise<void> {
  const scratch = fs.mkdtempSync(path.join(options.workDir, 'volume-'));
  await Volume.create(path.join(scratch, 'volume'), { sizeBytes: 1024 * 1024 * 1024, blockSizeBytes: BS, segmentSizeBytes: 64 * 1024 * 1024, spareSegments: 1, archive: store.location, store });
  fs.rmSync(scratch, { recursive: true, force: true });
  const config = await ArchiveView.descriptor(store);
  const writer = new CatalogWriter(store, config.volumeId, null);
  await writer.flush(); // an empty archive: the writer starts from nothing, as a new volume's does
  const chunk = Buffer.alloc(BS + 4, 7);
  for (let first = 1; first <= segments; first += PUTS_AT_ONCE) {
    const batch = Array.from({ length: Math.min(PUTS_AT_ONCE, segments - first + 1) }, (_, i) => first + i);
    await Promise.all(
      batch.map(async (sequence) => {
        const records = sequence * 10;
        const summary = new SegmentSummary(sequence, records, SEGMENT_HEADER_SIZE, SEGMENT_HEADER_SIZE + chunk.length + 96, records + 2);
        summary.addExtent((sequence * 977) % 262_144, 1, false, SEGMENT_HEADER_SIZE + 32);
        summary.synchs.push({ timeMs: 1_795_311_000_000 + sequence * 60_000, label: sequence % 100 === 0 ? `day-${sequence / 100}` : null, info: { agent: 'bench' }, offset: SEGMENT_HEADER_SIZE + chunk.length + 32, recordSequence: records + 1 });
        const key = ArchiveKeys.segment(sequence);
        const parts = encodeArchiveObject(
          { version: config.version, blockSizeBytes: BS, volumeId: config.volumeId, sequence, rawStart: summary.rawStart, rawEnd: summary.rawEnd, chunkSizeBytes: config.chunkSizeBytes },
          summary,
          [{ bytes: chunk, rawLength: summary.rawEnd - summary.rawStart }],
        );
        await store.put(key, parts);
        return { key, summary };
      }),
    ).then((shipped) => {
      for (const { key, summary } of shipped) writer.noteShipped(key, summary.sequence, summary.rawEnd, summary.synchs);
    });
    await writer.flush();
  }
}

interface Opened {
  ms: number;
  requests: number;
  gets: number;
  lists: number;
  points: number;
}

async function timeOpen(open: () => Promise<ArchiveStore>): Promise<Opened> {
  const store = await open();
  const started = performance.now();
  const view = await ArchiveView.open(store);
  const elapsed = performance.now() - started;
  const { gets, lists, heads } = store.stats;
  const points = view.catalog.all.length;
  await view.close();
  return { ms: elapsed, requests: gets + lists + heads, gets, lists, points };
}

export const bench: Benchmark = {
  name: 'archive-open',
  title: 'Opening an archive on its own, against the length of its history',
  description:
    'ArchiveView.open (the first step of `salvo list <archive>`, `salvo restore <archive>` and `salvo mount <archive>`) on archives of 100, 1,000 and 10,000 segments with a synch point each: with the catalog the archiver keeps, and without it (every summary fetched). Directory archive, and S3 on 127.0.0.1 (radosgw) when it runs.',
  async run(options): Promise<BenchResult> {
    return withCleanup(options.log, async (cleanup) => {
      const lengths = options.quick ? [100] : [100, 1000, 10_000];
      const table: Table = {
        title: 'ArchiveView.open: time (ms) and requests',
        columns: ['archive', 'segments', 'catalog objects', 'with catalog (ms)', 'requests', 'without catalog (ms)', 'requests', 'points listed'],
        rows: [],
      };
      const stores: { name: string; make: (n: number) => Promise<() => Promise<ArchiveStore>> }[] = [
        {
          name: 'directory',
          make: async (n) => {
            const dir = path.join(options.workDir, `archive-${n}`);
            return async () => new DirectoryStore(dir);
          },
        },
      ];
      if (!options.quick || process.env.S3_TEST_URL) {
        const s3 = await benchS3(cleanup, 'archive-open', options.log);
        if ('url' in s3) {
          Object.assign(process.env, s3.env);
          stores.push({ name: 'S3 (127.0.0.1)', make: async (n) => () => openArchiveStore(`${s3.url}/${n}`, { endpoint: s3.env.AWS_ENDPOINT_URL }) });
        } else options.log(`archive-open: S3 skipped: ${s3.skipped}`);
      }
      for (const { name, make } of stores) {
        for (const n of lengths) {
          const open = await make(n);
          const building = await open();
          await makeArchive(options, building, n);
          const catalogKeys = await building.list('catalog/');
          const withCatalog: Opened[] = [];
          for (let run = 0; run < options.runs; run++) withCatalog.push(await timeOpen(open));
          for (const key of catalogKeys) await building.delete(key);
          const without: Opened[] = [];
          for (let run = 0; run < options.runs; run++) without.push(await timeOpen(open));
          await building.close();
          options.log(`archive-open: ${name}, ${n} segments: ${num(withCatalog[0]!.ms)} ms with the catalog, ${num(without[0]!.ms)} ms without`);
          table.rows.push([
            name,
            num(n),
            String(catalogKeys.length),
            cell(summarize(withCatalog.map((o) => o.ms)), ms),
            `${withCatalog[0]!.requests} (${withCatalog[0]!.gets} GET, ${withCatalog[0]!.lists} LIST)`,
            cell(summarize(without.map((o) => o.ms)), ms),
            `${without[0]!.requests} (${without[0]!.gets} GET, ${without[0]!.lists} LIST)`,
            `${withCatalog[0]!.points} / ${without[0]!.points}`,
          ]);
        }
      }
      return {
        tables: [table],
        notes: [
          'Requests count the descriptor (1 GET) too. With the catalog: one LIST of catalog/, one GET per catalog object, and a LIST each of segments/ and tails/ that start past the catalog\'s end. Without: a LIST of everything and one or two GETs per segment (its prologue), 8 at a time.',
        ],
      };
    });
  },
};

runIfMain(import.meta.url, bench);
