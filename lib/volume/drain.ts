/**
 * Draining the archive before a mount stops (`salvo unmount`): the current segment's tail is
 * shipped, then the archiver is given time to take everything queued, so that once unmount says
 * so the archive alone restores every synch point. An archive that keeps failing (full,
 * unreachable, refusing) ends the wait after a few seconds of failures, and the time the user
 * allows ends it in any case: the report then names what is on primary storage only. Nothing is
 * dropped either way: what the archive has not taken ships at the next mount.
 */
import type { TroubleCause } from '../archive/archive-trouble.js';
import { synchPointTime } from './synch-point.js';
import type { Volume } from './volume.js';

/** A failing archive is given this long before unmount stops waiting for it. */
const STUCK_MS = 5000;
const LOOK_EVERY_MS = 100;

export interface DrainReport {
  drained: boolean;
  /** Why not: the archive's cause and last error, or the time running out. */
  cause: TroubleCause | 'timeout' | null;
  reason: string | null;
  /** What is on primary storage only, to ship at the next mount: bytes, and the synch points. */
  bytesWaiting: number;
  pointsNotOffSite: { time: string; label: string | null }[];
}

export async function drainArchive(volume: Volume, timeoutMs: number, stuckMs = STUCK_MS): Promise<DrainReport> {
  const { clock } = volume;
  const started = clock.monotonic();
  let failingSince: number | null = null;
  await volume.shipTail();
  const { archiver } = volume.internals;
  // After failures the archiver waits up to 30 s before it tries again: the drain's few seconds
  // must see a try, or an archive that is back would be reported as failing.
  archiver.retryNow();
  for (;;) {
    if (archiver.firstPending() === null) return report(volume, null, null);
    const now = clock.monotonic();
    failingSince = archiver.stats.failingCause === null ? null : (failingSince ?? now);
    if (failingSince !== null && now - failingSince >= stuckMs) return report(volume, archiver.stats.failingCause, archiver.stats.lastError);
    if (now - started >= timeoutMs) return report(volume, 'timeout', `the archive did not take everything within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise<void>((resolve) => clock.after(LOOK_EVERY_MS, resolve));
  }
}

function report(volume: Volume, cause: DrainReport['cause'], reason: string | null): DrainReport {
  const status = volume.status();
  const recovery = volume.recoveryPoint();
  const notOffSite = volume.catalog.all.filter((p) => recovery === null || p.recordSequence > recovery.recordSequence);
  return {
    drained: cause === null,
    cause,
    reason,
    bytesWaiting: status.archive.bytesWaiting,
    pointsNotOffSite: notOffSite.map((p) => ({ time: synchPointTime(p), label: p.label })),
  };
}
