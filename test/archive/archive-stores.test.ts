/**
 * Runs the ArchiveStore conformance suite on every store: memory, directory, and S3 when
 * S3_TEST_URL names a bucket (for example s3://salvo-test/conformance, with the endpoint and
 * keys in AWS_* as `scripts/s3-test-server start` prints them). Without S3_TEST_URL the S3
 * suite is skipped, unless SALVO_REQUIRE_S3=1, where that is a failure.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import {
  CreateBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { ArchiveKeys } from '../../lib/archive/archive-store.js';
import { DirectoryStore } from '../../lib/archive/directory-store.js';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { openArchiveStore } from '../../lib/archive/open-store.js';
import { S3Store } from '../../lib/archive/s3-store.js';
import { archiveStoreConformance } from './archive-store-conformance.js';
import { recordSkip } from '../helpers/skips.js';

const MiB = 1024 * 1024;

archiveStoreConformance(t, 'memory', async () => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
});

archiveStoreConformance(t, 'directory', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'salvo-directory-store-'));
  const store = new DirectoryStore(dir);
  return { store, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
});

t.test('archive-store(directory): only the descriptor makes the archive directory; a segment waits while it is missing', async (t) => {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'salvo-directory-store-'));
  t.teardown(() => fs.rm(parent, { recursive: true, force: true }));
  const store = new DirectoryStore(path.join(parent, 'archive'));
  await t.rejects(store.put(ArchiveKeys.segment(1), [Buffer.from('segment')]), { code: 'ARCHIVE_UNAVAILABLE', message: /archive directory .*archive is missing \(is its disk mounted\?\)/ });
  t.strictSame(await fs.readdir(parent), [], 'and creates nothing where the archive should be');
  await store.put(ArchiveKeys.descriptor, [Buffer.from('{}')]);
  await store.put(ArchiveKeys.segment(1), [Buffer.from('segment')]);
  t.strictSame(await store.list(''), [ArchiveKeys.segment(1), ArchiveKeys.descriptor], 'once init has put the descriptor, segments go in');
});

// Credentials must resolve for the requests to be sent, so give dummies where there are none.
const accessKeyId = process.env.AWS_ACCESS_KEY_ID || 'DUMMYACCESSKEY';

/** Runs `fn` with some environment variables replaced, then puts them back. */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

t.test('archive-store(s3): fromLocation rejects a location that names no bucket', async (t) => {
  for (const location of ['s3://', 's3:///prefix', 's3://b', 's3://bucket//x', 'http://bucket/x', 's3://bucket name']) {
    t.throws(() => S3Store.fromLocation(location), { name: 'VolumeError', code: 'BAD_INPUT' }, location);
  }
  await t.rejects(openArchiveStore('s3://'), { code: 'BAD_INPUT' }, 'through openArchiveStore');
  const err = (() => {
    try {
      S3Store.fromLocation('s3://AKIDEXAMPLE:wJalrXUtnFEMI@bucket/x');
      return undefined;
    } catch (err) {
      return err as Error;
    }
  })();
  t.match(err, { code: 'BAD_INPUT' });
  t.notMatch(err?.message, /wJalrXUtnFEMI/, 'credentials pasted into the URL are not echoed');
});

t.test('archive-store(s3): location is the s3:// URL, without a trailing slash', async (t) => {
  for (const [location, expected] of [
    ['s3://bucket', 's3://bucket'],
    ['s3://bucket/', 's3://bucket'],
    ['s3://bucket/a/b/', 's3://bucket/a/b'],
  ] as const) {
    const store = S3Store.fromLocation(location, { endpoint: 'http://127.0.0.1:1' });
    t.equal(store.location, expected);
    await store.close();
  }
});

t.test('archive-store(s3): an unreachable endpoint fails with ARCHIVE_UNAVAILABLE', async (t) => {
  const secret = process.env.AWS_SECRET_ACCESS_KEY || 'conformanceDummySecret0000000000000000000';
  await withEnv({ AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secret }, async () => {
    const store = S3Store.fromLocation('s3://salvo-test/unreachable', { endpoint: 'http://127.0.0.1:1', maxAttempts: 2 });
    t.teardown(() => store.close());
    const started = Date.now();
    for (const [what, request] of [
      ['put', () => store.put('volume.json', [Buffer.from('x')])],
      ['get', () => store.get('volume.json')],
      ['get range', () => store.get('volume.json', { offset: 0, length: 1 })],
      ['head', () => store.head('volume.json')],
      ['list', () => store.list('segments/')],
      ['delete', () => store.delete('volume.json')],
    ] as const) {
      const err = await (request() as Promise<unknown>).then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      t.match(err, { name: 'VolumeError', code: 'ARCHIVE_UNAVAILABLE', message: /ECONNREFUSED/ }, what);
      t.notMatch(err?.message, secret, `${what}: the secret is not in the message`);
    }
    t.ok(Date.now() - started < 5000, `fails fast (${Date.now() - started} ms)`);
  });
});

