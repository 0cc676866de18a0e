/**
 * Corruption: a flipped byte in an archived summary, in an archived chunk, or in a primary
 * slot is found by verify (with where it is), and no read path serves the damaged data —
 * while everything else still reads.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DirectoryStore } from '../../lib/archive/directory-store.js';
import { fetchArchiveIndex } from '../../lib/archive/archive-reader.js';
import { ArchiveKeys } from '../../lib/archive/archive-store.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { createTempVolume, SMALL_POLICY, tempDir, historyOf } from '../helpers/temp-volume.js';
import { salvo } from '../helpers/system.js';

const BS = 4096;

function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, offset);
  byte[0]! ^= 0x40;
  fs.writeSync(fd, byte, 0, 1, offset);
  fs.closeSync(fd);
}

t.test('corruption: verify finds each flipped byte; reads refuse the damaged data and serve the rest', async (t) => {
  const archiveDir = tempDir(t, 'salvo-archive-');
  const store = new DirectoryStore(archiveDir);
  const { dir, volume } = await createTempVolume(t, { store }, { store });
  for (let round = 0; round < 12; round++) {
    for (let block = 0; block < 64; block++) await volume.write(Buffer.alloc(BS, ((round * 64 + block) % 251) + 1), block * BS);
    await volume.synch({ label: `round-${round}` });
  }
  await volume.idle();
  const first = volume.catalog.all[0]!;
  const onPrimary = (s: number) => historyOf(volume).source.onPrimary(s);
  t.notOk(onPrimary(first.sequence), 'the first point is only in the archive');

  // 1. A chunk of an archived segment that the first point reads.
  const chunkKey = ArchiveKeys.segment(first.sequence);
  const chunkIndex = await fetchArchiveIndex(store, chunkKey);
  flipByte(path.join(archiveDir, chunkKey), chunkIndex.chunks[0]!.objectOffset + 10);
  // 2. The summary of another archived segment, one that a later point's window needs.
  const summaryKey = ArchiveKeys.segment(first.sequence + 2);
  flipByte(path.join(archiveDir, summaryKey), 64 + 60);
  // 3. A block of the live volume on primary storage.
  const slot = volume.internals.log.slots[volume.index.slotOf(5)]!;
  flipByte(slot.path, volume.index.offsetOf(5) + 4 + 100);

  t.throws(() => volume.read(5 * BS, BS), { code: 'CORRUPT_BLOCK' }, 'the damaged live block is refused');
  t.same(volume.read(6 * BS, BS), Buffer.alloc(BS, ((11 * 64 + 6) % 251) + 1), 'its neighbour still reads');
  const snapshot = await historyOf(volume).snapshots.open(first);
  await t.rejects(snapshot.read(0, SMALL_POLICY.sizeBytes), { code: 'CORRUPT_ARCHIVE' }, 'the damaged chunk is refused');
  const damagedWindow = volume.catalog.all.find((p) => p.sequence - SMALL_POLICY.workingSetSegments <= first.sequence + 2 && p.sequence >= first.sequence + 2 && !onPrimary(first.sequence + 2));
  t.ok(damagedWindow, 'a point’s window needs the damaged summary');
  await t.rejects(historyOf(volume).snapshots.open(damagedWindow!), { code: 'CORRUPT_ARCHIVE' }, 'a window with a damaged summary is refused');
  const latest = await historyOf(volume).snapshots.open(volume.catalog.latest!);
  t.same(await latest.read(7 * BS, BS), Buffer.alloc(BS, ((11 * 64 + 7) % 251) + 1), 'the newest point still reads');
  await volume.close();

  const verify = await salvo(['verify', dir, '--json']);
  t.equal(verify.code, 3, 'verify exits 3 when it finds problems');
  const report = JSON.parse(verify.stdout) as { ok: boolean; problems: { where: string; segment: number; offset: number | null; message: string }[] };
  t.notOk(report.ok);
  t.ok(report.problems.some((p) => p.where === chunkKey && /chunk 0 checksum mismatch/.test(p.message)), 'it names the damaged chunk');
  t.ok(report.problems.some((p) => p.where === summaryKey && /summary checksum mismatch/.test(p.message)), 'it names the damaged summary');
  t.ok(report.problems.some((p) => p.where === slot.path && p.offset === volume.index.offsetOf(5) && /block 5 failed/.test(p.message)), 'it names the damaged block with its offset');

  // The archive alone: restore refuses, verify reports.
  fs.rmSync(dir, { recursive: true, force: true });
  const view = await ArchiveView.open(new DirectoryStore(archiveDir));
  t.teardown(() => view.close());
  const out = path.join(tempDir(t), 'first.img');
  const restore = await salvo(['restore', archiveDir, '--at', 'round-0', out]);
  t.equal(restore.code, 1, 'restore of the damaged point fails');
  t.match(restore.stderr, /CORRUPT_ARCHIVE.*chunk 0 checksum mismatch/);
  t.notOk(fs.existsSync(out), 'and leaves no partial image');
  const good = await salvo(['restore', archiveDir, '--at', 'latest', out]);
  t.equal(good.code, 0, `the newest point restores from the archive alone: ${good.stderr}`);
});

t.test('corruption: a read of many blocks names the damaged one, wherever it lies in the record', async (t) => {
  const { volume } = await createTempVolume(t);
  const data = Buffer.alloc(16 * BS);
  for (let i = 0; i < 16; i++) data.fill(i + 1, i * BS, (i + 1) * BS);
  await volume.write(data, 0); // one record: the sixteen entries back to back
  const slot = volume.internals.log.slots[volume.index.slotOf(0)]!;
  t.equal(volume.index.offsetOf(11), volume.index.offsetOf(0) + 11 * (4 + BS), 'the entries are contiguous');
  flipByte(slot.path, volume.index.offsetOf(11) + 4 + 2000);
  t.throws(() => volume.read(0, 16 * BS), { code: 'CORRUPT_BLOCK', message: /block 11 failed/ }, 'the read refuses, naming block 11');
  t.same(volume.read(0, 11 * BS), data.subarray(0, 11 * BS), 'the blocks before it still read');
  t.same(volume.read(12 * BS, 4 * BS), data.subarray(12 * BS), 'and those after it');
});

t.test('corruption: a slot recycled under an open snapshot is read from the archive instead', async (t) => {
  const { volume } = await createTempVolume(t);
  for (let block = 0; block < 64; block++) await volume.write(Buffer.alloc(BS, block + 1), block * BS);
  const point = await volume.synch();
  const snapshot = await historyOf(volume).snapshots.open(point);
  t.ok(snapshot.window.every((s) => historyOf(volume).source.onPrimary(s)), 'opened while its window is on primary');
  for (let round = 0; round < 10; round++) {
    for (let block = 0; block < 64; block++) await volume.write(Buffer.alloc(BS, 200 + round), block * BS);
  }
  await volume.idle();
  t.notOk(snapshot.window.every((s) => historyOf(volume).source.onPrimary(s)), 'its slots were recycled since');
  const image = await snapshot.read(0, SMALL_POLICY.sizeBytes);
  for (let block = 0; block < 64; block++) {
    if (!image.subarray(block * BS, (block + 1) * BS).equals(Buffer.alloc(BS, block + 1))) t.fail(`block ${block} changed`);
  }
  t.ok(historyOf(volume).source.stats.chunksFetched > 0, 'the blocks came from the archive');
});

