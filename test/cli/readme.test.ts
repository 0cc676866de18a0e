/**
 * The README is tested: every command its console blocks show runs here through the real CLI
 * (`salvo` on the PATH is this build), in a scratch root where the README's paths (/var/lib/salvo,
 * /mnt, /backup, /srv, /root) lie, with a directory archive and with radosgw for the S3 block,
 * and what the README shows each command print is what it prints. Times and loop devices the
 * README shows stand for the ones the run gets, bound at their first appearance; `…` stands for
 * anything (a whole line: any lines). `salvo demo`'s transcript in the README is checked against
 * a run of the demo the same way, and the test command against `.ci/run`.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { CLI, ROOT, run, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { s3TestLocation } from '../helpers/s3.js';

const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The README's fenced blocks of one language, in order. */
function blocks(language: string): string[][] {
  return [...README.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!.replace(/\n$/, '').split('\n'));
}

/** Values the README shows that stand for what the run gets: times of points, loop devices, the demo's directory. */
const TOKENS = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z|\/dev\/loop\d+|\/tmp\/salvo-demo-[A-Za-z0-9]{6}|…/g;
const TOKEN_PATTERN = (token: string) =>
  token === '…' ? '.*?' : token.startsWith('/dev/loop') ? '/dev/loop\\d+' : token.startsWith('/tmp/') ? '/tmp/salvo-demo-[A-Za-z0-9]{6}' : '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';

class Bindings {
  readonly values = new Map<string, string>();

  /** `text` with every bound README value replaced by the run's. */
  apply(text: string): string {
    return text.replace(TOKENS, (token) => this.values.get(token) ?? token);
  }

  /** Matches one README line against one line of output, binding what it stands for; false if they differ. */
  matchLine(readme: string, actual: string): boolean {
    const tokens: string[] = [];
    let pattern = '';
    let last = 0;
    for (const m of readme.matchAll(TOKENS)) {
      pattern += escape(readme.slice(last, m.index)) + (this.values.has(m[0]) ? escape(this.values.get(m[0])!) : `(${TOKEN_PATTERN(m[0])})`);
      if (!this.values.has(m[0])) tokens.push(m[0]);
      last = m.index! + m[0].length;
    }
    pattern += escape(readme.slice(last));
    const found = new RegExp(`^${pattern.trimEnd()}$`).exec(actual.trimEnd());
    if (!found) return false;
    tokens.forEach((token, i) => token !== '…' && this.values.set(token, found[i + 1]!));
    return true;
  }

