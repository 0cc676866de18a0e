/**
 * Discards (Volume.discard, Log.discardBlocks): a range reads as zeros from that point of the
 * history on, points before keep their data, freed blocks leave the index and are never copied
 * forward, and a discard of what reads as zeros already writes nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { restoreSnapshot } from '../../lib/history/restore.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { CompressionPool } from '../../lib/archive/compression-pool.js';
import { verifyArchive } from '../../lib/history/verify.js';
import { emptyCounts } from '../../lib/volume/slot-check.js';
import { createTempVolume, historyOf, SMALL_POLICY, tempDir } from '../helpers/temp-volume.js';

const BS = SMALL_POLICY.blockSizeBytes;
const BLOCKS = SMALL_POLICY.sizeBytes / BS;

function pattern(blocks: number, seed: number): Buffer {
  const data = Buffer.alloc(blocks * BS);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((seed * 2654435761 + i) >>> 0, i);
  return data;
}

t.test('discard: whole blocks read as zeros after, and the point before keeps them', async (t) => {
  const { volume } = await createTempVolume(t);
  const data = pattern(16, 1);
  await volume.write(data, 8 * BS);
  const before = await volume.synch({ label: 'before' });
  await volume.discard(10 * BS, 4 * BS);
  const after = await volume.synch({ label: 'after' });

  const expected = Buffer.from(data);
  expected.fill(0, 2 * BS, 6 * BS);
  t.same(volume.read(8 * BS, 16 * BS), expected, 'the live volume reads zeros in the range, data around it');
  for (let b = 10; b < 14; b++) t.equal(volume.index.slotOf(b), -1, `block ${b} left the live index`);
  t.equal(volume.status().bytesDiscarded, 4 * BS, 'status counts the freed bytes');
  const history = historyOf(volume);
  t.same(await (await history.snapshots.open(before)).read(8 * BS, 16 * BS), data, 'the point before has the old data');
  t.same(await (await history.snapshots.open(after)).read(8 * BS, 16 * BS), expected, 'the point after reads zeros');
});

t.test('discard: partial blocks at the ends are zero-filled, the rest of them kept', async (t) => {
  const { volume } = await createTempVolume(t);
  const data = pattern(4, 2);
  await volume.write(data, 0);
  await volume.discard(BS - 100, 2 * BS + 200); // from 100 bytes before block 1 to 100 bytes into block 3
  const expected = Buffer.from(data);
  expected.fill(0, BS - 100, 3 * BS + 100);
  t.same(volume.read(0, 4 * BS), expected);
  await volume.discard(3 * BS + 200, 300); // inside one block
  expected.fill(0, 3 * BS + 200, 3 * BS + 500);
  t.same(volume.read(0, 4 * BS), expected);
  t.not(volume.index.slotOf(3), -1, 'a partly discarded block keeps its (rewritten) entry');
});

t.test('discard: what reads as zeros already writes nothing', async (t) => {
  const { volume } = await createTempVolume(t);
  await volume.write(pattern(2, 3), 40 * BS);
  const log = volume.internals.log;
  const stamp = log.appendStamp;
  await volume.discard(0, 40 * BS); // never written
  await volume.discard(BS + 1, 3 * BS); // never written, unaligned
  t.equal(log.appendStamp, stamp, 'no record for blocks never written');
  await volume.discard(0, SMALL_POLICY.sizeBytes);
  t.equal(log.appendStamp, stamp + 1, 'one ZERO record for the one run with data');
  const tail = log.current.tail;
  await volume.discard(0, SMALL_POLICY.sizeBytes); // a weekly fstrim of an idle filesystem
  t.equal(log.appendStamp, stamp + 1, 'a repeated discard writes no record');
  t.equal(log.current.tail, tail, 'nor any byte');
  t.same(volume.read(0, SMALL_POLICY.sizeBytes), Buffer.alloc(SMALL_POLICY.sizeBytes));
});

t.test('discard: freed blocks are never copied forward', async (t) => {
  const { volume } = await createTempVolume(t);
  await volume.write(pattern(32, 4), 0);
  await volume.discard(0, 32 * BS);
  // Enough one-block writes elsewhere to pass the working set several times over.
  for (let i = 0; i < SMALL_POLICY.workingSetSegments * 3 * 30; i++) await volume.write(Buffer.alloc(BS, 1 + (i % 200)), (32 + (i % 8)) * BS);
  t.ok(volume.counters.segmentsRetired > SMALL_POLICY.workingSetSegments, `segments retired (${volume.counters.segmentsRetired})`);
  t.ok(volume.counters.bytesCopiedForward <= 8 * BS * volume.counters.segmentsRetired, `only the 8 live blocks were ever copied (${volume.counters.bytesCopiedForward} bytes)`);
  t.same(volume.read(0, 32 * BS), Buffer.alloc(32 * BS));
});

t.test('discard: a range of many runs fills segments and rolls', async (t) => {
  const { volume } = await createTempVolume(t);
  // Every other block written: a discard of all is one ZERO record a block.
  for (let b = 0; b < BLOCKS; b += 2) await volume.write(pattern(1, b), b * BS);
  // Fill the current segment to within a few record headers of its end: blocks, then ZERO records of 32 bytes.
  const log = volume.internals.log;
  const room = () => SMALL_POLICY.segmentSizeBytes - log.current.tail;
  while (room() > 2 * (BS + 36)) await volume.write(Buffer.alloc(BS, 7), (BLOCKS - 1) * BS);
  while (room() > 16 * 32) await volume.write(Buffer.alloc(BS), (BLOCKS - 1) * BS);
  const sealed = volume.counters.segmentsSealed;
  await volume.discard(0, SMALL_POLICY.sizeBytes);
  t.ok(volume.counters.segmentsSealed > sealed, 'the discard rolled to a new segment');
  t.same(volume.read(0, SMALL_POLICY.sizeBytes), Buffer.alloc(SMALL_POLICY.sizeBytes));
  t.equal(volume.index.size, 0, 'the live index is empty');
});

t.test('discard: survives reopen; verify, the archive alone and restore agree (holes)', async (t) => {
  const archive = tempDir(t, 'salvo-archive-');
  const { DirectoryStore } = await import('../../lib/archive/directory-store.js');
  const store = new DirectoryStore(archive);
  const { dir, volume, reopen } = await createTempVolume(t, { store }, { store });
  const data = pattern(48, 5);
  await volume.write(data, 0);
  await volume.synch({ label: 'full' });
  await volume.discard(4 * BS, 40 * BS);
  await volume.synch({ label: 'trimmed' });
  await volume.close();

  const again = await reopen();
  const expected = Buffer.from(data);
  expected.fill(0, 4 * BS, 44 * BS);
  t.same(again.read(0, 48 * BS), expected, 'recovery replays the discard');
  await again.idle();
  await again.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const pool = new CompressionPool();
  t.same(await verifyArchive(store, pool, null, (await ArchiveView.descriptor(store)).volumeId, emptyCounts()), [], 'verify finds the archive whole');
  await pool.close();
  const view = await ArchiveView.open(store);
  t.teardown(() => view.close());
  const out = tempDir(t, 'salvo-restore-');
  for (const [label, image] of [['full', data], ['trimmed', expected]] as const) {
    const target = path.join(out, `${label}.img`);
    await restoreSnapshot(await view.snapshots.open(view.catalog.find(label)), target);
    t.same(fs.readFileSync(target).subarray(0, 48 * BS), image, `${label} restores from the archive alone`);
    if (label === 'trimmed') t.ok(fs.statSync(target).blocks * 512 <= 8 * BS, `the discarded range is a hole (${fs.statSync(target).blocks * 512} bytes allocated)`);
  }
});
