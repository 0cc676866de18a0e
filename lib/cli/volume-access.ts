/**
 * The volume as its configuration describes it: the archive `volume.json` names (a directory, or
 * S3 with the endpoint kept there) and the key whose file it names. The engine takes both from
 * its caller; this is where the commands (and the benchmarks) get them.
 */
import { VolumeError } from '../errors.js';
import { readKeyFile } from '../archive/key-file.js';
import type { ArchiveStore } from '../archive/archive-store.js';
import { openArchiveStore } from '../archive/open-store.js';
import { readVolumeConfig } from '../volume/config-file.js';
import { Volume, type OpenOptions } from '../volume/volume.js';
import { FsVolumeFiles } from '../volume/files.js';
import { loadLocalRetention } from '../retention/local-record.js';
import { showKept } from '../history/retention.js';

export interface OpenedVolume {
  volume: Volume;
  store: ArchiveStore;
  /** Closes the volume, then its archive store. */
  close(): Promise<void>;
}

export async function openVolume(dir: string, options: Omit<OpenOptions, 'store' | 'cipher'> = {}): Promise<OpenedVolume> {
  const config = readVolumeConfig(dir);
  if (!config.archive) throw new VolumeError('CORRUPT_CONFIG', `${dir}/volume.json names no archive`);
  const cipher = config.encryption && config.encryptKeyFile ? readKeyFile(config.encryptKeyFile) : null;
  const store = await openArchiveStore(config.archive, { endpoint: config.s3Endpoint, pathStyle: config.s3PathStyle });
  let volume: Volume;
  try {
    volume = await Volume.open(dir, { ...options, store, cipher });
  } catch (err) {
    await store.close();
    throw err;
  }
  // The points a retention record forgot stay hidden, as in the mount (lib/retention/keeper.ts).
  showKept(volume.catalog, loadLocalRetention(new FsVolumeFiles(dir)), config.workingSetSegments);
  return {
    volume,
    store,
    close: async () => {
      await volume.close();
      await store.close();
    },
  };
}
