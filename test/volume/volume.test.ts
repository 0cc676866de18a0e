import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SEGMENT_HEADER_SIZE } from '../../lib/format/segment-header.js';
import { slotsDirectory } from '../../lib/volume/files.js';
import type { Volume } from '../../lib/volume/volume.js';
import { createTempVolume, prng, slotFilesWith, SMALL_POLICY, historyOf } from '../helpers/temp-volume.js';

const BS = 4096;

t.test('volume: unwritten blocks read as zeros', async (t) => {
  const { volume } = await createTempVolume(t);
  t.same(volume.read(0, SMALL_POLICY.sizeBytes), Buffer.alloc(SMALL_POLICY.sizeBytes));
});

t.test('volume: aligned write reads back', async (t) => {
  const { volume } = await createTempVolume(t);
  const data = Buffer.alloc(3 * BS, 7);
  await volume.write(data, 5 * BS);
  t.same(volume.read(5 * BS, 3 * BS), data);
  t.same(volume.read(4 * BS, BS), Buffer.alloc(BS));
});

t.test('volume: unaligned writes are read-modify-write', async (t) => {
  const { volume } = await createTempVolume(t);
  await volume.write(Buffer.alloc(2 * BS, 1), 0);
  await volume.write(Buffer.from('hello'), BS - 2);
  const expected = Buffer.alloc(2 * BS, 1);
  Buffer.from('hello').copy(expected, BS - 2);
  t.same(volume.read(0, 2 * BS), expected);
  t.same(volume.read(BS - 3, 7), expected.subarray(BS - 3, BS + 4));
});

t.test('volume: zero blocks supersede older data without storing it', async (t) => {
  const { volume } = await createTempVolume(t);
  await volume.write(Buffer.alloc(4 * BS, 9), 0);
  const zeros = Buffer.alloc(4 * BS);
  zeros.fill(3, BS, 2 * BS);
  await volume.write(zeros, 0);
  t.same(volume.read(0, 4 * BS), zeros);
  t.equal(volume.index.slotOf(0), -1, 'a zero block has no entry');
});

t.test('volume: writes past the end are refused', async (t) => {
  const { volume } = await createTempVolume(t);
  await t.rejects(volume.write(Buffer.alloc(BS), SMALL_POLICY.sizeBytes), { code: 'BAD_INPUT' });
});

t.test('volume: reopen after close keeps every block', async (t) => {
  const { volume, reopen } = await createTempVolume(t);
  await volume.write(Buffer.alloc(BS, 5), 10 * BS);
  await volume.synch({ label: 'one' });
  await volume.close();
  const again = await reopen();
  t.teardown(() => again.close());
  t.same(again.read(10 * BS, BS), Buffer.alloc(BS, 5));
  t.equal(again.catalog.all.length, 1);
  t.equal(again.catalog.all[0]!.label, 'one');
});

t.test('volume: random writes over many segment cycles match a model', async (t) => {
  const seed = Number(process.env.SEED ?? 1234);
  const random = prng(seed);
  const { volume: first, store, reopen } = await createTempVolume(t);
  let volume = first;
  const model = Buffer.alloc(SMALL_POLICY.sizeBytes);
  const totals = { recycled: 0, copied: 0 };
  const tally = () => {
    totals.recycled += volume.counters.segmentsRecycled;
    totals.copied += volume.counters.bytesCopiedForward;
  };
  for (let step = 0; step < 3000; step++) {
    const r = random();
    if (r < 0.85) {
      const block = Math.floor(random() * 64);
      const count = Math.min(64 - block, 1 + Math.floor(random() * 8));
      const data = Buffer.alloc(count * BS, Math.floor(random() * 4));
      if (random() < 0.5) for (let i = 0; i < 16; i++) data[Math.floor(random() * data.length)] = Math.floor(random() * 256);
      await volume.write(data, block * BS);
      data.copy(model, block * BS);
    } else if (r < 0.9) {
      const offset = Math.floor(random() * (SMALL_POLICY.sizeBytes - 100));
      const data = Buffer.alloc(1 + Math.floor(random() * 99), 0x5a);
      await volume.write(data, offset);
      data.copy(model, offset);
    } else if (r < 0.95) {
      await volume.synch();
    } else if (r < 0.97) {
      tally();
      await volume.close();
      volume = await reopen();
    } else {
      const block = Math.floor(random() * 64);
      t.same(volume.read(block * BS, BS), model.subarray(block * BS, (block + 1) * BS));
    }
  }
  t.same(volume.read(0, SMALL_POLICY.sizeBytes), model, `seed ${seed}: whole volume matches the model`);
  tally();
  t.ok(totals.recycled > 20, `segments were recycled (${totals.recycled})`);
  t.ok(totals.copied > 0, `copy-forward happened (${totals.copied} bytes)`);
  t.ok(store.objects.size > 20, 'segments were archived');
  await volume.idle();
  await volume.close();
});

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

