/**
 * mount(8)'s helper for filesystems of type `salvo` (/sbin/mount.salvo, installed by `salvo
 * install-units`): an /etc/fstab line `/var/lib/salvo/db /mnt/salvo salvo rpo=30s,_netdev 0 0`
 * mounts the volume as `salvo mount --daemon` does. mount(8) calls `mount.salvo <spec> <dir>
 * [-sfnv] [-N namespace] [-o options] [-t type]`; the mount options become salvo's, and the ones
 * meant for mount(8) or systemd are left to them. `umount <dir>` needs nothing of salvo: the mount
 * process sees the unmount and closes the volume.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VolumeError } from '../errors.js';
import { reportError } from './main.js';

/** Mount options and the `salvo mount` flags they become; each takes a value but allow_other. */
const SALVO_OPTIONS: Record<string, { flag: string; value: boolean }> = {
  allow_other: { flag: '--allow-other', value: false },
  cache: { flag: '--cache', value: true },
  rpo: { flag: '--rpo', value: true },
  cpu: { flag: '--cpu', value: true },
  s3_endpoint: { flag: '--s3-endpoint', value: true },
  encrypt_key_file: { flag: '--encrypt-key-file', value: true },
  metrics: { flag: '--metrics', value: true },
};

/** Options for mount(8), systemd or the kernel's generic flags, which mean nothing to a salvo mount. */
const GENERIC_OPTIONS = new Set([
  'defaults', 'rw', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', '_netdev', 'nofail', 'async', 'sync',
  'dev', 'nodev', 'suid', 'nosuid', 'exec', 'noexec', 'atime', 'noatime', 'relatime', 'norelatime', 'strictatime', 'nodiratime', 'lazytime', 'silent', 'loud',
]);
const GENERIC_PREFIXES = ['x-', 'comment=', 'X-mount.'];

const TAKES = `salvo takes ${Object.keys(SALVO_OPTIONS).map((o) => (SALVO_OPTIONS[o]!.value ? `${o}=` : o)).join(', ')} (and leaves defaults, _netdev, nofail, noauto, x-systemd.* to mount and systemd)`;

export interface HelperCall {
  spec: string;
  dir: string;
  /** The arguments of `salvo` that do the mount. */
  args: string[];
  /** -f: check everything, mount nothing. */
  fake: boolean;
  /** -v: say the command run. */
  verbose: boolean;
}

/** mount(8)'s call, as the `salvo mount --daemon` it stands for; a bad option is refused here, before anything runs. */
export function parseHelperArgs(argv: string[]): HelperCall {
  const positional: string[] = [];
  const options: string[] = [];
  let sloppy = false;
  let fake = false;
  let verbose = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const letter = arg[1]!;
    if (letter === 'o' || letter === 't' || letter === 'N') {
      const value = arg.length > 2 ? arg.slice(2) : argv[++i];
      if (value === undefined) throw VolumeError.badInput(`mount.salvo: ${arg} needs a value`, 'mount.salvo <volume> <mountpoint> [-o options]');
      if (letter === 'o') options.push(...value.split(',').filter((o) => o !== ''));
      if (letter === 'N') throw VolumeError.badInput('mount.salvo: mounting in another mount namespace (-N) is not supported', 'run mount in that namespace instead');
      continue;
    }
    for (const flag of arg.slice(1)) {
      if (flag === 's') sloppy = true;
      else if (flag === 'f') fake = true;
      else if (flag === 'v') verbose = true;
      else if (flag !== 'n') throw VolumeError.badInput(`mount.salvo: unknown flag -${flag}`, 'mount.salvo <volume> <mountpoint> [-sfnv] [-o options]');
    }
  }
  if (positional.length !== 2) throw VolumeError.badInput(`mount.salvo: expected a volume (or archive) and a mountpoint, got ${positional.length} arguments`, 'mount.salvo <volume> <mountpoint> [-o options]');
  const [spec, dir] = positional as [string, string];
  const args = ['mount', spec, dir, '--daemon'];
  for (const option of options) {
    const eq = option.indexOf('=');
    const name = (eq < 0 ? option : option.slice(0, eq)).replace(/-/g, '_');
    const value = eq < 0 ? undefined : option.slice(eq + 1);
    const known = SALVO_OPTIONS[name];
    if (known) {
      if (known.value && !value) throw VolumeError.badInput(`mount option ${name} needs a value (${name}=…)`, TAKES);
      if (!known.value && value !== undefined) throw VolumeError.badInput(`mount option ${name} takes no value`, TAKES);
      args.push(known.flag, ...(value === undefined ? [] : [value]));
    } else if (name === 'ro') {
      // An archive is served read-only anyway; a volume's mount is never.
      if (fs.existsSync(path.join(spec, 'volume.json'))) throw VolumeError.badInput(`mount option ro: ${spec} is a volume, whose mount is read-write`, 'leave out ro, or mount the archive, which is read-only');
    } else if (!GENERIC_OPTIONS.has(name) && !GENERIC_PREFIXES.some((p) => option.startsWith(p)) && !sloppy) {
      throw VolumeError.badInput(`unknown mount option ${option}`, TAKES);
    }
  }
  return { spec, dir, args, fake, verbose };
}

/** Runs mount(8)'s call: `salvo mount --daemon` returns once the mount answers. Returns the exit code. */
export async function runMountHelper(argv: string[]): Promise<number> {
  let call: HelperCall;
  try {
    call = parseHelperArgs(argv);
  } catch (err) {
    return reportError(err);
  }
  // salvo.js beside this file's compiled entry (dist/bin/mount-salvo.js).
  const salvo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'salvo.js');
  if (call.verbose) process.stderr.write(`mount.salvo: salvo ${call.args.join(' ')}\n`);
  if (call.fake) return 0;
  const child = spawn(process.execPath, [salvo, ...call.args], { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.on('error', (err) => resolve(reportError(err)));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
