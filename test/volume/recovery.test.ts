/**
 * Recovery (lib/volume/recovery.ts): what opening a volume reads, keeps, drops and cuts; it drops
 * a newest segment whose predecessor a power loss left unfinished.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { slotsDirectory } from '../../lib/volume/files.js';
import type { Volume } from '../../lib/volume/volume.js';
import { createTempVolume, prng, slotFilesWith, SMALL_POLICY, writeUntilRoll } from '../helpers/temp-volume.js';

const BS = SMALL_POLICY.blockSizeBytes;
const BLOCKS = SMALL_POLICY.sizeBytes / BS;

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
