/**
 * The roll: writes go on into the next segment while the sealed one is made durable behind
 * them.
 */
import fs from 'node:fs';
import t from 'tap';
import { createTempVolume, slotFilesWith, SMALL_POLICY, within, writeUntilRoll } from '../helpers/temp-volume.js';

const BS = SMALL_POLICY.blockSizeBytes;

const tick = () => new Promise((resolve) => setImmediate(resolve));

t.test('roll: writes go on while the sealed segment is made durable; a flush, a synch point and the archive wait for it', async (t) => {
  const { dir, store, volume: first, reopen } = await createTempVolume(t);
  await first.close();
  let heldPath: string | null = null;
  const held: (() => void)[] = [];
  const holding = slotFilesWith(dir, (file) => ({
    async datasyncAsync(): Promise<void> {
      if (file.path === heldPath) await new Promise<void>((resolve) => held.push(resolve));
      await file.datasyncAsync();
    },
  }));
  const volume = await reopen({ files: holding });
  t.teardown(() => volume.close().catch(() => undefined));
  const sealedSequence = volume.internals.log.current.sequence;
  heldPath = volume.internals.log.current.path;
  await writeUntilRoll(volume, 1);
  const afterRoll = volume.internals.log.current.sequence;
  t.equal(afterRoll, sealedSequence + 1, 'the segment rolled while every fdatasync of the sealed one was held back');
  await within(volume.write(Buffer.alloc(BS, 2), 0), 'a write after the roll');
  t.ok(held.length > 0, 'the sealed segment’s fdatasync is still waiting');
  t.equal(volume.status().archive.pendingItems, 1, 'the sealed segment waits in the archive queue');
  t.ok(volume.status().archive.bytesWaiting >= volume.internals.log.slotHolding(sealedSequence)!.tail - 64, 'its bytes count as waiting for the archive');

  let flushed = false;
  const flushing = volume.flush().then(() => (flushed = true));
  let synched = false;
  const synching = volume.synch().then(() => (synched = true));
  for (let i = 0; i < 20; i++) await tick();
  t.notOk(flushed, 'a flush waits for the sealed segment');
  t.notOk(synched, 'so does a synch point');
  t.same(await store.list('segments/'), [], 'the archive has not seen the sealed segment');

  heldPath = null;
  for (const release of held.splice(0)) release();
  await within(flushing, 'the flush');
  await within(synching, 'the synch point');
  t.notOk(volume.internals.log.slotHolding(sealedSequence)!.dirty, 'the sealed segment is durable');
  await within(volume.idle(), 'archiving');
  t.equal((await store.list('segments/')).length, 1, 'and then archived');
  t.ok(fs.existsSync(volume.internals.log.slotHolding(sealedSequence)?.path.replace(/slot$/, 'sum') ?? ''), 'with its sidecar written once it was durable');
});

t.test('roll: a sealed segment that failed to become durable fails the next flush, which tries it again', async (t) => {
  const { dir, volume: first, reopen } = await createTempVolume(t);
  await first.close();
  let failPath: string | null = null;
  let failures = 0;
  const failing = slotFilesWith(dir, (file) => ({
    async datasyncAsync(): Promise<void> {
      if (file.path === failPath) {
        failures++;
        throw Object.assign(new Error('fdatasync: EIO'), { code: 'EIO' });
      }
      await file.datasyncAsync();
    },
  }));
  const volume = await reopen({ files: failing });
  t.teardown(() => volume.close().catch(() => undefined));
  failPath = volume.internals.log.current.path;
  await writeUntilRoll(volume, 3);
  await t.rejects(volume.flush(), { code: 'EIO' }, 'the flush reports the sealed segment’s failure');
  const tries = failures;
  await t.rejects(volume.synch(), { code: 'EIO' }, 'so does a synch point');
  t.ok(failures > tries, 'each tried the sealed segment’s fdatasync again');
  t.equal(volume.catalog.all.length, 0, 'and no synch point was recorded');
  failPath = null;
  await volume.flush();
  const point = await volume.synch();
  t.ok(point, 'once the disk works again, flushes and synch points do too');
});

t.test('log: the slot roster (counts, the slot of each segment) agrees with the slots through rolls, retirements and recycling; a flush syncs only slots written', async (t) => {
  const { dir, volume: first, reopen } = await createTempVolume(t);
  await first.close();
  const synced: string[] = [];
  const counting = slotFilesWith(dir, (file) => ({
    async datasyncAsync(): Promise<void> {
      synced.push(file.path);
      await file.datasyncAsync();
    },
  }));
  const volume = await reopen({ files: counting });
  t.teardown(() => volume.close());
  const log = volume.internals.log;
  let disagreements = 0;
  for (let round = 0; round < 40; round++) {
    await writeUntilRoll(volume, round % 5);
    const working = log.slots.filter((s) => s.state === 'current' || s.state === 'active').length;
    if (log.roster.workingSetLength() !== working || log.roster.hasBlankSlot() !== log.slots.some((s) => s.state === 'recycle')) disagreements++;
    for (let sequence = 1; sequence <= log.current.sequence; sequence++) {
      const holder = log.slots.find((s) => s.sequence === sequence && s.state !== 'recycle' && !s.recycling);
      if (log.slotHolding(sequence) !== holder) disagreements++;
    }
    if (round % 10 === 9) await volume.idle();
  }
  t.equal(disagreements, 0, `the counts matched a recount after each of 40 rolls (${volume.counters.segmentsRecycled} slots recycled)`);
  await volume.flush();
  synced.length = 0;
  await volume.write(Buffer.alloc(4096, 7), 0);
  await volume.flush();
  t.same(synced, [log.current.path], 'a flush after one write syncs the current slot alone');
  synced.length = 0;
  await volume.flush();
  t.same(synced, [], 'and a flush with nothing written syncs nothing');
});
