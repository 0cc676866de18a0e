/**
 * The agent: it cooperates with the application to tell the volume when its blocks are
 * consistent. Around the synch request it can run a pre hook (quiesce the application) and a
 * post hook, and ask the mount to take the point with a filesystem on the volume frozen
 * (freeze.ts: the mount freezes and thaws, so the agent's end cannot leave it frozen). The post
 * hook runs whatever happened before it.
 */
import os from 'node:os';
import path from 'node:path';
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import { checkFreezable, runCommand } from './freeze.js';
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

function hook(command: string, which: 'pre' | 'post'): Promise<void> {
  debug('running %s hook: %s', which, command);
  return runCommand('/bin/sh', ['-c', command], `the ${which} hook \`${command}\``);
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
    // The mount freezes and thaws (freeze.ts): a killed agent never leaves the filesystem frozen.
    point = await requestSynch(socket, label, info, options.freeze ? path.resolve(options.freeze) : undefined);
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

async function requestSynch(socket: string, label: string | null, info: Record<string, string>, freeze: string | undefined): Promise<SynchPoint> {
  const reply = await controlRequest<{ point: SynchPoint }>(socket, { cmd: 'sync', label, info, ...(freeze ? { freeze } : {}) });
  return reply.point;
}
