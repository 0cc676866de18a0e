import path from 'node:path';
import type { Command } from 'commander';
import { formatBytes } from '../../format/units.js';
import { synchPointTime } from '../../volume/synch-point.js';
import { print, printJson, progressBar } from '../output.js';

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description('write the volume as of a synch point to an image file (sparse)')
    .argument('<path>', 'volume directory (not mounted), archive directory, or s3://bucket/prefix')
    .argument('<out>', 'image file to create (never overwritten)')
    .option('--at <time|label|latest>', 'which synch point', 'latest')
    .option('--dry-run', 'say what would be read, from where, and stop')
    .option('--json', 'print the result (or the plan) as JSON')
    .addHelpText(
      'after',
      `
Examples:
  salvo restore /backup/db --at 2026-11-22T01:30:00.123Z db.img
  salvo restore s3://backups/db --at before-upgrade db.img --dry-run`,
    )
    .action(async (target: string, out: string, options: { at: string; dryRun?: boolean; json?: boolean }) => {
      // heavy: loaded only when restore runs (see main.ts)
      const [{ planRestore, restoreSnapshot }, { openHistory }] = await Promise.all([import('../../archive/restore.js'), import('../target.js')]);
      const bar = progressBar('reading summaries');
      const history = await openHistory(target, (done, total) => bar.update(done, total));
      bar.finish();
      try {
        const point = history.catalog.find(options.at);
        const snapshot = await history.snapshots.open(point);
        const time = synchPointTime(point);
        if (options.dryRun) {
          const plan = await planRestore(snapshot, history.source);
          if (options.json) return printJson({ time, label: point.label, out: path.resolve(out), ...plan });
          print(`would restore ${time}${point.label ? ` (${point.label})` : ''} to ${path.resolve(out)}`);
          print(`  window      ${snapshot.window.length} segments scanned; data in ${plan.segmentsOnPrimary} on primary, ${plan.segmentsFromArchive} from the archive`);
          print(`  primary     ${formatBytes(plan.bytesFromPrimary)}`);
          print(`  archive     ${formatBytes(plan.bytesFromArchive)} in ${plan.archiveRequests} range requests (${history.store.location})`);
          print(`  image       ${formatBytes(history.config.sizeBytes)}: ${plan.blocksWithData} blocks with data, ${plan.holes} holes`);
          return;
        }
        const restoring = progressBar(`restoring ${time}`, { bytes: true });
        const started = Date.now();
        const result = await restoreSnapshot(snapshot, out, (done, total) => restoring.update(done, total));
        restoring.finish();
        const seconds = (Date.now() - started) / 1000;
        if (options.json) return printJson({ time, label: point.label, out: path.resolve(out), sizeBytes: history.config.sizeBytes, bytesWritten: result.bytesWritten, seconds });
        print(`restored ${time}${point.label ? ` (${point.label})` : ''} to ${path.resolve(out)}: ${formatBytes(history.config.sizeBytes)}, ${formatBytes(result.bytesWritten)} of data, in ${seconds.toFixed(1)} s`);
      } finally {
        await history.close();
      }
    });
}
