/**
 * What a path on the command line names: a volume directory (volume.json and slots/), or an
 * archive (a directory holding a salvo archive, or s3://bucket/prefix). salvo tells them
 * apart by what is in them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { VolumeError, errnoCode, isVolumeError } from '../errors.js';
import type { VolumeConfig } from '../format/volume-config.js';
import { ObjectCipher } from '../format/object-cipher.js';
import type { ArchiveStore } from '../archive/archive-store.js';
import { ArchiveView } from '../archive/archive-view.js';
import type { CompressionPool } from '../archive/compression-pool.js';
import { isS3Location, openArchiveStore } from '../archive/open-store.js';
import { slotsDirectory } from '../volume/recovery.js';
import type { SegmentSource } from '../volume/segment-source.js';
import type { SnapshotCache } from '../volume/snapshot.js';
import type { Catalog } from '../volume/synch-point.js';
import { Volume } from '../volume/volume.js';
import { configPath, readVolumeConfig } from '../format/volume-config.js';

export function isVolumeDirectory(target: string): boolean {
  // Not existsSync: a directory the user may not read must say so, not look empty.
  const exists = (file: string) => {
    try {
      fs.statSync(file);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
      throw err;
    }
  };
  return exists(configPath(target)) && exists(slotsDirectory(target));
}

/** Opens `target` as an archive; NOT_FOUND with a clear line when it is neither. */
export async function openArchive(target: string, onProgress?: (done: number, total: number) => void): Promise<ArchiveView> {
  if (!isS3Location(target) && !fs.existsSync(target)) {
    throw new VolumeError('NOT_FOUND', `${target} does not exist`, { hint: 'give a volume directory, an archive directory, or s3://bucket/prefix' });
  }
  if (!isS3Location(target) && !fs.existsSync(path.join(target, 'volume.json'))) {
    throw new VolumeError('NOT_FOUND', `${target} is neither a salvo volume nor a salvo archive`, {
      hint: 'give the directory of `salvo init`, or the archive it names',
    });
  }
  const store = await openArchiveStore(isS3Location(target) ? target : path.resolve(target));
  try {
    const keyFile = process.env.SALVO_ENCRYPT_KEY_FILE;
    const view = await ArchiveView.open(store, { onProgress, cipher: keyFile ? ObjectCipher.fromKeyFile(keyFile) : undefined });
    for (const d of view.damaged) process.stderr.write(`salvo: warning: ${d.message}; synch points in segment ${d.sequence} are not listed (run \`salvo verify\`)\n`);
    return view;
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** A volume's history, from a volume directory (primary storage and archive) or an archive alone. */
export interface History {
  kind: 'volume' | 'archive';
  config: VolumeConfig;
  catalog: Catalog;
  snapshots: SnapshotCache;
  source: SegmentSource;
  store: ArchiveStore;
  pool: CompressionPool;
  cipher: ObjectCipher | null;
  volume: Volume | null;
  close(): Promise<void>;
}

/**
 * Opens a history for restore and verify. A volume directory is opened with its lock (a
 * mounted volume is refused with a hint to read its archive or its snapshots instead).
 */
export async function openHistory(target: string, onProgress?: (done: number, total: number) => void): Promise<History> {
  if (isVolumeDirectory(target)) {
    let volume: Volume;
    try {
      volume = await Volume.open(target, { onStall: () => undefined });
    } catch (err) {
      if (isVolumeError(err, 'LOCKED')) {
        const archive = readVolumeConfig(target).archive;
        throw new VolumeError('LOCKED', `${target} is mounted`, {
          hint: `read its archive instead (${archive}), or copy from <mountpoint>/snapshots/`,
        });
      }
      throw err;
    }
    return {
      kind: 'volume',
      config: volume.config,
      catalog: volume.catalog,
      snapshots: volume.snapshots,
      source: volume.source,
      store: volume.store,
      pool: volume.pool,
      cipher: volume.cipher,
      volume,
      close: () => volume.close(),
    };
  }
  const view = await openArchive(target, onProgress);
  return {
    kind: 'archive',
    config: view.config,
    catalog: view.catalog,
    snapshots: view.snapshots,
    source: view.source,
    store: view.store,
    pool: view.pool,
    cipher: view.cipher,
    volume: null,
    close: () => view.close(),
  };
}
