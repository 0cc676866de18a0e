import path from 'node:path';
import type { Command } from 'commander';
import { formatBytes, parseSize } from '../../format/units.js';
import { print, printJson } from '../output.js';
import { s3Settings, wholeNumber } from './options.js';

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a volume: its segment slots on primary storage and its archive')
    .argument('<dir>', 'volume directory to create (new or empty)')
    .requiredOption('--size <size>', 'volume size, e.g. 20G')
    .option('--block-size <bytes>', 'block size', '4096')
    .option('--segment-size <size>', 'segment size', '64M')
    .option('--segments <n>', 'working-set length: current + active segments (default: 64, or enough for twice the volume)')
    .option('--spare <n>', 'slots beyond the working set where segments wait for the archive', '8')
    .option('--archive <dir|s3://bucket/prefix>', 'backing storage (default: <dir>-archive beside the volume)')
    .option('--rpo <seconds>', 'while writes arrive, ship them to the archive at least this often (0: only at synch points)', '0')
    .option('--s3-endpoint <url>', 'S3-compatible server for an s3:// archive (default: AWS_ENDPOINT_URL, else AWS); kept in the volume’s config')
    .option('--no-s3-path-style', 'with a custom endpoint, use virtual-hosted-style addressing instead of path-style')
    .option('--encrypt-key-file <file>', 'encrypt archived objects (AES-256-GCM) with the 32-byte key in this file; keep a copy of it off this machine')
    .option('--json', 'print the new volume’s configuration as JSON')
    .addHelpText(
      'after',
      `
Examples:
  salvo init /var/lib/salvo/db --size 20G --archive /backup/db
  salvo init /var/lib/salvo/db --size 20G --archive s3://backups/db --rpo 30
  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… salvo init /srv/v --size 1G --archive s3://b/v --s3-endpoint http://10.0.0.5:7480
  salvo init /tmp/v --size 64M --segment-size 1M --segments 128`,
    )
    .action(async (dir: string, options: Record<string, string | boolean | undefined>) => {
      const archive = (options.archive as string | undefined) ?? `${path.resolve(dir).replace(/\/+$/, '')}-archive`;
      const { Volume } = await import('../../volume/volume.js'); // heavy: loaded only when init runs (see main.ts)
      const config = await Volume.create(path.resolve(dir), {
        sizeBytes: parseSize(options.size as string, '--size'),
        blockSizeBytes: parseSize(options.blockSize as string, '--block-size'),
        segmentSizeBytes: parseSize(options.segmentSize as string, '--segment-size'),
        workingSetSegments: options.segments === undefined ? undefined : wholeNumber(options.segments as string, '--segments'),
        spareSegments: wholeNumber(options.spare as string, '--spare'),
        archive: /^[a-z][a-z0-9+.-]*:\/\//i.test(archive) ? archive : path.resolve(archive),
        rpoSeconds: wholeNumber(options.rpo as string, '--rpo', 0),
        s3: archive.startsWith('s3://') ? s3Settings(options) : undefined,
        encryptKeyFile: options.encryptKeyFile as string | undefined,
      });
      if (options.json) return printJson({ dir: path.resolve(dir), ...config });
      const slots = config.workingSetSegments + config.spareSegments;
      print(`created volume ${path.resolve(dir)} (${config.volumeId})`);
      print(`  size          ${formatBytes(config.sizeBytes)} in ${formatBytes(config.blockSizeBytes)} blocks`);
      print(`  working set   ${config.workingSetSegments} segments of ${formatBytes(config.segmentSizeBytes)}, ${config.spareSegments} spare`);
      print(`  primary       up to ${formatBytes(slots * config.segmentSizeBytes)} in ${slots} sparse slot files`);
      print(`  archive       ${config.archive}${config.encryption ? ` (encrypted, key ${config.encryptKeyFile})` : ''}`);
      print(`next: salvo mount ${dir} <mountpoint>`);
    });
}
