/**
 * The S3 test server for integration tests: S3_TEST_URL (set by scripts/test once radosgw
 * answers on 127.0.0.1) names a bucket and prefix; each test gets a fresh prefix under it.
 * Without it S3 tests skip with the reason, except under SALVO_REQUIRE_S3=1, where they fail.
 */
import { randomBytes } from 'node:crypto';
import { ensureBucket, s3Env } from '../../bench/s3-server.js';
import { recordSkip } from './skips.js';

interface Tap {
  skip(message: string): void;
  fail(message: string): void;
}

/** A fresh s3:// location for one test, its bucket created; null (after skip or fail) without a server. */
export async function s3TestLocation(t: Tap, name: string): Promise<string | null> {
  const base = process.env.S3_TEST_URL;
  if (!base) {
    const reason = 'S3_TEST_URL is not set (npm test starts radosgw and sets it)';
    if (process.env.SALVO_REQUIRE_S3 === '1') t.fail(`${reason}; SALVO_REQUIRE_S3=1`);
    else {
      t.skip(reason);
      recordSkip(reason);
    }
    return null;
  }
  await ensureBucket(s3Env(process.env), base);
  return `${base.replace(/\/+$/, '')}/${name}-${randomBytes(4).toString('hex')}`;
}
