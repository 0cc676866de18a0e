/** Opens the archive named by a location: a directory path, or `s3://bucket/prefix`. */
import path from 'node:path';
import { VolumeError } from '../errors.js';
import type { S3Settings } from '../format/volume-config.js';
import type { ArchiveStore } from './archive-store.js';
import { DirectoryStore } from './directory-store.js';

export function isS3Location(location: string): boolean {
  return location.startsWith('s3://');
}

export async function openArchiveStore(location: string, s3: S3Settings = {}): Promise<ArchiveStore> {
  if (isS3Location(location)) {
    // Loaded on demand: the AWS SDK is large, and directory archives never need it.
    const { S3Store } = await import('./s3-store.js');
    return S3Store.fromLocation(location, { endpoint: s3.endpoint, forcePathStyle: s3.pathStyle });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw VolumeError.badInput(`archive '${location}' has an unknown scheme`, 'use a directory path or s3://bucket/prefix');
  }
  if (!path.isAbsolute(location)) {
    throw VolumeError.badInput(`archive '${location}' is not an absolute path`, 'give the archive directory as an absolute path, or s3://bucket/prefix');
  }
  return new DirectoryStore(location);
}
