/**
 * `salvo install-units`: the systemd units of contrib/systemd (a volume's mount as a service, and
 * periodic synch points), an example of their settings, and mount(8)'s helper for /etc/fstab lines
 * of type salvo, written with the absolute paths of this node and this salvo, which systemd and
 * mount(8) need (neither searches a PATH that may lack them).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { VolumeError } from '../../errors.js';
import { packageRoot } from '../../util/package-root.js';
import { print } from '../output.js';

interface InstallUnitsOptions {
  root: string;
  dryRun?: boolean;
}

/** Each template of the package, where it goes under the root, and its mode. */
const FILES = [
  { template: 'contrib/systemd/salvo-mount@.service', to: 'etc/systemd/system/salvo-mount@.service', mode: 0o644 },
  { template: 'contrib/systemd/salvo-sync@.service', to: 'etc/systemd/system/salvo-sync@.service', mode: 0o644 },
  { template: 'contrib/systemd/salvo-sync@.timer', to: 'etc/systemd/system/salvo-sync@.timer', mode: 0o644 },
  { template: 'contrib/systemd/example.conf', to: 'etc/salvo/example.conf', mode: 0o644 },
  { template: 'contrib/mount.salvo', to: 'sbin/mount.salvo', mode: 0o755 },
];

/** What the templates name: a path a unit file and a shell script hold as they are, unquoted. */
function plainPath(file: string, what: string): string {
  if (!/^\/[A-Za-z0-9_./+@-]+$/.test(file)) {
    throw VolumeError.badInput(`${what} ${file} has characters (spaces, quotes, %, $) that a unit file would read otherwise`, 'install node and salvo under plain paths');
  }
  if (!fs.existsSync(file)) throw new VolumeError('NOT_FOUND', `${what} ${file} does not exist`, { hint: 'build salvo first (npm run build)' });
  return file;
}

/** The templates with @NODE@, @SALVO@ and @MOUNT_HELPER@ in place: the running node and salvo. */
export function renderUnits(): { to: string; mode: number; text: string }[] {
  const node = plainPath(process.execPath, 'node');
  const salvo = plainPath(fs.realpathSync(process.argv[1]!), 'salvo');
  const helper = plainPath(path.join(path.dirname(salvo), 'mount-salvo.js'), 'the mount helper');
  const root = packageRoot();
  return FILES.map(({ template, to, mode }) => ({
    to,
    mode,
    text: fs.readFileSync(path.join(root, template), 'utf8').replaceAll('@NODE@', node).replaceAll('@SALVO@', salvo).replaceAll('@MOUNT_HELPER@', helper),
  }));
}

function install(options: InstallUnitsOptions): void {
  const root = path.resolve(options.root);
  if (!fs.existsSync(root)) throw new VolumeError('NOT_FOUND', `--root ${root} does not exist`, { hint: `create it: mkdir -p ${root}` });
  for (const file of renderUnits()) {
    const target = path.join(root, file.to);
    if (options.dryRun) {
      print(`would write ${target}`);
      continue;
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // Whole or not at all: systemd or mount(8) may read it at any moment.
    const temporary = `${target}.salvo-new`;
    fs.writeFileSync(temporary, file.text, { mode: file.mode });
    fs.chmodSync(temporary, file.mode);
    fs.renameSync(temporary, target);
    print(`wrote ${target}`);
  }
  const instance = 'var-lib-salvo-db';
  print(`next, for the volume /var/lib/salvo/db (systemd-escape --path /var/lib/salvo/db → ${instance}):`);
  print('  systemctl daemon-reload');
  print(`  cp /etc/salvo/example.conf /etc/salvo/${instance}.conf      # set MOUNTPOINT=, SYNC_OPTIONS=`);
  print(`  systemctl enable --now salvo-mount@${instance}.service salvo-sync@${instance}.timer`);
  print('or, instead of the service, a line in /etc/fstab (mount.salvo runs `salvo mount --daemon`):');
  print('  /var/lib/salvo/db  /mnt/salvo  salvo  rpo=30s,_netdev  0 0');
}

export function registerInstallUnits(program: Command): void {
  program
    .command('install-units')
    .description('install the systemd units (salvo-mount@, salvo-sync@ and its timer) and /sbin/mount.salvo for /etc/fstab')
    .option('--root <dir>', 'install under this directory instead of / (etc/systemd/system, etc/salvo, sbin)', '/')
    .option('--dry-run', 'say what would be written, write nothing')
    .addHelpText(
      'after',
      `
Examples:
  salvo install-units && systemctl daemon-reload
  systemctl enable --now salvo-mount@$(systemd-escape --path /var/lib/salvo/db).service
  echo '/var/lib/salvo/db /mnt/salvo salvo rpo=30s,_netdev 0 0' >> /etc/fstab   # or: mount -t salvo /var/lib/salvo/db /mnt/salvo`,
    )
    .action((options: InstallUnitsOptions) => install(options));
}
