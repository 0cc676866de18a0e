/**
 * Keeping less, in restic's words: `salvo forget` applies a policy (given, or the saved one) and
 * records the points it drops as forgotten; `salvo prune` deletes the archived segments that no
 * point left needs; `salvo policy` shows or saves the policy the mount applies as the archive
 * grows. Each works on a volume directory (its archive, then its own copy of the record, then
 * its mount if one runs) or on an archive alone.
 */
import type { Command } from 'commander';
import { VolumeError, isVolumeError } from '../../errors.js';
import { formatBytes } from '../../format/units.js';
import { describePolicy, isEmptyPolicy, parseWithin, type RetentionPolicy } from '../../format/retention-policy.js';
import type { RetentionState } from '../../format/retention-record.js';
import type { ArchiveView } from '../../history/archive-view.js';
import { synchPointTime } from '../../volume/synch-point.js';
import { parseDuration } from '../units.js';
import { print, printJsonLine, printTable } from '../output.js';
import { wholeNumber, type ArchiveAccess } from './options.js';

export interface KeepOptions {
  keepWithin?: string;
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepLabel?: string[];
}

const COUNTS = [
  ['keepLast', 'last', 'the newest N points'],
  ['keepHourly', 'hourly', 'the newest point of each of the last N hours that have one'],
  ['keepDaily', 'daily', 'the newest point of each of the last N days that have one'],
  ['keepWeekly', 'weekly', 'the newest point of each of the last N ISO weeks that have one'],
  ['keepMonthly', 'monthly', 'the newest point of each of the last N months that have one'],
  ['keepYearly', 'yearly', 'the newest point of each of the last N years that have one'],
] as const;

/** The `--keep-*` options of init, forget and policy. */
export function addKeepOptions(command: Command): Command {
  command.option('--keep-within <span>', 'keep every point within this span of the newest, e.g. 24h, 7d, 1d12h');
  for (const [name, , description] of COUNTS) command.option(`--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} <n>`, `keep ${description}`);
  return command.option('--keep-label <label>', 'keep the points with this label (every labelled point is kept anyway); repeatable', (v: string, all: string[] = []) => [...all, v]);
}

