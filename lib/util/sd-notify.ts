/**
 * Tells systemd how a `Type=notify` service is doing (contrib/systemd/salvo-mount@.service):
 * `READY=1` once the mount serves, so that units ordered after it (the filesystem on the live
 * image) start only then, and `STOPPING=1` when it starts to shut down. Outside systemd
 * ($NOTIFY_SOCKET unset) it does nothing, without loading the native addon.
 */
import createDebug from 'debug';
import { native } from './native.js';

const debug = createDebug('salvo:mount');

/** Sends `state` (lines `KEY=value`); a failure is a warning on stderr, never the mount's failure. */
export function notifySystemd(state: string): void {
  if (!process.env.NOTIFY_SOCKET) return;
  try {
    native().sdNotify(state);
    debug('told systemd %s', state.replace(/\n/g, ' '));
  } catch (err) {
    process.stderr.write(`salvo: warning: could not tell systemd ${state.split('\n')[0]} through NOTIFY_SOCKET (${(err as Error).message})\n`);
  }
}
