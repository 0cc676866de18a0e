/**
 * No option is accepted and then ignored. The options come from the program itself
 * (buildProgram), and each has a check here that sets it through the real CLI and sees its
 * effect, or its value in --json: an option added without a check fails the first test. The
 * global options work before the command's name and after it, for the commands that take them,
 * and every other command refuses them.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { buildProgram } from '../../lib/cli/main.js';
import { Cleanup, must, run, salvo, systemReady, type Run } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { s3TestLocation } from '../helpers/s3.js';
import { initVolume, oneLine, SMALL_VOLUME, syncPoint } from '../helpers/cli.js';
import { freePort } from '../helpers/prometheus.js';

interface Context {
  root: string;
  key: string;
  /** A mounted volume with ext4 on its live image (mounted at `fs`) and two points, `one` and `two`. */
  base: { volume: string; archive: string; mnt: string; fs: string };
  /** An encrypted archive with one point, `enc`. */
  encrypted: string;
  /** An S3 archive with one point, `s3`, and the server's endpoint (none in the environment of the checks). */
  s3: { location: string; endpoint: string };
}

type Check = (t: Tap.Test, ctx: Context) => Promise<void>;

/** The environment of the CLI in the checks: the S3 server's credentials, but its endpoint only when an option gives it. */
function env(): NodeJS.ProcessEnv {
  return { ...process.env, AWS_ENDPOINT_URL: '', AWS_ENDPOINT_URL_S3: '' };
}

function cli(args: string[], options: { timeoutMs?: number } = {}): Promise<Run> {
  return salvo(args, { env: env(), ...options });
}

async function ok(t: Tap.Test, args: string[], what: string): Promise<string> {
  const r = await cli(args);
  t.equal(r.code, 0, `${what}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function json<T>(t: Tap.Test, args: string[], what: string): Promise<T> {
  const out = await ok(t, [...args, '--json'], what);
  return JSON.parse(out) as T;
}

/** `salvo init` of a fresh volume with `options`, its configuration from --json. */
async function initWith(t: Tap.Test, ctx: Context, options: string[]): Promise<Record<string, unknown> & { dir: string }> {
  const dir = path.join(ctx.root, `v-${randomBytes(3).toString('hex')}`);
  return json(t, ['init', dir, ...options], `init ${options.join(' ')}`);
}

/** Runs a command with a global option given before the command's name and after it: both must give `expected`. */
async function bothPositions(t: Tap.Test, flag: string, value: string, command: string[], expected: (out: string) => void): Promise<void> {
  const [name, ...rest] = command;
  for (const args of [[flag, value, name!, ...rest], [name!, ...rest, flag, value]]) {
    const r = await cli(args);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr.trim()}`);
    expected(r.stdout);
  }
}

const ARCHIVE_COMMANDS = ['list', 'status', 'restore', 'verify', 'forget', 'prune', 'policy'] as const;

/** A command of ARCHIVE_COMMANDS run on `archive`, with what it needs beyond the archive (and changing nothing). */
function archiveArgs(command: (typeof ARCHIVE_COMMANDS)[number], archive: string, root: string, name: string): string[] {
  if (command === 'restore') return ['restore', archive, path.join(root, `${name}.img`), '--dry-run'];
  if (command === 'forget') return ['forget', archive, '--keep-last', '1', '--dry-run'];
  return [command, archive];
}

const KEEP_OPTIONS = ['--keep-within', '36h', '--keep-last', '3', '--keep-hourly', '4', '--keep-daily', '5', '--keep-weekly', '6', '--keep-monthly', '7', '--keep-yearly', '8', '--keep-label', 'one'];
const KEEP_WORDS = 'keep-within 36h, keep-last 3, keep-hourly 4, keep-daily 5, keep-weekly 6, keep-monthly 7, keep-yearly 8, keep-label one';

