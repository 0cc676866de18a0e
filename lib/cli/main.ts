/**
 * The salvo command line. `main` returns the exit code instead of exiting, so tests can run
 * it in-process. Exit codes: 0 done; 1 failed (archive unreachable, corruption, no mount
 * running, a command failed); 2 bad input (wrong path, size, policy, option); 3 verify found
 * problems; 4 in use (volume mounted elsewhere, or the mount is busy).
 *
 * The command modules define options and help eagerly but load their heavy dependencies
 * (volume engine, FUSE, archive stores) with `await import` in their actions, so a frequent
 * `salvo sync` starts in a fraction of the time; errors from those modules reach `main` alike.
 */
import { Command, CommanderError } from 'commander';
import { VolumeError, asResourceLimit, errnoCode, type VolumeErrorCode } from '../errors.js';
import { registerDemo } from './commands/demo.js';
import { registerInit } from './commands/init.js';
import { registerInstallUnits } from './commands/install-units.js';
import { registerList } from './commands/list.js';
import { registerMount } from './commands/mount.js';
import { registerRestore } from './commands/restore.js';
import { registerRetention } from './commands/retention.js';
import { registerStatus } from './commands/status.js';
import { registerSync } from './commands/sync.js';
import { registerUnmount } from './commands/unmount.js';
import { registerVerify } from './commands/verify.js';

const EXIT_BY_CODE: Partial<Record<VolumeErrorCode, number>> = {
  BAD_INPUT: 2,
  BAD_POLICY: 2,
  EXISTS: 2,
  NOT_FOUND: 2,
  CORRUPT_CONFIG: 2,
  LOCKED: 4,
  INTERRUPTED: 130,
};

/**
 * Options that may also come before the command's name (`salvo --encrypt-key-file K restore …`).
 * Each command that takes one declares it too, so it works after the name and its help says
 * what it does there; a command that does not take one refuses it.
 */
const GLOBAL_OPTIONS = [
  { flags: '--s3-endpoint <url>', name: 's3Endpoint', description: 'S3-compatible server of an s3:// archive (default: AWS_ENDPOINT_URL); for init, mount, list, status, restore, verify, forget, prune, policy' },
  { flags: '--encrypt-key-file <file>', name: 'encryptKeyFile', description: 'key file: init encrypts the new archive with it; mount, list, status, restore, verify, forget, prune, policy read an encrypted archive with it' },
] as const;

export function buildProgram(): Command {
  const program = new Command('salvo')
    .description('self-archiving log-structured volume: every write kept, any synch point browsable, restorable from the archive alone')
    .version('0.1.0')
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', '\nTracing: DEBUG=salvo:* salvo <command> ...  (namespaces: salvo:volume, salvo:archive, salvo:snapshot, salvo:fuse, salvo:agent, salvo:mount)');
  for (const option of GLOBAL_OPTIONS) program.option(option.flags, option.description);
  program.hook('preAction', (_program, command) => passGlobalOptions(program, command));
  registerInit(program);
  registerMount(program);
  registerUnmount(program);
  registerSync(program);
  registerList(program);
  registerStatus(program);
  registerRestore(program);
  registerVerify(program);
  registerRetention(program);
  registerDemo(program);
  registerInstallUnits(program);
  for (const command of [program, ...program.commands]) command.exitOverride();
  return program;
}

/** Hands the options given before the command's name to the command, or refuses them. */
function passGlobalOptions(program: Command, command: Command): void {
  const given = program.opts<Record<string, string | undefined>>();
  for (const { flags, name } of GLOBAL_OPTIONS) {
    const value = given[name];
    if (value === undefined) continue;
    const flag = flags.split(' ')[0]!;
    if (!command.options.some((o) => o.attributeName() === name)) {
      throw VolumeError.badInput(`${flag} does not apply to \`salvo ${command.name()}\``, `leave it out (\`salvo ${command.name()} --help\` lists what it takes)`);
    }
    const own = command.getOptionValue(name) as string | undefined;
    if (own !== undefined && own !== value) throw VolumeError.badInput(`${flag} is given twice, as ${value} and ${own}`, 'give it once');
    command.setOptionValue(name, value);
  }
}

export async function main(argv: string[]): Promise<number> {
  process.exitCode = undefined;
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its one line (or the help, or the version)
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : 2;
    }
    return reportError(err);
  }
}

/** One line on stderr: what is wrong, then what to do; returns the exit code that says which kind it was. */
export function reportError(err: unknown): number {
  const known = asVolumeError(err);
  if (known) {
    process.stderr.write(`salvo: ${known.message}${known.hint ? ` — ${known.hint}` : ''}\n`);
    return EXIT_BY_CODE[known.code] ?? 1;
  }
  const code = errnoCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'EACCES' || code === 'EPERM') {
    process.stderr.write(`salvo: ${message} — run as the owner of the volume (or root)\n`);
    return 2;
  }
  if (code !== undefined && /^E[A-Z]+$/.test(code)) {
    // A system error not met where it happened: its own message is one line and names the file.
    process.stderr.write(`salvo: ${message}\n`);
    return 1;
  }
  process.stderr.write(`salvo: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}

/** System errors that say the same as one of ours wherever they happen. */
function asVolumeError(err: unknown): VolumeError | null {
  if (err instanceof VolumeError) return err;
  const code = errnoCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ENOTCONN') {
    return new VolumeError('NOT_MOUNTED', `${message}: a FUSE mount on that path has lost its process`, { hint: 'unmount it (`salvo unmount <mountpoint>` for a salvo mount), then mount again' });
  }
  if (code === 'ENOSPC') return new VolumeError('NO_SPACE', message, { hint: 'free space on that filesystem and try again' });
  return asResourceLimit(err);
}