t.test('volume: a background flush starts when the current segment is nearly full, so its roll has little left', async (t) => {
  const BS = SMALL_POLICY.blockSizeBytes;
  const { dir, volume: first, reopen } = await createTempVolume(t);
  await first.close();
  // Each fdatasync of the current segment: during which write, with how many bytes left in the segment.
  const flushes: { write: number; left: number }[] = [];
  let volume: Awaited<ReturnType<typeof reopen>> | null = null;
  let write = 0;
  const counting = slotFilesWith(dir, (file) => ({
    // When flushes start is what is checked: an instant one keeps them from piling up behind the disk.
    async datasyncAsync(): Promise<void> {
      const current = volume?.internals.log.current;
      if (current && current.path === file.path) flushes.push({ write, left: SMALL_POLICY.segmentSizeBytes - current.tail });
    },
  }));
  volume = await reopen({ files: counting });
  t.teardown(() => volume!.close().catch(() => undefined));
  // Single-block records of 4 KiB: the 32 KiB flush-ahead steps fall eight records apart, and the segment
  // fills with 2.9 KiB left (less than an eighth of a step); the next write rolls.
  const sealed = volume.counters.segmentsSealed;
  for (write = 1; volume.counters.segmentsSealed === sealed; write++) {
    await volume.write(Buffer.alloc(BS, write), (write % 32) * BS);
    await new Promise((resolve) => setImmediate(resolve)); // each background flush ends before the next write
  }
  const rollingWrite = write - 1;
  const early = flushes.filter((f) => f.write < rollingWrite && f.left < (32 * 1024) / 8);
  t.equal(early.length, 1, `one flush started with less than 4 KiB left, before the write that rolled (${JSON.stringify(flushes)})`);
});