t.test('archive-store(s3): 5xx answers and silent servers fail with ARCHIVE_UNAVAILABLE', async (t) => {
  let requests = 0;
  const server = http.createServer((request, response) => {
    requests++;
    if (request.url?.includes('silent')) return; // never answers
    response.writeHead(503, { 'content-type': 'application/xml' });
    response.end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>try later</Message></Error>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await withEnv({ AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: 'dummySecret' }, async () => {
    const store = S3Store.fromLocation('s3://salvo-test/x', { endpoint, maxAttempts: 2, idleTimeoutMs: 300 });
    t.teardown(() => store.close());
    await t.rejects(store.get('volume.json'), { code: 'ARCHIVE_UNAVAILABLE', message: /HTTP 503 SlowDown: try later/ });
    t.equal(requests, 2, 'the SDK retried once');
    await t.rejects(store.head('silent'), { code: 'ARCHIVE_UNAVAILABLE', message: /TimeoutError/ });
  });
});

const s3Url = process.env.S3_TEST_URL;
if (s3Url) {
  s3Suites(s3Url);
} else if (process.env.SALVO_REQUIRE_S3 === '1') {
  t.fail('archive-store(s3): S3_TEST_URL is not set, and SALVO_REQUIRE_S3=1 requires the S3 suite');
} else {
  const skip = 'S3_TEST_URL is not set (e.g. s3://salvo-test/conformance, with the env that scripts/s3-test-server start prints)';
  t.test('archive-store(s3): conformance', { skip }, async () => {});
  recordSkip(skip);
}

function s3Suites(url: string): void {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw new Error(`S3_TEST_URL=${url} is not s3://bucket/prefix`);
  const bucket = m[1]!;
  const base = m[2]!.replace(/\/+$/, '');
  const runPrefix = `${base ? `${base}/` : ''}run-${randomBytes(6).toString('hex')}`;
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined;
  const client = new S3Client({
    region: process.env.AWS_REGION || 'us-east-1',
    ...(endpoint === undefined ? {} : { endpoint }),
    forcePathStyle: endpoint !== undefined,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  t.teardown(() => client.destroy());

  let bucketReady: Promise<void> | undefined;
  const ensureBucket = (): Promise<void> =>
    (bucketReady ??= client.send(new CreateBucketCommand({ Bucket: bucket })).then(
      () => undefined,
      (err: unknown) => {
        if (['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((err as Error).name)) return;
        throw err;
      },
    ));

  let stores = 0;
  // Small multipart settings, so that the suite's 12 MiB object goes up in three parts.
  const openStore = async (): Promise<{ store: S3Store; prefix: string }> => {
    await ensureBucket();
    const prefix = `${runPrefix}/${++stores}`;
    const store = S3Store.fromLocation(`s3://${bucket}/${prefix}`, { multipartThresholdBytes: 8 * MiB, partSizeBytes: 5 * MiB });
    return { store, prefix };
  };
  const emptyAndClose = async (store: S3Store): Promise<void> => {
    for (const key of await store.list('')) await store.delete(key);
    await store.close();
  };

  archiveStoreConformance(t, 's3', async () => {
    const { store } = await openStore();
    return { store, cleanup: () => emptyAndClose(store) };
  });

  t.test('archive-store(s3): keys are stored under the prefix of the location', async (t) => {
    const { store, prefix } = await openStore();
    t.teardown(() => emptyAndClose(store));
    t.equal(store.location, `s3://${bucket}/${prefix}`);
    await store.put('segments/0000000000000001.seg', [Buffer.from('x')]);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}/segments/0000000000000001.seg` }));
    t.equal(head.ContentLength, 1);
  });

  t.test('archive-store(s3): a put over the threshold goes up in parts and leaves no upload behind', async (t) => {
    const { store, prefix } = await openStore();
    t.teardown(() => emptyAndClose(store));
    const uploads = async () =>
      (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }))).Uploads ?? [];
    await store.put('big', [randomBytes(11 * MiB)]);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}/big` }));
    t.match(head.ETag, /-3"$/, 'a multipart ETag: 5 + 5 + 1 MiB');
    t.strictSame(await uploads(), [], 'after a completed upload');
    await t.rejects(store.put('big', [randomBytes(11 * MiB)]), { code: 'ARCHIVE_CONFLICT' });
    t.strictSame(await uploads(), [], 'after a refused upload');
  });

  t.test('archive-store(s3): list follows every page of a long listing', async (t) => {
    await ensureBucket();
    const prefix = `${runPrefix}/${++stores}`;
    const store = S3Store.fromLocation(`s3://${bucket}/${prefix}`, { listPageKeys: 2 });
    t.teardown(() => emptyAndClose(store));
    const keys = ['segments/3.seg', 'segments/1.seg', 'tails/x', 'segments/2.seg', 'volume.json'];
    for (const key of keys) await store.put(key, [Buffer.from(key)]);
    t.strictSame(await store.list(''), [...keys].sort());
    t.strictSame(await store.list('segments/'), keys.filter((k) => k.startsWith('segments/')).sort());
  });

  t.test('archive-store(s3): a missing bucket fails with ARCHIVE_UNAVAILABLE, not as a missing key', async (t) => {
    const store = S3Store.fromLocation(`s3://salvo-missing-${randomBytes(6).toString('hex')}/x`);
    t.teardown(() => store.close());
    await t.rejects(store.list(''), { code: 'ARCHIVE_UNAVAILABLE', message: /there is no bucket/ });
    await t.rejects(store.get('volume.json'), { code: 'ARCHIVE_UNAVAILABLE', message: /there is no bucket/ });
  });

  t.test('archive-store(s3): refused credentials fail with ARCHIVE_UNAVAILABLE, without the secret', async (t) => {
    const secret = 'wrongSecretKey0000000000000000000000000000';
    await ensureBucket();
    await withEnv({ AWS_SECRET_ACCESS_KEY: secret }, async () => {
      const { store } = await openStore();
      t.teardown(() => store.close());
      const err = await store.put('volume.json', [Buffer.from('x')]).then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      t.match(err, { code: 'ARCHIVE_UNAVAILABLE', message: /HTTP 403/ });
      t.notMatch(err?.message, secret);
    });
  });
}