  /** Whether `actual` (lines) is `readme` (lines), a line `…` standing for any lines. */
  matchLines(readme: string[], actual: string[]): boolean {
    if (readme.length === 0) return actual.length === 0;
    const [first, ...rest] = readme;
    if (first!.trim() === '…') return actual.some((_, i) => this.matchLines(rest, actual.slice(i))) || this.matchLines(rest, []);
    const saved = new Map(this.values);
    if (actual.length > 0 && this.matchLine(first!, actual[0]!) && this.matchLines(rest, actual.slice(1))) return true;
    this.values.clear();
    for (const [k, v] of saved) this.values.set(k, v);
    return false;
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A README session: each `# command` with the lines it prints. */
function commands(lines: string[]): { command: string; output: string[] }[] {
  const steps: { command: string; output: string[] }[] = [];
  for (const line of lines) {
    if (line.startsWith('# ')) steps.push({ command: line.slice(2).replace(/\s{2,}#\s.*$/, '').trim(), output: [] });
    else steps[steps.length - 1]!.output.push(line);
  }
  return steps;
}

/** Mounts and loop devices left under `root` when a step failed: released, deepest first. */
async function release(root: string): Promise<void> {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[1]?.startsWith(root));
  for (const [, mountpoint, type] of mounts.reverse()) {
    if (type === 'fuse.salvo') await salvo(['unmount', mountpoint!]);
    if ((await run('umount', [mountpoint!])).code !== 0) await run('umount', ['-l', mountpoint!]);
  }
  const loops = (await run('losetup', ['-a'])).stdout.split('\n').filter((l) => l.includes(root));
  for (const line of loops) await run('losetup', ['-d', line.split(':')[0]!]);
  for (const [, mountpoint, type] of mounts) if (type === 'fuse.salvo' && fs.readFileSync('/proc/self/mounts', 'utf8').includes(mountpoint!)) await run('fusermount', ['-u', '-z', mountpoint!]);
}

/**
 * Runs a README session in `root`: its absolute paths moved under `root`, `extra` replacing
 * what the README shows for a place of its own (the S3 endpoint, say), `salvo` this build.
 */
async function runSession(t: Tap.Test, lines: string[], root: string, extra: [string, string][] = []): Promise<void> {
  const bin = path.join(root, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'salvo'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
  fs.mkdirSync(path.join(root, 'root'));
  t.teardown(() => release(root));
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, AWS_ENDPOINT_URL: '', AWS_ENDPOINT_URL_S3: '' };
  const bindings = new Bindings();
  const place = (text: string) => {
    let placed = bindings.apply(text).replace(/(^|[\s'"=:(])\/(var\/lib\/salvo|mnt|backup|srv|root)(?=[/\s]|$)/g, `$1${root}/$2`);
    for (const [from, to] of extra) placed = placed.split(from).join(to);
    return placed;
  };
  for (const { command, output } of commands(lines)) {
    if (command.startsWith('export AWS_ACCESS_KEY_ID=')) {
      t.ok(process.env.AWS_ACCESS_KEY_ID && process.env.AWS_SECRET_ACCESS_KEY, `${command}: the test's environment holds the server's credentials`);
      continue;
    }
    const r = await run('bash', ['-c', `cd ${root}/root && ${place(command)}`], { env });
    t.equal(r.code, 0, `# ${command}${r.code ? `\n${r.stderr}` : ''}`);
    if (r.code !== 0) return;
    const actual = r.stdout.replace(/\n$/, '').split('\n').filter((l, i, all) => all.length > 1 || l !== '');
    const shown = output.map(place);
    t.ok(bindings.matchLines(shown, actual), `# ${command}: prints what the README shows`, { found: actual, wanted: shown });
  }
}

t.test('readme: the two commands of "Set up and run", and .ci/run', async (t) => {
  const [setup] = blocks('sh');
  t.match(setup![0], /^bash scripts\/setup && salvo demo\s/, 'the first installs and runs the demo');
  t.match(setup![1], /^bash scripts\/setup && npm test\s/, 'the second runs the tests');
  t.match(fs.readFileSync(path.join(ROOT, '.ci/run'), 'utf8'), /\nbash scripts\/setup && npm test\n$/, '.ci/run runs the README’s test command');
});

t.test('readme: the session, as written', async (t) => {
  if (!systemReady(t)) return;
  const session = blocks('console').find((b) => b[0]!.startsWith('# salvo init /var/lib/salvo/db'));
  t.ok(session, 'the README has its session');
  await runSession(t, session!, tempDir(t, 'salvo-readme-'));
});

t.test('readme: archives on S3, encrypted, as written', async (t) => {
  if (!systemReady(t)) return;
  const location = await s3TestLocation(t, 'readme');
  if (!location) return;
  const s3 = blocks('console').find((b) => b[0]!.startsWith('# export AWS_ACCESS_KEY_ID'));
  t.ok(s3, 'the README has its S3 block');
  await runSession(t, s3!, tempDir(t, 'salvo-readme-'), [
    ['s3://backups/web', location],
    ['http://10.0.0.5:7480', process.env.AWS_ENDPOINT_URL!],
  ]);
});

t.test('readme: salvo demo prints what the README shows', async (t) => {
  if (!systemReady(t)) return;
  const transcript = blocks('console').find((b) => b[0]!.startsWith('$ salvo init /tmp/salvo-demo-'));
  t.ok(transcript, 'the README has the demo’s transcript');
  const r = await salvo(['demo']);
  t.equal(r.code, 0, `salvo demo: ${r.stderr}`);
  const actual = r.stdout.replace(/\n$/, '').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('# '));
  const bindings = new Bindings();
  t.ok(bindings.matchLines(transcript!.filter((l) => l.trim() !== ''), actual), 'the transcript is the demo’s output, cut where … stands', { found: actual, wanted: transcript });
  const dir = bindings.values.get('/tmp/salvo-demo-JK3Bsw');
  t.ok(dir && !fs.existsSync(dir), 'and the demo removed its directory');
});
