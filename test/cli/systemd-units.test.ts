/**
 * The systemd units and mount(8)'s helper that `salvo install-units` writes (contrib/systemd,
 * contrib/mount.salvo): every file written with this node's and this salvo's absolute paths,
 * `systemd-analyze verify` clean on an instance of each unit, and the /etc/fstab lines the README
 * gives verified the same way once systemd's fstab generator has turned them into mount units
 * (the filesystem on the live image ordered after the mount service, without an ordering cycle).
 * mount.salvo's translation of mount options is checked with -f, which mounts nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CLI, ROOT, run, salvo } from '../helpers/system.js';
import { recordSkip } from '../helpers/skips.js';
import { tempDir } from '../helpers/temp-volume.js';
import { oneLine } from '../helpers/cli.js';

const UNITS = ['salvo-mount@.service', 'salvo-sync@.service', 'salvo-sync@.timer'];
const INSTANCE = 'var-lib-salvo-db'; // systemd-escape --path /var/lib/salvo/db
const GENERATOR = '/usr/lib/systemd/system-generators/systemd-fstab-generator';

/** True when systemd-analyze (and the fstab generator) are here; else a skip, or a failure under SALVO_REQUIRE_FUSE=1. */
function systemdToolsReady(t: Tap.Test): boolean {
  const missing = ['/usr/bin/systemd-analyze', GENERATOR].filter((f) => !fs.existsSync(f));
  if (missing.length === 0) return true;
  const reason = `needs ${missing.join(', ')} (Debian package systemd)`;
  if (process.env.SALVO_REQUIRE_FUSE === '1') t.fail(`${reason} (SALVO_REQUIRE_FUSE=1)`);
  else {
    t.skip(reason);
    recordSkip(reason);
  }
  return false;
}

async function installUnits(t: Tap.Test): Promise<string> {
  const root = tempDir(t, 'salvo-units-');
  const r = await salvo(['install-units', '--root', root]);
  t.equal(r.code, 0, `install-units exits 0 ${r.stderr}`);
  return root;
}

/** `systemd-analyze verify` of units found in `dirs` (before the system's own): its complaints, '' when clean. */
async function verify(t: Tap.Test, dirs: string[], units: string[]): Promise<string> {
  const r = await run('systemd-analyze', ['verify', ...units], { env: { ...process.env, SYSTEMD_UNIT_PATH: `${dirs.join(':')}:`, SYSTEMD_LOG_COLOR: '0' } });
  t.equal(r.code, 0, `systemd-analyze verify ${units.join(' ')} exits 0`);
  return (r.stderr + r.stdout).trim();
}

t.test('install-units writes the units, the example settings and mount.salvo, with absolute paths', async (t) => {
  const root = await installUnits(t);
  const salvoJs = fs.realpathSync(CLI);
  for (const unit of UNITS) {
    const text = fs.readFileSync(path.join(root, 'etc/systemd/system', unit), 'utf8');
    t.notMatch(text, /@[A-Z_]+@/, `${unit}: every placeholder replaced`);
    if (unit !== 'salvo-sync@.timer') t.match(text, `ExecStart=${process.execPath} ${salvoJs} `, `${unit}: runs this node and this salvo`);
  }
  const mountUnit = fs.readFileSync(path.join(root, 'etc/systemd/system/salvo-mount@.service'), 'utf8');
  t.match(mountUnit, /^Type=notify$/m, 'the mount service waits for READY=1');
  t.match(mountUnit, /^Restart=on-failure$/m, 'and is restarted when it fails');
  t.match(fs.readFileSync(path.join(root, 'etc/salvo/example.conf'), 'utf8'), /^MOUNTPOINT=/m, 'example.conf sets MOUNTPOINT');
  const helper = path.join(root, 'sbin/mount.salvo');
  t.equal(fs.statSync(helper).mode & 0o777, 0o755, 'mount.salvo is executable');
  t.match(fs.readFileSync(helper, 'utf8'), `exec '${process.execPath}' '${path.join(path.dirname(salvoJs), 'mount-salvo.js')}' "$@"`, 'and runs the helper beside salvo');

  const dry = tempDir(t, 'salvo-units-dry-');
  const r = await salvo(['install-units', '--root', dry, '--dry-run']);
  t.equal(r.code, 0, `--dry-run exits 0 ${r.stderr}`);
  t.match(r.stdout, `would write ${path.join(dry, 'sbin/mount.salvo')}`, '--dry-run says what it would write');
  t.same(fs.readdirSync(dry), [], 'and writes nothing');

  const missing = await salvo(['install-units', '--root', path.join(dry, 'nowhere')]);
  t.equal(missing.code, 2, 'a missing --root: exit 2');
  oneLine(t, missing.stderr, /^salvo: NOT_FOUND: --root .*nowhere does not exist — create it/, 'a missing --root');
});

t.test('systemd-analyze verify passes on an instance of each unit', async (t) => {
  if (!systemdToolsReady(t)) return;
  const root = await installUnits(t);
  const units = path.join(root, 'etc/systemd/system');
  t.equal(await verify(t, [units], UNITS.map((u) => u.replace('@.', `@${INSTANCE}.`))), '', 'no complaint');
  // The check is real: a unit systemd reads otherwise does draw one.
  fs.writeFileSync(path.join(units, 'broken@.service'), fs.readFileSync(path.join(units, 'salvo-mount@.service'), 'utf8').replace('RequiresMountsFor=%f', 'RequiresMountsFor=%I'));
  t.match(await verify(t, [units], [`broken@${INSTANCE}.service`]), /RequiresMountsFor= path is not absolute/, 'a wrong specifier is caught');
});

