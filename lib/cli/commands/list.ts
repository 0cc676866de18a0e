import type { Command } from 'commander';
import { isVolumeError } from '../../errors.js';
import { Catalog, synchPointTime, type SynchPoint } from '../../volume/synch-point.js';
import { print, printJson, printTable } from '../output.js';
import type { ArchiveAccess } from './options.js';

export interface ListedPoint {
  time: string;
  label: string | null;
  archived: boolean;
  segment: number;
  offset: number;
  info: Record<string, string>;
}

/**
 * The synch points of a volume directory (read without the lock, so it works while the
 * volume is mounted) or of an archive, oldest first.
 */
export async function listPoints(target: string, access: ArchiveAccess = {}): Promise<ListedPoint[]> {
  // heavy: loaded only when list runs (see main.ts)
  const [{ SegmentSlot }, { FsVolumeFiles }, { readConfig }, { classifyTarget, openArchive }, { loadLocalRetention }, { showKept }] = await Promise.all([
    import('../../volume/segment-slot.js'),
    import('../../volume/files.js'),
    import('../../volume/config-file.js'),
    import('../target.js'),
    import('../../retention/local-record.js'),
    import('../../history/retention.js'),
  ]);
  if (classifyTarget(target, access) === 'volume') {
    const files = new FsVolumeFiles(target);
    const config = readConfig(files);
    const onPrimary = new Set<number>();
    for (let i = 0; i < config.workingSetSegments + config.spareSegments; i++) {
      let slot;
      try {
        slot = SegmentSlot.open(files, i, config.segmentSizeBytes, config.version);
      } catch (err) {
        if (isVolumeError(err, 'NOT_FOUND')) continue; // `salvo verify` reports a missing slot
        throw err;
      }
      try {
        const header = slot.readHeader();
        if (header) onPrimary.add(header.sequence);
      } catch {
        // a damaged slot counts as not on primary; `salvo verify` reports it
      } finally {
        slot.close();
      }
    }
    const windowOnPrimary = (p: SynchPoint) => {
      for (let s = Math.max(1, p.sequence - config.workingSetSegments); s <= p.sequence; s++) if (!onPrimary.has(s)) return false;
      return true;
    };
    const catalog = Catalog.load(files);
    showKept(catalog, loadLocalRetention(files), config.workingSetSegments);
    return catalog.all.map((p) => listed(p, !windowOnPrimary(p)));
  }
  const view = await openArchive(target, access);
  try {
    return view.catalog.all.map((p) => listed(p, true));
  } finally {
    await view.close();
  }
}

function listed(p: SynchPoint, archived: boolean): ListedPoint {
  return { time: synchPointTime(p), label: p.label, archived, segment: p.sequence, offset: p.offset, info: p.info };
}

export function registerList(program: Command): void {
  program
    .command('list')
    .description('list the synch points of a volume or an archive, oldest first')
    .argument('<path>', 'volume directory, archive directory, or s3://bucket/prefix')
    .option('--json', 'print an array of {time, label, archived, segment, offset, info}')
    .option('--s3-endpoint <url>', 'S3-compatible server of an s3:// archive (default: AWS_ENDPOINT_URL, else AWS)')
    .option('--encrypt-key-file <file>', 'the key of an encrypted archive')
    .addHelpText('after', '\nExamples:\n  salvo list /var/lib/salvo/db\n  salvo list /backup/db --json\n  salvo list s3://backups/db --encrypt-key-file /root/db.key')
    .action(async (target: string, options: { json?: boolean } & ArchiveAccess) => {
      const points = await listPoints(target, options);
      if (options.json) return printJson(points);
      if (points.length === 0) return print('no synch points yet (take one with `salvo sync`)');
      printTable(
        ['TIME', 'LABEL', 'WHERE', 'INFO'],
        points.map((p) => [p.time, p.label ?? '-', p.archived ? 'archive' : 'primary', Object.entries(p.info).map(([k, v]) => `${k}=${v}`).join(' ')]),
      );
    });
}
