/** The volume (lib/volume/volume.ts): reads, writes, flushes and synch points through its API. */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ArchiveKeys } from '../../lib/archive/archive-store.js';
import { CATALOG_FILE, FsVolumeFiles, LOCK_FILE, type VolumeFiles } from '../../lib/volume/files.js';
import { Volume } from '../../lib/volume/volume.js';
import { createTempVolume, prng, SMALL_POLICY, writeUntilRoll } from '../helpers/temp-volume.js';

const BS = SMALL_POLICY.blockSizeBytes;

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

/** Descriptors this process holds on files under `dir`. */
function openFilesUnder(dir: string): string[] {
  return fs.readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(`${dir}/`) ? [target] : [];
    } catch {
      return []; // the descriptor readdir itself used, closed by now
    }
  });
}

/** The volume's files, failing `what` with EIO. */
function filesFailing(dir: string, what: { slot?: number; read?: string }): VolumeFiles {
  const files = new FsVolumeFiles(dir);
  const eio = (op: string) => Object.assign(new Error(`${op}: EIO`), { code: 'EIO' });
  return Object.assign(Object.create(files) as VolumeFiles, {
    open: (index: number) => {
      if (index === what.slot) throw eio(`open slot ${index}`);
      return files.open(index);
    },
    read: (name: string) => {
      if (name === what.read) throw eio(`read ${name}`);
      return files.read(name);
    },
  });
}

t.test('volume: an open that fails at any step releases the lock, every file it opened and its workers', async (t) => {
  const { dir, store, volume, reopen } = await createTempVolume(t);
  await writeUntilRoll(volume, 1);
  await volume.synch();
  await volume.close();
  const threads = () => fs.readdirSync('/proc/self/task').length;
  const threadsBefore = threads();
  const newer = ArchiveKeys.segment(99);
  const failures: [string, () => Promise<unknown>][] = [
    ['a slot that will not open', () => reopen({ files: filesFailing(dir, { slot: SMALL_POLICY.workingSetSegments }) })],
    ['a catalog that cannot be read', () => reopen({ files: filesFailing(dir, { read: CATALOG_FILE }) })],
    [
      'an archive holding a newer segment',
      async () => {
        await store.put(newer, [Buffer.from('another copy of the volume wrote this')]);
        return reopen().finally(() => store.delete(newer));
      },
    ],
  ];
  for (const [step, open] of failures) {
    await t.rejects(open(), { code: /^(EIO|ARCHIVE_CONFLICT)$/ }, `${step}: the open fails`);
    t.notOk(fs.existsSync(path.join(dir, LOCK_FILE)), `${step}: the lock is released`);
    t.same(openFilesUnder(dir), [], `${step}: no file of the volume is left open`);
    t.equal(threads(), threadsBefore, `${step}: the compression workers are gone`);
  }
  const again = await Volume.open(dir, { store, onStall: () => undefined });
  t.ok(openFilesUnder(dir).length > 0, 'an open that succeeds holds the slot files');
  await again.close();
  t.same(openFilesUnder(dir), [], 'and its close releases them');
});
