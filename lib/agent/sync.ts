/**
 * The agent: it cooperates with the application to tell the volume when its blocks are
 * consistent. Around the synch request it can run a pre hook (quiesce the application), freeze
 * a filesystem on the volume (fsfreeze -f: flush it and block new writes) and, afterwards, thaw
 * it and run a post hook. The filesystem is thawed whatever happens — a failed synch, a failed
 * hook, or the agent being interrupted — and the post hook runs whatever happened before it.
 */
import { execFile, execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import { mountAtPath } from '../fuse/mount-table.js';
import { FsVolumeFiles } from '../volume/files.js';
import { Catalog, duplicateLabel, snapshotFileName, synchPointTime, type SynchPoint } from '../volume/synch-point.js';
import { controlRequest, resolveControl } from './control.js';

const debug = createDebug('salvo:agent');

export interface SyncOptions {
  label?: string | null;
  /** Mountpoint of a filesystem on the volume to freeze around the synch point. */
  freeze?: string;
  pre?: string;
  post?: string;
}

export interface SyncResult {
  time: string;
  file: string;
  label: string | null;
  frozen: string | null;
  point: SynchPoint;
  /** The post hook failed after the point was taken: the point stands, and this says why the agent still fails. */
  postHookError: VolumeError | null;
}

function runCommand(file: string, args: string[], what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10 * 60_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const status = typeof (err as { code?: unknown }).code === 'number' ? `exit status ${(err as { code: number }).code}` : err.message.split('\n')[0];
      const detail = stderr.trim().split('\n').pop();
      reject(new VolumeError('COMMAND_FAILED', `${what} failed (${status})${detail ? `: ${detail}` : ''}`));
    });
  });
}

function hook(command: string, which: 'pre' | 'post'): Promise<void> {
  debug('running %s hook: %s', which, command);
  return runCommand('/bin/sh', ['-c', command], `the ${which} hook \`${command}\``);
}

/** What `--freeze` names must be a mounted filesystem: refused before anything runs. */
function checkFreezable(mountpoint: string): void {
  const mount = mountAtPath(mountpoint);
  if (!mount) throw VolumeError.badInput(`--freeze ${mountpoint} is not a mountpoint`, 'give the mountpoint of the filesystem on the volume, e.g. --freeze /srv/db');
  if (mount.type.startsWith('fuse')) throw VolumeError.badInput(`--freeze ${mountpoint} is a ${mount.type} mount, which cannot be frozen`, 'give the mountpoint of the filesystem on the volume’s loop device');
}

/** Takes one synch point through the mount serving `target` (a mountpoint or a volume directory). */
export async function takeSynchPoint(target: string, options: SyncOptions = {}): Promise<SyncResult> {
  const { socket, volumeDir } = await resolveControl(target);
  const label = options.label ?? null;
  // Refused here too (the volume refuses it), so that nothing is frozen or run for a point that cannot be taken.
  const taken = label === null ? undefined : Catalog.load(new FsVolumeFiles(volumeDir)).labelled(label);
  if (taken) throw duplicateLabel(label!, taken);
  if (options.freeze) checkFreezable(options.freeze);
  const info: Record<string, string> = { agent: 'salvo sync', host: os.hostname() };
  if (options.freeze) info.frozen = path.resolve(options.freeze);
  let point: SynchPoint;
  let postHookError: VolumeError | null = null;
  try {
    if (options.pre) await hook(options.pre, 'pre');
    point = options.freeze ? await whileFrozen(options.freeze, () => requestSynch(socket, label, info)) : await requestSynch(socket, label, info);
  } catch (err) {
    if (options.post) await hook(options.post, 'post').catch((postErr: unknown) => debug('%s', (postErr as Error).message));
    throw err;
  }
  if (options.post) {
    try {
      await hook(options.post, 'post');
    } catch (err) {
      postHookError = err as VolumeError;
    }
  }
  return { time: synchPointTime(point), file: snapshotFileName(point), label: point.label, frozen: info.frozen ?? null, point, postHookError };
}

async function requestSynch(socket: string, label: string | null, info: Record<string, string>): Promise<SynchPoint> {
  const reply = await controlRequest<{ point: SynchPoint }>(socket, { cmd: 'sync', label, info });
  return reply.point;
}

/** Runs `work` with the filesystem at `mountpoint` frozen; thaws it even if `work` fails or a signal arrives. */
async function whileFrozen<T>(mountpoint: string, work: () => Promise<T>): Promise<T> {
  await runCommand('fsfreeze', ['--freeze', mountpoint], `fsfreeze --freeze ${mountpoint}`);
  debug('froze %s', mountpoint);
  // A signal must not leave the filesystem frozen: thaw synchronously (this process is not the mount's), then go.
  const onSignal = (signal: NodeJS.Signals) => {
    try {
      execFileSync('fsfreeze', ['--unfreeze', mountpoint]);
    } finally {
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await runCommand('fsfreeze', ['--unfreeze', mountpoint], `fsfreeze --unfreeze ${mountpoint}`);
    debug('thawed %s', mountpoint);
  }
}
