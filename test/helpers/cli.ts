/** Driving the real CLI in tests: a small volume made by `salvo init`, and the one-line error check. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { salvo } from './system.js';

interface Tap {
  equal(found: unknown, wanted: unknown, message?: string): void;
  match(found: unknown, wanted: unknown, message?: string): void;
}

/** A 64 MiB volume whose 1 MiB segments cycle quickly. */
export const SMALL_VOLUME = ['--size', '64M', '--segment-size', '1M', '--segments', '100'];

/** stderr holds exactly one line (what is wrong — what to do), and it matches `pattern`. */
export function oneLine(t: Tap, stderr: string, pattern: RegExp, what: string): void {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  t.equal(lines.length, 1, `${what}: one line (${JSON.stringify(lines)})`);
  t.match(lines[0] ?? '', pattern, what);
}

/** `salvo init <root>/<name>` with a directory archive beside it (world-traversable, for tests that run as nobody). */
export async function initVolume(root: string, name = 'volume', extra: string[] = []): Promise<{ volume: string; archive: string; mnt: string }> {
  fs.chmodSync(root, 0o755);
  const volume = path.join(root, name);
  const archive = path.join(root, `${name}-archive`);
  const r = await salvo(['init', volume, ...SMALL_VOLUME, '--archive', archive, ...extra]);
  if (r.code !== 0) throw new Error(`salvo init failed: ${r.stderr}`);
  return { volume, archive, mnt: path.join(root, `${name}-mnt`) };
}

/** The synch point `salvo sync --json` took (its one line of JSON). */
export async function syncPoint(mountpoint: string, extra: string[] = []): Promise<{ time: string; file: string; label: string | null }> {
  const r = await salvo(['sync', mountpoint, '--json', ...extra]);
  if (r.code !== 0) throw new Error(`salvo sync failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { time: string; file: string; label: string | null };
}

/**
 * Rewrites 8 MiB of `image` from 8 MiB on, over and over, until the returned function is
 * called (the test's teardown calls it too): writes that go on until the archive makes them wait.
 */
export function writeOnAndOn(t: { teardown(fn: () => unknown): void }, image: string): () => void {
  const dd = spawn('bash', ['-c', `while dd if=/dev/urandom of=${image} bs=1M count=8 seek=8 conv=notrunc status=none; do :; done`], { stdio: 'ignore', detached: true });
  const stop = () => {
    try {
      process.kill(-dd.pid!, 'SIGKILL');
    } catch {
      // gone already: its dd failed once the mount was
    }
  };
  t.teardown(stop);
  return stop;
}
