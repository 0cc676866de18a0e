import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import createDebug from 'debug';
import { VolumeError, errnoCode } from '../../errors.js';
import { parseDuration, parseSize } from '../../format/units.js';
import { readVolumeConfig } from '../../format/volume-config.js';
import { ControlServer, controlSocketPath } from '../../agent/control.js';
import { parseCpu, pinServingThreads } from '../../fuse/serving-cpu.js';
import type { VolumeMount } from '../../fuse/mount.js';
import { print } from '../output.js';

const debug = createDebug('salvo:mount');

export interface MountCommandOptions {
  daemon?: boolean;
  allowOther?: boolean;
  cache?: string;
  rpo?: string;
  cpu?: string;
}

/** The mountpoint must be an empty directory, or a dead FUSE mount a killed salvo left behind. */
async function checkMountpoint(mountpoint: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fs.promises.readdir(mountpoint);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOTCONN') return; // stale: fuse-native unmounts it first
    if (code === 'ENOENT') throw new VolumeError('NOT_FOUND', `mountpoint ${mountpoint} does not exist`, { hint: `create it: mkdir -p ${mountpoint}` });
    if (code === 'ENOTDIR') throw VolumeError.badInput(`mountpoint ${mountpoint} is not a directory`);
    throw VolumeError.badInput(`cannot read mountpoint ${mountpoint}: ${(err as Error).message}`);
  }
  if (entries.length > 0) throw VolumeError.badInput(`mountpoint ${mountpoint} is not empty`, 'mount on an empty directory');
}

/** Serves the volume on the mountpoint until SIGINT, SIGTERM or `salvo unmount`. */
export async function serveMount(dir: string, mountpoint: string, options: MountCommandOptions, onReady: () => void): Promise<void> {
  await checkMountpoint(mountpoint);
  const cpu = options.cpu !== undefined ? parseCpu(options.cpu) : null;
  // heavy (volume engine, fuse-native): loaded only when a mount is served, not by `--daemon`'s parent (see main.ts)
  const [{ CACHE_BYTES_DEFAULT, Volume }, { VolumeMount }] = await Promise.all([import('../../volume/volume.js'), import('../../fuse/mount.js')]);
  const socket = controlSocketPath(dir);
  const volume = await Volume.open(dir, { cacheBytesMax: options.cache ? parseSize(options.cache, '--cache') : CACHE_BYTES_DEFAULT });
  let mount: VolumeMount | null = null;
  let server: ControlServer | null = null;
  let rpoTimer: NodeJS.Timeout | null = null;
  let finished!: (err?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => (finished = (err) => (err ? reject(err) : resolve())));
  let stopping = false;
  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    debug('shutting down: %s', why);
    try {
      if (rpoTimer) clearInterval(rpoTimer);
      await server?.close();
      if (mount) {
        const loops = await mount.attachedLoopDevices();
        if (loops.length > 0) process.stderr.write(`salvo: warning: unmounting while ${loops.join(', ')} still use it\n`);
        await mount.unmount();
      }
      await volume.close();
      finished();
    } catch (err) {
      finished(err);
    }
  };
  try {
    if (cpu !== null) pinServingThreads(cpu); // after Volume.open has started the threads that keep every CPU
    mount = await VolumeMount.mount(volume, mountpoint, {
      allowOther: options.allowOther,
      control: { volume: path.resolve(dir), socket, pid: process.pid },
    });
    server = await ControlServer.listen(socket, {
      sync: (label, info) => volume.synch({ label, info }),
      status: async () => ({ ...volume.status(), mountpoint: path.resolve(mountpoint), pid: process.pid, cpu }),
      unmount: async () => {
        const loops = await mount!.attachedLoopDevices();
        if (loops.length > 0) {
          throw new VolumeError('LOCKED', `${mountpoint} is in use by ${loops.join(', ')}`, { hint: `detach first: losetup -d ${loops.join(' ')}` });
        }
        setImmediate(() => void shutdown('salvo unmount'));
      },
    });
  } catch (err) {
    await mount?.unmount().catch(() => undefined);
    await volume.close();
    throw err;
  }
  const rpoSeconds = options.rpo !== undefined ? parseDuration(options.rpo, '--rpo') / 1000 : volume.config.rpoSeconds;
  if (rpoSeconds > 0) {
    rpoTimer = setInterval(() => {
      const since = volume.log.unshippedSinceMs;
      if (since !== null && Date.now() - since >= rpoSeconds * 1000) void volume.shipTail().catch((err) => debug('rpo: %s', (err as Error).message));
    }, Math.min(1000, rpoSeconds * 250));
  }
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  mount.watchForUnmount(() => {
    process.stderr.write(`salvo: ${mountpoint} was unmounted from outside salvo; closing the volume\n`);
    void shutdown('unmounted from outside');
  });
  onReady();
  await done;
}

