/**
 * The mount's control channel: a Unix socket in the volume directory (mode 0600, so only
 * the owner can connect), one JSON request per connection, one JSON answer. It accepts the
 * documented commands only; a malformed or oversized request gets an error answer and
 * never reaches the volume.
 *
 *   {"cmd":"sync","label":"before-upgrade","info":{"agent":"salvo sync"}}  → {"ok":true,"point":{...}}
 *   {"cmd":"status"}                                                       → {"ok":true,"status":{...}}
 *   {"cmd":"unmount"}                                                      → {"ok":true} and the mount exits
 *   {"cmd":"retention"}                                                    → {"ok":true,"retention":{...}} after reading the archive's record
 *   failures                                                               → {"ok":false,"error":{"code","message","hint"}}
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import createDebug from 'debug';
import { VolumeError, errnoCode } from '../errors.js';

const debug = createDebug('salvo:agent');
const REQUEST_BYTES_MAX = 64 * 1024;
/** sun_path holds 108 bytes with its terminating NUL. */
const SOCKET_PATH_MAX = 107;

/** How long an unmount waits for the archive to take what is queued, unless told (`salvo unmount --timeout`). */
export const DRAIN_SECONDS_DEFAULT = 600;

export type ControlRequest =
  | { cmd: 'sync'; label?: string | null; info?: Record<string, string>; freeze?: string }
  | { cmd: 'status' }
  | { cmd: 'unmount'; drainSeconds?: number }
  | { cmd: 'retention' };

export interface ControlHandlers {
  /** Takes a synch point; with `freeze`, with the filesystem mounted there frozen (agent/freeze.ts). */
  sync(label: string | null, info: Record<string, string>, freeze?: string): Promise<unknown>;
  status(): Promise<unknown>;
  /** Stops the mount once the archive has taken what is queued, waiting at most `drainSeconds`; says what it did not take. */
  unmount(drainSeconds: number): Promise<unknown>;
  /** Takes in the retention record in force in the archive (a `salvo forget` or `prune` changed it); says what it holds. */
  retention(): Promise<unknown>;
}

export function controlSocketPath(volumeDir: string): string {
  const socket = path.join(path.resolve(volumeDir), 'control.sock');
  if (Buffer.byteLength(socket) > SOCKET_PATH_MAX) {
    throw VolumeError.badInput(`the volume directory's path is too long for a control socket (${socket})`, 'use a volume directory with a shorter path');
  }
  return socket;
}

function parseRequest(text: string): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw VolumeError.badInput('request is not JSON');
  }
  const request = value as Record<string, unknown>;
  if (typeof request !== 'object' || request === null) throw VolumeError.badInput('request is not an object');
  switch (request.cmd) {
    case 'sync': {
      const { label, info } = request;
      if (!(label === undefined || label === null || typeof label === 'string')) throw VolumeError.badInput('label must be a string');
      const infoOk = info === undefined || (typeof info === 'object' && info !== null && !Array.isArray(info) && Object.values(info).every((v) => typeof v === 'string'));
      if (!infoOk) throw VolumeError.badInput('info must be an object of strings');
      const { freeze } = request;
      if (!(freeze === undefined || (typeof freeze === 'string' && freeze.startsWith('/')))) throw VolumeError.badInput('freeze must be an absolute path');
      return { cmd: 'sync', label: (label as string | null | undefined) ?? null, info: (info as Record<string, string> | undefined) ?? {}, freeze: freeze as string | undefined };
    }
    case 'status':
      return { cmd: 'status' };
    case 'retention':
      return { cmd: 'retention' };
    case 'unmount': {
      const { drainSeconds } = request;
      if (!(drainSeconds === undefined || (typeof drainSeconds === 'number' && drainSeconds >= 0 && Number.isFinite(drainSeconds)))) throw VolumeError.badInput('drainSeconds must be a number of seconds');
      return { cmd: 'unmount', drainSeconds: drainSeconds ?? DRAIN_SECONDS_DEFAULT };
    }
    default:
      throw VolumeError.badInput(`unknown command ${JSON.stringify(request.cmd)}`, 'the commands are sync, status, unmount and retention');
  }
}

export class ControlServer {
  private constructor(
    private readonly server: net.Server,
    readonly socketPath: string,
  ) {}

