/**
 * An archive outage must not hold the volume's close: writes that wait for a segment slot the
 * archive would free fail (they were never acknowledged), and the close, with everything
 * acknowledged flushed, ends at once (SIGTERM, `salvo unmount`).
 */
import t from 'tap';
import { createTempVolume, SMALL_POLICY, within } from '../helpers/temp-volume.js';

t.test('close: a write stalled by an archive outage fails, and the close does not wait for the archive', async (t) => {
  const { volume, store, reopen } = await createTempVolume(t, {}, { retryDelayMsMax: 50 });
  store.failing = true;
  const bs = SMALL_POLICY.blockSizeBytes;
  const blocks = SMALL_POLICY.sizeBytes / bs;
  let acknowledged = 0;
  let stalled: Promise<unknown> | null = null;
  for (let i = 0; i < 10_000 && !stalled; i++) {
    const write = volume.write(Buffer.alloc(bs, (i % 250) + 1), (i % blocks) * bs);
    const settled = await Promise.race([write.then(() => true), new Promise((r) => setTimeout(() => r(false), 200))]);
    if (settled) acknowledged++;
    else stalled = write.then(() => 'acknowledged', (err: Error & { code?: string }) => err.code);
  }
  t.ok(stalled, `a write stalled after ${acknowledged} acknowledged ones`);
  t.ok(volume.status().writesStalledSince !== null, 'status says writes are stalled');
  await within(volume.close(), 'the close during an outage');
  t.equal(await stalled, 'CLOSED', 'the stalled write failed: it was never acknowledged');
  store.failing = false;
  const again = await reopen();
  t.teardown(() => again.close());
  await again.idle();
  t.equal(again.status().archive.pendingItems, 0, 'the next open ships what waited');
  for (let block = 0; block < blocks; block += 7) {
    let last = -1;
    for (let i = block; i < acknowledged; i += blocks) last = i;
    if (last >= 0) t.same(await again.read(block * bs, bs), Buffer.alloc(bs, (last % 250) + 1), `block ${block}: its last acknowledged write`);
  }
});