/** Starts `salvo mount` again in the background and returns once the mount answers. */
async function daemonize(dir: string, mountpoint: string, options: MountCommandOptions): Promise<void> {
  // What the mount would refuse, refused here in one line (not from a log left in a stray directory).
  readVolumeConfig(dir);
  await checkMountpoint(mountpoint);
  if (options.cpu !== undefined) parseCpu(options.cpu);
  const logFile = path.join(dir, 'mount.log');
  const log = fs.openSync(logFile, 'a', 0o600);
  const args = [path.resolve(process.argv[1]!), 'mount', dir, mountpoint];
  if (options.allowOther) args.push('--allow-other');
  if (options.cache) args.push('--cache', options.cache);
  if (options.rpo) args.push('--rpo', options.rpo);
  if (options.cpu !== undefined) args.push('--cpu', options.cpu);
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  const control = path.join(mountpoint, '.salvo.json');
  for (let waited = 0; waited < 60_000; waited += 100) {
    if (exited !== null) {
      const tail = fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join('\n');
      throw new VolumeError('COMMAND_FAILED', `the mount exited before it was ready:\n${tail}`);
    }
    // The parent is not the process serving the mount, so it may wait on it.
    if (await fs.promises.access(control).then(() => true, () => false)) {
      child.unref();
      print(`mounted ${dir} on ${mountpoint} in the background (pid ${child.pid}, log ${logFile})`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGTERM');
  throw new VolumeError('COMMAND_FAILED', `the mount did not become ready within 60 s (log: ${logFile})`);
}

export function registerMount(program: Command): void {
  program
    .command('mount')
    .description('serve the live volume and every synch point as files (FUSE)')
    .argument('<dir>', 'volume directory')
    .argument('<mountpoint>', 'empty directory to mount on')
    .option('--daemon', 'run in the background once mounted (log in <dir>/mount.log)')
    .option('--allow-other', 'let other users see the mount (needs user_allow_other in /etc/fuse.conf for non-root)')
    .option('--cache <size>', 'memory for rebuilt snapshot indexes and fetched archive chunks', '256M')
    .option('--rpo <duration>', 'ship writes to the archive at least this often (overrides init’s --rpo)')
    .option('--cpu <n>', 'keep the threads that pass FUSE requests on CPU n (faster small writes where idle vCPUs halt; see README)')
    .addHelpText(
      'after',
      `
Examples:
  salvo mount /var/lib/salvo/db /mnt/salvo --daemon
  losetup -f --show /mnt/salvo/live/volume.img
  ls -l /mnt/salvo/snapshots/`,
    )
    .action(async (dir: string, mountpoint: string, options: MountCommandOptions) => {
      const volumeDir = path.resolve(dir);
      const target = path.resolve(mountpoint);
      if (options.daemon) return daemonize(volumeDir, target, options);
      await serveMount(volumeDir, target, options, () => {
        print(`mounted ${volumeDir} on ${target}`);
        print(`  live image   ${target}/live/volume.img`);
        print(`  snapshots    ${target}/snapshots/`);
        print('stop with Ctrl-C or `salvo unmount ' + target + '`');
      });
    });
}
