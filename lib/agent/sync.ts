/**
 * The agent (claim 1): it cooperates with the application to tell the volume when its
 * blocks are consistent. Around the synch request it can run a pre hook (quiesce the
 * application), freeze a filesystem on the volume (fsfreeze -f: flush it and block new
 * writes) and, afterwards, thaw it and run a post hook. The filesystem is thawed whatever
 * happens — a failed synch, a failed hook, or the agent being interrupted.
 */
import { execFile, execFileSync } from 'node:child_process';
import os from 'node:os';
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import { snapshotFileName, synchPointTime, type SynchPoint } from '../volume/synch-point.js';
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
}

function runCommand(file: string, args: string[], what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 10 * 60_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const detail = (stderr || err.message).trim().split('\n').pop();
      reject(new VolumeError('COMMAND_FAILED', `${what} failed: ${detail}`));
    });
  });
}

function hook(command: string, which: 'pre' | 'post'): Promise<void> {
  debug('running %s hook: %s', which, command);
  return runCommand('/bin/sh', ['-c', command], `the ${which} hook \`${command}\``);
}

/** Takes one synch point through the mount serving `target` (a mountpoint or a volume directory). */
export async function takeSynchPoint(target: string, options: SyncOptions = {}): Promise<SyncResult> {
  const { socket } = await resolveControl(target);
  const info: Record<string, string> = { agent: 'salvo sync', host: os.hostname() };
  if (options.freeze) info.frozen = options.freeze;
  if (options.pre) await hook(options.pre, 'pre');
  let point: SynchPoint;
  try {
    point = options.freeze
      ? await whileFrozen(options.freeze, () => requestSynch(socket, options.label ?? null, info))
      : await requestSynch(socket, options.label ?? null, info);
  } finally {
    if (options.post) await hook(options.post, 'post');
  }
  return { time: synchPointTime(point), file: snapshotFileName(point), label: point.label, frozen: options.freeze ?? null, point };
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
