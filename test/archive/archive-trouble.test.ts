/**
 * Archive trouble is never silent, and never noisy: a failing archive is told once per cause
 * (with the cause and what to do), status carries the cause while it lasts, and the return of
 * the archive is told once too.
 */
import t from 'tap';
import { VolumeError } from '../../lib/errors.js';
import { troubleCause } from '../../lib/archive/archive-trouble.js';
import { createTempVolume } from '../helpers/temp-volume.js';

t.test('archive trouble: causes in the words an admin acts on', async (t) => {
  const unavailable = (m: string) => VolumeError.archiveUnavailable(m);
  t.equal(troubleCause(unavailable('put x in /backup failed: ENOSPC: no space left on device, write')), 'full');
  t.equal(troubleCause(unavailable('put x: HTTP 403 AccessDenied: Access Denied')), 'denied');
  t.equal(troubleCause(unavailable('put x in /backup failed: EROFS: read-only file system')), 'denied');
  t.equal(troubleCause(unavailable('put x: connect ECONNREFUSED 127.0.0.1:7480')), 'unreachable');
  t.equal(troubleCause(new VolumeError('ARCHIVE_CONFLICT', 'already holds a different segments/1.seg')), 'conflict');
  t.equal(troubleCause(new Error('something else')), 'failing');
});

t.test('archive trouble: one line per cause, status names it, one line when shipping resumes', async (t) => {
  const warnings: string[] = [];
  const { volume, store } = await createTempVolume(t, {}, { onWarning: (m) => warnings.push(m), retryDelayMsMax: 20 });
  store.failing = true;
  await volume.write(Buffer.alloc(4096, 1), 0);
  await volume.synch({ label: 'a' });
  while (store.stats.puts < 6) await new Promise((r) => setTimeout(r, 10));
  const status = volume.status().archive;
  t.equal(status.failingCause, 'unreachable', 'status: the cause');
  t.ok(status.failingSince !== null && status.lastError !== null, 'since when, and the last error');
  t.equal(warnings.filter((w) => /cannot be reached/.test(w)).length, 1, `one line for ${store.stats.puts} failed puts`);
  t.match(warnings.join('\n'), /archive memory:\/\/test: .*memory store is set to fail — the archive cannot be reached: .*writes wait on primary storage meanwhile/);
  store.failing = false;
  await volume.idle();
  t.equal(volume.status().archive.failingCause, null, 'cleared once it ships');
  t.match(warnings[warnings.length - 1], /shipping again after \d+ s of failures/);
});