/** A volume whose archive holds three unlabelled points, each after 6 MiB of writes (8 MiB in 1 MiB segments, the shortest window: 13 segments). */
async function unlabelledPoints(t: Tap.Test, ctx: Context, name: string): Promise<{ volume: string; archive: string }> {
  const volume = path.join(ctx.root, name);
  const archive = `${volume}-archive`;
  const mnt = `${volume}-mnt`;
  await ok(t, ['init', volume, '--size', '8M', '--segment-size', '1M', '--segments', '12', '--archive', archive], 'init');
  await new Cleanup(t).salvoMount(volume, mnt);
  for (let i = 0; i < 3; i++) {
    await must('dd', ['if=/dev/urandom', `of=${path.join(mnt, 'live/volume.img')}`, 'bs=1M', 'count=6', 'conv=notrunc,fsync', 'status=none']);
    await syncPoint(mnt);
  }
  await ok(t, ['unmount', mnt], 'unmount');
  return { volume, archive };
}

const listedCount = async (target: string) => (JSON.parse((await salvo(['list', target, '--json'])).stdout) as unknown[]).length;

const CHECKS: Record<string, Check> = {
  async 'salvo --version'(t) {
    t.match((await cli(['--version'])).stdout, /^\d+\.\d+\.\d+\n$/, 'prints the version');
  },

  /** Also init's, list's, status's, restore's, verify's, forget's, prune's and policy's own --s3-endpoint: the position after the command's name. */
  async 'salvo --s3-endpoint'(t, ctx) {
    const { location, endpoint } = ctx.s3;
    for (const command of ARCHIVE_COMMANDS) {
      const args = archiveArgs(command, location, ctx.root, 's3');
      await bothPositions(t, '--s3-endpoint', endpoint, args, (out) => t.match(out, command === 'verify' ? /^ok: / : /\S/, `${command} reads the archive through the endpoint`));
      const wrong = await cli([...args, '--s3-endpoint', 'http://127.0.0.1:1'], { timeoutMs: 120_000 });
      t.not(wrong.code, 0, `${command}: another endpoint is used, and fails`);
    }
    const init = await initWith(t, ctx, [...SMALL_VOLUME, '--archive', `${location}-init`, '--s3-endpoint', endpoint]);
    t.equal(init.s3Endpoint, endpoint, 'init keeps the endpoint in the volume’s config');
    const before = await cli(['--s3-endpoint', endpoint, 'init', path.join(ctx.root, 'v-s3-before'), ...SMALL_VOLUME, '--archive', `${location}-before`, '--json']);
    t.equal((JSON.parse(before.stdout) as { s3Endpoint: string }).s3Endpoint, endpoint, 'before the command too');
    // mount takes it for an archive given by path (its own check below); these refuse it.
    for (const command of [['unmount', ctx.base.mnt], ['sync', ctx.base.mnt], ['demo']]) {
      const r = await cli(['--s3-endpoint', endpoint, ...command]);
      t.equal(r.code, 2, `salvo --s3-endpoint … ${command[0]}: refused`);
      oneLine(t, r.stderr, new RegExp(`--s3-endpoint does not apply to \`salvo ${command[0]}\``), `${command[0]}: one line`);
      const after = await cli([...command, '--s3-endpoint', endpoint]);
      t.equal(after.code, 2, `salvo ${command[0]} … --s3-endpoint: refused`);
      t.match(after.stderr, /unknown option '--s3-endpoint'/, `${command[0]}: as an unknown option`);
    }
  },

  /** Also list's, status's, restore's, verify's, forget's, prune's and policy's own; init's has its own check. */
  async 'salvo --encrypt-key-file'(t, ctx) {
    for (const command of ARCHIVE_COMMANDS) {
      const args = archiveArgs(command, ctx.encrypted, ctx.root, 'enc');
      await bothPositions(t, '--encrypt-key-file', ctx.key, args, (out) => t.match(out, command === 'status' ? /encrypted \(AES-256-GCM\)/ : /\S/, `${command} reads the encrypted archive with the key`));
      const keyless = await cli(args);
      t.equal(keyless.code, 2, `${command} without the key: refused`);
    }
    for (const command of [['unmount', ctx.base.mnt], ['sync', ctx.base.mnt], ['demo']]) {
      const r = await cli(['--encrypt-key-file', ctx.key, ...command]);
      t.equal(r.code, 2, `salvo --encrypt-key-file … ${command[0]}: refused`);
      oneLine(t, r.stderr, new RegExp(`--encrypt-key-file does not apply to \`salvo ${command[0]}\``), `${command[0]}: one line`);
    }
  },

  async 'init --size'(t, ctx) {
    t.equal((await initWith(t, ctx, ['--size', '32M'])).sizeBytes, 32 * 2 ** 20);
  },
  async 'init --block-size'(t, ctx) {
    t.equal((await initWith(t, ctx, ['--size', '32M', '--block-size', '8192'])).blockSizeBytes, 8192);
  },
  async 'init --segment-size'(t, ctx) {
    t.equal((await initWith(t, ctx, ['--size', '32M', '--segment-size', '2M'])).segmentSizeBytes, 2 * 2 ** 20);
  },
  async 'init --segments'(t, ctx) {
    t.equal((await initWith(t, ctx, ['--size', '32M', '--segment-size', '1M', '--segments', '50'])).workingSetSegments, 50);
  },
  async 'init --spare'(t, ctx) {
    const config = await initWith(t, ctx, [...SMALL_VOLUME, '--spare', '3']);
    t.equal(config.spareSegments, 3);
    t.equal(fs.readdirSync(path.join(config.dir, 'slots')).filter((f) => f.endsWith('.slot')).length, 103, 'and init made that many more slot files');
  },
  async 'init --archive'(t, ctx) {
    const archive = path.join(ctx.root, 'elsewhere', 'archive');
    const config = await initWith(t, ctx, [...SMALL_VOLUME, '--archive', archive]);
    t.equal(config.archive, archive);
    t.equal((JSON.parse(fs.readFileSync(path.join(archive, 'volume.json'), 'utf8')) as { volumeId: string }).volumeId, config.volumeId, 'the archive holds the volume’s descriptor');
  },
  async 'init --rpo'(t, ctx) {
    const config = await initWith(t, ctx, [...SMALL_VOLUME, '--rpo', '30s']);
    t.equal(config.rpoSeconds, 30);
    const mnt = path.join(ctx.root, 'rpo-mnt');
    const cleanup = new Cleanup(t);
    await cleanup.salvoMount(config.dir, mnt);
    t.equal((await json<{ rpoSeconds: number }>(t, ['status', mnt], 'status')).rpoSeconds, 30, 'the mount ships at that pace');
  },
  async 'init --no-s3-path-style'(t, ctx) {
    const endpoint = ctx.s3.endpoint.replace('127.0.0.1', 'localhost'); // an IP address is always reached path-style
    const config = await initWith(t, ctx, [...SMALL_VOLUME, '--archive', `${ctx.s3.location}-path`, '--s3-endpoint', endpoint]);
    t.equal(config.s3PathStyle, undefined, 'path-style by default with an endpoint');
    const r = await cli(['init', path.join(ctx.root, 'v-vhost'), ...SMALL_VOLUME, '--archive', `${ctx.s3.location}-vhost`, '--s3-endpoint', endpoint, '--no-s3-path-style']);
    t.equal(r.code, 1, 'virtual-hosted style asks for the bucket as a host name');
    t.match(r.stderr, /ENOTFOUND [a-z0-9-]+\.localhost/, 'which does not resolve here');
  },
  async 'init --encrypt-key-file'(t, ctx) {
    const config = await initWith(t, ctx, [...SMALL_VOLUME, '--encrypt-key-file', ctx.key]);
    t.match(config, { encryption: { algorithm: 'aes-256-gcm' }, encryptKeyFile: ctx.key });
  },
  async 'init --json'(t, ctx) {
    t.match(await initWith(t, ctx, SMALL_VOLUME), { format: 'salvo-volume', volumeId: /^[0-9a-f]{32}$/ });
  },

  async 'mount --daemon'(t, ctx) {
    t.match(await json(t, ['status', ctx.base.mnt], 'status of the mount'), { mountpoint: ctx.base.mnt }, 'the mount --daemon started answers');
  },
  async 'mount --allow-other'(t, ctx) {
    const { volume } = await initVolume(ctx.root, 'allow');
    const cleanup = new Cleanup(t);
    const look = (mnt: string) => run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'ls', path.join(mnt, 'snapshots')]);
    const mnt = path.join(ctx.root, 'allow-mnt');
    await cleanup.salvoMount(volume, mnt);
    t.not((await look(mnt)).code, 0, 'without it, another user cannot look in');
    t.equal((await cli(['unmount', mnt])).code, 0);
    await cleanup.salvoMount(volume, mnt, ['--allow-other']);
    t.equal((await look(mnt)).code, 0, 'with it, another user can');
  },
  async 'mount --cache'(t, ctx) {
    const { volume } = await initVolume(ctx.root, 'cache');
    const cleanup = new Cleanup(t);
    const mnt = path.join(ctx.root, 'cache-mnt');
    await cleanup.salvoMount(volume, mnt, ['--cache', '64M']);
    t.equal((await json<{ cacheBytesMax: number }>(t, ['status', mnt], 'status')).cacheBytesMax, 64 * 2 ** 20, 'the cache is bounded at 64 MiB');
  },
  async 'mount --rpo'(t, ctx) {
    const { volume, archive } = await initVolume(ctx.root, 'rpo2');
    const cleanup = new Cleanup(t);
    const mnt = path.join(ctx.root, 'rpo2-mnt');
    await cleanup.salvoMount(volume, mnt, ['--rpo', '1s']);
    t.equal((await json<{ rpoSeconds: number }>(t, ['status', mnt], 'status')).rpoSeconds, 1);
    await must('dd', ['if=/dev/urandom', `of=${path.join(mnt, 'live/volume.img')}`, 'bs=64K', 'count=1', 'conv=notrunc,fsync', 'status=none']);
    const tails = () => (fs.existsSync(path.join(archive, 'tails')) ? fs.readdirSync(path.join(archive, 'tails')).length : 0);
    for (let waited = 0; tails() === 0 && waited < 10_000; waited += 200) await new Promise((r) => setTimeout(r, 200));
    t.ok(tails() > 0, 'a write reaches the archive within seconds, with no synch point');
  },
  async 'mount --cpu'(t, ctx) {
    const { volume } = await initVolume(ctx.root, 'cpu');
    const cleanup = new Cleanup(t);
    const mnt = path.join(ctx.root, 'cpu-mnt');
    await cleanup.salvoMount(volume, mnt, ['--cpu', '0']);
    t.equal((await json<{ cpu: number }>(t, ['status', mnt], 'status')).cpu, 0, 'serving on CPU 0');
  },
  async 'mount --metrics'(t, ctx) {
    const { volume } = await initVolume(ctx.root, 'metrics');
    const cleanup = new Cleanup(t);
    const mnt = path.join(ctx.root, 'metrics-mnt');
    const port = await freePort();
    await cleanup.salvoMount(volume, mnt, ['--metrics', `127.0.0.1:${port}`]);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    t.match(text, new RegExp(`^salvo_written_bytes_total\\{volume="${volume}"\\} 0$`, 'm'), 'Prometheus metrics are served there');
  },

  /** And the global option before the command's name. */
  async 'mount --s3-endpoint'(t, ctx) {
    const { location, endpoint } = ctx.s3;
    const cleanup = new Cleanup(t);
    const mnt = path.join(ctx.root, 's3-archive-mnt');
    fs.mkdirSync(mnt);
    const refused = await cli(['mount', location, mnt, '--daemon', '--s3-endpoint', 'http://127.0.0.1:1'], { timeoutMs: 120_000 });
    t.not(refused.code, 0, 'another endpoint is used, and fails');
    cleanup.add(() => cli(['unmount', mnt]));
    for (const args of [['--s3-endpoint', endpoint, 'mount', location, mnt, '--daemon'], ['mount', location, mnt, '--daemon', '--s3-endpoint', endpoint]]) {
      t.equal((await cli(args)).code, 0, `${args.join(' ')}`);
      t.ok(fs.readdirSync(path.join(mnt, 'snapshots/by-label')).includes('s3.img'), 'the S3 archive is served through the endpoint');
      t.equal((await cli(['unmount', mnt])).code, 0);
    }
  },
  /** And the global option before the command's name. */
  async 'mount --encrypt-key-file'(t, ctx) {
    const cleanup = new Cleanup(t);
    const mnt = path.join(ctx.root, 'enc-archive-mnt');
    fs.mkdirSync(mnt);
    cleanup.add(() => cli(['unmount', mnt]));
    const keyless = await cli(['mount', ctx.encrypted, mnt, '--daemon']);
    t.equal(keyless.code, 2, 'without the key: refused');
    for (const args of [['--encrypt-key-file', ctx.key, 'mount', ctx.encrypted, mnt, '--daemon'], ['mount', ctx.encrypted, mnt, '--daemon', '--encrypt-key-file', ctx.key]]) {
      t.equal((await cli(args)).code, 0, `${args.join(' ')}`);
      t.ok(fs.readdirSync(path.join(mnt, 'snapshots/by-label')).includes('enc.img'), 'the encrypted archive is served with the key');
      t.equal((await cli(['unmount', mnt])).code, 0);
    }
  },
  async 'unmount --timeout'(t, ctx) {
    const { volume, archive } = await initVolume(ctx.root, 'timeout');
    const cleanup = new Cleanup(t);
    const mnt = path.join(ctx.root, 'timeout-mnt');
    await cleanup.salvoMount(volume, mnt);
    const bad = await cli(['unmount', mnt, '--timeout', 'soon']);
    t.equal(bad.code, 2, 'a bad duration is refused');
    oneLine(t, bad.stderr, /--timeout 'soon' is not a duration/, 'in one line');
    // The archive's disk goes away: what the next point adds cannot ship, and the wait for it is what --timeout bounds.
    fs.renameSync(archive, `${archive}.away`);
    cleanup.add(async () => fs.renameSync(`${archive}.away`, archive));
    await must('dd', ['if=/dev/urandom', `of=${path.join(mnt, 'live/volume.img')}`, 'bs=1M', 'count=4', 'conv=notrunc,fsync', 'status=none']);
    await syncPoint(mnt, ['--label', 'last']);
    const started = Date.now();
    const r = await cli(['unmount', mnt, '--timeout', '1s'], { timeoutMs: 60_000 });
    t.equal(r.code, 1, 'not everything is off-site');
    t.match(r.stderr, /the archive did not take everything within 1 s\): synch point .* \(last\) is on primary storage only/, 'the time ran out, and it says what is left');
    t.ok(Date.now() - started < 4500, `before the 5 s a failing archive is given (${Date.now() - started} ms)`);
  },

  async 'sync --label'(t, ctx) {
    const point = await syncPoint(ctx.base.mnt, ['--label', 'labelled']);
    t.equal(point.label, 'labelled');
    t.equal(fs.readlinkSync(path.join(ctx.base.mnt, 'snapshots/by-label/labelled.img')), `../${point.file}`, 'it names the point under by-label/');
  },
  async 'sync --freeze'(t, ctx) {
    const point = await syncPoint(ctx.base.mnt, ['--freeze', ctx.base.fs]);
    const listed = (await json<{ time: string; info: Record<string, string> }[]>(t, ['list', ctx.base.volume], 'list')).find((p) => p.time === point.time);
    t.equal(listed?.info.frozen, ctx.base.fs, 'the point records the filesystem frozen for it');
    t.equal((await run('touch', [path.join(ctx.base.fs, 'after-thaw')], { timeoutMs: 10_000 })).code, 0, 'and it was thawed');
  },
  /** And --post. */
  async 'sync --pre'(t, ctx) {
    const trace = path.join(ctx.root, 'hooks');
    await syncPoint(ctx.base.mnt, ['--pre', `echo pre >> ${trace}`, '--post', `echo post >> ${trace}`]);
    t.equal(fs.readFileSync(trace, 'utf8'), 'pre\npost\n', 'pre runs before the point, post after');
  },
  async 'sync --every'(t, ctx) {
    const r = await cli(['sync', ctx.base.mnt, '--every', '200ms', '--json'], { timeoutMs: 1500 });
    t.ok(r.stdout.split('\n').filter(Boolean).length >= 3, 'several points in 1.5 s');
  },
  async 'sync --json'(t, ctx) {
    t.match(await syncPoint(ctx.base.mnt), { time: String, file: /\.img$/ });
  },

  async 'list --json'(t, ctx) {
    const points = await json<{ label: string | null }[]>(t, ['list', ctx.base.volume], 'list');
    t.same(points.slice(0, 2).map((p) => p.label), ['one', 'two']);
  },
  async 'status --json'(t, ctx) {
    t.match(await json(t, ['status', ctx.base.volume], 'status of the volume directory'), { volume: ctx.base.volume, mountpoint: ctx.base.mnt });
  },
  async 'restore --at'(t, ctx) {
    const one = await json<{ time: string; label: string }>(t, ['restore', ctx.base.archive, path.join(ctx.root, 'at.img'), '--at', 'one', '--dry-run'], 'restore --at one');
    t.equal(one.label, 'one', 'the point named');
  },
  async 'restore --dry-run'(t, ctx) {
    const out = path.join(ctx.root, 'dry.img');
    t.match(await ok(t, ['restore', ctx.base.archive, out, '--dry-run'], 'restore --dry-run'), /^would restore /);
    t.notOk(fs.existsSync(out), 'and writes nothing');
  },
  async 'restore --json'(t, ctx) {
    const out = path.join(ctx.root, 'json.img');
    t.match(await json(t, ['restore', ctx.base.archive, out, '--at', 'two'], 'restore'), { label: 'two', out, bytesWritten: Number });
    t.equal(fs.statSync(out).size, 64 * 2 ** 20, 'the image is written');
  },
  async 'verify --fsck'(t, ctx) {
    const r = await cli(['verify', '--fsck', ctx.base.mnt]);
    const lines = r.stdout.split('\n').filter((l) => /\.img/.test(l));
    t.ok(lines.length >= 2 && lines.every((l) => /^(clean|FAILED) +\S+\.img +ext4$/.test(l)), `each point is checked by e2fsck:\n${r.stdout}`);
    t.match(lines.slice(0, 2), [/^clean /, /^clean /], 'the two taken with --freeze are clean');
  },
  async 'verify --last'(t, ctx) {
    const report = await json<{ checked: number }>(t, ['verify', '--fsck', ctx.base.mnt, '--last', '1'], 'verify --fsck --last 1');
    t.equal(report.checked, 1, 'only the newest point');
  },
  async 'verify --json'(t, ctx) {
    t.match(await json(t, ['verify', ctx.base.archive], 'verify'), { ok: true, synchPoints: Number });
  },
  /** Also init's other --keep-* options: all are saved as the volume's policy. */
  async 'init --keep-within'(t, ctx) {
    const config = await initWith(t, ctx, [...SMALL_VOLUME, ...KEEP_OPTIONS]);
    t.equal((await ok(t, ['policy', config.dir], 'policy')).trim(), `policy: ${KEEP_WORDS}`, 'init saved every rule');
  },
  /** Also policy's other --keep-* options. */
  async 'policy --keep-within'(t, ctx) {
    const config = await initWith(t, ctx, SMALL_VOLUME);
    t.match(await ok(t, ['policy', config.dir, ...KEEP_OPTIONS], 'policy --keep-*'), `saved policy: ${KEEP_WORDS}`);
    t.equal((await ok(t, ['policy', `${config.dir}-archive`], 'policy of the archive')).trim(), `policy: ${KEEP_WORDS}`, 'the archive holds it');
  },
  async 'policy --keep-everything'(t, ctx) {
    const config = await initWith(t, ctx, [...SMALL_VOLUME, '--keep-last', '2']);
    await ok(t, ['policy', config.dir, '--keep-everything'], 'policy --keep-everything');
    t.equal((await ok(t, ['policy', config.dir], 'policy')).trim(), 'policy: keep everything');
  },
  /** Also forget's other --keep-* options, --dry-run and --json: every rule is a reason, and nothing changes. */
  async 'forget --keep-within'(t, ctx) {
    const decisions = async (archive: string) =>
      (await ok(t, ['forget', archive, ...KEEP_OPTIONS, '--dry-run', '--json'], 'forget --dry-run --json'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { label: string | null; keep: boolean; reason: string });
    const { archive } = await unlabelledPoints(t, ctx, 'rules');
    t.match((await decisions(archive)).at(-1), { keep: true, reason: /^newest, within 36h, last 1\/3, hourly \S+, daily \S+, weekly \S+, monthly \S+, yearly \S+$/ }, 'each rule gives its reason');
    t.equal(await listedCount(archive), 3, 'a dry run forgets nothing');
    t.match((await decisions(ctx.base.archive)).find((d) => d.label === 'one'), { keep: true, reason: /^keep-label one/ }, '--keep-label names the rule');
  },
  async 'forget --undo'(t, ctx) {
    const { volume, archive } = await unlabelledPoints(t, ctx, 'undo');
    await ok(t, ['forget', volume, '--keep-last', '1'], 'forget --keep-last 1');
    t.equal(await listedCount(archive), 1, 'two points forgotten');
    t.match(await ok(t, ['forget', volume, '--undo'], 'forget --undo'), /brought back 2 forgotten points/);
    t.equal(await listedCount(archive), 3, 'and back');
  },
  /** Also forget --grace: 0 deletes at once. */
  async 'forget --prune'(t, ctx) {
    const { volume, archive } = await unlabelledPoints(t, ctx, 'prune');
    const out = await ok(t, ['forget', volume, '--keep-last', '1', '--prune', '--grace', '0'], 'forget --prune --grace 0');
    t.match(out, /pruned \d+ segments(, compacted \d+ \(.*\))?, freed /, 'forget --prune prunes');
    t.notMatch(out, /waiting/, 'without waiting');
    t.equal(await listedCount(archive), 1);
  },
  /** Also prune --json. */
  async 'prune --grace'(t, ctx) {
    const { volume, archive } = await unlabelledPoints(t, ctx, 'grace');
    await ok(t, ['forget', archive, '--keep-last', '1'], 'forget on the archive');
    const started = Date.now();
    const out = await ok(t, ['prune', volume, '--grace', '2s', '--json'], 'prune --grace 2s --json');
    t.ok(Date.now() - started >= 2000, 'prune waited the grace');
    t.match(JSON.parse(out), { prunedSegments: Number, compactedSegments: Number, freedBytes: Number }, 'and printed what it freed as JSON');
  },
  async 'demo --keep'(t) {
    const out = await ok(t, ['demo', '--keep'], 'demo --keep');
    const kept = /^kept (\/\S+)$/m.exec(out)?.[1];
    t.ok(kept && fs.existsSync(path.join(kept, 'volume/volume.json')) && fs.existsSync(path.join(kept, 'archive/volume.json')), 'the volume and archive are kept');
    if (kept) fs.rmSync(kept, { recursive: true, force: true });
  },
  async 'install-units --root'(t) {
    const root = tempDir(t, 'salvo-units-');
    await ok(t, ['install-units', '--root', root], 'install-units --root');
    t.ok(fs.existsSync(path.join(root, 'etc/systemd/system/salvo-mount@.service')), 'the units are written under --root');
  },
  async 'install-units --dry-run'(t) {
    const root = tempDir(t, 'salvo-units-');
    t.match(await ok(t, ['install-units', '--root', root, '--dry-run'], 'install-units --dry-run'), /would write /);
    t.same(fs.readdirSync(root), [], 'nothing written');
  },
};

