import type { Command } from 'commander';
import { VolumeError } from '../../errors.js';
import { parseDuration } from '../units.js';
import { takeSynchPoint, type SyncOptions, type SyncResult } from '../../agent/sync.js';
import { checkLabel } from '../../volume/synch-point.js';
import { print, printJsonLine } from '../output.js';

interface SyncCommandOptions extends SyncOptions {
  every?: string;
  json?: boolean;
}

/** Prints the point; a post hook that failed after it was taken still fails the command, saying the point stands. */
function report(result: SyncResult, json: boolean | undefined): void {
  if (json) printJsonLine({ time: result.time, file: result.file, label: result.label, frozen: result.frozen });
  else print(`${result.file}${result.label ? `  (${result.label})` : ''}${result.frozen ? `  froze ${result.frozen}` : ''}`);
  const failed = result.postHookError;
  if (failed) throw new VolumeError('COMMAND_FAILED', failed.message.replace(/^[A-Z_]+: /, ''), { hint: `the synch point ${result.time} was taken; fix the hook` });
}

export function registerSync(program: Command): void {
  program
    .command('sync')
    .description('take a synch point: tell the volume its blocks are consistent now')
    .argument('<target>', 'mountpoint of `salvo mount`, or the volume directory')
    .option('--label <label>', 'name the point, once (it also appears as snapshots/by-label/<label>.img)')
    .option('--freeze <fs-mountpoint>', 'fsfreeze this filesystem around the synch point (thawed whatever happens)')
    .option('--pre <command>', 'run before (and before freezing), e.g. to quiesce a database; if it fails, no point is taken')
    .option('--post <command>', 'run after (after thawing), even if the pre hook or the synch failed')
    .option('--every <interval>', 'keep taking points at this interval (e.g. 15m) until interrupted')
    .option('--json', 'print {time, file, label, frozen}, one object a line')
    .addHelpText(
      'after',
      `
Examples:
  salvo sync /mnt/salvo --freeze /srv/db --label before-upgrade
  salvo sync /mnt/salvo --pre 'psql -c CHECKPOINT' --freeze /srv/db
  salvo sync /mnt/salvo --freeze /srv/db --every 15m`,
    )
    .action(async (target: string, options: SyncCommandOptions) => {
      if (options.label) checkLabel(options.label);
      if (options.every === undefined) return report(await takeSynchPoint(target, options), options.json);
      if (options.label) throw VolumeError.badInput('--label names one point; --every takes many', 'leave out --label, or take the labelled point on its own');
      const intervalMs = parseDuration(options.every, '--every');
      for (;;) {
        report(await takeSynchPoint(target, options), options.json);
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    });
}
