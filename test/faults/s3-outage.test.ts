/**
 * An S3 outage: radosgw is stopped during a write-heavy run. Writes go on into spare slots,
 * then wait with a reported stall; radosgw starts again; everything drains, nothing is lost,
 * and every synch point restores from S3 alone.
 */
import path from 'node:path';
import t from 'tap';
import { S3Store } from '../../lib/archive/s3-store.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { createTempVolume, SMALL_POLICY } from '../helpers/temp-volume.js';
import { s3TestLocation } from '../helpers/s3.js';
import { must, ROOT } from '../helpers/system.js';

const BS = 4096;
const SERVER = path.join(ROOT, 'scripts/s3-test-server');

t.test('s3-outage: writes stall while radosgw is down and drain when it is back; every point restores from S3', async (t) => {
  const location = await s3TestLocation(t, 'outage');
  if (!location) return;
  const state = process.env.S3_TEST_STATE;
  if (!state) return t.fail('S3_TEST_STATE is not set: scripts/test names the server to stop and start');
  const store = S3Store.fromLocation(location, { maxAttempts: 1, idleTimeoutMs: 5000 });
  const stalls: string[] = [];
  const { volume } = await createTempVolume(t, { store }, { store, onStall: (m) => stalls.push(m), retryDelayMsMax: 500 });
  const model = Buffer.alloc(SMALL_POLICY.sizeBytes);
  const images = new Map<number, Buffer>();
  let n = 0;
  const write = async () => {
    const block = (n * 13) % 64;
    const data = Buffer.alloc(BS, (n % 250) + 1);
    n++;
    await volume.write(data, block * BS);
    data.copy(model, block * BS);
    if (n % 50 === 0) images.set((await volume.synch()).recordSequence, Buffer.from(model));
  };
  for (let i = 0; i < 200; i++) await write();
  await volume.idle();

  await must(SERVER, ['stop', state], { timeoutMs: 120_000 });
  let restarted = false;
  t.teardown(async () => {
    if (!restarted) await must(SERVER, ['start', state], { timeoutMs: 300_000 });
  });
  let stalled: Promise<void> | null = null;
  while (!stalled && n < 20_000) {
    const pending = write();
    const finished = await Promise.race([pending.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000))]);
    if (!finished) stalled = pending;
  }
  t.ok(stalled, `writes went on into spare slots, then stalled after ${n} writes`);
  t.match(stalls[0], /writes stalled/, 'the stall was reported');
  t.ok(volume.status().archive.lastError, `status says why: ${volume.status().archive.lastError}`);

  await must(SERVER, ['start', state], { timeoutMs: 300_000 });
  restarted = true;
  await stalled;
  for (let i = 0; i < 100; i++) await write();
  await volume.idle();
  t.equal(volume.status().writesStalledSince, null, 'writes flow again');
  t.ok(volume.read(0, SMALL_POLICY.sizeBytes).equals(model), 'no write was lost');

  const view = await ArchiveView.open(S3Store.fromLocation(location));
  t.teardown(() => view.close());
  t.equal(view.catalog.all.length, images.size, 'S3 alone lists every synch point');
  for (const point of view.catalog.all) {
    const image = await (await view.snapshots.open(point)).read(0, SMALL_POLICY.sizeBytes);
    if (!image.equals(images.get(point.recordSequence)!)) t.fail(`point ${point.recordSequence} differs`);
  }
  t.pass(`all ${images.size} points restore from S3 alone`);
});
