/**
 * The roll: writes go on into the next segment while the sealed one is made durable behind
 * them, and recovery drops a newest segment whose predecessor a power loss left unfinished.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { slotsDirectory } from '../../lib/volume/files.js';
import type { Volume } from '../../lib/volume/volume.js';
import { createTempVolume, slotFilesWith, SMALL_POLICY } from '../helpers/temp-volume.js';

const BS = SMALL_POLICY.blockSizeBytes;
const BLOCKS = SMALL_POLICY.sizeBytes / BS;
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Fails instead of hanging when `work` waits for what the test holds back. */
function within<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish`)), 5000)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** One-block writes of `value` over blocks from `from` on, until the current segment is sealed; returns the next block. */
async function writeUntilRoll(volume: Volume, value: number, from = 0): Promise<number> {
  const sealed = volume.counters.segmentsSealed;
  let block = from;
  while (volume.counters.segmentsSealed === sealed) {
    await within(volume.write(Buffer.alloc(BS, value), (block % BLOCKS) * BS), 'a write');
    block++;
  }
  return block;
}

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

/**
 * Closes the volume with segment 1 sealed and four blocks of 6s written in segment 2; returns
 * segment 1's slot file and record end, and the first of those blocks.
 */
async function twoSegments(volume: Volume): Promise<{ sealedPath: string; sealedEnd: number; next: number }> {
  const next = await writeUntilRoll(volume, 5);
  const sealed = volume.internals.log.slotHolding(1)!;
  const result = { sealedPath: sealed.path, sealedEnd: sealed.tail, next };
  for (let i = 0; i < 4; i++) await volume.write(Buffer.alloc(BS, 6), ((next + i) % BLOCKS) * BS);
  await volume.close();
  return result;
}

t.test('recovery drops the newest segment when the one before it did not become whole', async (t) => {
  const { store, volume, reopen } = await createTempVolume(t);
  const before = Buffer.concat(Array.from({ length: BLOCKS }, () => Buffer.alloc(BS, 5)));
  const { sealedPath, sealedEnd } = await twoSegments(volume);
  // Power lost before segment 1 was durable: no sidecar yet, nothing of it in the archive, and its last record never reached the disk.
  fs.rmSync(sealedPath.replace(/slot$/, 'sum'));
  for (const key of await store.list('segments/')) await store.delete(key);
  const fd = fs.openSync(sealedPath, 'r+');
  fs.writeSync(fd, Buffer.alloc(BS + 4), 0, BS + 4, sealedEnd - BS - 4);
  fs.closeSync(fd);
  const warnings: string[] = [];
  const again = await reopen({ onWarning: (m) => warnings.push(m) });
  t.teardown(() => again.close());
  t.match(warnings.join('\n'), /dropped the newest segment .*segment 1 ends before record \d+, where segment 2 begins/, 'a warning says so');
  t.equal(again.internals.log.current.sequence, 1, 'segment 1 is current again');
  t.notOk(again.internals.log.slotHolding(2), 'segment 2 is gone');
  const image = again.read(0, SMALL_POLICY.sizeBytes);
  let fives = 0;
  for (let b = 0; b < BLOCKS; b++) {
    const block = image.subarray(b * BS, (b + 1) * BS);
    t.ok(block.equals(before.subarray(b * BS, (b + 1) * BS)) || block.every((x) => x === 0), `block ${b} holds segment 1’s data or was never written`);
    if (block[0] === 5) fives++;
  }
  t.ok(fives > 0, 'segment 1’s records before the torn one are kept');
  // The log goes on: segment 2 is written again, and the volume reopens with it.
  await writeUntilRoll(again, 7);
  await again.close();
  const third = await reopen();
  t.teardown(() => third.close());
  t.equal(third.internals.log.current.sequence, 2, 'a new segment 2 follows');
  t.ok(third.read(0, BS).equals(Buffer.alloc(BS, 7)), 'holding the new writes');
});

t.test('recovery keeps the newest segment when the one before it is whole, sidecar or not', async (t) => {
  const { dir, volume, reopen } = await createTempVolume(t);
  const { next } = await twoSegments(volume);
  const slots = slotsDirectory(dir);
  const sidecars = fs.readdirSync(slots).filter((n) => n.endsWith('.sum'));
  t.equal(sidecars.length, 1, 'segment 1 has a sidecar');
  for (const name of sidecars) fs.rmSync(path.join(slots, name));
  const warnings: string[] = [];
  const again = await reopen({ onWarning: (m) => warnings.push(m) });
  t.teardown(() => again.close());
  t.same(warnings, [], 'no warning');
  t.equal(again.internals.log.current.sequence, 2, 'segment 2 is current');
  t.ok(again.read((next % BLOCKS) * BS, BS).equals(Buffer.alloc(BS, 6)), 'with its writes');
  t.ok(again.internals.log.slotHolding(1), 'segment 1 is kept');
  t.same(fs.readdirSync(slots).filter((n) => n.endsWith('.sum')), sidecars, 'its sidecar is written again');
});
