import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import createDebug from 'debug';
import { VolumeError, errnoCode, type VolumeErrorCode } from '../../errors.js';
import { parseSize } from '../units.js';
import { readVolumeConfig } from '../../volume/config-file.js';
import { ControlServer, controlSocketPath } from '../../agent/control.js';
import { isSalvoMount, mountAtPath } from '../../fuse/mount-table.js';
import { parseCpu, pinServingThreads } from '../../fuse/serving-cpu.js';
import type { VolumeMount } from '../../fuse/mount.js';
import { VolumeLock, isProcessAlive } from '../../volume/volume-lock.js';
import { print } from '../output.js';
import { parseRpo } from './options.js';

const debug = createDebug('salvo:mount');

export interface MountCommandOptions {
  daemon?: boolean;
  allowOther?: boolean;
  cache?: string;
  rpo?: string;
  cpu?: string;
}

/** The options, parsed: every bad value is refused before anything is mounted. */
interface MountSettings {
  allowOther: boolean;
  cacheBytes: number;
  /** null: the volume's own (init's --rpo). */
  rpoSeconds: number | null;
  cpu: number | null;
}

function parseOptions(options: MountCommandOptions): MountSettings {
  return {
    allowOther: options.allowOther === true,
    cacheBytes: parseSize(options.cache ?? '256M', '--cache'),
    rpoSeconds: options.rpo === undefined ? null : parseRpo(options.rpo),
    cpu: options.cpu === undefined ? null : parseCpu(options.cpu),
  };
}

/** What the mount needs of the volume directory, checked in the command itself (`--daemon` too). */
function checkVolume(dir: string): void {
  // An archive's copy of volume.json names no archive: the volume's own does.
  if (readVolumeConfig(dir).archive === undefined) {
    throw VolumeError.badInput(`${dir} is an archive, not a volume directory`, 'read it with `salvo list` and `salvo restore`, or mount the volume directory that `salvo init` made');
  }
  const owner = VolumeLock.owner(dir);
  if (owner !== null && owner !== process.pid && isProcessAlive(owner)) {
    throw new VolumeError('LOCKED', `volume ${dir} is in use by process ${owner}`, { hint: 'unmount it first (`salvo unmount <mountpoint>`), or read its archive instead' });
  }
}

/** The mountpoint must be an empty directory, or a dead FUSE mount a killed salvo left behind. */
async function checkMountpoint(mountpoint: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fs.promises.readdir(mountpoint);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOTCONN') {
      // Dead: fuse-native unmounts it before mounting, which salvo allows for its own mounts only.
      const mount = mountAtPath(mountpoint);
      if (mount && isSalvoMount(mount)) return;
      throw VolumeError.badInput(`mountpoint ${mountpoint} is a ${mount?.type ?? 'FUSE'} mount whose process is gone`, `unmount it first (fusermount -u ${mountpoint})`);
    }
    if (code === 'ENOENT') throw new VolumeError('NOT_FOUND', `mountpoint ${mountpoint} does not exist`, { hint: `create it: mkdir -p ${mountpoint}` });
    if (code === 'ENOTDIR') throw VolumeError.badInput(`mountpoint ${mountpoint} is not a directory`);
    throw VolumeError.badInput(`cannot read mountpoint ${mountpoint}: ${(err as Error).message}`);
  }
  if (entries.length > 0) throw VolumeError.badInput(`mountpoint ${mountpoint} is not empty`, 'mount on an empty directory');
}

