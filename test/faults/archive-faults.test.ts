/**
 * Archive faults: while the store is down, writes go on into spare slots, then wait with a
 * reported stall; nothing is recycled before its object is confirmed; when the store comes
 * back everything drains and no write is lost.
 */
import fs from 'node:fs';
import t from 'tap';
import { VolumeHistory } from '../../lib/history/history.js';
import { Volume } from '../../lib/volume/volume.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { createTempVolume, SMALL_POLICY, historyOf } from '../helpers/temp-volume.js';
import { FaultyStore } from './faulty-store.js';
import { figures } from './figures.js';

const BS = 4096;

t.test('archive-faults: an outage stalls writes once the spare slots are full, and they resume when it ends', async (t) => {
  const store = new MemoryStore();
  const stalls: string[] = [];
  const { volume } = await createTempVolume(t, {}, { store, onStall: (m) => stalls.push(m), retryDelayMsMax: 20 });
  const model = Buffer.alloc(SMALL_POLICY.sizeBytes);
  const write = async (i: number) => {
    const block = (i * 7) % 64;
    const data = Buffer.alloc(BS, (i % 250) + 1);
    await volume.write(data, block * BS);
    data.copy(model, block * BS);
  };
  let i = 0;
  for (; i < 100; i++) await write(i);
  await volume.idle();
  store.failing = true;
  const archivedBefore = store.objects.size;

  // Write until the volume stalls: a write that does not finish within 200 ms.
  let stalled: Promise<void> | null = null;
  for (; i < 5000 && !stalled; i++) {
    const pending = write(i);
    const finished = await Promise.race([pending.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);
    if (!finished) stalled = pending;
  }
  t.ok(stalled, `writes stalled after ${i} writes`);
  t.equal(stalls.length, 1, 'the stall was reported once');
  t.match(stalls[0], /writes stalled.*wait for the archive/);
  t.ok(volume.status().writesStalledSince, 'status shows the stall');
  t.match(volume.status().archive.lastError, /memory store is set to fail/, 'status shows why');
  t.equal(store.objects.size, archivedBefore, 'nothing reached the archive');
  for (const slot of volume.internals.log.slots) {
    if (slot.state === 'inactive') t.notOk(slot.archived, 'inactive segments wait, unarchived, on primary');
  }
  t.ok(volume.read(0, SMALL_POLICY.sizeBytes).equals(model), 'reads go on during the stall');

  store.failing = false;
  await stalled;
  for (let j = 0; j < 200; j++) await write(i + j);
  await volume.idle();
  t.equal(volume.status().writesStalledSince, null, 'the stall is over');
  t.equal(volume.status().writeStalls.count, stalls.length, 'status counts every stall reported, once it is over (draining the backlog may stall again)');
  t.ok(volume.status().writeStalls.totalMs >= 200, 'with how long writes waited');
  t.ok(store.objects.size > archivedBefore + 5, 'the backlog drained to the archive');
  t.ok(volume.read(0, SMALL_POLICY.sizeBytes).equals(model), 'no write was lost');
});

t.test('archive-faults: reads and synch points keep working during an outage', async (t) => {
  const store = new MemoryStore();
  const { volume } = await createTempVolume(t, {}, { store, retryDelayMsMax: 20 });
  await volume.write(Buffer.alloc(BS, 3), 0);
  store.failing = true;
  const point = await volume.synch({ label: 'during-outage' });
  t.same(volume.read(0, BS), Buffer.alloc(BS, 3));
  const snapshot = await historyOf(volume).snapshots.open(point);
  t.same(await snapshot.read(0, BS), Buffer.alloc(BS, 3), 'a snapshot on primary opens without the archive');
  t.equal(volume.status().archive.recoveryPoint, null, 'the archive cannot restore it yet');
  store.failing = false;
  await volume.idle();
  t.equal(volume.status().archive.recoveryPoint, new Date(point.timeMs).toISOString(), 'once the tail is shipped it can');
});

t.test('archive-faults: a copy of the volume directory cannot mount against the same archive', async (t) => {
  const store = new MemoryStore();
  const { dir, volume } = await createTempVolume(t, {}, { store });
  for (let i = 0; i < 200; i++) await volume.write(Buffer.alloc(BS, i + 1), (i % 64) * BS);
  await volume.idle();
  await volume.close();
  const copy = `${dir}-copy`;
  fs.cpSync(dir, copy, { recursive: true });
  t.teardown(() => fs.rmSync(copy, { recursive: true, force: true }));
  const original = await Volume.open(dir, { store, onStall: () => undefined });
  for (let i = 0; i < 200; i++) await original.write(Buffer.alloc(BS, 7), (i % 64) * BS);
  await original.idle();
  await original.close();
  await t.rejects(Volume.open(copy, { store, onStall: () => undefined }), { code: 'ARCHIVE_CONFLICT', message: /newer than this volume's newest segment/ }, 'the stale copy is refused');
  t.notOk(fs.existsSync(`${copy}/lock`), 'and leaves no lock behind');
});

t.test('archive-faults: failing puts are retried; truncated, corrupted and timed-out reads are refused, never served', async (t) => {
  const store = new FaultyStore();
  store.failEveryPut = 3;
  const { volume } = await createTempVolume(t, {}, { store, retryDelayMsMax: 5 });
  historyOf(volume, 64 * 1024);
  const model = Buffer.alloc(SMALL_POLICY.sizeBytes);
  const images = new Map<number, Buffer>();
  for (let round = 0; round < 10; round++) {
    for (let block = 0; block < 64; block++) {
      const data = Buffer.alloc(BS, ((round * 64 + block) % 250) + 1);
      await volume.write(data, block * BS);
      data.copy(model, block * BS);
    }
    images.set((await volume.synch()).recordSequence, Buffer.from(model));
  }
  await volume.idle();
  t.ok(store.injected.puts > 3, `${store.injected.puts} puts failed and were retried`);
  for (const slot of volume.internals.log.slots) {
    if (slot.state === 'recycle') continue;
    if (slot.archived) t.ok(store.inner.objects.has(`segments/${slot.sequence.toString(16).padStart(16, '0')}.seg`), `segment ${slot.sequence} is archived only once the store holds it`);
  }
  const oldest = volume.catalog.all[0]!;
  t.notOk(historyOf(volume).source.onPrimary(oldest.sequence), 'the oldest point needs the archive');
  let refused = 0;
  for (const fault of ['truncate', 'corrupt', 'timeout'] as const) {
    store.readFault = fault;
    // A history of its own, nothing cached: every read of the archive meets the fault.
    const history = new VolumeHistory(volume);
    try {
      await (await history.snapshots.open(oldest)).read(0, SMALL_POLICY.sizeBytes);
      t.fail(`${fault}: a read through the fault was served`);
    } catch (err) {
      refused++;
      t.match(err, { code: fault === 'timeout' ? 'ARCHIVE_UNAVAILABLE' : 'CORRUPT_ARCHIVE' }, `${fault}: the read is refused`);
    } finally {
      history.close();
    }
  }
  t.equal(refused, 3, 'every faulty read was refused');
  store.readFault = 'none';
  for (const point of volume.catalog.all) {
    const image = await (await historyOf(volume).snapshots.open(point)).read(0, SMALL_POLICY.sizeBytes);
    if (!image.equals(images.get(point.recordSequence)!)) t.fail(`point ${point.recordSequence} reads wrong after the faults`);
  }
  t.pass('once the store behaves, every point reads right: no bad bytes were cached');
  figures(t, 'archive-faults', { 'puts failed and retried': store.injected.puts, 'faulty reads injected': store.injected.reads, 'faulty reads refused': refused });
});
