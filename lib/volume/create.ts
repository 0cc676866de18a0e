/**
 * `salvo init`'s work: a new volume directory (its slot files, sparse, and `volume.json`) and
 * the volume's descriptor at the root of its archive. Never over an existing volume or an archive
 * that holds one; on any failure (a Ctrl-C included) nothing is left behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { VolumeError, isVolumeError } from '../errors.js';
import type { ObjectCipher } from '../format/object-cipher.js';
import { encodeVolumeConfig, newVolumeConfig, resolvePolicy, type PolicyInput, type S3Settings, type VolumeConfig } from '../format/volume-config.js';
import { ArchiveKeys, type ArchiveStore } from '../archive/archive-store.js';
import { writeConfig } from './config-file.js';
import { CONFIG_FILE, FsVolumeFiles, SLOTS_DIR, slotsDirectory, syncDirectory } from './files.js';
import { slotDescriptors } from './open-files.js';

/** Slot files made between two looks at the event loop (a signal, say). */
const SLOTS_BETWEEN_YIELDS = 256;

export interface CreateOptions extends Omit<PolicyInput, 'workingSetSegments'> {
  workingSetSegments?: number;
  /** The archive's location as the config names it: a directory path or `s3://bucket/prefix`. */
  archive: string;
  /** The archive there, opened by the caller; init registers the volume in it. */
  store: ArchiveStore;
  s3?: S3Settings;
  /** Seal archived objects with this key (AES-256-GCM); the config keeps where its file is. */
  encryption?: { cipher: ObjectCipher; keyFile: string };
  rpoSeconds?: number;
  /** Stops init between slot files (Ctrl-C), leaving nothing behind. */
  signal?: AbortSignal;
}

export async function createVolume(dir: string, options: CreateOptions, now = new Date()): Promise<VolumeConfig> {
  const policy = resolvePolicy(options);
  // A limit of open files too low for any volume is refused now, not at the first mount. The
  // number of slot files does not matter: they share a pool of descriptors (open-files.ts).
  slotDescriptors();
  const files = new FsVolumeFiles(dir);
  if (files.read(CONFIG_FILE)) {
    throw new VolumeError('EXISTS', `${dir} already holds a salvo volume`, { hint: 'choose another directory; init never overwrites a volume' });
  }
  const present = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  if (present.length === 1 && present[0] === SLOTS_DIR) {
    // What an init killed before its end leaves (a Ctrl-C cleans up; kill -9 or a power cut cannot).
    throw new VolumeError('EXISTS', `${dir} holds the slot files of an init that did not finish (no volume.json)`, { hint: `remove them (rm -r ${slotsDirectory(dir)}) and run init again` });
  }
  if (present.length > 0) throw new VolumeError('EXISTS', `${dir} is not empty`, { hint: 'give init a new or empty directory' });
  const encryption = options.encryption && { keyCheck: options.encryption.cipher.keyCheck, keyFile: options.encryption.keyFile };
  const config = newVolumeConfig(policy, options.archive, options.rpoSeconds ?? 0, now, options.s3, encryption);
  const { store } = options;
  const createdDir = !fs.existsSync(dir);
  let registered = false;
  try {
    // Refused before the slots are made, not after; the put below is what makes it atomic.
    if ((await store.head(ArchiveKeys.descriptor)) !== null) throw archiveHoldsAVolume(store);
    fs.mkdirSync(slotsDirectory(dir), { recursive: true, mode: 0o700 });
    for (let i = 0; i < policy.workingSetSegments + policy.spareSegments; i++) {
      files.createSlot(i, policy.segmentSizeBytes);
      // Many slots take seconds: let a signal in, and stop there (cleaned up below).
      if (i % SLOTS_BETWEEN_YIELDS === SLOTS_BETWEEN_YIELDS - 1) await new Promise((resolve) => setImmediate(resolve));
      if (options.signal?.aborted) throw new VolumeError('INTERRUPTED', `init of ${dir} was interrupted; nothing was left behind`);
    }
    const { archive: _location, encryptKeyFile: _keyFile, ...descriptor } = config;
    try {
      await store.put(ArchiveKeys.descriptor, [Buffer.from(encodeVolumeConfig(descriptor))]);
      registered = true;
    } catch (err) {
      throw isVolumeError(err, 'ARCHIVE_CONFLICT') ? archiveHoldsAVolume(store) : err;
    }
    // The slot files' names before volume.json names the volume, and the volume directory's own name after.
    syncDirectory(slotsDirectory(dir));
    writeConfig(files, config);
    if (createdDir) syncDirectory(path.dirname(path.resolve(dir)));
  } catch (err) {
    // Leave nothing behind that would make a second attempt fail.
    if (registered) await store.delete(ArchiveKeys.descriptor).catch(() => undefined);
    if (createdDir) fs.rmSync(dir, { recursive: true, force: true });
    else if (fs.existsSync(slotsDirectory(dir))) fs.rmSync(slotsDirectory(dir), { recursive: true, force: true });
    throw err;
  }
  return config;
}

function archiveHoldsAVolume(store: ArchiveStore): VolumeError {
  return new VolumeError('ARCHIVE_CONFLICT', `archive ${store.location} already holds a volume`, {
    hint: 'give each volume its own archive directory or prefix',
  });
}
