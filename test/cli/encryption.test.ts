/**
 * `--encrypt-key-file` through the commands users type, before and after the command's name:
 * init writes an encrypted archive (the data written is nowhere in it, where a plain archive
 * holds it verbatim), restore needs the key, and status says which archives are encrypted.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, must, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { oneLine, SMALL_VOLUME } from '../helpers/cli.js';

/** Every byte of every object in a directory archive. */
function archiveBytes(archive: string): Buffer {
  const files = fs.readdirSync(archive, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  return Buffer.concat(files.map((e) => fs.readFileSync(path.join(e.parentPath, e.name))));
}

/** Writes `data` (incompressible, so a plain archive stores it as written) at the start of the volume, takes a point, unmounts. */
async function writeAndSync(cleanup: Cleanup, volume: string, mnt: string, data: Buffer): Promise<void> {
  await cleanup.salvoMount(volume, mnt);
  fs.writeFileSync(path.join(path.dirname(mnt), 'data'), data);
  await must('dd', [`if=${path.join(path.dirname(mnt), 'data')}`, `of=${path.join(mnt, 'live/volume.img')}`, 'bs=64K', 'conv=notrunc,fsync', 'status=none']);
  const sync = await salvo(['sync', mnt, '--label', 'one']);
  if (sync.code !== 0) throw new Error(sync.stderr);
  const unmount = await salvo(['unmount', mnt]);
  if (unmount.code !== 0) throw new Error(unmount.stderr);
}

t.test('encryption: init --encrypt-key-file, after or before the command, writes an archive that holds no written byte in the clear', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-encrypt-');
  const cleanup = new Cleanup(t);
  const key = path.join(root, 'db.key');
  fs.writeFileSync(key, randomBytes(32), { mode: 0o600 });
  const data = randomBytes(256 * 1024);
  const probe = data.subarray(10 * 4096 + 16, 10 * 4096 + 16 + 1024); // inside one 4 KiB block: blocks lie apart in the log

  const plain = { volume: path.join(root, 'plain'), archive: path.join(root, 'plain-archive') };
  t.equal((await salvo(['init', plain.volume, ...SMALL_VOLUME, '--archive', plain.archive])).code, 0);
  await writeAndSync(cleanup, plain.volume, path.join(root, 'plain-mnt'), data);
  t.ok(archiveBytes(plain.archive).includes(probe), 'control: a plain archive holds the written bytes as written');
  t.match((await salvo(['status', plain.archive])).stdout, /not encrypted/, 'status says a plain archive is not encrypted');

  for (const position of ['after', 'before'] as const) {
    const volume = path.join(root, `enc-${position}`);
    const archive = path.join(root, `enc-${position}-archive`);
    const init = ['init', volume, ...SMALL_VOLUME, '--archive', archive];
    const r = await salvo(position === 'after' ? [...init, '--encrypt-key-file', key] : ['--encrypt-key-file', key, ...init]);
    t.equal(r.code, 0, `${position}: init ${r.stderr}`);
    t.match(r.stdout, /\(encrypted, key /, `${position}: init says the archive is encrypted`);
    t.ok((JSON.parse(fs.readFileSync(path.join(volume, 'volume.json'), 'utf8')) as { encryption?: unknown }).encryption, `${position}: volume.json records the encryption`);
    await writeAndSync(cleanup, volume, path.join(root, `enc-${position}-mnt`), data);
    t.notOk(archiveBytes(archive).includes(probe), `${position}: the archive does not hold the written bytes`);

    const out = path.join(root, `enc-${position}.img`);
    const keyless = await salvo(['restore', archive, '--at', 'one', out]);
    t.equal(keyless.code, 2, `${position}: restore without the key is refused`);
    oneLine(t, keyless.stderr, /is encrypted — give its key with --encrypt-key-file/, `${position}: and says so`);
    t.notOk(fs.existsSync(out), 'and writes nothing');
    const restored = await salvo(position === 'after' ? ['restore', archive, '--at', 'one', out, '--encrypt-key-file', key] : ['--encrypt-key-file', key, 'restore', archive, '--at', 'one', out]);
    t.equal(restored.code, 0, `${position}: restore with the key ${restored.stderr}`);
    t.ok(fs.readFileSync(out).subarray(0, data.length).equals(data), `${position}: the restored image holds the data`);
    const status = JSON.parse((await salvo(['status', archive, '--json', '--encrypt-key-file', key])).stdout) as { encrypted: boolean };
    t.equal(status.encrypted, true, `${position}: status --json says encrypted`);
    t.match((await salvo(['status', archive, '--encrypt-key-file', key])).stdout, /encrypted \(AES-256-GCM\)/, `${position}: status says encrypted`);
  }

  const wrong = path.join(root, 'wrong.key');
  fs.writeFileSync(wrong, randomBytes(32));
  const r = await salvo(['list', path.join(root, 'enc-after-archive'), '--encrypt-key-file', wrong]);
  t.equal(r.code, 2, 'a wrong key is refused');
  oneLine(t, r.stderr, /that key is not the key of archive/, 'with one line');
  const missing = await salvo(['--encrypt-key-file', path.join(root, 'nonexistent'), 'list', path.join(root, 'enc-after-archive')]);
  t.equal(missing.code, 2, 'a key file that does not exist is refused');
  oneLine(t, missing.stderr, /cannot read key file .*nonexistent: ENOENT/, 'with one line');
  const onPlain = await salvo(['restore', plain.archive, path.join(root, 'x.img'), '--encrypt-key-file', key]);
  t.equal(onPlain.code, 2, 'a key for a plain archive is refused');
  oneLine(t, onPlain.stderr, /is not encrypted — leave out --encrypt-key-file/, 'with one line');
});