/** Options whose effect another check sees: the same option in another place, or a pair seen together. */
const COVERED_BY: Record<string, string> = {
  'init --s3-endpoint': 'salvo --s3-endpoint',
  'list --s3-endpoint': 'salvo --s3-endpoint',
  'status --s3-endpoint': 'salvo --s3-endpoint',
  'restore --s3-endpoint': 'salvo --s3-endpoint',
  'verify --s3-endpoint': 'salvo --s3-endpoint',
  'list --encrypt-key-file': 'salvo --encrypt-key-file',
  'status --encrypt-key-file': 'salvo --encrypt-key-file',
  'restore --encrypt-key-file': 'salvo --encrypt-key-file',
  'verify --encrypt-key-file': 'salvo --encrypt-key-file',
  'sync --post': 'sync --pre',
  ...Object.fromEntries(
    ['init', 'policy', 'forget'].flatMap((command) =>
      ['--keep-last', '--keep-hourly', '--keep-daily', '--keep-weekly', '--keep-monthly', '--keep-yearly', '--keep-label'].map((o) => [`${command} ${o}`, `${command} --keep-within`]),
    ),
  ),
  'forget --dry-run': 'forget --keep-within',
  'forget --json': 'forget --keep-within',
  'forget --grace': 'forget --prune',
  'prune --json': 'prune --grace',
  'forget --s3-endpoint': 'salvo --s3-endpoint',
  'prune --s3-endpoint': 'salvo --s3-endpoint',
  'policy --s3-endpoint': 'salvo --s3-endpoint',
  'forget --encrypt-key-file': 'salvo --encrypt-key-file',
  'prune --encrypt-key-file': 'salvo --encrypt-key-file',
  'policy --encrypt-key-file': 'salvo --encrypt-key-file',
};

