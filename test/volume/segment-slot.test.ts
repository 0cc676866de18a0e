/**
 * SegmentSlot's flushes: a flush must not report durability while another caller's fdatasync
 * of the same slot is still running (the roll, a synch point, a user's fsync and the
 * background flush-ahead can overlap), scatter reads fill every part, and discarding a
 * segment blanks the slot as its format says.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { SegmentSlot } from '../../lib/volume/segment-slot.js';
import type { FileReader } from '../../lib/archive/archiver.js';
import { FsVolumeFiles, slotsDirectory, type VolumeFiles } from '../../lib/volume/files.js';
import type { SlotFile } from '../../lib/volume/slot-file.js';
import { readEntriesInTurn } from '../faults/sim-slot-files.js';
import { native } from '../../lib/util/native.js';
import { CompressionPool, sharedBuffer } from '../../lib/archive/compression-pool.js';

/** A slot file in memory whose async fdatasyncs finish only when the test says so. */
class ControlledFile implements SlotFile {
  readonly path = '/nowhere/0000.slot';
  readonly bytes = Buffer.alloc(64 * 1024);
  readonly pending: (() => void)[] = [];
  syncs = 0;

  read(into: Buffer, offset: number, length: number, position: number): number {
    return this.bytes.copy(into, offset, position, position + length);
  }
  async readAsync(into: Buffer, offset: number, length: number, position: number): Promise<number> {
    return this.read(into, offset, length, position);
  }
  async readThrough(_reader: FileReader, into: Buffer, position: number): Promise<number> {
    return this.read(into, 0, into.length, position);
  }
  readEntries(blocks: Buffer, crcs: Buffer, blockSize: number, position: number): number {
    return readEntriesInTurn(this, blocks, crcs, blockSize, position);
  }
  write(parts: Buffer[], position: number): number {
    return Buffer.concat(parts).copy(this.bytes, position);
  }
  datasync(): void {
    this.syncs++;
  }
  datasyncAsync(): Promise<void> {
    return new Promise((resolve) => this.pending.push(() => {
      this.syncs++;
      resolve();
    }));
  }
  truncate(): void {}
  async truncateAsync(length: number): Promise<void> {
    this.bytes.fill(0, length);
  }
  /** What a filesystem without hole punching answers, when set. */
  punchError: NodeJS.ErrnoException | null = null;
  async punchHoleAsync(offset: number, length: number): Promise<void> {
    if (this.punchError) throw this.punchError;
    this.bytes.fill(0, offset, offset + length);
  }
  /** Where SegmentSlot.prefetch asked to read ahead. */
  readonly prefetches: [number, number][] = [];
  async prefetchAsync(offset: number, length: number): Promise<void> {
    this.prefetches.push([offset, length]);
  }
  allocatedBytes(): number {
    return this.bytes.length;
  }
  close(): void {}
}

/** A volume's files whose slot 0 is `file` (the sidecars in a directory that does not exist: none to find, none kept). */
function filesOver(file: SlotFile): VolumeFiles {
  return Object.assign(Object.create(new FsVolumeFiles('/nowhere')) as VolumeFiles, { open: () => file, replace: () => undefined });
}

