/**
 * The mount's keeper applies the saved policy as the archive grows: at its first run it forgets
 * what the policy drops (hidden from the volume's catalog at once, recorded in the volume
 * directory's copy), and prunes those points only once they have been forgotten a day (the
 * undo's time), after the readers' grace. Time is the test's: timers fire when it moves.
 */
import t from 'tap';
import { changeRetention, readRetention } from '../../lib/archive/retention-records.js';
import { CompressionPool } from '../../lib/archive/compression-pool.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { RetentionKeeper, UNDO_MS } from '../../lib/retention/keeper.js';
import { PRUNE_GRACE_MS } from '../../lib/retention/prune.js';
import { loadLocalRetention } from '../../lib/retention/local-record.js';
import type { Clock, Timer } from '../../lib/util/clock.js';
import { FsVolumeFiles } from '../../lib/volume/files.js';
import { Catalog } from '../../lib/volume/synch-point.js';
import { tempDir } from '../helpers/temp-volume.js';
import { buildHistory, readBack } from './history-model.js';

class ManualClock implements Clock {
  private timers: { at: number; fn: () => void }[] = [];
  constructor(public nowMs: number) {}
  now = () => this.nowMs;
  monotonic = () => this.nowMs;
  random = () => 0.5;
  after(ms: number, fn: () => void): Timer {
    const timer = { at: this.nowMs + ms, fn };
    this.timers.push(timer);
    return { cancel: () => (this.timers = this.timers.filter((x) => x !== timer)) };
  }
  /** Moves time on by `ms`, firing the timers due by then. */
  advance(ms: number): void {
    this.nowMs += ms;
    const due = this.timers.filter((x) => x.at <= this.nowMs);
    this.timers = this.timers.filter((x) => x.at > this.nowMs);
    for (const timer of due) timer.fn();
  }
}

async function until(what: string, ready: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await ready()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${what} did not happen`);
}

t.test('keeper: forgets by the saved policy at once, prunes a day later after the grace', async (t) => {
  const { store, points } = await buildHistory(t, 41, 40);
  const config = await ArchiveView.descriptor(store);
  const archive = { store, volumeId: config.volumeId, cipher: null };
  const start = points[points.length - 1]!.point.timeMs;
  await changeRetention(archive, (current) => ({ ...current, policy: { last: 2 } }), start);
  const files = new FsVolumeFiles(tempDir(t));
  const catalog = Catalog.inMemory(points.map((m) => m.point));
  const pool = new CompressionPool();
  t.teardown(() => pool.close());
  const clock = new ManualClock(start);
  const keeper = new RetentionKeeper({ config, catalog, store, pool, cipher: null }, files, clock);
  t.teardown(() => keeper.close());
  const segments = () => store.list('segments/').then((k) => k.length);

  keeper.start();
  clock.advance(0);
  // The first run may compact what no point reads, and waits the readers' grace before its deletes.
  await until('the first run', async () => {
    if (keeper.status().lastRun !== null) return true;
    if ((await readRetention(archive)).pending.length > 0) clock.advance(PRUNE_GRACE_MS);
    return false;
  });
  const kept = points.filter((m, i) => i >= points.length - 2 || m.point.label !== null);
  t.same(catalog.all.map((p) => p.recordSequence), kept.map((m) => m.point.recordSequence), 'the volume’s catalog shows only the kept points at once');
  t.equal(keeper.status().lastRun!.forgot, points.length - kept.length, 'the run forgot the others');
  t.equal(keeper.status().lastRun!.prunedSegments, 0, 'and pruned nothing: the undo has a day');
  t.equal(loadLocalRetention(files).forgotten.flatMap((b) => b.points).length, points.length - kept.length, 'the volume directory’s copy records them');
  t.same(loadLocalRetention(files).lost, [], 'and no forgotten point lost its data to a compaction');

  const first = keeper.status().lastRun;
  const beforePrune = await segments();
  clock.advance(UNDO_MS); // a day of runs every 10 minutes, in one step: the next fires now
  await until('the prune to record what it deletes', async () => (await readRetention(archive)).pending.length > 0);
  t.equal(keeper.status().lastRun, first, 'the prune waits out the readers’ grace before it deletes');
  clock.advance(PRUNE_GRACE_MS);
  await until('the prune', () => keeper.status().lastRun !== first);
  t.ok(keeper.status().lastRun!.prunedSegments > 0, `a day later the run pruned ${keeper.status().lastRun!.prunedSegments} segments`);
  t.ok((await segments()) < beforePrune, 'their objects are gone');
  t.same(await readBack(store, kept), [], 'the kept points read back as they were');
  t.equal(keeper.status().problem, null, 'no run failed');
});
