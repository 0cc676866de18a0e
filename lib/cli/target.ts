/**
 * What a path on the command line names: a volume directory (volume.json and slots/), or an
 * archive (a directory holding a salvo archive, or s3://bucket/prefix). salvo tells them
 * apart by what is in them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { VolumeError, errnoCode, isVolumeError } from '../errors.js';
import { ArchiveView } from '../history/archive-view.js';
import { isS3Location, openArchiveStore } from '../archive/open-store.js';

export { isS3Location };
import { VolumeHistory, type History } from '../history/history.js';
import type { Volume } from '../volume/volume.js';
import { openVolume, type OpenedVolume } from './volume-access.js';
import { readKeyFile } from '../archive/key-file.js';
import { readVolumeConfig } from '../volume/config-file.js';
import { CONFIG_FILE, FsVolumeFiles, slotsDirectory } from '../volume/files.js';
import { compactedKeys } from '../format/retention-record.js';
import { loadLocalRetention } from '../retention/local-record.js';
import { s3Settings, type ArchiveAccess } from './commands/options.js';

export type TargetKind = 'volume' | 'archive';

/** True when `file` exists; a dead mount on the way says so instead of looking empty. */
function exists(file: string): boolean {
  try {
    fs.statSync(file);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    if (code === 'ENOTCONN') {
      throw new VolumeError('NOT_MOUNTED', `${file} lies under a FUSE mount whose process is gone`, { hint: 'unmount it (`salvo unmount <mountpoint>` for a salvo mount), then mount again' });
    }
    throw err; // EACCES: a directory the user may not read must say so, not look empty
  }
}

export function isVolumeDirectory(target: string): boolean {
  return exists(path.join(target, CONFIG_FILE)) && exists(slotsDirectory(target));
}

/**
 * Whether `target` is a volume directory or an archive, and that the archive options fit it:
 * a volume directory names its own archive and key (volume.json), a directory archive needs
 * no endpoint. NOT_FOUND with a clear line when it is neither.
 */
export function classifyTarget(target: string, access: ArchiveAccess = {}): TargetKind {
  if (isS3Location(target)) return 'archive';
  if (!exists(target)) {
    throw new VolumeError('NOT_FOUND', `${target} does not exist`, { hint: 'give a volume directory, an archive directory, or s3://bucket/prefix' });
  }
  if (isVolumeDirectory(target)) {
    const given = access.encryptKeyFile !== undefined ? '--encrypt-key-file' : access.s3Endpoint !== undefined ? '--s3-endpoint' : null;
    if (given) {
      throw VolumeError.badInput(`${given} is for an archive given by path; ${target} is a volume directory, whose volume.json names its archive and key`, `leave out ${given}`);
    }
    return 'volume';
  }
  if (!exists(path.join(target, 'volume.json'))) {
    throw new VolumeError('NOT_FOUND', `${target} is neither a salvo volume nor a salvo archive`, {
      hint: 'give the directory of `salvo init`, or the archive it names',
    });
  }
  if (access.s3Endpoint !== undefined) throw VolumeError.badInput(`--s3-endpoint is for s3:// archives; ${target} is a directory`, 'leave out --s3-endpoint');
  return 'archive';
}

/** Opens `target` as an archive (its kind checked by classifyTarget). */
export async function openArchive(
  target: string,
  access: ArchiveAccess,
  onProgress?: (done: number, total: number) => void,
  cacheBytesMax?: number,
): Promise<ArchiveView> {
  const cipher = access.encryptKeyFile !== undefined ? readKeyFile(access.encryptKeyFile) : undefined;
  const store = isS3Location(target) ? await openArchiveStore(target, s3Settings(access)) : await openArchiveStore(path.resolve(target));
  try {
    const view = await ArchiveView.open(store, { onProgress, cipher, cacheBytesMax });
    if (view.catalogProblem) process.stderr.write(`salvo: warning: ${view.catalogProblem}; every summary past it was read instead (the volume's next mount rewrites the catalog)\n`);
    if (view.retentionProblem) process.stderr.write(`salvo: warning: ${view.retentionProblem}; the record before it is used: points forgotten since may be listed, and those whose segments were deleted since cannot be read\n`);
    for (const d of view.damaged) process.stderr.write(`salvo: warning: ${d.message}; synch points in segment ${d.sequence} are not listed (run \`salvo verify\`)\n`);
    return view;
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** A volume's history, from a volume directory (primary storage and archive) or an archive alone. */
export interface OpenedHistory extends History {
  kind: TargetKind;
  volume: Volume | null;
  close(): Promise<void>;
}

/**
 * Opens a history for restore and verify. A volume directory is opened with its lock (a
 * mounted volume is refused with a hint to read its archive or its snapshots instead).
 */
export async function openHistory(target: string, access: ArchiveAccess, onProgress?: (done: number, total: number) => void): Promise<OpenedHistory> {
  if (classifyTarget(target, access) === 'volume') {
    let opened: OpenedVolume;
    try {
      opened = await openVolume(target, { onStall: () => undefined });
    } catch (err) {
      if (isVolumeError(err, 'LOCKED')) {
        const archive = readVolumeConfig(target).archive;
        throw new VolumeError('LOCKED', `${target} is mounted`, {
          hint: `read its archive instead (${archive}), or copy from <mountpoint>/snapshots/`,
        });
      }
      throw err;
    }
    const history = new VolumeHistory(opened.volume);
    // Compacted segments are read from the objects the volume's copy of the retention record names.
    history.source.useCompacted(compactedKeys(loadLocalRetention(new FsVolumeFiles(target))));
    const close = async () => {
      history.close();
      await opened.close();
    };
    return { kind: 'volume', config: history.config, catalog: history.catalog, snapshots: history.snapshots, source: history.source, store: history.store, pool: history.pool, cipher: history.cipher, volume: opened.volume, close };
  }
  const view = await openArchive(target, access, onProgress);
  return { kind: 'archive', config: view.config, catalog: view.catalog, snapshots: view.snapshots, source: view.source, store: view.store, pool: view.pool, cipher: view.cipher, volume: null, close: () => view.close() };
}
