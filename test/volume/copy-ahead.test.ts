/** Copy-ahead (lib/volume/copy-ahead.ts): copies made while writes pause, as far as recent bursts reach. */
import t from 'tap';
import { FLAG_COPY_FORWARD, RECORD_HEADER_SIZE, RECORD_MAGIC } from '../../lib/format/record.js';
import type { Volume } from '../../lib/volume/volume.js';
import { createTempVolume, slotFilesWith, SMALL_POLICY, historyOf } from '../helpers/temp-volume.js';

const BS = SMALL_POLICY.blockSizeBytes;

t.test('volume: once writes pause, copy-forward runs ahead of the next retirement, without a roll', async (t) => {
  const { volume } = await createTempVolume(t);
  const W = SMALL_POLICY.workingSetSegments;
  const cold = Buffer.alloc(16 * BS);
  for (let i = 0; i < 16; i++) cold.fill(100 + i, i * BS, (i + 1) * BS);
  await volume.write(cold, 0);
  const before = await volume.synch({ label: 'cold' });
  // Rewrite a few hot blocks until the working set is full and its oldest segment holds the cold blocks.
  let n = 0;
  const hot = (i: number) => Buffer.alloc(BS, i % 251);
  while (volume.internals.log.workingSet().length < W || volume.internals.log.current.tail > SMALL_POLICY.segmentSizeBytes / 4) {
    await volume.write(hot(n), (32 + (n % 4)) * BS);
    n++;
  }
  const oldest = volume.internals.log.workingSet()[0]!;
  t.equal(volume.index.slotOf(0), oldest.index, 'the cold blocks live in the oldest active segment');
  const sealed = volume.counters.segmentsSealed;
  for (let waited = 0; volume.index.slotOf(15) === oldest.index && waited < 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  t.equal(volume.index.slotOf(0), volume.internals.log.current.index, 'idle: the cold blocks were copied into the current segment');
  t.equal(volume.index.slotOf(15), volume.internals.log.current.index);
  t.equal(volume.counters.bytesCopiedForward, cold.length, 'each once');
  t.equal(volume.counters.segmentsSealed, sealed, 'without a roll');
  t.same(volume.read(0, cold.length), cold);
  // The next roll retires the oldest segment with nothing left to copy; the past stays as it was.
  while (volume.counters.segmentsSealed === sealed) await volume.write(hot(n++), (32 + (n % 4)) * BS);
  t.equal(volume.counters.bytesCopiedForward, cold.length, 'the retirement had nothing left to copy');
  t.not(oldest.state, 'active', 'the oldest segment retired');
  t.same(volume.read(0, cold.length), cold);
  const snapshot = await historyOf(volume).snapshots.open(before);
  t.same(await snapshot.read(0, cold.length), cold, 'the point before the copies reads the same');
});

/** A working set of twelve segments for the copy-ahead tests: room to lay cold blocks over many segments. */
const COLD_POLICY = { ...SMALL_POLICY, workingSetSegments: 12, spareSegments: 4 };

/**
 * Writes cold blocks 4–63 once, a few to each segment between rewrites of hot blocks 0–3, until
 * the working set is full. Returns the count of hot writes, for the caller to go on from.
 */
async function layOutColdBlocks(volume: Volume, write: (block: number, fill: number) => Promise<void>): Promise<number> {
  let n = 0;
  for (let cold = 4; cold < 64; cold++) {
    await write(cold, cold);
    for (let i = 0; i < 4; i++) await write(n++ % 4, 1 + (n % 250));
  }
  while (volume.internals.log.workingSet().length < COLD_POLICY.workingSetSegments) await write(n++ % 4, 1 + (n % 250));
  return n;
}

t.test('volume: an idle spell drains as many rolls ahead as the recent bursts made, so the next such burst copies nothing', async (t) => {
  const policy = COLD_POLICY;
  // Laid out with no idle spell, then reopened (rolls counted afresh) with a short one.
  const { volume: first, reopen } = await createTempVolume(t, policy, { copyAheadIdleMs: 60_000 });
  let volume = first;
  const model = Buffer.alloc(policy.sizeBytes);
  const write = async (block: number, fill: number) => {
    const data = Buffer.alloc(BS, fill);
    await volume.write(data, block * BS);
    data.copy(model, block * BS);
  };
  let n = await layOutColdBlocks(volume, write);
  await volume.close();
  volume = await reopen({ copyAheadIdleMs: 30 });
  t.teardown(() => volume.close().catch(() => undefined));
  const liveIn = (slot: { index: number }) => {
    let live = 0;
    for (let b = 0; b < 64; b++) if (volume.index.slotOf(b) === slot.index) live++;
    return live;
  };
  const burst = async (rolls: number) => {
    const sealed = volume.counters.segmentsSealed;
    const byRetirement = volume.counters.bytesCopiedForward - volume.counters.bytesCopiedAhead;
    while (volume.counters.segmentsSealed < sealed + rolls) await write(n++ % 4, 1 + (n % 250));
    return volume.counters.bytesCopiedForward - volume.counters.bytesCopiedAhead - byRetirement;
  };
  t.ok((await burst(3)) > 0, 'a burst of three rolls retired segments holding cold blocks: they were copied under the writes');
  const oldestLive = () => volume.internals.log.workingSet().slice(0, 3).map(liveIn);
  const idleUntilDrained = async () => {
    for (let waited = 0; oldestLive().some((live) => live > 0) && waited < 3000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  };
  // Idle: the copies the next three rolls would make are made now.
  const ahead = volume.counters.bytesCopiedAhead;
  await idleUntilDrained();
  t.ok(volume.counters.bytesCopiedAhead > ahead, 'idle, cold blocks were copied ahead');
  t.same(oldestLive(), [0, 0, 0], 'the three segments the next three rolls retire hold nothing live');
  await new Promise((r) => setTimeout(r, 200));
  t.ok(liveIn(volume.internals.log.workingSet()[3]!) > 0, 'the spell stopped there: the fourth oldest still holds cold blocks');
  t.same(volume.read(0, policy.sizeBytes), model);
  t.equal(await burst(3), 0, 'the next burst of three rolls copied nothing');
  t.same(volume.read(0, policy.sizeBytes), model);
  // A small burst between big ones: the spell after it still drains as far as a big one reaches.
  await idleUntilDrained();
  t.equal(await burst(1), 0, 'a burst of one roll copied nothing');
  t.ok(liveIn(volume.internals.log.workingSet()[2]!) > 0, 'the third oldest holds cold blocks');
  await idleUntilDrained();
  t.same(oldestLive(), [0, 0, 0], 'idle after it, the spell drained three rolls ahead again');
  t.equal(await burst(3), 0, 'the next burst of three rolls copied nothing');
  t.same(volume.read(0, policy.sizeBytes), model);
});

t.test('volume: a write slower than the idle time is part of the burst: no copy-ahead starts under it', async (t) => {
  const { dir, volume: first, reopen } = await createTempVolume(t, COLD_POLICY, { copyAheadIdleMs: 60_000 });
  let n = await layOutColdBlocks(first, (block, fill) => first.write(Buffer.alloc(BS, fill), block * BS));
  await first.close();
  // Every flush (a roll's among them) takes three idle times; the writes come back to back.
  const slow = slotFilesWith(dir, (file) => ({
    datasyncAsync: () => new Promise<void>((resolve, reject) => setTimeout(() => file.datasyncAsync().then(resolve, reject), 90)),
  }));
  const volume = await reopen({ files: slow, copyAheadIdleMs: 30 });
  t.teardown(() => volume.close().catch(() => undefined));
  const sealed = volume.counters.segmentsSealed;
  while (volume.counters.segmentsSealed < sealed + 3) await volume.write(Buffer.alloc(BS, 1 + (n % 250)), (n++ % 4) * BS);
  t.ok(volume.counters.bytesCopiedForward > 0, 'the rolls retired segments holding cold blocks');
  t.equal(volume.counters.bytesCopiedAhead, 0, 'nothing was copied ahead while the writes went on');
  for (let cold = 4; cold < 64; cold++) t.same(volume.read(cold * BS, BS), Buffer.alloc(BS, cold));
});

t.test('volume: after a retirement that failed, copy-ahead leaves the working set to the next write (issue #27)', async (t) => {
  const { dir, volume: first, reopen } = await createTempVolume(t, {}, { copyAheadIdleMs: 3_600_000 });
  await first.close();
  // Slot writes of copy-forward records fail with ENOSPC while armed: a full disk under a retirement.
  let full = false;
  const files = slotFilesWith(dir, (file) => ({
    write(parts, position) {
      const head = parts[0]!;
      if (full && head.length >= RECORD_HEADER_SIZE && head.readUInt32LE(0) === RECORD_MAGIC && (head[5]! & FLAG_COPY_FORWARD) !== 0) {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }
      return file.write(parts, position);
    },
  }));
  const volume = await reopen({ files, copyAheadIdleMs: 3_600_000 });
  t.teardown(() => volume.close());
  const { log } = volume.internals;
  const W = SMALL_POLICY.workingSetSegments;
  // Cold blocks first, then hot rewrites until the working set is full: the next roll retires the cold blocks' segment.
  await volume.write(Buffer.alloc(16 * BS, 7), 0);
  let n = 0;
  while (log.workingSet().length < W) await volume.write(Buffer.alloc(BS, (n++ % 250) + 1), (32 + (n % 4)) * BS);
  full = true;
  const sealed = volume.counters.segmentsSealed;
  let failed: Error | null = null;
  while (!failed) await volume.write(Buffer.alloc(BS, (n++ % 250) + 1), (32 + (n % 4)) * BS).catch((err: Error) => (failed = err));
  t.match(failed, { code: 'NO_SPACE' }, 'the write whose roll could not retire the oldest segment fails');
  t.equal(volume.counters.segmentsSealed, sealed + 1, 'after its roll');
  t.equal(log.roster.workingSetLength(), W + 1, 'the working set is one segment long');
  full = false;
  const copied = volume.counters.bytesCopiedAhead;
  t.equal(await log.retirement.copyAhead(1024 * 1024, 1), false, 'copy-ahead has nothing to do then');
  t.equal(volume.counters.bytesCopiedAhead, copied, 'and copies nothing into the room the retirement needs');
  t.equal(volume.counters.segmentsSealed, sealed + 1, 'nor rolls');
  await volume.write(Buffer.alloc(BS, 99), 40 * BS);
  t.equal(log.roster.workingSetLength(), W, 'the next write finishes the retirement');
  t.same(volume.read(0, 16 * BS), Buffer.alloc(16 * BS, 7), 'and the cold blocks are where they were');
});
