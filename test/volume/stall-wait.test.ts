/**
 * A write stalled by an archive outage holds the engine's lock until the archive returns. A
 * flush (the filesystem's fsync) behind it must not wait as long: it makes every acknowledged
 * write durable without the lock. A synch point behind it is refused with the archive's trouble,
 * and never placed later, when the archive comes back.
 */
import path from 'node:path';
import t from 'tap';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { Volume } from '../../lib/volume/volume.js';
import { SimSlotFiles, type CrashStats } from '../faults/sim-slot-files.js';
import { prng, SMALL_POLICY, tempDir, within } from '../helpers/temp-volume.js';

const BS = SMALL_POLICY.blockSizeBytes;
const BLOCKS = SMALL_POLICY.sizeBytes / BS;

t.test('behind a write stalled by an outage: flush makes the acknowledged writes durable, a synch point is refused', async (t) => {
  const dir = path.join(tempDir(t, 'salvo-stall-'), 'volume');
  const store = new MemoryStore();
  await Volume.create(dir, { ...SMALL_POLICY, archive: store.location, store });
  let files = new SimSlotFiles(dir, SMALL_POLICY.segmentSizeBytes);
  const open = () => Volume.open(dir, { store, files, onStall: () => undefined, onWarning: () => undefined, retryDelayMsMax: 20 });
  let volume = await open();
  t.teardown(() => volume.close().catch(() => undefined));
  store.failing = true;
  let acknowledged = 0;
  let stalledWrite: Promise<unknown> | null = null;
  for (let i = 0; i < 10_000 && !stalledWrite; i++) {
    const write = volume.write(Buffer.alloc(BS, (i % 250) + 1), (i % BLOCKS) * BS);
    if (await Promise.race([write.then(() => true), new Promise((r) => setTimeout(() => r(false), 200))])) acknowledged++;
    else stalledWrite = write.catch(() => undefined);
  }
  t.ok(stalledWrite, `a write stalled after ${acknowledged} acknowledged ones`);
  const points = volume.catalog.all.length;

  const refused = await within(volume.synch({ label: 'behind-the-stall' }).then(() => null, (err: Error & { code?: string }) => err), 'a synch point behind the stall');
  t.equal(refused?.code, 'ARCHIVE_UNAVAILABLE', 'the synch point is refused');
  t.match(refused?.message, /no synch point while writes wait for the archive, which is failing \(unreachable\)/, 'saying why');

  await within(volume.flush(), 'a flush behind the stall');
  // Power is lost now: what the flush made durable must all be there.
  const lost = volume;
  await lost.internals.archiver.stop();
  files = files.crash(prng(7), { pendingWrites: 0, kept: 0, torn: 0 } satisfies CrashStats);
  await lost.close().catch(() => undefined); // its workers and timers, which a dead process would not keep
  store.failing = false;
  volume = await open();
  for (let block = 0; block < BLOCKS; block++) {
    let last = -1;
    for (let i = block; i < acknowledged; i += BLOCKS) last = i;
    if (last >= 0) t.same(volume.read(block * BS, BS), Buffer.alloc(BS, (last % 250) + 1), `block ${block}: its last acknowledged write survives the power cut`);
  }
  t.equal(volume.catalog.all.length, points, 'the refused point was never placed');
  t.ok((await volume.synch({ label: 'behind-the-stall' })).label === 'behind-the-stall', 'once the archive is back, the point can be taken');
});

t.test('a synch point behind writes that wait for a healthy archive waits for them, and is taken', async (t) => {
  const store = new MemoryStore();
  const dir = path.join(tempDir(t, 'salvo-stall-'), 'volume');
  await Volume.create(dir, { ...SMALL_POLICY, archive: store.location, store });
  const volume = await Volume.open(dir, { store, onStall: () => undefined });
  t.teardown(() => volume.close());
  // Puts that hang for a while (a slow archive, no error): writes stall, then go on.
  const put = store.put.bind(store);
  let slow = true;
  store.put = async (key, parts) => {
    while (slow) await new Promise((r) => setTimeout(r, 10));
    return put(key, parts);
  };
  const writes: Promise<void>[] = [];
  for (let i = 0; i < BLOCKS * 4; i++) writes.push(volume.write(Buffer.alloc(BS, (i % 250) + 1), (i % BLOCKS) * BS));
  const point = volume.synch({ label: 'after-the-burst' });
  await new Promise((r) => setTimeout(r, 1500));
  t.ok(volume.status().writesStalledSince !== null, 'writes wait for the archive');
  slow = false;
  t.equal((await within(point, 'the synch point')).label, 'after-the-burst', 'the point is taken once writes resume');
  await Promise.all(writes);
});
