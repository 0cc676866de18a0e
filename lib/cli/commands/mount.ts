import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
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
import { VolumeLock } from '../../volume/volume-lock.js';
import { systemClock } from '../../util/clock.js';
import { EventLog } from '../event-log.js';
import { print } from '../output.js';
import type { TargetKind } from '../target.js';
import { parseRpo, type ArchiveAccess } from './options.js';
import { formatMetricsAddress, parseMetricsAddress, type MetricsAddress } from '../../metrics/address.js';
import type { MetricsServer } from '../../metrics/server.js';

const debug = createDebug('salvo:mount');

export interface MountCommandOptions extends ArchiveAccess {
  daemon?: boolean;
  allowOther?: boolean;
  cache?: string;
  rpo?: string;
  cpu?: string;
  metrics?: string;
}

/** The options, parsed: every bad value is refused before anything is mounted. */
interface MountSettings {
  allowOther: boolean;
  cacheBytes: number;
  /** null: the volume's own (init's --rpo). */
  rpoSeconds: number | null;
  cpu: number | null;
  /** Where Prometheus scrapes the mount; null: no endpoint. */
  metrics: MetricsAddress | null;
}

function parseOptions(options: MountCommandOptions): MountSettings {
  return {
    allowOther: options.allowOther === true,
    cacheBytes: parseSize(options.cache ?? '256M', '--cache'),
    rpoSeconds: options.rpo === undefined ? null : parseRpo(options.rpo),
    cpu: options.cpu === undefined ? null : parseCpu(options.cpu),
    metrics: options.metrics === undefined ? null : parseMetricsAddress(options.metrics),
  };
}