/** The policy the options give, or null when none is given. */
export function policyFromOptions(options: KeepOptions): RetentionPolicy | null {
  const policy: RetentionPolicy = {};
  if (options.keepWithin !== undefined) policy.withinMs = parseWithin(options.keepWithin);
  for (const [name, field] of COUNTS) {
    const given = options[name];
    if (given !== undefined) policy[field] = wholeNumber(given, `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  }
  if (options.keepLabel?.length) policy.labels = [...new Set(options.keepLabel)];
  return Object.keys(policy).length > 0 ? policy : null;
}

/** `--grace`: how long readers get before pruned objects are deleted; 0 is allowed. */
function parseGrace(text: string | undefined, defaultMs: number): number {
  if (text === undefined) return defaultMs;
  return /^\s*0+\s*(ms|s|m|h|d)?\s*$/.test(text) ? 0 : parseDuration(text, '--grace');
}

interface Opened {
  view: ArchiveView;
  /** The volume directory, when the target is one. */
  dir: string | null;
}

/** The archive of a volume directory (named by its volume.json, with its key) or an archive given alone. */
async function openTarget(target: string, access: ArchiveAccess): Promise<Opened> {
  const [{ classifyTarget, openArchive }, { readVolumeConfig }, { openArchiveStore }, { readKeyFile }, { ArchiveView }] = await Promise.all([
    import('../target.js'),
    import('../../volume/config-file.js'),
    import('../../archive/open-store.js'),
    import('../../archive/key-file.js'),
    import('../../history/archive-view.js'),
  ]);
  if (classifyTarget(target, access) === 'archive') return { view: await openArchive(target, access), dir: null };
  const config = readVolumeConfig(target);
  if (!config.archive) throw new VolumeError('CORRUPT_CONFIG', `${target}/volume.json names no archive`);
  const cipher = config.encryption && config.encryptKeyFile ? readKeyFile(config.encryptKeyFile) : null;
  const store = await openArchiveStore(config.archive, { endpoint: config.s3Endpoint, pathStyle: config.s3PathStyle });
  try {
    return { view: await ArchiveView.open(store, { cipher }), dir: target };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * After a change in the archive: the volume directory's copy of the record, and its mount, learn
 * of it at once (a mount of another machine reads it at its next run of the policy).
 */
async function tellVolume(dir: string | null, state: RetentionState): Promise<void> {
  if (dir === null) return;
  const [{ FsVolumeFiles }, { saveLocalRetention }, { controlRequest, controlSocketPath }] = await Promise.all([
    import('../../volume/files.js'),
    import('../../retention/local-record.js'),
    import('../../agent/control.js'),
  ]);
  saveLocalRetention(new FsVolumeFiles(dir), state);
  try {
    await controlRequest(controlSocketPath(dir), { cmd: 'retention' }, 30_000);
  } catch (err) {
    if (!isVolumeError(err, 'NOT_MOUNTED')) throw err;
  }
}

async function withTarget<T>(target: string, access: ArchiveAccess, run: (opened: Opened) => Promise<T>): Promise<T> {
  const opened = await openTarget(target, access);
  try {
    return await run(opened);
  } finally {
    await opened.view.close();
  }
}

async function runPrune(opened: Opened, graceMs: number, json: boolean | undefined): Promise<void> {
  const { prune } = await import('../../retention/prune.js');
  const result = await prune(opened.view, {
    graceMs,
    undoMs: 0,
    compact: true,
    now: () => Date.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    onWait: (ms) => {
      if (!json) print(`waiting ${Math.ceil(ms / 1000)} s for readers of the pruned points to let go (--grace)`);
    },
    onRecord: (state) => tellVolume(opened.dir, state),
  });
  const { compacted } = result;
  if (json) return printJsonLine({ prunedSegments: result.segments, compactedSegments: compacted.segments, freedBytes: result.bytes - compacted.bytesAfter });
  if (result.segments === 0 && compacted.segments === 0) return print('nothing to prune: every archived segment is needed by a point that shows, and none is mostly dead');
  const rewritten = compacted.segments > 0 ? `, compacted ${compacted.segments} (${formatBytes(compacted.bytesBefore)} → ${formatBytes(compacted.bytesAfter)})` : '';
  print(`pruned ${result.segments} segments${rewritten}, freed ${formatBytes(result.bytes - compacted.bytesAfter)}`);
}

interface ForgetOptions extends KeepOptions, ArchiveAccess {
  dryRun?: boolean;
  json?: boolean;
  prune?: boolean;
  undo?: boolean;
  grace?: string;
}

async function forget(target: string, options: ForgetOptions): Promise<void> {
  const given = policyFromOptions(options);
  if (options.undo) {
    if (given || options.dryRun || options.prune) throw VolumeError.badInput('--undo brings forgotten points back; it takes no --keep-*, --dry-run or --prune', 'run `salvo forget <path> --undo` on its own');
    return withTarget(target, options, async (opened) => {
      const { undoForget } = await import('../../retention/forget.js');
      const { state, restored } = await undoForget(opened.view, Date.now());
      await tellVolume(opened.dir, state);
      if (options.json) return printJsonLine({ restored });
      print(restored === 0 ? 'nothing to undo: no point is forgotten' : `brought back ${restored} forgotten points (those whose segments a prune deleted stay gone)`);
    });
  }
  const graceMs = parseGrace(options.grace, (await import('../../retention/prune.js')).PRUNE_GRACE_MS);
  return withTarget(target, options, async (opened) => {
    const { planForget, applyForget } = await import('../../retention/forget.js');
    const policy = given ?? opened.view.retention.state.policy;
    if (isEmptyPolicy(policy)) {
      throw VolumeError.badInput(`no policy given, and ${target} has none saved`, 'give --keep-* options (e.g. --keep-daily 7), or save a policy with `salvo policy`');
    }
    const plan = await planForget(opened.view, policy);
    const dropped = plan.decisions.filter((d) => !d.keep).length;
    if (options.json) {
      for (const d of plan.decisions) printJsonLine({ time: synchPointTime(d.point), label: d.point.label, keep: d.keep, reason: d.keep ? d.reasons.join(', ') : 'no rule keeps it' });
    } else {
      print(`policy: ${describePolicy(policy)}`);
      printTable(
        ['TIME', 'LABEL', 'KEEP', 'REASON'],
        plan.decisions.map((d) => [synchPointTime(d.point), d.point.label ?? '-', d.keep ? 'keep' : 'drop', d.keep ? d.reasons.join(', ') : 'no rule keeps it']),
      );
      const verb = options.dryRun ? 'would forget' : 'forgetting';
      print(`${plan.decisions.length - dropped} kept, ${verb} ${dropped}; a prune would then delete ${plan.segments.length} segments (${formatBytes(plan.bytes)}) and compact the mostly dead ones kept points still need`);
    }
    if (options.dryRun) return;
    if (dropped > 0) await tellVolume(opened.dir, await applyForget(opened.view, plan, Date.now()));
    if (options.prune) await runPrune(opened, graceMs, options.json);
  });
}

export function registerRetention(program: Command): void {
  addKeepOptions(
    program
      .command('forget')
      .description('apply a retention policy: record the points it drops as forgotten (undo with --undo until a prune)')
      .argument('<path>', 'volume directory, archive directory, or s3://bucket/prefix'),
  )
    .option('--dry-run', 'list every point with keep or drop and why, and the segments a prune would delete; change nothing')
    .option('--json', 'print one JSON object a line: {time, label, keep, reason} for each point (then {prunedSegments, freedBytes} with --prune)')
    .option('--prune', 'prune afterwards (as `salvo prune`)')
    .option('--undo', 'bring back every forgotten point whose segments are still there')
    .option('--grace <duration>', 'with --prune: how long readers get before objects are deleted (default 60s; 0 for none)')
    .option('--s3-endpoint <url>', 'S3-compatible server of an s3:// archive (default: AWS_ENDPOINT_URL, else AWS)')
    .option('--encrypt-key-file <file>', 'the key of an encrypted archive')
    .addHelpText(
      'after',
      `
Without --keep-* options the saved policy applies (\`salvo policy\`). The newest point and every
labelled point are always kept. Buckets (hourly … yearly) are in local time (set TZ to change it).

Examples:
  salvo forget /var/lib/salvo/db --keep-within 24h --keep-daily 7 --keep-weekly 8 --dry-run
  salvo forget /backup/db --keep-last 100 --prune
  salvo forget /var/lib/salvo/db --undo`,
    )
    .action(forget);

  program
    .command('prune')
    .description('delete the archived segments that no point left needs (after `salvo forget`)')
    .argument('<path>', 'volume directory, archive directory, or s3://bucket/prefix')
    .option('--grace <duration>', 'how long readers get before objects are deleted (default 60s; 0 for none)')
    .option('--json', 'print {prunedSegments, freedBytes}')
    .option('--s3-endpoint <url>', 'S3-compatible server of an s3:// archive (default: AWS_ENDPOINT_URL, else AWS)')
    .option('--encrypt-key-file <file>', 'the key of an encrypted archive')
    .addHelpText('after', '\nExamples:\n  salvo prune /var/lib/salvo/db\n  salvo prune s3://backups/db --grace 5m')
    .action(async (target: string, options: { grace?: string; json?: boolean } & ArchiveAccess) => {
      const graceMs = parseGrace(options.grace, (await import('../../retention/prune.js')).PRUNE_GRACE_MS);
      await withTarget(target, options, (opened) => runPrune(opened, graceMs, options.json));
    });

  addKeepOptions(
    program
      .command('policy')
      .description('show the saved retention policy, or save a new one (the mount applies it as the archive grows)')
      .argument('<path>', 'volume directory, archive directory, or s3://bucket/prefix'),
  )
    .option('--keep-everything', 'save no policy: keep every point')
    .option('--s3-endpoint <url>', 'S3-compatible server of an s3:// archive (default: AWS_ENDPOINT_URL, else AWS)')
    .option('--encrypt-key-file <file>', 'the key of an encrypted archive')
    .addHelpText('after', '\nExamples:\n  salvo policy /var/lib/salvo/db\n  salvo policy /var/lib/salvo/db --keep-within 24h --keep-daily 7 --keep-monthly 12\n  salvo policy /var/lib/salvo/db --keep-everything')
    .action(async (target: string, options: KeepOptions & ArchiveAccess & { keepEverything?: boolean }) => {
      const given = policyFromOptions(options);
      if (given && options.keepEverything) throw VolumeError.badInput('--keep-everything saves no policy; it takes no --keep-* option', 'give one or the other');
      await withTarget(target, options, async (opened) => {
        if (!given && !options.keepEverything) return print(`policy: ${describePolicy(opened.view.retention.state.policy)}`);
        const { savePolicy } = await import('../../retention/forget.js');
        const state = await savePolicy(opened.view, given ?? {}, Date.now());
        await tellVolume(opened.dir, state);
        print(`saved policy: ${describePolicy(state.policy)}${isEmptyPolicy(state.policy) ? '' : ' (the mount applies it every 10 minutes; `salvo forget --dry-run` shows what it drops)'}`);
      });
    });
}