/** The mount units systemd's fstab generator makes of `lines`, in a new directory. */
async function generate(t: Tap.Test, lines: string[]): Promise<string> {
  const dir = tempDir(t, 'salvo-fstab-');
  const generated = path.join(dir, 'generated');
  fs.mkdirSync(generated);
  const fstab = path.join(dir, 'fstab');
  fs.writeFileSync(fstab, `${lines.join('\n')}\n`);
  const r = await run(GENERATOR, [generated, generated, generated], { env: { ...process.env, SYSTEMD_FSTAB: fstab, SYSTEMD_PROC_CMDLINE: '' } });
  t.equal(r.code, 0, `the generator runs: ${r.stderr}`);
  return generated;
}

/** The /etc/fstab lines of each block of the README's section on systemd. */
function readmeFstabBlocks(): string[][] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Under systemd, and in /etc/fstab'), readme.indexOf('### Release notes'));
  return [...section.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1]!.split('\n').filter((l) => /^\/\S+\s+\/\S+\s+\S+\s+\S+\s+0 0$/.test(l))).filter((b) => b.length > 0);
}

t.test("the README's /etc/fstab lines, as systemd's generator makes them, verify without an ordering cycle", async (t) => {
  if (!systemdToolsReady(t)) return;
  const units = path.join(await installUnits(t), 'etc/systemd/system');
  const blocks = readmeFstabBlocks();
  t.equal(blocks.length, 2, 'the README gives two sets of lines: with the mount service, and with a line of type salvo');
  const generatedDirs: string[] = [];
  for (const lines of blocks) {
    const generated = await generate(t, lines);
    generatedDirs.push(generated);
    const mounts = fs.readdirSync(generated).filter((f) => f.endsWith('.mount'));
    t.equal(mounts.length, lines.length, `a mount unit for each line: ${mounts.join(' ')}`);
    t.equal(await verify(t, [generated, units], [...mounts, `salvo-sync@${INSTANCE}.timer`]), '', `${mounts.join(' ')}: no complaint`);
  }
  const [withService, typeSalvo] = generatedDirs as [string, string];
  const srvDb = fs.readFileSync(path.join(withService, 'srv-db.mount'), 'utf8');
  t.match(srvDb, `After=salvo-mount@${INSTANCE}.service`, 'the filesystem on the live image mounts after the service (and so unmounts before it stops)');
  t.match(srvDb, `Requires=salvo-mount@${INSTANCE}.service`, 'and requires it');
  t.match(fs.readFileSync(path.join(typeSalvo, 'mnt-salvo.mount'), 'utf8'), /^Type=salvo$/m, 'a line of type salvo: a mount unit that mount(8) does with mount.salvo');
  t.match(fs.readFileSync(path.join(typeSalvo, 'srv-db.mount'), 'utf8'), /^RequiresMountsFor=\/mnt\/salvo$/m, 'and the filesystem on its live image requires that mount');

  const withoutNofail = await generate(t, [blocks[0]![0]!.replace('nofail,', '')]);
  t.match(await verify(t, [withoutNofail, units], ['srv-db.mount']), /ordering cycle/, 'without nofail the line is ordered before local-fs.target, which the service comes after: a cycle');
  const netdev = await generate(t, [blocks[0]![0]!.replace('nofail,', '_netdev,')]);
  t.equal(await verify(t, [netdev, units], ['srv-db.mount']), '', 'with _netdev instead of nofail: no complaint');
});

t.test('mount.salvo translates mount options into `salvo mount --daemon` and refuses unknown ones in one line', async (t) => {
  const helper = path.join(path.dirname(CLI), 'mount-salvo.js');
  const volume = path.join(ROOT, 'no-such-volume');
  const fake = (options: string, extra: string[] = []) => run(process.execPath, [helper, volume, '/mnt/x', '-f', '-v', ...extra, '-o', options]);
  let r = await fake('rw,rpo=30s,cache=512M,allow_other,cpu=1,s3_endpoint=http://10.0.0.5:7480,encrypt_key_file=/root/db.key,metrics=127.0.0.1:9464,_netdev,nofail,noauto,defaults,x-systemd.requires=a.service');
  t.equal(r.code, 0, r.stderr);
  t.equal(
    r.stderr.trim(),
    `mount.salvo: salvo mount ${volume} /mnt/x --daemon --rpo 30s --cache 512M --allow-other --cpu 1 --s3-endpoint http://10.0.0.5:7480 --encrypt-key-file /root/db.key --metrics 127.0.0.1:9464`,
    "salvo's options become its flags; mount's and systemd's are left to them",
  );
  r = await fake('rpo=30s,bogus=1');
  t.equal(r.code, 2, 'an unknown option: exit 2');
  oneLine(t, r.stderr, /^salvo: BAD_INPUT: unknown mount option bogus=1 — salvo takes allow_other, cache=, rpo=/, 'an unknown option');
  r = await fake('rpo=30s,bogus=1', ['-s']);
  t.equal(r.code, 0, 'sloppy (-s): an unknown option is let through');
  r = await fake('cache');
  t.equal(r.code, 2, 'an option without its value: exit 2');
  oneLine(t, r.stderr, /^salvo: BAD_INPUT: mount option cache needs a value/, 'an option without its value');
  r = await run(process.execPath, [helper, volume]);
  t.equal(r.code, 2, 'no mountpoint: exit 2');
  oneLine(t, r.stderr, /^salvo: BAD_INPUT: mount\.salvo: expected a volume \(or archive\) and a mountpoint/, 'no mountpoint');
});
