/**
 * An archive in an S3 bucket (AWS, or a compatible server such as Ceph radosgw), at
 * `s3://bucket/prefix`: the object for `key` is `prefix/key`.
 *
 * Invariants:
 * - A put never overwrites: a single PutObject, or a CompleteMultipartUpload, carries
 *   `If-None-Match: *`, so the server refuses an existing key (412) atomically. Objects over
 *   `multipartThresholdBytes` go up in parts; radosgw 16 ignores the condition on the
 *   completion, so a HEAD just before it also refuses an existing key (not atomic there).
 *   A failed multipart upload is aborted, so no parts are left behind to pay for.
 * - A put resolves once S3 has acknowledged the whole object; it reads nothing back. A 412
 *   on an SDK retry of our own landed put is still ARCHIVE_CONFLICT: callers tell it apart.
 * - `stats` counts calls, as the other stores do, not the HTTP requests behind them.
 * - Every failure leaves as a VolumeError: NOT_FOUND, ARCHIVE_CONFLICT, or ARCHIVE_UNAVAILABLE
 *   (network, timeouts, 5xx, refused credentials). Messages name keys and the s3:// location,
 *   never credentials.
 * - Endpoint, region and credentials come from the environment as the AWS tools read them.
 */
import assert from 'node:assert';
import createDebug from 'debug';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { VolumeError } from '../errors.js';
import { emptyStats, type ArchiveStore, type ByteRange } from './archive-store.js';

const debug = createDebug('salvo:archive');
const MiB = 1024 * 1024;

export interface S3StoreOptions {
  /** An S3-compatible server; defaults to AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS. */
  endpoint?: string;
  /** Path-style addressing; the default is true with a custom endpoint and false without. */
  forcePathStyle?: boolean;
  /** Attempts per request, including the first (the SDK retries 5xx and network errors). */
  maxAttempts?: number;
  /** How long a connection may stay silent, mid-request, before the request fails (default 60 s). */
  idleTimeoutMs?: number;
  /** Keys per ListObjectsV2 page (default, and S3's maximum, 1000); small in tests. */
  listPageKeys?: number;
  /** Objects larger than this are sent as a multipart upload (default 64 MiB). */
  multipartThresholdBytes?: number;
  /** Size of each multipart part but the last (default 16 MiB; S3 requires 5 MiB or more). */
  partSizeBytes?: number;
}

export class S3Store implements ArchiveStore {
  readonly stats = emptyStats();
  private readonly multipartThresholdBytes: number;
  private readonly partSizeBytes: number;
  private readonly listPageKeys: number | undefined;

  private constructor(
    readonly location: string,
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly keyPrefix: string,
    options: S3StoreOptions,
  ) {
    this.multipartThresholdBytes = options.multipartThresholdBytes ?? 64 * MiB;
    this.partSizeBytes = options.partSizeBytes ?? 16 * MiB;
    this.listPageKeys = options.listPageKeys;
    assert(this.partSizeBytes >= 5 * MiB, 'S3 parts must be at least 5 MiB');
    assert(this.multipartThresholdBytes >= this.partSizeBytes);
  }

  /** Opens `s3://bucket` or `s3://bucket/prefix`; a malformed location fails with BAD_INPUT. */
  static fromLocation(location: string, options: S3StoreOptions = {}): S3Store {
    const m = /^s3:\/\/([^/]*)\/?(.*)$/.exec(location);
    const bucket = m?.[1] ?? '';
    const prefix = (m?.[2] ?? '').replace(/\/+$/, '');
    if (!/^[A-Za-z0-9._-]{3,63}$/.test(bucket) || prefix.startsWith('/') || prefix.includes('//')) {
      const shown = location.replace(/\/\/[^/]*@/, '//…@'); // never echo credentials pasted into a URL
      throw VolumeError.badInput(`archive '${shown}' is not a valid S3 location`, 'use s3://bucket or s3://bucket/prefix');
    }
    const endpoint = options.endpoint ?? (process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined);
    silenceSdkVersionWarning();
    const client = new S3Client({
      region: process.env.AWS_REGION || 'us-east-1',
      ...(endpoint === undefined ? {} : { endpoint }),
      forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
      maxAttempts: options.maxAttempts ?? 3,
      // S3-compatible servers (radosgw 16) implement neither flexible checksum.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Without these a dead peer would hold a request forever. An idle limit, not a total one
      // (the SDK's requestTimeout), so that a large part on a slow link is not cut off.
      requestHandler: { connectionTimeout: 10_000, socketTimeout: options.idleTimeoutMs ?? 60_000 },
    });
    const canonical = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
    return new S3Store(canonical, client, bucket, prefix ? `${prefix}/` : '', options);
  }

