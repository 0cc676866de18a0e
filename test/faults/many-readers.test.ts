/**
 * Many readers: 16 snapshots read in parallel while the live volume takes writes and the
 * archiver runs; every read is right, and the caches stay within the configured bound.
 */
import t from 'tap';
import { createTempVolume, prng, SMALL_POLICY, historyOf } from '../helpers/temp-volume.js';
import { figures } from './figures.js';

const BS = 4096;
const CACHE = 256 * 1024;

t.test('many-readers: 16 snapshots read in parallel with writes and archiving, within the cache bound', async (t) => {
  const random = prng(Number(process.env.SEED ?? 3));
  const { volume } = await createTempVolume(t);
  historyOf(volume, CACHE);
  const model = Buffer.alloc(SMALL_POLICY.sizeBytes);
  const write = async () => {
    const block = Math.floor(random() * 64);
    const data = Buffer.alloc(BS, Math.floor(random() * 256));
    await volume.write(data, block * BS);
    data.copy(model, block * BS);
  };
  const images = new Map<number, Buffer>();
  for (let i = 0; i < 16; i++) {
    for (let w = 0; w < 60; w++) await write();
    images.set((await volume.synch()).recordSequence, Buffer.from(model));
  }
  let reads = 0;
  let wrong = 0;
  let peakBytes = 0;
  let writing = true;
  const writer = (async () => {
    while (writing) await write();
  })();
  await Promise.all(
    volume.catalog.all.map(async (point) => {
      const expected = images.get(point.recordSequence)!;
      for (let round = 0; round < 20; round++) {
        const block = Math.floor(random() * 60);
        const count = 1 + Math.floor(random() * 4);
        const snapshot = await historyOf(volume).snapshots.open(point);
        const bytes = await snapshot.read(block * BS, count * BS);
        reads++;
        if (!bytes.equals(expected.subarray(block * BS, (block + count) * BS))) {
          wrong++;
          t.fail(`point ${point.recordSequence}: blocks ${block}+${count} differ`);
        }
        peakBytes = Math.max(peakBytes, historyOf(volume).snapshots.bytes + historyOf(volume).source.cacheBytes);
      }
    }),
  );
  writing = false;
  await writer;
  await volume.idle();
  t.ok(historyOf(volume).source.stats.chunksFetched > 0, 'older points were read from the archive');
  t.ok(peakBytes <= CACHE, `the caches never held more than the bound (${peakBytes} ≤ ${CACHE})`);
  figures(t, 'many-readers', { 'snapshots read in parallel': volume.catalog.all.length, reads, 'archive chunks fetched': historyOf(volume).source.stats.chunksFetched, 'wrong reads': wrong });
});
