/**
 * Tests skipped for a missing prerequisite (root, /dev/fuse, loop devices, the S3 server) write
 * their reason to SALVO_SKIP_LOG, which `npm test` (scripts/test) sums up loudly at the end: a
 * skipped test must not pass for a passing one. CI sets SALVO_REQUIRE_FUSE/S3, which turn the
 * skips into failures.
 */
import fs from 'node:fs';

export function recordSkip(reason: string): void {
  const log = process.env.SALVO_SKIP_LOG;
  if (log) fs.appendFileSync(log, `${reason.replace(/\n/g, ' ')}\n`);
}
