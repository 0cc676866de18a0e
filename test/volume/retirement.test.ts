/** Retirement (lib/volume/retirement.ts): only live entries are read and copied, and the event loop turns meanwhile. */
import path from 'node:path';
import t from 'tap';
import { createTempVolume, slotFilesWith, SMALL_POLICY } from '../helpers/temp-volume.js';

const BS = SMALL_POLICY.blockSizeBytes;

t.test('volume: a retirement reads only the live entries of its segment', async (t) => {
  // Synchronous reads of each slot, by file name (the archiver's reads are asynchronous).
  const syncReads = new Map<string, number>();
  const { dir, volume: first, reopen } = await createTempVolume(t);
  await first.close();
  const counting = slotFilesWith(dir, (file) => {
    const name = path.basename(file.path);
    return {
      read(into: Buffer, offset: number, length: number, position: number): number {
        syncReads.set(name, (syncReads.get(name) ?? 0) + length);
        return file.read(into, offset, length, position);
      },
    };
  });
  // No copy-ahead: the roll's retirement does the copy.
  const volume = await reopen({ files: counting, copyAheadIdleMs: 60_000 });
  t.teardown(() => volume.close().catch(() => undefined));
  const cold = Buffer.alloc(3 * BS, 7);
  await volume.write(cold, 0);
  // Fill the oldest segment with hot blocks that are rewritten later: superseded, never read.
  let n = 0;
  const hot = () => volume.write(Buffer.alloc(BS, 1 + (n % 250)), (32 + (n++ % 4)) * BS);
  while (volume.internals.log.workingSet().length < SMALL_POLICY.workingSetSegments) await hot();
  const oldest = volume.internals.log.workingSet()[0]!;
  const name = path.basename(oldest.path);
  t.equal(volume.index.slotOf(0), oldest.index, 'the cold blocks live in the oldest segment');
  syncReads.clear();
  const retired = volume.counters.segmentsRetired;
  while (volume.counters.segmentsRetired === retired) await hot();
  t.equal(volume.counters.bytesCopiedForward, cold.length, 'the retirement copied the cold blocks');
  t.equal(syncReads.get(name), 3 * (4 + BS), 'and read only their entries from the segment, not all of it');
  t.same(volume.read(0, cold.length), cold);
});

t.test('volume: the event loop turns while a dense segment retires', async (t) => {
  const MiB = 1024 * 1024;
  const { volume } = await createTempVolume(t, { sizeBytes: 6 * MiB, segmentSizeBytes: 8 * MiB, workingSetSegments: 3, spareSegments: 2 });
  // 6 MiB that stay live fill most of the first segment: its retirement copies them all.
  const cold = Buffer.alloc(6 * MiB);
  for (let i = 0; i < cold.length / BS; i++) cold.fill(i % 251, i * BS, (i + 1) * BS);
  for (let at = 0; at < cold.length; at += 128 * 1024) await volume.write(cold.subarray(at, at + 128 * 1024), at);
  const oldest = volume.internals.log.workingSet()[0]!;
  // Rewrite one block until the roll that retires the oldest segment; watch from the event loop meanwhile.
  const seen: number[] = [];
  const watch = () => {
    if (volume.counters.segmentsRetired > 0) return;
    seen.push(volume.counters.bytesCopiedForward);
    setImmediate(watch);
  };
  setImmediate(watch);
  for (let n = 0; volume.counters.segmentsRetired === 0; n++) await volume.write(Buffer.alloc(BS, n % 250), 0);
  t.not(oldest.state, 'active', 'the oldest segment retired');
  const midway = seen.filter((copied) => copied > 0 && copied < cold.length - BS);
  t.ok(midway.length > 0, `the event loop ran with part of the copy done (${midway.length} turns)`);
  t.same(volume.read(BS, cold.length - BS), cold.subarray(BS), 'the copied blocks read the same');
});
