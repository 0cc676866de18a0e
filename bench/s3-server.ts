/**
 * The S3-compatible server benchmarks measure against: the one `npm test` started (S3_TEST_URL
 * and AWS_* in the environment), else a Ceph radosgw started here on 127.0.0.1 by
 * scripts/s3-test-server in a scratch state directory and stopped by the cleanup stack.
 * S3_TEST_PORT picks its ports (see the script), so two benchmarks can run side by side.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { DIST_DIR, exec, type Cleanup } from './common.js';

const SCRIPT = path.resolve(DIST_DIR, '../../scripts/s3-test-server');

export interface BenchS3 {
  /** An s3:// location (bucket created) no one else uses. */
  url: string;
  /** AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION. */
  env: Record<string, string>;
  /** `host:port` of the server, for tools that take it apart (s3backer). */
  endpoint: string;
}

/** A fresh S3 location on a running server; `{ skipped }` with the reason when none can be had. */
export async function benchS3(cleanup: Cleanup, name: string, log: (message: string) => void): Promise<BenchS3 | { skipped: string }> {
  let env: Record<string, string>;
  let base: string;
  if (process.env.S3_TEST_URL && process.env.AWS_ENDPOINT_URL) {
    env = s3Env(process.env);
    base = process.env.S3_TEST_URL;
  } else {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'salvo-bench-s3-'));
    cleanup.add(`stop radosgw (${state})`, async () => {
      await exec(SCRIPT, ['stop', state], { timeoutMs: 120_000 }).catch(() => undefined);
      fs.rmSync(state, { recursive: true, force: true });
    });
    log('starting radosgw on 127.0.0.1 (scripts/s3-test-server)…');
    let started;
    try {
      started = await exec(SCRIPT, ['start', state], { timeoutMs: 900_000 });
    } catch (err) {
      return { skipped: `the S3 test server did not start: ${(err as Error).message.split('\n').slice(-3).join(' ')}` };
    }
    env = Object.fromEntries(started.stdout.split('\n').filter((l) => /^AWS_[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    base = 's3://salvo-bench/run';
  }
  await ensureBucket(env, base);
  const url = `${base.replace(/\/+$/, '')}/${name}-${randomBytes(4).toString('hex')}`;
  return { url, env, endpoint: new URL(env.AWS_ENDPOINT_URL!).host };
}

/**
 * An S3 client for the server. The SDK is loaded only here, on first use: merely loaded into a
 * benchmark process, its large heap makes every GC dearer and the in-process benchmarks slower.
 */
export async function benchS3Client(env: Record<string, string>): Promise<S3Client> {
  const [{ S3Client }, { silenceSdkVersionWarning }] = await Promise.all([import('@aws-sdk/client-s3'), import('../lib/archive/s3-store.js')]);
  silenceSdkVersionWarning();
  return new S3Client({
    region: env.AWS_REGION ?? 'us-east-1',
    endpoint: env.AWS_ENDPOINT_URL,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Creates the bucket of `location` (s3://bucket/...) unless it exists. */
export async function ensureBucket(env: Record<string, string>, location: string): Promise<void> {
  const client = await benchS3Client(env);
  const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
  try {
    await client.send(new CreateBucketCommand({ Bucket: /^s3:\/\/([^/]+)/.exec(location)![1]! }));
  } catch (err) {
    if (!/BucketAlreadyOwnedByYou|BucketAlreadyExists/.test((err as Error).name)) throw err;
  } finally {
    client.destroy();
  }
}

/** The AWS_* settings of an environment (the server's endpoint and credentials). */
export function s3Env(source: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ['AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION']) if (source[key]) env[key] = source[key]!;
  return env;
}