/** What the mount needs of the volume directory, checked in the command itself (`--daemon` too). */
function checkVolume(dir: string): void {
  readVolumeConfig(dir); // a damaged volume.json is refused here, in one line, before anything is mounted
  VolumeLock.check(dir);
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

/** `--metrics`' endpoint, listening; loaded only then (node:http is not every command's). */
async function listenForMetrics(settings: MountSettings): Promise<MetricsServer | null> {
  if (!settings.metrics) return null;
  const { MetricsServer } = await import('../../metrics/server.js');
  return MetricsServer.listen(settings.metrics);
}

/** What a served mount holds: closed in this order when it stops. */
interface Served {
  mount: VolumeMount;
  server: ControlServer;
  /** Closes what the mount served (the volume, or the archive view). */
  close: () => Promise<void>;
}

/**
 * Runs a mount until SIGINT, SIGTERM, `salvo unmount` or an unmount from outside: `start` mounts
 * and opens the control socket, given the shutdown to call on `salvo unmount`.
 */
async function serveUntilStopped(
  mountpoint: string,
  what: 'volume' | 'archive',
  start: (shutdown: (why: string) => void) => Promise<Served>,
  onReady: () => void,
): Promise<void> {
  // Under systemd (Type=notify): ready once served, stopping when it shuts down; nothing otherwise.
  const { notifySystemd } = await import('../../util/sd-notify.js');
  let served: Served | null = null;
  let finished!: (err?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => (finished = (err) => (err ? reject(err) : resolve())));
  let stopping = false;
  const shutdown = async (why: string) => {
    if (stopping || !served) return;
    stopping = true;
    debug('shutting down: %s', why);
    notifySystemd('STOPPING=1');
    try {
      await served.server.close();
      const loops = served.mount.attachedLoopDevices();
      if (loops.length > 0) process.stderr.write(`salvo: warning: unmounting while ${loops.join(', ')} still use it\n`);
      await served.mount.unmount();
      await served.close();
      finished();
    } catch (err) {
      finished(err);
    }
  };
  served = await start((why) => setImmediate(() => void shutdown(why)));
  const { mount } = served;
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  mount.watchForUnmount(() => {
    process.stderr.write(`salvo: ${mountpoint} was unmounted from outside salvo; closing the ${what}\n`);
    void shutdown('unmounted from outside');
  });
  onReady();
  notifySystemd(`READY=1\nMAINPID=${process.pid}\nSTATUS=serving ${path.resolve(mountpoint)}`);
  await done;
}

/**
 * `salvo unmount`'s request: refused while a loop device uses an image of the mount; `before`
 * runs first (a volume's mount drains its archive) and its answer goes back to the command.
 */
function unmountRequest(
  mount: () => VolumeMount,
  mountpoint: string,
  shutdown: (why: string) => void,
  before: (drainSeconds: number) => Promise<unknown> = async () => null,
): (drainSeconds: number) => Promise<unknown> {
  return async (drainSeconds) => {
    const loops = mount().attachedLoopDevices();
    if (loops.length > 0) {
      throw new VolumeError('LOCKED', `${mountpoint} is in use by ${loops.join(', ')}`, { hint: `detach first: losetup -d ${loops.join(' ')}` });
    }
    const answer = await before(drainSeconds);
    shutdown('salvo unmount');
    return answer;
  };
}

/** Serves the volume on the mountpoint until SIGINT, SIGTERM or `salvo unmount`. */
export async function serveMount(dir: string, mountpoint: string, settings: MountSettings, onReady: () => void): Promise<void> {
  checkVolume(dir);
  await checkMountpoint(mountpoint);
  // heavy (volume engine, fuse-native): loaded only when a mount is served, not by `--daemon`'s parent (see main.ts)
  const [{ openVolume }, { VolumeHistory }, { VolumeMount }, { discardSupport }, { drainArchive }, { synchFrozen }, { RetentionKeeper }, { FsVolumeFiles }] = await Promise.all([
    import('../volume-access.js'),
    import('../../history/history.js'),
    import('../../fuse/mount.js'),
    import('../../fuse/discard.js'),
    import('../../volume/drain.js'),
    import('../../agent/freeze.js'),
    import('../../retention/keeper.js'),
    import('../../volume/files.js'),
  ]);
  const socket = controlSocketPath(dir);
  // Bound before the volume opens: a port in use is refused in one line, with nothing mounted.
  const metrics = await listenForMetrics(settings);
  const events = new EventLog(path.resolve(dir));
  await serveUntilStopped(
    mountpoint,
    'volume',
    async (shutdown) => {
      const started = Date.now();
      const opened = await openVolume(dir, {
        ...(settings.rpoSeconds === null ? {} : { rpoSeconds: settings.rpoSeconds }),
        onWarning: (message) => events.warning(message),
        onStall: (message) => events.warning(message),
        onResume: (ms) => events.notice(`writes resume after ${(ms / 1000).toFixed(1)} s of waiting for a free slot`),
        onNotice: (message) => events.notice(message),
      });
      const { volume } = opened;
      const history = new VolumeHistory(volume, settings.cacheBytes);
      const retention = new RetentionKeeper({ config: volume.config, catalog: volume.catalog, store: volume.store, pool: volume.pool, cipher: volume.cipher, source: history.source }, new FsVolumeFiles(dir), systemClock);
      const close = async () => {
        await metrics?.close();
        await retention.close();
        history.close();
        await opened.close();
        events.info(`closed${mount ? `, unmounted from ${mountpoint}` : ''}`);
      };
      let mount: VolumeMount | null = null;
      try {
        if (settings.cpu !== null) pinServingThreads(settings.cpu); // after Volume.open has started the threads that keep every CPU
        mount = await VolumeMount.mount(volume, history, mountpoint, {
          allowOther: settings.allowOther,
          control: { volume: path.resolve(dir), socket, pid: process.pid },
          report: (message) => events.error(message),
        });
        const discards = discardSupport();
        if (!discards.supported) events.warning(discards.why);
        const server = await ControlServer.listen(socket, {
          sync: async (label, info, freeze) => {
            const point = await (freeze ? synchFrozen(freeze, (check) => volume.synch({ label, info, check })) : volume.synch({ label, info }));
            events.info(`synch point ${new Date(point.timeMs).toISOString()}${point.label ? ` (${point.label})` : ''}${freeze ? `, ${freeze} frozen` : ''}, asked by ${point.info.agent ?? 'a client'}`);
            return point;
          },
          status: async () => ({ ...volume.status(), ...history.status(), retention: retention.status(), discards, mountpoint: path.resolve(mountpoint), pid: process.pid, cpu: settings.cpu }),
          unmount: unmountRequest(() => mount!, mountpoint, shutdown, (drainSeconds) => drainArchive(volume, drainSeconds * 1000)),
          retention: async () => {
            await retention.refresh();
            return retention.status();
          },
        });
        retention.start();
        if (metrics) {
          const { MountMetrics } = await import('../../metrics/mount-metrics.js');
          metrics.serve(new MountMetrics({ label: path.resolve(dir), volume, history, mount }));
        }
        const status = volume.status();
        events.info(
          `mounted on ${mountpoint} (pid ${process.pid}), opened in ${Date.now() - started} ms: segment #${status.segments.currentSequence} current, ${status.synchPoints} synch points, recovery point ${status.archive.recoveryPoint ?? 'none yet'}`,
        );
        return { mount, server, close };
      } catch (err) {
        await mount?.unmount().catch(() => undefined);
        await close();
        throw err;
      }
    },
    onReady,
  ).finally(() => metrics?.close());
}

/**
 * Serves the synch points of an archive on its own, read-only, until SIGINT, SIGTERM or `salvo
 * unmount`: the history browsable without primary storage, on any machine with the credentials
 * (and the key). Its control socket is in the temporary directory: it has no volume directory.
 */
export async function serveArchive(target: string, mountpoint: string, settings: MountSettings, access: ArchiveAccess, onReady: () => void): Promise<void> {
  await checkMountpoint(mountpoint);
  const [{ openArchive }, { VolumeMount }, { archiveViewStatus }] = await Promise.all([import('../target.js'), import('../../fuse/mount.js'), import('./status.js')]);
  const socket = path.join(os.tmpdir(), `salvo-archive-${process.pid}.sock`);
  const metrics = await listenForMetrics(settings);
  await serveUntilStopped(
    mountpoint,
    'archive',
    async (shutdown) => {
      const view = await openArchive(target, access, undefined, settings.cacheBytes);
      let mount: VolumeMount | null = null;
      try {
        if (settings.cpu !== null) pinServingThreads(settings.cpu);
        mount = await VolumeMount.mount(null, view, mountpoint, {
          allowOther: settings.allowOther,
          control: { archive: view.store.location, volume: view.store.location, socket, pid: process.pid },
        });
        const server = await ControlServer.listen(socket, {
          sync: async () => {
            throw VolumeError.badInput(`${mountpoint} serves the archive ${view.store.location} read-only`, "take synch points on the volume's own mount");
          },
          status: async () => ({ ...archiveViewStatus(view), mountpoint: path.resolve(mountpoint), pid: process.pid }),
          unmount: unmountRequest(() => mount!, mountpoint, shutdown),
          retention: async () => {
            await view.refresh();
            return archiveViewStatus(view).retention;
          },
        });
        if (metrics) {
          const { MountMetrics } = await import('../../metrics/mount-metrics.js');
          metrics.serve(new MountMetrics({ label: view.store.location, volume: null, history: view, mount }));
        }
        return {
          mount,
          server,
          close: async () => {
            await metrics?.close();
            await view.close();
          },
        };
      } catch (err) {
        await mount?.unmount().catch(() => undefined);
        await view.close();
        throw err;
      }
    },
    onReady,
  ).finally(() => metrics?.close());
}

/** The error a mount wrote as its last word (`salvo: CODE: what — hint`), as the error it was. */
function lastError(log: string): VolumeError | null {
  const line = log.split('\n').reverse().find((l) => /^salvo: [A-Z_]+: /.test(l));
  const m = line ? /^salvo: ([A-Z_]+): (.*?)(?: — (.*))?$/.exec(line) : null;
  return m ? new VolumeError(m[1] as VolumeErrorCode, m[2]!, { hint: m[3] }) : null;
}

/** Starts `salvo mount` again in the background and returns once the mount answers. */
async function daemonize(target: string, kind: TargetKind, mountpoint: string, options: MountCommandOptions): Promise<void> {
  // What the mount would refuse, refused here in one line (not from a log left in a stray directory).
  if (kind === 'volume') checkVolume(target);
  await checkMountpoint(mountpoint);
  // An archive has no directory of ours to write in: its mount's log goes to the temporary directory.
  const logFile = kind === 'volume' ? path.join(target, 'mount.log') : path.join(os.tmpdir(), `salvo-mount-${path.basename(mountpoint)}.log`);
  const log = fs.openSync(logFile, 'a', 0o600);
  const logStart = fs.fstatSync(log).size;
  const args = [path.resolve(process.argv[1]!), 'mount', target, mountpoint];
  if (options.allowOther) args.push('--allow-other');
  if (options.cache !== undefined) args.push('--cache', options.cache);
  if (options.rpo !== undefined) args.push('--rpo', options.rpo);
  if (options.cpu !== undefined) args.push('--cpu', options.cpu);
  if (options.metrics !== undefined) args.push('--metrics', options.metrics);
  if (options.s3Endpoint !== undefined) args.push('--s3-endpoint', options.s3Endpoint);
  if (options.encryptKeyFile !== undefined) args.push('--encrypt-key-file', path.resolve(options.encryptKeyFile));
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
      print(`mounted ${target} on ${mountpoint} in the background (pid ${child.pid}, log ${logFile})`);
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
    .description('serve the live volume and every synch point as files (FUSE); given an archive, its synch points alone, read-only')
    .argument('<dir>', 'volume directory, or an archive: its directory or s3://bucket/prefix')
    .argument('<mountpoint>', 'empty directory to mount on')
    .option('--daemon', 'run in the background once mounted (log in <dir>/mount.log; for an archive, in the temporary directory)')
    .option('--allow-other', 'let other users see the mount: they read what the modes allow (the images: the whole disk) and write nothing; needs user_allow_other in /etc/fuse.conf for non-root')
    .option('--cache <size>', 'memory for rebuilt snapshot indexes and fetched archive chunks', '256M')
    .option('--rpo <duration>', 'ship writes to the archive at least this often, e.g. 30s; 0: only at synch points (default: init’s --rpo)')
    .option('--cpu <n>', 'keep the threads that pass FUSE requests on CPU n (faster small writes where idle vCPUs halt; see README)')
    .option('--s3-endpoint <url>', 'S3-compatible server of an s3:// archive (default: AWS_ENDPOINT_URL, else AWS)')
    .option('--encrypt-key-file <file>', 'the key of an encrypted archive')
    .option('--metrics <host:port>', 'serve Prometheus metrics on http://<host:port>/metrics, e.g. 127.0.0.1:9464 (see README, Metrics)')
    .addHelpText(
      'after',
      `
Examples:
  salvo mount /var/lib/salvo/db /mnt/salvo --daemon
  losetup -f --show /mnt/salvo/live/volume.img
  ls -l /mnt/salvo/snapshots/
  salvo mount s3://backups/db /mnt/db-history --encrypt-key-file /root/db.key   # the archive alone, read-only`,
    )
    .action(async (dir: string, mountpoint: string, options: MountCommandOptions) => {
      const settings = parseOptions(options);
      const target = path.resolve(mountpoint);
      // heavy: loaded only when mount runs (see main.ts)
      const { classifyTarget, isS3Location } = await import('../target.js');
      const kind = classifyTarget(dir, options);
      if (kind === 'archive' && options.rpo !== undefined) throw VolumeError.badInput('--rpo is for the mount of a volume; an archive is mounted read-only', 'leave out --rpo');
      const source = kind === 'volume' || !isS3Location(dir) ? path.resolve(dir) : dir;
      if (options.daemon) return daemonize(source, kind, target, options);
      if (kind === 'archive') {
        return serveArchive(source, target, settings, options, () => {
          print(`mounted the archive ${source} on ${target}, read-only`);
          print(`  snapshots    ${target}/snapshots/ (new points appear within 30 s, or at once on ls)`);
          if (settings.metrics) print(`  metrics      http://${formatMetricsAddress(settings.metrics)}/metrics`);
          print('stop with Ctrl-C or `salvo unmount ' + target + '`');
        });
      }
      await serveMount(source, target, settings, () => {
        print(`mounted ${source} on ${target}`);
        print(`  live image   ${target}/live/volume.img`);
        print(`  snapshots    ${target}/snapshots/`);
        if (settings.metrics) print(`  metrics      http://${formatMetricsAddress(settings.metrics)}/metrics`);
        print('stop with Ctrl-C or `salvo unmount ' + target + '`');
      });
    });
}
