/**
 * Real parts for integration tests: root, /dev/fuse, loop devices, the salvo CLI. Without
 * them a test skips with the reason — except under SALVO_REQUIRE_FUSE=1 (CI), where it fails.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordSkip } from './skips.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The CLI under test; SALVO_TEST_CLI points the tests at another build (to see a new test fail on an old one). */
export const CLI = process.env.SALVO_TEST_CLI ?? path.join(ROOT, 'dist/bin/salvo.js');

interface Tap {
  skip(message: string): void;
  fail(message: string): void;
  teardown(fn: () => unknown): void;
}

/** True when this machine can mount FUSE and attach loop devices as root. */
export function systemReady(t: Tap): boolean {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!fs.existsSync('/dev/fuse')) missing.push('/dev/fuse');
  if (!fs.existsSync('/dev/loop-control')) missing.push('/dev/loop-control');
  if (!fs.existsSync(CLI)) missing.push(`${CLI} (run npm run build)`);
  for (const tool of ['losetup', 'mkfs.ext4', 'e2fsck', 'fsfreeze', 'fusermount', 'prlimit']) {
    if (!(process.env.PATH ?? '').split(':').some((d) => fs.existsSync(path.join(d, tool)))) missing.push(tool);
  }
  if (missing.length === 0) return true;
  const reason = `needs ${missing.join(', ')}`;
  if (process.env.SALVO_REQUIRE_FUSE === '1') t.fail(`${reason} (SALVO_REQUIRE_FUSE=1)`);
  else {
    t.skip(reason);
    recordSkip(reason);
  }
  return false;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; never throws for a non-zero exit. */
export function run(file: string, args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 300_000, env: options.env ?? process.env }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command and fails with its output when it exits non-zero. */
export async function must(file: string, args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
  const result = await run(file, args, options);
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.code}: ${result.stderr || result.stdout}`);
  return result.stdout;
}

/** The CLI; with `nofile`, under that limit of open files (prlimit sets the soft and the hard limit, so Node cannot raise it). */
export function salvo(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; nofile?: number } = {}): Promise<Run> {
  if (options.nofile !== undefined) return run('prlimit', [`--nofile=${options.nofile}`, process.execPath, CLI, ...args], options);
  return run(process.execPath, [CLI, ...args], options);
}

/** Things to release in reverse order when the test ends, pass or fail. */
export class Cleanup {
  private readonly steps: (() => Promise<unknown>)[] = [];

  constructor(t: Tap) {
    t.teardown(async () => {
      for (const step of this.steps.reverse()) await step().catch(() => undefined);
    });
  }

  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  /** Attaches `file` to a loop device, detached at the end. */
  async loop(file: string, readOnly = false): Promise<string> {
    const device = (await must('losetup', [...(readOnly ? ['--read-only'] : []), '--find', '--show', file])).trim();
    this.add(() => run('losetup', ['--detach', device]));
    return device;
  }

  /** Mounts `device` on a new directory, unmounted at the end. */
  async mount(device: string, dir: string, options: string[] = []): Promise<string> {
    fs.mkdirSync(dir, { recursive: true });
    await must('mount', [...options, device, dir]);
    this.add(async () => {
      if ((await run('umount', [dir])).code !== 0) await run('umount', ['-l', dir]);
    });
    return dir;
  }

  /** `salvo mount --daemon` (with `nofile`, under that limit of open files), unmounted at the end (forcibly if the mount no longer answers). */
  async salvoMount(volume: string, mountpoint: string, extra: string[] = [], nofile?: number): Promise<void> {
    fs.mkdirSync(mountpoint, { recursive: true });
    const result = await salvo(['mount', volume, mountpoint, '--daemon', ...extra], { nofile });
    if (result.code !== 0) throw new Error(`salvo mount failed: ${result.stderr}`);
    this.add(async () => {
      if ((await salvo(['unmount', mountpoint], { timeoutMs: 60_000 })).code !== 0) await run('fusermount', ['-u', '-z', mountpoint]);
    });
  }
}

export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
