/**
 * Encrypted archives: every archived object is sealed with the volume's key; the archive
 * holds no plaintext and no key; restoring needs the key and refuses a wrong one; an altered,
 * foreign or misplaced object is refused before it is decompressed.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DirectoryStore } from '../../lib/archive/directory-store.js';
import { ArchiveView } from '../../lib/history/archive-view.js';
import { readKeyFile } from '../../lib/archive/key-file.js';
import { createTempVolume, SMALL_POLICY, tempDir, historyOf } from '../helpers/temp-volume.js';
import { salvo } from '../helpers/system.js';

const BS = 4096;

function listFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

t.test('encryption: sealed objects, no plaintext or key in the archive, the right key only', async (t) => {
  const keys = tempDir(t, 'salvo-keys-');
  const keyFile = path.join(keys, 'key');
  fs.writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  const wrongKey = path.join(keys, 'wrong');
  fs.writeFileSync(wrongKey, randomBytes(32).toString('hex'));
  const archiveDir = tempDir(t, 'salvo-archive-');
  const store = new DirectoryStore(archiveDir);
  const { volume } = await createTempVolume(t, { store, encryption: { cipher: readKeyFile(keyFile), keyFile } }, { store });
  const secret = Buffer.alloc(BS, 0);
  secret.write('TOP-SECRET-PAYROLL-'.repeat(200));
  for (let round = 0; round < 8; round++) {
    for (let block = 0; block < 64; block += 2) await volume.write(secret, block * BS);
    await volume.synch({ label: `r${round}`, info: { note: 'TOP-SECRET-PAYROLL' } });
  }
  const expected = await (await historyOf(volume).snapshots.open(volume.catalog.find('r0'))).read(0, SMALL_POLICY.sizeBytes);
  await volume.idle();
  await volume.close();

  const files = listFiles(archiveDir);
  t.ok(files.some((f) => f.includes('segments/')), 'segments were archived');
  const key = fs.readFileSync(keyFile);
  for (const file of files) {
    const bytes = fs.readFileSync(file);
    if (bytes.includes('TOP-SECRET')) t.fail(`${file} holds plaintext`);
    if (bytes.includes(key) || bytes.includes(key.toString('hex'))) t.fail(`${file} holds the key`);
    if (file.endsWith('.seg') || file.endsWith('.tail')) t.equal(bytes.toString('latin1', 0, 8), 'SALVOAEN', `${path.basename(file)} is sealed`);
    if (file.endsWith('.cat')) t.equal(bytes.readUInt32LE(12) & 1, 1, `catalog ${path.basename(file)} is sealed`);
  }
  t.ok(files.some((f) => f.endsWith('.cat')), 'the archive has a catalog');

  const out = path.join(tempDir(t, 'salvo-out-'), 'r0.img');
  let r = await salvo(['restore', archiveDir, '--at', 'r0', out]);
  t.equal(r.code, 2, 'restore without the key is refused');
  t.match(r.stderr, /is encrypted — give its key with --encrypt-key-file/);
  r = await salvo(['restore', archiveDir, '--at', 'r0', out, '--encrypt-key-file', wrongKey]);
  t.equal(r.code, 2, 'a wrong key is refused');
  t.match(r.stderr, /that key is not the key of archive/);
  r = await salvo(['restore', archiveDir, '--at', 'r0', out, '--encrypt-key-file', keyFile]);
  t.equal(r.code, 0, `the right key restores: ${r.stderr}`);
  t.ok(fs.readFileSync(out).equals(expected), 'byte for byte');

  // A misplaced object: another segment's object (valid, sealed with the same key) under this name.
  const segments = fs.readdirSync(path.join(archiveDir, 'segments')).sort();
  fs.copyFileSync(path.join(archiveDir, 'segments', segments[1]!), path.join(archiveDir, 'segments', segments[0]!));
  // The catalog lists segment 1 without reading it: the object is refused when a window reads it.
  const view = await ArchiveView.open(new DirectoryStore(archiveDir), { cipher: readKeyFile(keyFile) });
  t.teardown(() => view.close());
  const first = view.catalog.all[0]!; // its window reaches back to segment 1
  await t.rejects(view.snapshots.open(first), { code: 'CORRUPT_ARCHIVE', message: /holds segment \d+ of volume .*, not segment 1/ }, 'a misplaced object is refused when read');
  // Without a catalog, opening reads every summary and lists it as damaged at once.
  fs.rmSync(path.join(archiveDir, 'catalog'), { recursive: true });
  const listed = await ArchiveView.open(new DirectoryStore(archiveDir), { cipher: readKeyFile(keyFile) });
  t.teardown(() => listed.close());
  t.match(listed.damaged, [{ message: /holds segment \d+ of volume .*, not segment 1/ }], 'a misplaced object is refused at open');
});

t.test('encryption: an altered sealed chunk fails authentication before decompression', async (t) => {
  const cipher = readKeyFile(
    (() => {
      const file = path.join(tempDir(t), 'key');
      fs.writeFileSync(file, randomBytes(32));
      return file;
    })(),
  );
  const context = { volumeId: '00112233445566778899aabbccddeeff', sequence: 7, rawStart: 64, rawEnd: 4096, part: 0 } as const;
  const sealed = cipher.seal(Buffer.from('compressed bytes'), context);
  t.same(cipher.open(sealed, context, 'x'), Buffer.from('compressed bytes'), 'round trip');
  const altered = Buffer.from(sealed);
  altered[14]! ^= 1;
  t.throws(() => cipher.open(altered, context, 'x'), { code: 'CORRUPT_ARCHIVE', message: /chunk 0 fails authentication/ }, 'an altered byte');
  t.throws(() => cipher.open(sealed, { ...context, part: 1 }, 'x'), { code: 'CORRUPT_ARCHIVE' }, 'a chunk moved to another place');
  t.throws(() => cipher.open(sealed, { ...context, volumeId: 'ffeeddccbbaa99887766554433221100' }, 'x'), { code: 'CORRUPT_ARCHIVE' }, 'a foreign volume');
});
