/**
 * Reads from the archive keep several chunk fetches in flight. Restore: a random-write history
 * read in log order mostly shares one chunk between consecutive runs, so without its read-ahead
 * a remote archive would be fetched one chunk per round trip. A snapshot read (through FUSE):
 * the blocks of one request lie in many chunks, fetched at once rather than one after another.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { ArchiveStore, ByteRange } from '../../lib/archive/archive-store.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { planRestore, restoreSnapshot } from '../../lib/history/restore.js';
import { createTempVolume, prng, SMALL_POLICY, tempDir } from '../helpers/temp-volume.js';

const BS = 4096;

/** The memory store with a delay on every read, counting the reads in flight at once. */
class SlowReads extends MemoryStore {
  inFlight = 0;
  maxInFlight = 0;
  gets = 0;

  override async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.gets++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return await super.get(key, range);
    } finally {
      this.inFlight--;
    }
  }
}

t.test('restore from the archive alone fetches chunks ahead, several at once, and restores every byte', async (t) => {
  const store = new SlowReads();
  const policy = { ...SMALL_POLICY, sizeBytes: 256 * BS, workingSetSegments: 24, spareSegments: 4 };
  const { dir, volume } = await createTempVolume(t, { ...policy, store: store as ArchiveStore }, { store });
  const random = prng(7);
  const model = Buffer.alloc(policy.sizeBytes);
  for (let i = 0; i < 600; i++) {
    const block = Math.floor(random() * 256);
    const data = Buffer.alloc(BS, 1 + (i % 250));
    data.writeUInt32LE(i, 0);
    await volume.write(data, block * BS);
    data.copy(model, block * BS);
  }
  const point = await volume.synch({ label: 'end' });
  await volume.idle();
  await volume.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const view = await ArchiveView.open(store);
  t.teardown(() => view.close());
  const snapshot = await view.snapshots.open(view.catalog.find(point.label!));
  const plan = await planRestore(snapshot, view.source);
  const before = store.gets;
  store.maxInFlight = 0;
  const target = path.join(tempDir(t, 'salvo-restore-'), 'end.img');
  await restoreSnapshot(snapshot, target);
  t.ok(fs.readFileSync(target).equals(model), 'the image is the volume at the point');
  let withData = 0;
  for (let b = 0; b < 256; b++) if (model.subarray(b * BS, (b + 1) * BS).some((x) => x !== 0)) withData++;
  t.same([plan.blocksWithData, plan.holes, plan.bytesFromPrimary], [withData, 256 - withData, 0], 'the plan counts the blocks with data and the holes');
  t.equal(plan.archiveRequests, store.gets - before, 'and the chunk fetches the restore made');
  t.ok(store.maxInFlight >= 4, `up to ${store.maxInFlight} chunk fetches in flight (${store.gets - before} fetches)`);

  // A fresh view: nothing cached, so one read of scattered blocks must fetch their chunks.
  const cold = await ArchiveView.open(store);
  t.teardown(() => cold.close());
  const scattered = await cold.snapshots.open(cold.catalog.find(point.label!));
  store.maxInFlight = 0;
  const read = await scattered.read(0, 32 * BS);
  t.ok(read.equals(model.subarray(0, 32 * BS)), 'a 128 KiB snapshot read returns the blocks of the point');
  t.ok(store.maxInFlight >= 4, `its chunks were fetched at once (up to ${store.maxInFlight} in flight)`);
});

t.test('a restore that fails writes nothing after it returns (found by the simulation)', async (t) => {
  // Run 0's read fails at once; the others answer later. Before the fix the other workers went on
  // after the failure and wrote their blocks through the closed descriptor, whose number the
  // next open took: into whatever file that was.
  const runs = 8;
  const snapshot = {
    geometry: { version: 2, sizeBytes: runs * BS, blockSizeBytes: BS, workingSetSegments: 4 },
    runsInLogOrder: () => ({ starts: Uint32Array.from({ length: runs }, (_, i) => i), lengths: new Uint32Array(runs).fill(1) }),
    chunkOf: async () => null,
    read: async (position: number) => {
      if (position === 0) throw new Error('injected read failure');
      await new Promise((resolve) => setTimeout(resolve, 20));
      return Buffer.alloc(BS, 0xab);
    },
  };
  const dir = tempDir(t, 'salvo-restore-fail-');
  await t.rejects(restoreSnapshot(snapshot as never, path.join(dir, 'failed.img')), /injected read failure/);
  t.notOk(fs.existsSync(path.join(dir, 'failed.img')), 'the partial image is removed');
  const next = path.join(dir, 'next.img');
  const fd = fs.openSync(next, 'w+');
  try {
    await new Promise((resolve) => setTimeout(resolve, 60));
    t.equal(fs.fstatSync(fd).size, 0, 'no late write reached the file opened next');
  } finally {
    fs.closeSync(fd);
  }
});
