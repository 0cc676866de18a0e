/**
 * The salvo command line. `main` returns the exit code instead of exiting, so tests can run
 * it in-process. Exit codes: 0 done; 1 failed (archive unreachable, corruption, a command
 * failed); 2 bad input (wrong path, size, policy, option); 3 verify found problems; 4 in use
 * (volume mounted elsewhere, or the mount is busy).
 *
 * The command modules define options and help eagerly but load their heavy dependencies
 * (volume engine, FUSE, archive stores) with `await import` in their actions, so a frequent
 * `salvo sync` starts in a fraction of the time; errors from those modules reach `main` alike.
 */
import { Command, CommanderError } from 'commander';
import { VolumeError, errnoCode, type VolumeErrorCode } from '../errors.js';
import { registerDemo } from './commands/demo.js';
import { registerInit } from './commands/init.js';
import { registerList } from './commands/list.js';
import { registerMount } from './commands/mount.js';
import { registerRestore } from './commands/restore.js';
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
  NOT_MOUNTED: 4,
};

export function buildProgram(): Command {
  const program = new Command('salvo')
    .description('self-archiving log-structured volume: every write kept, any synch point browsable, restorable from the archive alone')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .option('--s3-endpoint <url>', 'S3-compatible server for s3:// paths given to this command (same as AWS_ENDPOINT_URL)')
    .option('--encrypt-key-file <file>', 'key of an encrypted archive given by path to list, status, restore, verify (same as SALVO_ENCRYPT_KEY_FILE)')
    .hook('preAction', (command) => {
      const { s3Endpoint, encryptKeyFile } = command.opts() as { s3Endpoint?: string; encryptKeyFile?: string };
      if (s3Endpoint) process.env.AWS_ENDPOINT_URL = s3Endpoint;
      if (encryptKeyFile) process.env.SALVO_ENCRYPT_KEY_FILE = encryptKeyFile;
    })
    .addHelpText('after', '\nTracing: DEBUG=salvo:* salvo <command> ...  (namespaces: salvo:volume, salvo:archive, salvo:snapshot, salvo:fuse, salvo:agent, salvo:mount)');
  registerInit(program);
  registerMount(program);
  registerUnmount(program);
  registerSync(program);
  registerList(program);
  registerStatus(program);
  registerRestore(program);
  registerVerify(program);
  registerDemo(program);
  for (const command of [program, ...program.commands]) command.exitOverride();
  return program;
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
    // One line: what is wrong, then what to do.
    if (err instanceof VolumeError) {
      process.stderr.write(`salvo: ${err.message}${err.hint ? ` — ${err.hint}` : ''}\n`);
      return EXIT_BY_CODE[err.code] ?? 1;
    }
    const code = errnoCode(err);
    if (code === 'EACCES' || code === 'EPERM') {
      process.stderr.write(`salvo: ${(err as Error).message} — run as the owner of the volume (or root)\n`);
      return 2;
    }
    if (code === 'ENOSPC' || code === 'EROFS' || code === 'EIO') {
      process.stderr.write(`salvo: ${(err as Error).message}\n`);
      return 1;
    }
    process.stderr.write(`salvo: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}
