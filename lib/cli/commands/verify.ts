import path from 'node:path';
import type { Command } from 'commander';
import { VolumeError } from '../../errors.js';
import type { Problem } from '../../volume/slot-check.js';
import { fsckSnapshot, snapshotFiles, type FsckResult } from '../../agent/fsck.js';
import { print, printJson, progressBar } from '../output.js';
import { wholeNumber, type ArchiveAccess } from './options.js';

/** Exit code when verify found problems (distinct from failing to run). */
export const EXIT_PROBLEMS = 3;

async function verifyChecksums(target: string, access: ArchiveAccess, json: boolean | undefined): Promise<number> {
  // heavy: loaded only when the checksums are verified (see main.ts)
  const [{ verifyArchive, verifyPoints }, { emptyCounts }, { openHistory }] = await Promise.all([import('../../history/verify.js'), import('../../volume/slot-check.js'), import('../target.js')]);
  const history = await openHistory(target, access);
  const counts = emptyCounts();
  let problems: Problem[] = [];
  try {
    if (history.volume) {
      await history.volume.idle();
      problems.push(...(await history.volume.verifySlots(counts)));
    }
    const bar = progressBar('checking archive');
    problems.push(...(await verifyArchive(history.store, history.pool, history.cipher, history.config.volumeId, counts, (done, total) => bar.update(done, total))));
    bar.finish();
    problems.push(...(await verifyPoints(history.catalog.all, history.snapshots, counts)));
  } finally {
    await history.close();
  }
  problems = problems.sort((a, b) => (a.segment ?? 0) - (b.segment ?? 0));
  if (json) printJson({ ok: problems.length === 0, ...counts, problems });
  else {
    for (const p of problems) print(`PROBLEM ${p.where}${p.offset !== null ? ` at offset ${p.offset}` : ''}: ${p.message}`);
    print(
      `${problems.length === 0 ? 'ok' : `${problems.length} problems`}: ${counts.segmentsOnPrimary} segments on primary, ${counts.archiveObjects} archive objects, ${counts.blocks} blocks, ${counts.synchPoints} synch points checked`,
    );
  }
  return problems.length === 0 ? 0 : EXIT_PROBLEMS;
}

async function verifyFilesystems(mountpoint: string, last: number | undefined, json: boolean | undefined): Promise<number> {
  let files = await snapshotFiles(mountpoint);
  if (last !== undefined) files = files.slice(-last);
  if (files.length === 0) throw new VolumeError('NOT_FOUND', `${mountpoint} has no synch points to check`);
  const results: FsckResult[] = [];
  for (const file of files) {
    const result = await fsckSnapshot(file);
    results.push(result);
    if (!json) print(`${result.ok ? 'clean ' : 'FAILED'}  ${path.basename(file)}  ${result.fsType ?? '-'}${result.ok ? '' : `\n        ${result.output.split('\n').slice(-3).join('\n        ')}`}`);
  }
  const failed = results.filter((r) => !r.ok).length;
  if (json) printJson({ ok: failed === 0, checked: results.length, failed, results: results.map((r) => ({ ...r, file: path.basename(r.file) })) });
  else print(`${failed === 0 ? 'ok' : `${failed} failed`}: ${results.length} synch points checked with their filesystem's checker`);
  return failed === 0 ? 0 : EXIT_PROBLEMS;
}

export function registerVerify(program: Command): Command {
  return program
    .command('verify')
    .description('check every checksum on primary and in the archive, and that every synch point reconstructs')
    .argument('[path]', 'volume directory (not mounted), archive directory, or s3://bucket/prefix')
    .option('--fsck <mountpoint>', 'instead: attach synch points of a mount read-only and run their filesystem checker')
    .option('--last <n>', 'with --fsck: only the newest n points')
    .option('--json', 'print the report as JSON')
    .option('--s3-endpoint <url>', 'S3-compatible server of an s3:// archive (default: AWS_ENDPOINT_URL, else AWS)')
    .option('--encrypt-key-file <file>', 'the key of an encrypted archive')
    .addHelpText(
      'after',
      `
Exit status: 0 all good, 3 problems found, other non-zero: verify could not run.
Examples:
  salvo verify /backup/db
  salvo verify --fsck /mnt/salvo --last 5`,
    )
    .action(async (target: string | undefined, options: { fsck?: string; last?: string; json?: boolean } & ArchiveAccess) => {
      if (options.fsck === undefined) {
        if (options.last !== undefined) throw VolumeError.badInput('--last applies with --fsck only', 'verify <path> checks every point; add --fsck <mountpoint> to check the newest n with their filesystem checker');
        if (!target) throw VolumeError.badInput('verify needs a path, or --fsck <mountpoint>');
        process.exitCode = await verifyChecksums(target, options, options.json);
        return;
      }
      if (target !== undefined) throw VolumeError.badInput(`give either a path to check or --fsck <mountpoint>, not both (${target})`, 'run them as two commands');
      const given = options.encryptKeyFile !== undefined ? '--encrypt-key-file' : options.s3Endpoint !== undefined ? '--s3-endpoint' : null;
      if (given) throw VolumeError.badInput(`${given} does not apply to --fsck, which reads the mount`, `leave out ${given}`);
      const last = options.last === undefined ? undefined : wholeNumber(options.last, '--last');
      process.exitCode = await verifyFilesystems(path.resolve(options.fsck), last, options.json);
    });
}