  async put(key: string, parts: readonly Buffer[]): Promise<void> {
    this.stats.puts++;
    const sizeBytes = parts.reduce((n, p) => n + p.length, 0);
    try {
      if (sizeBytes > this.multipartThresholdBytes) await this.putMultipart(key, parts);
      else {
        const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts, sizeBytes);
        await this.client.send(new PutObjectCommand({ ...this.target(key), Body: body, IfNoneMatch: '*' }));
      }
    } catch (err) {
      throw statusOf(err) === 412 ? this.conflict(key, err) : this.classify(err, `put ${key}`);
    }
    this.stats.bytesPut += sizeBytes;
  }

  private async putMultipart(key: string, parts: readonly Buffer[]): Promise<void> {
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand(this.target(key)));
    assert(UploadId, 'CreateMultipartUpload returned no UploadId');
    try {
      const completed: CompletedPart[] = [];
      for (const body of splitParts(parts, this.partSizeBytes)) {
        const PartNumber = completed.length + 1;
        const { ETag } = await this.client.send(new UploadPartCommand({ ...this.target(key), UploadId, PartNumber, Body: body }));
        completed.push({ ETag, PartNumber });
      }
      // radosgw 16 ignores If-None-Match on CompleteMultipartUpload (AWS honours it), so check
      // first: this narrows the race with another writer from the whole upload to milliseconds.
      if ((await this.size(key)) !== null) throw this.conflict(key);
      await this.client.send(
        new CompleteMultipartUploadCommand({
          ...this.target(key),
          UploadId,
          MultipartUpload: { Parts: completed },
          IfNoneMatch: '*',
        }),
      );
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ ...this.target(key), UploadId })).catch((abortErr: unknown) => {
        debug('aborting the upload of %s failed: %s', key, (abortErr as Error).message);
      });
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.stats.gets++;
    if (range) assert(isCount(range.offset) && isCount(range.length), 'a range is two non-negative integers');
    try {
      if (range?.length === 0) {
        // "bytes=a-(a-1)" is not a range; an empty read only has to tell whether the key exists.
        if ((await this.size(key)) === null) throw this.notFound(key);
        return Buffer.alloc(0);
      }
      const Range = range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined;
      const response = await this.client.send(new GetObjectCommand({ ...this.target(key), Range }));
      const bytes = response.Body ? await response.Body.transformToByteArray() : new Uint8Array(0);
      if (response.ContentLength !== undefined && bytes.length !== response.ContentLength) {
        const what = `got ${bytes.length} of ${response.ContentLength} bytes`;
        throw VolumeError.archiveUnavailable(`get ${key} in ${this.location}: ${what}`);
      }
      this.stats.bytesGot += bytes.length;
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    } catch (err) {
      // S3 answers 416 to a range that starts at or past the end; the contract says empty.
      if (range && statusOf(err) === 416) return Buffer.alloc(0);
      if (statusOf(err) === 404 && !isNamed(err, 'NoSuchBucket')) throw this.notFound(key, err);
      throw this.classify(err, `get ${key}`);
    }
  }

  async head(key: string): Promise<number | null> {
    this.stats.heads++;
    try {
      return await this.size(key);
    } catch (err) {
      throw this.classify(err, `head ${key}`);
    }
  }

  /** The size of `key`, or null if it is missing; errors are not yet classified. */
  private async size(key: string): Promise<number | null> {
    try {
      const response = await this.client.send(new HeadObjectCommand(this.target(key)));
      assert(response.ContentLength !== undefined, 'HeadObject returned no Content-Length');
      return response.ContentLength;
    } catch (err) {
      if (statusOf(err) === 404 && !isNamed(err, 'NoSuchBucket')) return null;
      throw err;
    }
  }

  async list(prefix: string, startAfter?: string): Promise<string[]> {
    this.stats.lists++;
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    try {
      do {
        const Prefix = this.keyPrefix + prefix;
        const page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix,
            ContinuationToken,
            MaxKeys: this.listPageKeys,
            StartAfter: startAfter === undefined ? undefined : this.keyPrefix + startAfter,
          }),
        );
        for (const object of page.Contents ?? []) {
          if (object.Key?.startsWith(this.keyPrefix)) keys.push(object.Key.slice(this.keyPrefix.length));
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    } catch (err) {
      throw this.classify(err, `list '${prefix}'`);
    }
    // S3 lists in UTF-8 byte order; the contract is JavaScript string order (keys are ASCII, so the two agree on startAfter).
    return keys.filter((k) => startAfter === undefined || k > startAfter).sort();
  }

  async delete(key: string): Promise<void> {
    this.stats.deletes++;
    try {
      await this.client.send(new DeleteObjectCommand(this.target(key)));
    } catch (err) {
      if (statusOf(err) === 404) return; // some servers answer 404 for a missing key
      throw this.classify(err, `delete ${key}`);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private target(key: string): { Bucket: string; Key: string } {
    return { Bucket: this.bucket, Key: this.keyPrefix + key };
  }

  private notFound(key: string, cause?: unknown): VolumeError {
    return new VolumeError('NOT_FOUND', `get ${key}: no such object in ${this.location}`, { cause });
  }

  private conflict(key: string, cause?: unknown): VolumeError {
    return new VolumeError('ARCHIVE_CONFLICT', `archive object ${key} already exists in ${this.location}`, {
      cause,
      hint: 'another volume may be archiving to the same place; give each volume its own archive',
    });
  }

  /** Any other failure: a missing bucket, or the store cannot be reached or refused us. */
  private classify(err: unknown, what: string): VolumeError {
    if (err instanceof VolumeError) return err;
    const status = statusOf(err);
    const name = err instanceof Error ? err.name : 'Error';
    const detail = err instanceof Error ? err.message : String(err);
    if (isNamed(err, 'NoSuchBucket')) {
      // Not NOT_FOUND, which says of a key that it is missing: here the whole archive is.
      return new VolumeError('ARCHIVE_UNAVAILABLE', `${what}: there is no bucket ${this.bucket} (${this.location})`, {
        cause: err,
        hint: 'create the bucket first, or check the endpoint (AWS_ENDPOINT_URL) and region (AWS_REGION)',
      });
    }
    // The SDK's messages carry the server's text or the socket error, never the secret key.
    // radosgw sends no text with its errors, which the SDK reports as 'UnknownError'.
    if (name === 'CredentialsProviderError') {
      return new VolumeError('ARCHIVE_UNAVAILABLE', `${what} in ${this.location}: no S3 credentials`, {
        cause: err,
        hint: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment',
      });
    }
    const text = detail && detail !== 'UnknownError' ? `: ${detail}` : '';
    const why = status === undefined ? `${name}${text}` : `HTTP ${status} ${name}${text}`;
    const message = `${what} in ${this.location} failed: ${why}`;
    if (status !== 401 && status !== 403) return VolumeError.archiveUnavailable(message, err);
    return new VolumeError('ARCHIVE_UNAVAILABLE', message, {
      cause: err,
      hint: 'the store refused the request: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)',
    });
  }
}

/**
 * The SDK prints eight lines on stderr, once a process, about its own later releases needing a
 * newer Node than salvo supports; salvo pins the release it is tested with, so say nothing.
 */
export function silenceSdkVersionWarning(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/** The HTTP status of an SDK error, if the server answered at all. */
function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function isNamed(err: unknown, name: string): boolean {
  return err instanceof Error && err.name === name;
}

/** Re-cuts `parts` into bodies of exactly `partSizeBytes`, the last one shorter. */
function* splitParts(parts: readonly Buffer[], partSizeBytes: number): Generator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for (const part of parts) {
    for (let offset = 0; offset < part.length; ) {
      const piece = part.subarray(offset, offset + partSizeBytes - pendingBytes);
      pending.push(piece);
      pendingBytes += piece.length;
      offset += piece.length;
      if (pendingBytes === partSizeBytes) {
        yield Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}
