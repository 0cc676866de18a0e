import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { VolumeError, errnoCode } from '../../errors.js';
import { formatBytes } from '../../format/units.js';
import { synchPointTime } from '../../volume/synch-point.js';
import { print, printJson, progressBar } from '../output.js';
import type { ArchiveAccess } from './options.js';

interface RestoreOptions extends ArchiveAccess {
  at: string;
  dryRun?: boolean;
  json?: boolean;
}

/** The image restore would create: a new file in an existing directory (never overwritten). */
function checkOut(out: string): string {
  const file = path.resolve(out);
  try {
    fs.lstatSync(file);
    throw new VolumeError('EXISTS', `${file} already exists`, { hint: 'restore never overwrites a file; give a new path' });
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  let dir: fs.Stats;
  try {
    dir = fs.statSync(path.dirname(file));
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err;
    throw new VolumeError('NOT_FOUND', `${path.dirname(file)} does not exist`, { hint: 'create the directory first, or restore elsewhere' });
  }
  if (!dir.isDirectory()) throw VolumeError.badInput(`${path.dirname(file)} is not a directory`, 'give a path in an existing directory');
  return file;
}

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description('write the volume as of a synch point to an image file (sparse)')
    .argument('<path>', 'volume directory (not mounted), archive directory, or s3://bucket/prefix')
    .argument('<out>', 'image file to create (never overwritten)')
    .option('--at <point>', 'latest, a label, a snapshot name, or a time: the newest point at or before it (2026-11-22T01:30, 2026-11-22 01:30:00+01:00, epoch ms; UTC without an offset)', 'latest')
    .option('--dry-run', 'say what would be read, from where, and stop')
    .option('--json', 'print the result (or the plan) as JSON')
    .option('--s3-endpoint <url>', 'S3-compatible server of an s3:// archive (default: AWS_ENDPOINT_URL, else AWS)')
    .option('--encrypt-key-file <file>', 'the key of an encrypted archive')
    .addHelpText(
      'after',
      `
Examples:
  salvo restore /backup/db --at 2026-11-22T01:30:00.123Z db.img
  salvo restore /backup/db --at '2026-11-22 01:30' db.img      # the newest point at or before 01:30:59 UTC
  salvo restore s3://backups/db --at before-upgrade db.img --dry-run`,
    )
    .action(async (target: string, out: string, options: RestoreOptions) => {
      const file = checkOut(out);
      // heavy: loaded only when restore runs (see main.ts)
      const [{ planRestore, restoreSnapshot }, { openHistory }] = await Promise.all([import('../../history/restore.js'), import('../target.js')]);
      const bar = progressBar('reading summaries');
      const history = await openHistory(target, options, (done, total) => bar.update(done, total));
      bar.finish();
      try {
        const point = history.catalog.find(options.at);
        const snapshot = await history.snapshots.open(point);
        const time = synchPointTime(point);
        if (options.dryRun) {
          const plan = await planRestore(snapshot, history.source);
          if (options.json) return printJson({ time, label: point.label, out: file, ...plan });
          print(`would restore ${time}${point.label ? ` (${point.label})` : ''} to ${file}`);
          print(`  window      ${snapshot.window.length} segments scanned (${plan.summariesFromArchive} of their summaries from the archive); data in ${plan.segmentsOnPrimary} on primary, ${plan.segmentsFromArchive} from the archive`);
          print(`  primary     ${formatBytes(plan.bytesFromPrimary)}`);
          print(`  archive     ${formatBytes(plan.bytesFromArchive)} in ${plan.archiveRequests} range requests (${history.store.location})`);
          print(`  image       ${formatBytes(history.config.sizeBytes)}: ${plan.blocksWithData} blocks with data, ${plan.holes} holes`);
          return;
        }
        const restoring = progressBar(`restoring ${time}`, { bytes: true });
        const started = Date.now();
        const result = await restoreSnapshot(snapshot, file, (done, total) => restoring.update(done, total));
        restoring.finish();
        const seconds = (Date.now() - started) / 1000;
        if (options.json) return printJson({ time, label: point.label, out: file, sizeBytes: history.config.sizeBytes, bytesWritten: result.bytesWritten, seconds });
        print(`restored ${time}${point.label ? ` (${point.label})` : ''} to ${file}: ${formatBytes(history.config.sizeBytes)}, ${formatBytes(result.bytesWritten)} of data, in ${seconds.toFixed(1)} s`);
      } finally {
        await history.close();
      }
    });
}