t.test('volume: recovery reads a segment only as far as its records go, and on past its first read while they do', async (t) => {
  // 16 MiB segments: recovery's first read of a segment is 4 MiB.
  const policy = { sizeBytes: 16 * 1024 * 1024, segmentSizeBytes: 16 * 1024 * 1024, workingSetSegments: 3, spareSegments: 1 };
  const { dir, volume, reopen } = await createTempVolume(t, policy);
  const random = prng(77);
  const data = Buffer.alloc(10 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
  const writeAll = async (v: typeof volume, from: number, to: number, at = from) => {
    for (let done = from; done < to; done += 128 * 1024) await v.write(data.subarray(done, done + 128 * 1024), at + done - from);
  };
  // Recovery's reads of the slots (asynchronous, as scans read), counted.
  let scanned = 0;
  const counting = slotFilesWith(dir, (file) => ({
    readAsync(into: Buffer, offset: number, length: number, position: number): Promise<number> {
      scanned += length;
      return file.readAsync(into, offset, length, position);
    },
  }));
  await writeAll(volume, 0, 1024 * 1024);
  await volume.close();
  const first = await reopen({ files: counting });
  t.ok(first.read(0, 1024 * 1024).equals(data.subarray(0, 1024 * 1024)), 'a current segment of 1 MiB of records keeps them');
  t.equal(scanned, 4 * 1024 * 1024, 'and recovery read its first 4 MiB, not the 16 MiB slot');
  await writeAll(first, 1024 * 1024, data.length);
  await first.close();
  scanned = 0;
  const again = await reopen({ files: counting });
  t.ok(again.read(0, data.length).equals(data), 'records reaching 10 MiB: the read grows, and all of them are kept');
  t.equal(scanned, 4 * 1024 * 1024 + 16 * 1024 * 1024 - 64, 'the first 4 MiB, then the rest of the segment');
  // Another 10 MiB seals segment 1; without its sidecar, it is scanned too.
  await writeAll(again, 0, data.length, 6 * 1024 * 1024);
  await again.close();
  for (const name of fs.readdirSync(slotsDirectory(dir))) if (name.endsWith('.sum')) fs.rmSync(path.join(slotsDirectory(dir), name));
  const third = await reopen();
  t.teardown(() => third.close());
  const expected = Buffer.concat([data.subarray(0, 6 * 1024 * 1024), data]);
  t.ok(third.read(0, expected.length).equals(expected), 'and a sealed segment scanned for its lost sidecar keeps every record');
});

t.test('status tells what is not in the archive yet apart: pieces queued, and the current segment’s part', async (t) => {
  const { volume } = await createTempVolume(t);
  await volume.idle();
  await volume.write(Buffer.alloc(8 * BS, 7), 0);
  let archive = volume.status().archive;
  t.equal(archive.pendingItems, 0, 'nothing queued without a synch point');
  t.ok(archive.bytesInCurrentSegment >= 8 * BS, `the written blocks wait in the current segment (${archive.bytesInCurrentSegment} bytes)`);
  t.equal(archive.bytesWaiting, archive.bytesInCurrentSegment, 'and are all that waits');
  await volume.synch();
  await volume.idle();
  archive = volume.status().archive;
  t.same([archive.bytesInCurrentSegment, archive.bytesWaiting], [0, 0], 'shipped as a tail at the synch point');
  t.equal(archive.busy, false, 'and the archiver is at rest');
  await volume.write(Buffer.alloc(8 * BS, 9), 0);
  await volume.synch();
  t.equal(volume.status().archive.busy, true, 'a synch point sets it to work');
  await volume.idle();
  t.equal(volume.status().archive.busy, false, 'until the tail is shipped and its memory given back');
});

t.test('the current slot is read into the page cache ahead of its tail, from each roll on', async (t) => {
  const MiB = 1024 * 1024;
  const segmentBytes = 16 * MiB;
  const { dir, volume: first, reopen } = await createTempVolume(t, { sizeBytes: 16 * MiB, segmentSizeBytes: segmentBytes });
  await first.close();
  const reads: { slot: string; from: number; to: number }[] = [];
  const recording = slotFilesWith(dir, (file) => ({
    prefetchAsync(offset: number, length: number): Promise<void> {
      reads.push({ slot: file.path, from: offset, to: offset + length });
      return file.prefetchAsync(offset, length);
    },
  }));
  const volume = await reopen({ files: recording });
  t.teardown(() => volume.close().catch(() => undefined));
  const chunk = Buffer.alloc(128 * 1024, 5);
  let writes = 0;
  let behind = 0;
  for (let at = 0; volume.counters.segmentsSealed < 2; at = (at + chunk.length) % (16 * MiB), writes++) {
    await volume.write(chunk, at);
    const current = volume.internals.log.current;
    const ahead = Math.max(0, ...reads.filter((r) => r.slot === current.path).map((r) => r.to));
    if (ahead < Math.min(current.tail + 4 * MiB, segmentBytes)) behind++;
  }
  t.equal(behind, 0, `after each of ${writes} writes, the next 4 MiB (or the rest of the segment) is on its way`);
  const rolledTo = new Set(reads.filter((r) => r.from === SEGMENT_HEADER_SIZE).map((r) => r.slot));
  t.equal(rolledTo.size, 2, 'each slot a roll took is read from its first record on');
  for (const slot of new Set(reads.map((r) => r.slot))) {
    const ranges = reads.filter((r) => r.slot === slot);
    t.ok(ranges.every((r, i) => i === 0 || r.from === ranges[i - 1]!.to), `${path.basename(slot)}: each window starts where the last ended`);
    t.ok(ranges.every((r) => r.to - r.from <= 8 * MiB && r.to <= segmentBytes), `${path.basename(slot)}: at most 8 MiB at a time, within the segment`);
  }
});