/** Every option the program declares, as `<command> --flag` (`salvo --flag` for the program's own). */
function declaredOptions(): string[] {
  const program = buildProgram();
  return [
    ...program.options.map((o) => `salvo ${o.long}`),
    ...program.commands.flatMap((c) => c.options.map((o) => `${c.name()} ${o.long}`)),
  ].sort();
}

t.test('options: every option the commands declare has a check here', async (t) => {
  t.same([...Object.keys(CHECKS), ...Object.keys(COVERED_BY)].sort(), declaredOptions(), 'no option without a check, no check without an option');
  for (const [option, by] of Object.entries(COVERED_BY)) t.ok(CHECKS[by], `${option} is covered by the check of ${by}`);
});

t.test('options: each one set through the CLI has its effect', async (t) => {
  if (!systemReady(t)) return;
  const location = await s3TestLocation(t, 'options');
  if (!location) return;
  const root = tempDir(t, 'salvo-options-');
  const cleanup = new Cleanup(t);
  const key = path.join(root, 'key');
  fs.writeFileSync(key, randomBytes(32), { mode: 0o600 });
  const base = await initVolume(root, 'base');
  await cleanup.salvoMount(base.volume, base.mnt);
  const device = await cleanup.loop(path.join(base.mnt, 'live/volume.img'));
  await must('mkfs.ext4', ['-q', device]);
  const fsMount = await cleanup.mount(device, path.join(root, 'fs'));
  await syncPoint(base.mnt, ['--label', 'one', '--freeze', fsMount]);
  fs.writeFileSync(path.join(fsMount, 'file'), 'two');
  await syncPoint(base.mnt, ['--label', 'two', '--freeze', fsMount]);

  const enc = await initVolume(root, 'enc', ['--encrypt-key-file', key]);
  await cleanup.salvoMount(enc.volume, enc.mnt);
  await syncPoint(enc.mnt, ['--label', 'enc']);
  t.equal((await salvo(['unmount', enc.mnt])).code, 0);

  const endpoint = process.env.AWS_ENDPOINT_URL!;
  const s3Volume = path.join(root, 's3');
  t.equal((await salvo(['init', s3Volume, ...SMALL_VOLUME, '--archive', location, '--s3-endpoint', endpoint])).code, 0, 'init of the S3 volume');
  const s3Mnt = path.join(root, 's3-mnt');
  await cleanup.salvoMount(s3Volume, s3Mnt);
  await syncPoint(s3Mnt, ['--label', 's3']);
  t.equal((await salvo(['unmount', s3Mnt])).code, 0);

  const ctx: Context = { root, key, base: { ...base, fs: fsMount }, encrypted: enc.archive, s3: { location, endpoint } };
  for (const [name, check] of Object.entries(CHECKS)) await t.test(name, (t) => check(t, ctx));
});