/** Serves the volume on the mountpoint until SIGINT, SIGTERM or `salvo unmount`. */
export async function serveMount(dir: string, mountpoint: string, settings: MountSettings, onReady: () => void): Promise<void> {
  checkVolume(dir);
  await checkMountpoint(mountpoint);
  // heavy (volume engine, fuse-native): loaded only when a mount is served, not by `--daemon`'s parent (see main.ts)
  const [{ openVolume }, { VolumeHistory }, { VolumeMount }] = await Promise.all([import('../volume-access.js'), import('../../history/history.js'), import('../../fuse/mount.js')]);
  const socket = controlSocketPath(dir);
  const opened = await openVolume(dir, settings.rpoSeconds === null ? {} : { rpoSeconds: settings.rpoSeconds });
  const { volume } = opened;
  const history = new VolumeHistory(volume, settings.cacheBytes);
  let mount: VolumeMount | null = null;
  let server: ControlServer | null = null;
  let finished!: (err?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => (finished = (err) => (err ? reject(err) : resolve())));
  let stopping = false;
  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    debug('shutting down: %s', why);
    try {
      await server?.close();
      if (mount) {
        const loops = mount.attachedLoopDevices();
        if (loops.length > 0) process.stderr.write(`salvo: warning: unmounting while ${loops.join(', ')} still use it\n`);
        await mount.unmount();
      }
      await opened.close();
      finished();
    } catch (err) {
      finished(err);
    }
  };
  try {
    if (settings.cpu !== null) pinServingThreads(settings.cpu); // after Volume.open has started the threads that keep every CPU
    mount = await VolumeMount.mount(volume, history, mountpoint, {
      allowOther: settings.allowOther,
      control: { volume: path.resolve(dir), socket, pid: process.pid },
    });
    server = await ControlServer.listen(socket, {
      sync: (label, info) => volume.synch({ label, info }),
      status: async () => ({ ...volume.status(), ...history.status(), mountpoint: path.resolve(mountpoint), pid: process.pid, cpu: settings.cpu }),
      unmount: async () => {
        const loops = mount!.attachedLoopDevices();
        if (loops.length > 0) {
          throw new VolumeError('LOCKED', `${mountpoint} is in use by ${loops.join(', ')}`, { hint: `detach first: losetup -d ${loops.join(' ')}` });
        }
        setImmediate(() => void shutdown('salvo unmount'));
      },
    });
  } catch (err) {
    await mount?.unmount().catch(() => undefined);
    await opened.close();
    throw err;
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

/** The error a mount wrote as its last word (`salvo: CODE: what — hint`), as the error it was. */
function lastError(log: string): VolumeError | null {
  const line = log.split('\n').reverse().find((l) => /^salvo: [A-Z_]+: /.test(l));
  const m = line ? /^salvo: ([A-Z_]+): (.*?)(?: — (.*))?$/.exec(line) : null;
  return m ? new VolumeError(m[1] as VolumeErrorCode, m[2]!, { hint: m[3] }) : null;
}

/** Starts `salvo mount` again in the background and returns once the mount answers. */
async function daemonize(dir: string, mountpoint: string, options: MountCommandOptions): Promise<void> {
  // What the mount would refuse, refused here in one line (not from a log left in a stray directory).
  checkVolume(dir);
  await checkMountpoint(mountpoint);
  const logFile = path.join(dir, 'mount.log');
  const log = fs.openSync(logFile, 'a', 0o600);
  const logStart = fs.fstatSync(log).size;
  const args = [path.resolve(process.argv[1]!), 'mount', dir, mountpoint];
  if (options.allowOther) args.push('--allow-other');
  if (options.cache !== undefined) args.push('--cache', options.cache);
  if (options.rpo !== undefined) args.push('--rpo', options.rpo);
  if (options.cpu !== undefined) args.push('--cpu', options.cpu);
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  const control = path.join(mountpoint, '.salvo.json');
  for (let waited = 0; waited < 60_000; waited += 100) {
    if (exited !== null) {
      // Its own words and exit code: losing a race for the lock is LOCKED here too.
      const written = fs.readFileSync(logFile).subarray(logStart).toString('utf8');
      throw lastError(written) ?? new VolumeError('COMMAND_FAILED', `the mount exited with status ${exited} before it was ready`, { hint: `see ${logFile}` });
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
  throw new VolumeError('COMMAND_FAILED', `the mount did not become ready within 60 s`, { hint: `see ${logFile}` });
}

export function registerMount(program: Command): void {
  program
    .command('mount')
    .description('serve the live volume and every synch point as files (FUSE)')
    .argument('<dir>', 'volume directory')
    .argument('<mountpoint>', 'empty directory to mount on')
    .option('--daemon', 'run in the background once mounted (log in <dir>/mount.log)')
    .option('--allow-other', 'let other users see the mount: they read what the modes allow (the images: the whole disk) and write nothing; needs user_allow_other in /etc/fuse.conf for non-root')
    .option('--cache <size>', 'memory for rebuilt snapshot indexes and fetched archive chunks', '256M')
    .option('--rpo <duration>', 'ship writes to the archive at least this often, e.g. 30s; 0: only at synch points (default: init’s --rpo)')
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
      const settings = parseOptions(options);
      const volumeDir = path.resolve(dir);
      const target = path.resolve(mountpoint);
      if (options.daemon) return daemonize(volumeDir, target, options);
      await serveMount(volumeDir, target, settings, () => {
        print(`mounted ${volumeDir} on ${target}`);
        print(`  live image   ${target}/live/volume.img`);
        print(`  snapshots    ${target}/snapshots/`);
        print('stop with Ctrl-C or `salvo unmount ' + target + '`');
      });
    });
}
