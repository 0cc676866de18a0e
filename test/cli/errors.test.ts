/**
 * Errors the CLI met with a stack trace or the wrong exit code before: a dead mount, a mount that
 * dies while it answers, a reader that closes the pipe, wrong paths, options that do not go
 * together, an output that exists, S3 mistakes. Each is one line and an exit code that says which
 * kind: 2 bad input, 1 failed, 4 in use.
 */
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CLI, Cleanup, run, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { s3TestLocation } from '../helpers/s3.js';
import { initVolume, oneLine, syncPoint } from '../helpers/cli.js';

t.test('errors: a dead mount, a mount that dies mid-request, a closed pipe: one line each', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-errors-');
  const cleanup = new Cleanup(t);
  const { volume, mnt } = await initVolume(root);
  await cleanup.salvoMount(volume, mnt);
  await syncPoint(mnt);
  const { pid } = JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { pid: number };

  const pipe = await run('bash', ['-c', `set -o pipefail; node ${CLI} list ${volume} | head -1`]);
  t.equal(pipe.code, 0, 'list | head -1 ends quietly');
  t.equal(pipe.stderr, '', 'with nothing on stderr (no EPIPE)');

  process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  for (const command of [['status', mnt], ['sync', mnt], ['list', mnt], ['verify', '--fsck', mnt]]) {
    const r = await salvo(command);
    t.equal(r.code, 1, `${command[0]} on a dead mount: exit 1`);
    oneLine(t, r.stderr, /NOT_MOUNTED: .* (is a salvo mount|lies under a FUSE mount) whose process is gone — .*unmount/, `${command[0]} on a dead mount: one line`);
  }
  const cleared = await salvo(['unmount', mnt]);
  t.equal(cleared.code, 0, `unmount clears the dead mount: ${cleared.stderr}`);

  // A "mount" that takes the request and closes the connection without an answer, as a mount killed mid-request does.
  const fake = path.join(root, 'fake');
  fs.mkdirSync(fake);
  const socket = path.join(root, 'fake.sock');
  const server = net.createServer((c) => c.once('data', () => c.destroy()));
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  fs.writeFileSync(path.join(fake, '.salvo.json'), JSON.stringify({ socket, volume }));
  const r = await salvo(['sync', fake]);
  t.equal(r.code, 1, 'sync when the mount dies mid-request: exit 1');
  oneLine(t, r.stderr, /NOT_MOUNTED: the mount at .*fake\.sock closed the connection before it answered \(it stopped, or was killed\) — see its log/, 'one line, no stack');
});

t.test('errors: wrong paths are bad input (2), options that do not go together are refused', async (t) => {
  const root = tempDir(t, 'salvo-errors-');
  const { volume, archive } = await initVolume(root);
  const nowhere = path.join(root, 'nowhere');
  for (const command of [['sync', nowhere], ['sync', root], ['unmount', nowhere], ['unmount', root], ['verify', '--fsck', root], ['status', nowhere], ['list', root]]) {
    const r = await salvo(command);
    t.equal(r.code, 2, `${command.join(' ')}: exit 2, not 4 ("in use")`);
    oneLine(t, r.stderr, /^salvo: NOT_FOUND: /, `${command.join(' ')}: one line`);
  }
  const cases: [string[], RegExp][] = [
    [['verify', archive, '--last', '2'], /--last applies with --fsck only/],
    [['verify', '--fsck', root, archive], /give either a path to check or --fsck <mountpoint>, not both/],
    [['--encrypt-key-file', path.join(root, 'nonexistent'), 'list', volume], /--encrypt-key-file is for an archive given by path; .* is a volume directory/],
    [['status', volume, '--s3-endpoint', 'http://127.0.0.1:1'], /--s3-endpoint is for an archive given by path/],
    [['list', archive, '--s3-endpoint', 'http://127.0.0.1:1'], /--s3-endpoint is for s3:\/\/ archives; .* is a directory/],
    [['--encrypt-key-file', path.join(root, 'k'), 'sync', volume], /--encrypt-key-file does not apply to `salvo sync`/],
    [['--s3-endpoint', 'http://x', 'unmount', volume], /--s3-endpoint does not apply to `salvo unmount`/],
    [['init', path.join(root, 'v2'), '--size', '64M', '--s3-endpoint', 'http://127.0.0.1:1'], /--s3-endpoint applies to an s3:\/\/ archive; .* is a directory/],
    [['init', path.join(root, 'v2'), '--size', '64M', '--archive', 's3://b/p', '--no-s3-path-style'], /--no-s3-path-style applies with a custom endpoint/],
  ];
  const env = { ...process.env, AWS_ENDPOINT_URL: '', AWS_ENDPOINT_URL_S3: '' }; // no endpoint from the test's S3 server
  for (const [command, pattern] of cases) {
    const r = await salvo(command, { env });
    t.equal(r.code, 2, `${command.join(' ')}: exit 2`);
    oneLine(t, r.stderr, pattern, `${command.join(' ')}: one line`);
  }
  const out = path.join(root, 'exists.img');
  fs.writeFileSync(out, 'keep');
  for (const dry of [['--dry-run'], []]) {
    const r = await salvo(['restore', archive, out, ...dry]);
    t.equal(r.code, 2, `restore${dry.length ? ' --dry-run' : ''} onto an existing file: refused`);
    oneLine(t, r.stderr, /EXISTS: .*exists\.img already exists — restore never overwrites a file/, 'one line');
    t.equal(fs.readFileSync(out, 'utf8'), 'keep', 'the file is untouched');
  }
});

t.test('errors: S3 mistakes say what they are', async (t) => {
  const location = await s3TestLocation(t, 'errors');
  if (!location) return;
  const root = tempDir(t, 'salvo-errors-');
  const bucketless = location.replace(/^s3:\/\/[^/]+/, 's3://salvo-no-such-bucket');
  let r = await salvo(['list', bucketless]);
  t.equal(r.code, 1, 'list of a bucket that does not exist fails');
  oneLine(t, r.stderr, /ARCHIVE_UNAVAILABLE: .*there is no bucket salvo-no-such-bucket .* — create the bucket first/, 'saying there is no bucket, not that volume.json is missing');
  const env = { ...process.env };
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
  r = await salvo(['init', path.join(root, 'v'), '--size', '64M', '--archive', location], { env: { ...env, AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true' } });
  t.equal(r.code, 1, 'init without credentials fails');
  oneLine(t, r.stderr, /no S3 credentials — set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/, 'saying so, with no hint that writes will wait');
  t.notOk(fs.existsSync(path.join(root, 'v')), 'and leaves nothing');
  r = await salvo(['list', location]);
  t.notMatch(r.stderr, /NodeVersionSupportWarning|AWS SDK/, 'no SDK warning on stderr');
});