  static async listen(socketPath: string, handlers: ControlHandlers): Promise<ControlServer> {
    fs.rmSync(socketPath, { force: true }); // a socket left by a killed mount (the volume lock says it is gone)
    const server = net.createServer((socket) => {
      let received = Buffer.alloc(0);
      let answered = false;
      socket.on('error', (err) => debug('control connection: %s', err.message));
      socket.on('data', (chunk: Buffer) => {
        if (answered) return;
        received = Buffer.concat([received, chunk]);
        const newline = received.indexOf(0x0a);
        if (newline < 0 && received.length <= REQUEST_BYTES_MAX) return;
        answered = true; // anything after the first line is read and dropped, so the connection can close
        if (newline < 0 || newline > REQUEST_BYTES_MAX) {
          socket.end(JSON.stringify({ ok: false, error: { code: 'BAD_INPUT', message: `BAD_INPUT: request longer than ${REQUEST_BYTES_MAX} bytes` } }) + '\n');
          return;
        }
        void answer(received.toString('utf8', 0, newline), handlers).then((reply) => socket.end(JSON.stringify(reply) + '\n'));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    fs.chmodSync(socketPath, 0o600);
    return new ControlServer(server, socketPath);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }
}

async function answer(text: string, handlers: ControlHandlers): Promise<unknown> {
  try {
    const request = parseRequest(text);
    debug('control request %s', request.cmd);
    switch (request.cmd) {
      case 'sync':
        return { ok: true, point: await handlers.sync(request.label ?? null, request.info ?? {}, request.freeze) };
      case 'status':
        return { ok: true, status: await handlers.status() };
      case 'unmount':
        return { ok: true, archive: await handlers.unmount(request.drainSeconds ?? DRAIN_SECONDS_DEFAULT) };
      case 'retention':
        return { ok: true, retention: await handlers.retention() };
    }
  } catch (err) {
    const e = err instanceof VolumeError ? err : new VolumeError('COMMAND_FAILED', (err as Error).message);
    return { ok: false, error: { code: e.code, message: e.message, hint: e.hint } };
  }
}

/** Sends one request to the mount listening on `socketPath` and returns its answer's payload. */
export async function controlRequest<T>(socketPath: string, request: ControlRequest, timeoutMs = 120_000): Promise<T> {
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new VolumeError('NOT_MOUNTED', `the mount did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') {
        reject(new VolumeError('NOT_MOUNTED', `no salvo mount answers at ${socketPath}`, { hint: 'mount the volume first with `salvo mount`' }));
      } else if (code === 'ECONNRESET' || code === 'EPIPE') {
        reject(new VolumeError('NOT_MOUNTED', `the mount at ${socketPath} closed the connection before it answered (it stopped, or was killed)`, { hint: 'see its log (mount.log in the volume directory) and mount again' }));
      } else reject(err);
    });
  });
  let parsed: { ok: boolean; error?: { code: string; message: string; hint?: string }; [k: string]: unknown };
  try {
    parsed = JSON.parse(reply);
  } catch {
    throw new VolumeError('NOT_MOUNTED', `the mount at ${socketPath} closed the connection before it answered (it stopped, or was killed)`, { hint: 'see its log (mount.log in the volume directory) and mount again' });
  }
  if (!parsed.ok) {
    const e = parsed.error!;
    throw new VolumeError(e.code as VolumeError['code'], e.message.replace(/^[A-Z_]+: /, ''), { hint: e.hint });
  }
  return parsed as T;
}

/**
 * The control socket for a mountpoint (its `/.salvo.json` names it) or a volume directory.
 * Runs in the agent's process, never in the mount's, so reading the mount is safe here.
 */
export async function resolveControl(target: string): Promise<{ socket: string; volumeDir: string; pid?: number }> {
  const fromMount = path.join(target, '.salvo.json');
  try {
    const control = JSON.parse(await fs.promises.readFile(fromMount, 'utf8')) as { socket?: unknown; volume?: unknown; pid?: unknown };
    if (typeof control.socket === 'string' && typeof control.volume === 'string') {
      return { socket: control.socket, volumeDir: control.volume, ...(Number.isSafeInteger(control.pid) ? { pid: control.pid as number } : {}) };
    }
  } catch (err) {
    if (errnoCode(err) === 'ENOTCONN') {
      throw new VolumeError('NOT_MOUNTED', `${target} is a salvo mount whose process is gone`, { hint: `clear it with \`salvo unmount ${target}\`, then mount again` });
    }
    if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') debug('reading %s: %s', fromMount, (err as Error).message);
  }
  if (fs.existsSync(path.join(target, 'volume.json')) && fs.existsSync(path.join(target, 'slots'))) return { socket: controlSocketPath(target), volumeDir: path.resolve(target) };
  throw new VolumeError('NOT_FOUND', `${target} is neither a salvo mountpoint nor a volume directory`, {
    hint: 'give the mountpoint of `salvo mount` or the volume directory of `salvo init`',
  });
}
