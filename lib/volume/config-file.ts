/** A volume's configuration on primary storage: `volume.json` in the volume directory (FORMAT.md §1). */
import { VolumeError } from '../errors.js';
import { decodeVolumeConfig, encodeVolumeConfig, type VolumeConfig } from '../format/volume-config.js';
import { CONFIG_FILE, FsVolumeFiles, type VolumeFiles } from './files.js';

/** The configuration of the volume whose files these are; NOT_FOUND when there is none. */
export function readConfig(files: VolumeFiles): VolumeConfig {
  const bytes = files.read(CONFIG_FILE);
  if (!bytes) throw new VolumeError('NOT_FOUND', `${files.dir} is not a salvo volume (no volume.json)`, { hint: 'create one with `salvo init`' });
  return decodeVolumeConfig(bytes.toString('utf8'), files.path(CONFIG_FILE));
}

/** The configuration of the volume in `dir` (its files on disk). */
export function readVolumeConfig(dir: string): VolumeConfig {
  return readConfig(new FsVolumeFiles(dir));
}

export function writeConfig(files: VolumeFiles, config: VolumeConfig): void {
  // On disk, its name too, before init says the volume exists: a power cut must not leave a volume without it.
  files.replace(CONFIG_FILE, Buffer.from(encodeVolumeConfig(config)), { durable: true });
}
