/**
 * Off-site within seconds: after every synch point the archive alone — a copy of it, the
 * primary set aside — restores that point byte for byte, because the unarchived part of the
 * current segment is shipped as a tail piece at each synch point.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DirectoryStore } from '../../lib/archive/directory-store.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { restoreSnapshot } from '../../lib/history/restore.js';
import { createTempVolume, prng, SMALL_POLICY, tempDir, historyOf } from '../helpers/temp-volume.js';

const BS = 4096;

async function restoreFromCopy(t: Tap.Test, archiveDir: string, spec: string): Promise<Buffer> {
  const copy = path.join(tempDir(t, 'salvo-archive-copy-'), 'archive');
  fs.cpSync(archiveDir, copy, { recursive: true });
  const view = await ArchiveView.open(new DirectoryStore(copy));
  try {
    const out = path.join(tempDir(t, 'salvo-out-'), 'image');
    await restoreSnapshot(await view.snapshots.open(view.catalog.find(spec)), out);
    return fs.readFileSync(out);
  } finally {
    await view.close();
  }
}

t.test('tails: after each synch point, a copy of the archive alone restores it byte for byte', async (t) => {
  const archiveDir = tempDir(t, 'salvo-archive-');
  const store = new DirectoryStore(archiveDir);
  const { volume } = await createTempVolume(t, { store }, { store });
  const random = prng(Number(process.env.SEED ?? 5));
  for (let point = 0; point < 12; point++) {
    const writes = 1 + Math.floor(random() * 40);
    for (let i = 0; i < writes; i++) {
      const block = Math.floor(random() * 64);
      await volume.write(Buffer.alloc(BS, Math.floor(random() * 256)), block * BS);
    }
    const synch = await volume.synch({ label: `p${point}` });
    await volume.idle(); // "seconds after": the tail is on its way as soon as the point is taken
    const snapshot = await historyOf(volume).snapshots.open(synch);
    const expected = await snapshot.read(0, SMALL_POLICY.sizeBytes);
    const restored = await restoreFromCopy(t, archiveDir, `p${point}`);
    t.ok(restored.equals(expected), `p${point} (${writes} writes) restores from the archive alone`);
  }
  const tails = fs.existsSync(path.join(archiveDir, 'tails')) ? fs.readdirSync(path.join(archiveDir, 'tails')) : [];
  const current = volume.internals.log.current.sequence;
  t.ok(tails.every((k) => parseInt(k.slice(0, 16), 16) >= current - 1), `tail pieces of segments archived whole were deleted (${tails.length} left)`);
  t.ok(volume.status().archive.tailsShipped >= 12, 'a tail was shipped at every synch point');
});

t.test('tails: a new volume with a few MiB written and one synch point restores from the archive alone', async (t) => {
  const archiveDir = tempDir(t, 'salvo-archive-');
  const store = new DirectoryStore(archiveDir);
  const { volume } = await createTempVolume(
    t,
    { store, sizeBytes: 16 * 1024 * 1024, segmentSizeBytes: 16 * 1024 * 1024, workingSetSegments: 4 },
    { store },
  );
  const data = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i * 2654435761 >>> 0, i);
  await volume.write(data, 1024 * 1024);
  await volume.synch({ label: 'first' });
  await volume.idle();
  t.equal(volume.counters.segmentsSealed, 0, 'no segment was sealed: only a tail can carry it');
  const restored = await restoreFromCopy(t, archiveDir, 'first');
  t.ok(restored.subarray(1024 * 1024, 4 * 1024 * 1024).equals(data), 'the data is there');
  t.ok(restored.subarray(0, 1024 * 1024).equals(Buffer.alloc(1024 * 1024)), 'and the rest reads as zeros');
  t.equal(volume.status().archive.recoveryPoint, volume.status().latest, 'status: the archive alone restores the newest point');
});

t.test('tails: a missing tail piece ends the segment there; points before it still restore', async (t) => {
  const archiveDir = tempDir(t, 'salvo-archive-');
  const store = new DirectoryStore(archiveDir);
  const { volume } = await createTempVolume(t, { store, segmentSizeBytes: 1024 * 1024 }, { store });
  await volume.write(Buffer.alloc(BS, 1), 0);
  await volume.synch({ label: 'a' });
  await volume.write(Buffer.alloc(BS, 2), 0);
  await volume.synch({ label: 'b' });
  await volume.write(Buffer.alloc(BS, 3), 0);
  await volume.synch({ label: 'c' });
  await volume.idle();
  const tails = fs.readdirSync(path.join(archiveDir, 'tails')).sort();
  t.equal(tails.length, 3, 'one tail piece per synch point');
  fs.rmSync(path.join(archiveDir, 'tails', tails[1]!));
  const view = await ArchiveView.open(new DirectoryStore(archiveDir));
  t.teardown(() => view.close());
  t.same(view.catalog.all.map((p) => p.label), ['a'], 'only the point before the gap is listed');
  const snapshot = await view.snapshots.open(view.catalog.find('a'));
  t.same(await snapshot.read(0, BS), Buffer.alloc(BS, 1), 'and it restores');
});

t.test('tails: an acknowledged point whose tail never shipped ships at the next open, unasked', async (t) => {
  const { volume, store, reopen } = await createTempVolume(t);
  await volume.write(Buffer.alloc(BS, 5), 0);
  await volume.synch({ label: 'shipped' });
  await volume.idle();
  store.failing = true; // the archive goes away: the next point's tail stays queued
  await volume.write(Buffer.alloc(BS, 6), BS);
  await volume.synch({ label: 'stranded' });
  await volume.close(); // as a crash would leave it: the point on primary, its tail not in the archive
  store.failing = false;
  const before = await ArchiveView.open(store);
  t.same(before.catalog.all.map((p) => p.label), ['shipped'], 'the archive lacks the newest point');
  await before.close();
  const reopened = await reopen();
  t.teardown(() => reopened.close());
  await reopened.idle(); // no synch point, no write: the open ships what the archive lacks
  const after = await ArchiveView.open(store);
  t.teardown(() => after.close());
  t.same(after.catalog.all.map((p) => p.label), ['shipped', 'stranded'], 'the archive alone lists it now');
  const snapshot = await after.snapshots.open(after.catalog.find('stranded'));
  t.same(await snapshot.read(BS, BS), Buffer.alloc(BS, 6), 'and restores it');
  t.equal(reopened.status().archive.recoveryPoint, reopened.status().latest, 'status: the archive restores the newest point');
});
