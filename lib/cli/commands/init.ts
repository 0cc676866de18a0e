import path from 'node:path';
import type { Command } from 'commander';
import { VolumeError, isVolumeError } from '../../errors.js';
import type { ArchiveStore } from '../../archive/archive-store.js';
import type { ObjectCipher } from '../../format/object-cipher.js';
import type { VolumeConfig } from '../../format/volume-config.js';
import { formatBytes } from '../../format/units.js';
import { parseSize } from '../units.js';
import { checkApart, checkNewLocation } from '../locations.js';
import { print, printJson } from '../output.js';
import { parseRpo, s3Settings, wholeNumber } from './options.js';
import { addKeepOptions, policyFromOptions, type KeepOptions } from './retention.js';
import { describePolicy, type RetentionPolicy } from '../../format/retention-policy.js';

interface InitOptions extends KeepOptions {
  size: string;
  blockSize: string;
  segmentSize?: string;
  segments?: string;
  spare: string;
  archive?: string;
  rpo: string;
  s3Endpoint?: string;
  s3PathStyle?: boolean;
  encryptKeyFile?: string;
  json?: boolean;
}

export function registerInit(program: Command): void {
  addKeepOptions(program.command('init'))
    .description('create a volume: its segment slots on primary storage and its archive')
    .argument('<dir>', 'volume directory to create (new or empty)')
    .requiredOption('--size <size>', 'volume size, e.g. 20G')
    .option('--block-size <bytes>', 'block size', '4096')
    .option('--segment-size <size>', 'segment size (default: 64M, larger for volumes over 64G)')
    .option('--segments <n>', 'working-set length: current + active segments (default: 64, or enough for twice the volume)')
    .option('--spare <n>', 'slots beyond the working set where segments wait for the archive', '8')
    .option('--archive <dir|s3://bucket/prefix>', 'backing storage, outside the volume directory (default: <dir>-archive beside the volume)')
    .option('--rpo <duration>', 'while writes arrive, ship them to the archive at least this often, e.g. 30s (0: only at synch points)', '0')
    .option('--s3-endpoint <url>', 'S3-compatible server for an s3:// archive (default: AWS_ENDPOINT_URL, else AWS); kept in the volume’s config')
    .option('--no-s3-path-style', 'with --s3-endpoint, use virtual-hosted-style addressing instead of path-style')
    .option('--encrypt-key-file <file>', 'encrypt archived objects (AES-256-GCM) with the 32-byte key in this file; keep a copy of it off this machine')
    .option('--json', 'print the new volume’s configuration as JSON')
    .addHelpText(
      'after',
      `
Examples:
  salvo init /var/lib/salvo/db --size 20G --archive /backup/db
  salvo init /var/lib/salvo/db --size 20G --archive s3://backups/db --rpo 30s
  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… salvo init /srv/v --size 1G --archive s3://b/v --s3-endpoint http://10.0.0.5:7480
  salvo init /srv/v --size 20G --archive /backup/v --encrypt-key-file /root/v.key
  salvo init /tmp/v --size 64M --segment-size 1M --segments 128
  salvo init /var/lib/salvo/db --size 20G --keep-within 24h --keep-daily 7 --keep-monthly 12   # with a retention policy (see salvo policy)`,
    )
    .action(async (dir: string, options: InitOptions) => {
      // Every option is checked before anything is created.
      const sizeBytes = parseSize(options.size, '--size');
      const blockSizeBytes = parseSize(options.blockSize, '--block-size');
      const segmentSizeBytes = options.segmentSize === undefined ? undefined : parseSize(options.segmentSize, '--segment-size');
      const workingSetSegments = options.segments === undefined ? undefined : wholeNumber(options.segments, '--segments');
      const spareSegments = wholeNumber(options.spare, '--spare');
      const rpoSeconds = parseRpo(options.rpo);
      const policy = policyFromOptions(options);
      const volumeDir = checkNewLocation(dir, 'volume directory');
      const archiveArg = options.archive ?? `${volumeDir.replace(/\/+$/, '')}-archive`;
      let archive: string;
      let s3: { endpoint?: string; pathStyle?: boolean } | undefined;
      if (archiveArg.startsWith('s3://')) {
        s3 = s3Settings(options);
        if (s3.pathStyle === false && s3.endpoint === undefined) throw VolumeError.badInput('--no-s3-path-style applies with a custom endpoint', 'give --s3-endpoint too, or leave it out');
        archive = archiveArg;
      } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(archiveArg)) {
        throw VolumeError.badInput(`archive '${archiveArg}' has an unknown scheme`, 'use a directory path or s3://bucket/prefix');
      } else {
        const given = options.s3Endpoint !== undefined ? '--s3-endpoint' : options.s3PathStyle === false ? '--no-s3-path-style' : null;
        if (given) throw VolumeError.badInput(`${given} applies to an s3:// archive; ${archiveArg} is a directory`, `leave out ${given}`);
        archive = checkNewLocation(archiveArg, 'archive');
        checkApart(volumeDir, archive);
      }
      // heavy: loaded only when init runs (see main.ts)
      const [{ Volume }, { openArchiveStore }, { readKeyFile }] = await Promise.all([import('../../volume/volume.js'), import('../../archive/open-store.js'), import('../../archive/key-file.js')]);
      const keyFile = options.encryptKeyFile === undefined ? undefined : path.resolve(options.encryptKeyFile);
      const encryption = keyFile === undefined ? undefined : { cipher: readKeyFile(keyFile), keyFile };
      const store = await openArchiveStore(archive, s3);
      const interrupted = new AbortController();
      const stop = () => interrupted.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let config;
      try {
        config = await Volume.create(volumeDir, {
          sizeBytes,
          blockSizeBytes,
          segmentSizeBytes,
          workingSetSegments,
          spareSegments,
          archive,
          rpoSeconds,
          store,
          s3,
          encryption,
          signal: interrupted.signal,
        });
        if (policy) await savePolicyAtInit(volumeDir, config, store, encryption?.cipher ?? null, policy);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await store.close();
      }
      if (options.json) return printJson({ dir: volumeDir, ...config });
      const slots = config.workingSetSegments + config.spareSegments;
      print(`created volume ${volumeDir} (${config.volumeId})`);
      print(`  size          ${formatBytes(config.sizeBytes)} in ${formatBytes(config.blockSizeBytes)} blocks`);
      print(`  working set   ${config.workingSetSegments} segments of ${formatBytes(config.segmentSizeBytes)}, ${config.spareSegments} spare`);
      print(`  primary       up to ${formatBytes(slots * config.segmentSizeBytes)} in ${slots} sparse slot files`);
      print(`  archive       ${config.archive}${config.encryption ? ` (encrypted, key ${config.encryptKeyFile})` : ''}`);
      print(`  rpo           ${config.rpoSeconds > 0 ? `ship writes at least every ${config.rpoSeconds} s` : 'ship writes at every synch point'}`);
      print(`  retention     ${describePolicy(policy ?? {})}`);
      print(`next: salvo mount ${dir} <mountpoint>`);
    });
}

/** The policy given to init, as the archive's first retention record and the volume directory's copy of it. */
async function savePolicyAtInit(dir: string, config: VolumeConfig, store: ArchiveStore, cipher: ObjectCipher | null, policy: RetentionPolicy): Promise<void> {
  const [{ changeRetention }, { saveLocalRetention }, { FsVolumeFiles }] = await Promise.all([
    import('../../archive/retention-records.js'),
    import('../../retention/local-record.js'),
    import('../../volume/files.js'),
  ]);
  try {
    const state = await changeRetention({ store, volumeId: config.volumeId, cipher }, (current) => ({ ...current, policy }), Date.now());
    saveLocalRetention(new FsVolumeFiles(dir), state);
  } catch (err) {
    throw new VolumeError(isVolumeError(err) ? err.code : 'COMMAND_FAILED', `the volume ${dir} was created, and its retention policy was not saved: ${(err as Error).message.replace(/^[A-Z_]+: /, '')}`, {
      hint: `save it with \`salvo policy ${dir} --keep-…\``,
    });
  }
}
