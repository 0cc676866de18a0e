/** Pacing (lib/volume/pacing.ts): the current segment flushed and read ahead behind the writes. */
import path from 'node:path';
import t from 'tap';
import { SEGMENT_HEADER_SIZE } from '../../lib/format/segment-header.js';
import { createTempVolume, slotFilesWith, SMALL_POLICY } from '../helpers/temp-volume.js';

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