function slotOver(file: ControlledFile, version = 2): SegmentSlot {
  return SegmentSlot.open(filesOver(file), 0, file.bytes.length, version);
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

t.test('a flush waits for the fdatasync another caller started', async (t) => {
  const file = new ControlledFile();
  const slot = slotOver(file);
  slot.writeAt([Buffer.from('first')], 100);
  let firstDone = false;
  let secondDone = false;
  void slot.flushAsync().then(() => (firstDone = true));
  void slot.flushAsync().then(() => (secondDone = true));
  await tick();
  t.equal(file.pending.length, 1, 'one fdatasync covers both callers');
  t.notOk(secondDone, 'the second caller is not told "durable" while the first fdatasync runs');
  file.pending.shift()!();
  await tick();
  t.ok(firstDone && secondDone, 'both resolve once it finished');
});

t.test('writes made while an fdatasync runs get their own', async (t) => {
  const file = new ControlledFile();
  const slot = slotOver(file);
  slot.writeAt([Buffer.from('one')], 0);
  const first = slot.flushAsync();
  slot.writeAt([Buffer.from('two')], 10);
  let secondDone = false;
  const second = slot.flushAsync().then(() => (secondDone = true));
  await tick();
  file.pending.shift()!();
  await first;
  await tick();
  t.notOk(secondDone, 'the write made during the first fdatasync is not durable yet');
  t.equal(file.pending.length, 1, 'a second fdatasync was started for it');
  file.pending.shift()!();
  await second;
  t.equal(file.syncs, 2);
});

t.test('a synchronous flush does not skip an fdatasync still in flight', async (t) => {
  const file = new ControlledFile();
  const slot = slotOver(file);
  slot.writeAt([Buffer.from('data')], 0);
  const background = slot.flushAsync();
  slot.flush();
  t.equal(file.syncs, 1, 'it made the slot durable itself');
  file.pending.shift()!();
  await background;
});

t.test('a failed fdatasync leaves the slot dirty and rejects every waiter', async (t) => {
  const file = new ControlledFile();
  file.datasyncAsync = () => Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
  const slot = slotOver(file);
  slot.writeAt([Buffer.from('data')], 0);
  const results = await Promise.allSettled([slot.flushAsync(), slot.flushAsync()]);
  t.same(results.map((r) => r.status), ['rejected', 'rejected']);
  t.ok(slot.dirty, 'the next flush tries again');
});

t.test('a scatter read of entries puts each CRC and block in its place, zeros past the end, in memory and on disk', async (t) => {
  // Entries of a 4-byte CRC and an 8-byte block; the file ends 3 bytes into the third entry's block.
  const bytes = Buffer.from('CRC0block000CRC1block111CRC2blo', 'latin1');
  const memory = new ControlledFile();
  const at = memory.bytes.length - bytes.length;
  bytes.copy(memory.bytes, at);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salvo-slot-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(slotsDirectory(dir));
  const files = new FsVolumeFiles(dir);
  files.createSlot(0, memory.bytes.length);
  const disk = files.open(0);
  t.teardown(() => disk.close());
  disk.write([bytes], at);
  const onDisk = SegmentSlot.open(filesOver(disk), 0, memory.bytes.length, 2);
  for (const [name, slot] of [['in memory', slotOver(memory)], ['on disk (the addon)', onDisk]] as const) {
    const blocks = Buffer.alloc(4 * 8, 0xff);
    const crcs = Buffer.alloc(4 * 4, 0xff);
    slot.readEntriesAt(blocks, crcs, 8, at);
    t.equal(crcs.toString('latin1'), 'CRC0CRC1CRC2\0\0\0\0', `${name}: the CRCs`);
    t.equal(blocks.toString('latin1'), 'block000block111blo\0\0\0\0\0\0\0\0\0\0\0\0\0', `${name}: the blocks`);
    const whole = Buffer.alloc(8);
    slot.readEntriesAt(whole, crcs, 8, at + 12);
    t.equal(whole.toString('latin1'), 'block111', `${name}: one entry`);
  }
  t.throws(() => disk.readEntries(Buffer.alloc(12), Buffer.alloc(8), 8, 0), { code: 'ERR_OUT_OF_RANGE' }, 'blocks that are not whole blocks are refused');
  t.throws(() => disk.readEntries(Buffer.alloc(513 * 8), Buffer.alloc(513 * 4), 8, 0), { code: 'ERR_OUT_OF_RANGE' }, 'and more than 512 entries');
  t.throws(() => native().readEntries(987654, Buffer.alloc(8), Buffer.alloc(4), 8, 0), { code: 'EBADF' }, 'a failed read throws with its errno code');
});

/** A slot file on disk written full of 0xab, as a sealed segment leaves it, with its sidecar. */
function usedSlotOnDisk(t: Tap.Test, version: number): { slot: SegmentSlot; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salvo-slot-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(slotsDirectory(dir));
  const files = new FsVolumeFiles(dir);
  files.createSlot(0, 1024 * 1024);
  const slot = SegmentSlot.open(files, 0, 1024 * 1024, version);
  t.teardown(() => slot.close());
  slot.writeAt([Buffer.alloc(1024 * 1024, 0xab)], 0);
  slot.flush();
  fs.writeFileSync(path.join(slotsDirectory(dir), '0000.sum'), 'summary');
  slot.sequence = 7;
  slot.state = 'inactive';
  return { slot, file: path.join(slotsDirectory(dir), '0000.slot') };
}

t.test('readRangeThrough reads a slot on disk in a pool worker, zeros past the file’s end', async (t) => {
  const { slot } = usedSlotOnDisk(t, 2);
  const pool = new CompressionPool();
  t.teardown(() => pool.close());
  const into = sharedBuffer(8192);
  into.fill(0x11);
  await slot.readRangeThrough(pool, into, 1024 * 1024 - 4096);
  t.ok(into.subarray(0, 4096).every((b) => b === 0xab), 'the slot’s last page');
  t.ok(into.subarray(4096).every((b) => b === 0), 'and zeros where the file ends, not what the buffer held');
});

t.test('discard in format 2 punches out the headers’ page durably and keeps the rest of the slot for the next segment', async (t) => {
  const { slot, file } = usedSlotOnDisk(t, 2);
  const blocksBefore = fs.statSync(file).blocks;
  await slot.discard();
  const bytes = fs.readFileSync(file);
  t.equal(bytes.length, 1024 * 1024, 'the slot keeps its size');
  t.ok(bytes.subarray(0, 4096).every((b) => b === 0), 'the first page, segment header and first record header among it, is a hole: the slot reads as blank');
  t.ok(bytes.subarray(4096).every((b) => b === 0xab), 'the rest is left as it was (its records are older than any the next segment writes)');
  t.equal(fs.statSync(file).blocks, blocksBefore - 8, 'only that page’s block went back to the filesystem');
  t.notOk(fs.existsSync(file.replace(/slot$/, 'sum')), 'the sidecar is gone');
  t.same([slot.state, slot.sequence, slot.entrySeed], ['recycle', 0, 0]);
});

t.test('discard in format 1 truncates the slot to a hole', async (t) => {
  const { slot, file } = usedSlotOnDisk(t, 1);
  await slot.discard();
  const bytes = fs.readFileSync(file);
  t.equal(bytes.length, 1024 * 1024, 'the slot keeps its size');
  t.ok(bytes.every((b) => b === 0), 'and reads as zeros everywhere');
  t.equal(fs.statSync(file).blocks, 0, 'its blocks went back to the filesystem');
});

t.test('prefetch reads ahead where format 2 keeps old bytes; format 1’s holes need nothing', async (t) => {
  const kept = new ControlledFile();
  await slotOver(kept, 2).prefetch(8192, 16384);
  t.same(kept.prefetches, [[8192, 16384]], 'format 2 asks the file');
  const holes = new ControlledFile();
  await slotOver(holes, 1).prefetch(8192, 16384);
  t.same(holes.prefetches, [], 'format 1 does not');
});

t.test('a slot’s entry seed is its segment sequence in format 2, nothing in format 1', async (t) => {
  for (const [version, sequence, seed] of [
    [2, 7, 7],
    [2, 2 ** 32 + 5, 5],
    [1, 7, 0],
  ] as const) {
    const slot = slotOver(new ControlledFile(), version);
    slot.sequence = sequence;
    t.equal(slot.entrySeed, seed, `format ${version}, segment ${sequence}`);
  }
});

t.test('discard in format 2 truncates the slot where the filesystem cannot punch holes, and fails on any other error', async (t) => {
  for (const code of ['EOPNOTSUPP', 'ENOSYS']) {
    const file = new ControlledFile();
    file.bytes.fill(0xab);
    file.punchError = Object.assign(new Error(`fallocate: ${code}`), { code });
    const slot = slotOver(file);
    slot.state = 'inactive';
    const discarding = slot.discard();
    while (file.pending.length === 0) await tick();
    t.equal(slot.state, 'inactive', `${code}: the slot is not blank before the cut is durable`);
    file.pending.shift()!();
    await discarding;
    t.ok(file.bytes.every((b) => b === 0), `${code}: the whole slot was cut to a hole, as in format 1`);
    t.equal(file.syncs, 1, `${code}: and the cut was made durable`);
    t.equal(slot.state, 'recycle');
  }
  const file = new ControlledFile();
  file.punchError = Object.assign(new Error('fallocate: EIO'), { code: 'EIO' });
  const slot = slotOver(file);
  slot.state = 'inactive';
  await t.rejects(slot.discard(), { code: 'EIO' }, 'an I/O error is not taken for a missing feature');
  t.equal(slot.state, 'inactive', 'and the slot is not counted blank');
});
