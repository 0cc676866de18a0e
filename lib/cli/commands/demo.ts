/**
 * `salvo demo`: the whole story on a temporary volume, printing each command as it runs it —
 * init, mount, loop-attach, mkfs.ext4, write files, synch points with fsfreeze, enough churn
 * that the first point is only in the archive, then that point attached read-only and a file
 * shown as it was, and restored from the archive alone. Everything it mounts or attaches is
 * released at the end, even on failure.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { VolumeError } from '../../errors.js';
import { print } from '../output.js';

interface Step {
  stdout: string;
}

/** Runs `file args`, printing it as `shown` (salvo itself is shown as `salvo`, as users type it). */
function run(file: string, args: string[], options: { quiet?: boolean; shown?: string[] } = {}): Promise<Step> {
  print(`$ ${(options.shown ?? [file, ...args]).map(shellQuote).join(' ')}`);
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const output = (stdout + stderr).trimEnd();
      if (output && !options.quiet) print(output.replace(/^/gm, '  '));
      if (err) reject(new VolumeError('COMMAND_FAILED', `demo step \`${file} ${args.join(' ')}\` failed: ${output.split('\n').pop() ?? err.message}`));
      else resolve({ stdout });
    });
  });
}

function shellQuote(arg: string): string {
  if (!/[\s'"*&|;>$]/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

function checkPrerequisites(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (loop devices and mounts)');
  if (!fs.existsSync('/dev/fuse')) missing.push('/dev/fuse');
  for (const tool of ['losetup', 'mkfs.ext4', 'fsfreeze', 'mount', 'umount', 'fusermount']) {
    if (!process.env.PATH?.split(':').some((dir) => fs.existsSync(path.join(dir, tool)))) missing.push(tool);
  }
  if (missing.length > 0) {
    throw new VolumeError('COMMAND_FAILED', `the demo needs ${missing.join(', ')}`, { hint: 'run it as root after scripts/setup (it installs fuse, libfuse2, e2fsprogs)' });
  }
}

export async function runDemo(options: { keep?: boolean }): Promise<void> {
  checkPrerequisites();
  const script = path.resolve(process.argv[1]!);
  const salvo = (...args: string[]) => run(process.execPath, [script, ...args], { shown: ['salvo', ...args] });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'salvo-demo-'));
  const volume = path.join(root, 'volume');
  const archive = path.join(root, 'archive');
  const mnt = path.join(root, 'mnt');
  const fsMount = path.join(root, 'fs');
  const past = path.join(root, 'past');
  for (const dir of [mnt, fsMount, past]) fs.mkdirSync(dir);
  const cleanup: (() => Promise<unknown>)[] = [];
  const sh = (script: string) => run('sh', ['-c', script]);
  print(`# a 64 MiB volume in ${root}, archived to ${archive}\n`);
  try {
    await salvo('init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--spare', '8', '--archive', archive);
    await salvo('mount', volume, mnt, '--daemon');
    cleanup.push(() => salvo('unmount', mnt));
    const loop = (await run('losetup', ['--find', '--show', path.join(mnt, 'live/volume.img')])).stdout.trim();
    cleanup.push(() => run('losetup', ['--detach', loop]));
    await run('mkfs.ext4', ['-q', '-L', 'demo', loop]);
    await run('mount', [loop, fsMount]);
    cleanup.push(() => run('umount', [fsMount]));

    print('\n# the application writes; the agent takes consistent synch points');
    await sh(`echo 'listen_port = 8080' > ${fsMount}/app.conf && seq 1 100000 > ${fsMount}/numbers.txt && cat ${fsMount}/app.conf`);
    await salvo('sync', mnt, '--freeze', fsMount, '--label', 'first');
    await sh(`echo 'listen_port = 9090' > ${fsMount}/app.conf && rm ${fsMount}/numbers.txt && cat ${fsMount}/app.conf`);
    await salvo('sync', mnt, '--freeze', fsMount, '--label', 'second');

    print('\n# churn: 120 MiB of writes push the first point out of primary storage, into the archive alone');
    for (let round = 0; round < 3; round++) {
      await run('dd', ['if=/dev/urandom', `of=${fsMount}/churn.bin`, 'bs=1M', 'count=40', 'conv=fsync', 'status=none']);
    }
    await sh(`rm ${fsMount}/churn.bin && sync`);
    await salvo('sync', mnt, '--freeze', fsMount, '--label', 'after-churn');
    await run('ls', ['-l', path.join(mnt, 'snapshots'), path.join(mnt, 'snapshots/by-label')]);
    await salvo('list', volume);

    print('\n# browse the first point, now served from the archive');
    const first = fs.readlinkSync(path.join(mnt, 'snapshots/by-label/first.img')).replace(/^\.\.\//, '');
    const pastLoop = (await run('losetup', ['--read-only', '--find', '--show', path.join(mnt, 'snapshots', first)])).stdout.trim();
    cleanup.push(() => run('losetup', ['--detach', pastLoop]));
    await run('mount', ['-o', 'ro,noload', pastLoop, past]);
    cleanup.push(() => run('umount', [past]));
    await run('ls', ['-l', past]);
    await run('cat', [path.join(past, 'app.conf')]);
    await run('cat', [path.join(fsMount, 'app.conf')]);

    print('\n# disaster recovery: the first point from the archive alone, byte for byte its snapshot');
    const restored = path.join(root, 'first.img');
    await salvo('restore', archive, '--at', 'first', restored);
    await run('cmp', [restored, path.join(mnt, 'snapshots', first)]);
    await salvo('status', mnt);
    print('\n# clean up');
  } finally {
    for (const step of cleanup.reverse()) await step().catch((err) => print(`  (cleanup: ${(err as Error).message})`));
    if (!options.keep) fs.rmSync(root, { recursive: true, force: true });
    else print(`kept ${root}`);
  }
  print('\ndemo complete: every write kept, any synch point browsable with ls and cp, restorable from the archive alone');
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('walk the whole story on a temporary volume (needs root, FUSE and loop devices)')
    .option('--keep', 'keep the temporary directory (volume and archive) afterwards')
    .addHelpText('after', '\nExample:\n  sudo salvo demo')
    .action((options: { keep?: boolean }) => runDemo(options));
}
