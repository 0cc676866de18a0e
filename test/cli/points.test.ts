/**
 * Naming synch points through the CLI: `--at` takes a label, a snapshot name or a time (the
 * newest point at or before it, in the forms people type); a label names one point and never
 * something `--at` would read otherwise; hooks run as the help says, and a point taken stands
 * even when the post hook fails; `sync --every --json` prints one object a line.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { initVolume, oneLine, syncPoint } from '../helpers/cli.js';

t.test('points: --at, labels, hooks and --every --json through the real mount', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-points-');
  const cleanup = new Cleanup(t);
  const { volume, archive, mnt } = await initVolume(root);
  await cleanup.salvoMount(volume, mnt);

  const a = await syncPoint(mnt, ['--label', 'v1']);
  await new Promise((r) => setTimeout(r, 1100)); // the next point in another second
  const b = await syncPoint(mnt, ['--label', 'release-2.0']);

  for (const [what, args, pattern] of [
    ['a file name', ['--label', 'v1.img'], /label 'v1\.img' is not allowed: --at would read it as a snapshot file name/],
    ['latest', ['--label', 'latest'], /label 'latest' is not allowed: --at would read it as the newest point/],
    ['a time', ['--label', '2026-01-01'], /label '2026-01-01' is not allowed: --at would read it as a time/],
    ['a label taken', ['--label', 'v1'], new RegExp(`label 'v1' already names the synch point ${a.time}`)],
    ['a label with --every', ['--label', 'x', '--every', '1s'], /--label names one point; --every takes many/],
  ] as const) {
    const r = await salvo(['sync', mnt, ...args]);
    t.equal(r.code, 2, `${what}: refused`);
    oneLine(t, r.stderr, pattern, `${what}: one line`);
  }
  t.equal((JSON.parse((await salvo(['list', volume, '--json'])).stdout) as unknown[]).length, 2, 'no point was taken by a refused sync');

  const chosen = async (at: string) => {
    const r = await salvo(['restore', archive, '--at', at, path.join(root, 'x.img'), '--dry-run', '--json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as { time: string }).time : r.stderr.trim();
  };
  const bSecond = b.time.slice(0, 19); // 2026-11-22T01:30:01, without milliseconds
  const cases: [string, string][] = [
    ['latest', b.time],
    ['v1', a.time],
    ['release-2.0', b.time],
    [a.time, a.time],
    [a.file, a.time],
    [`${bSecond}Z`, b.time],
    [bSecond.replace('T', ' '), b.time],
    [`${bSecond}+00:00`, b.time],
    [`${b.time.slice(0, 23)}+00:00`, b.time],
    [String(Date.parse(b.time)), b.time],
    [String(Date.parse(b.time) - 1), a.time],
    [new Date(Date.parse(a.time) + 500).toISOString(), a.time],
    [b.time.slice(0, 10), b.time],
  ];
  for (const [at, time] of cases) t.equal(await chosen(at), time, `--at ${at}`);
  const before = await salvo(['restore', archive, '--at', '2020-01-01', path.join(root, 'x.img')]);
  t.equal(before.code, 2, 'a time before every point: refused');
  oneLine(t, before.stderr, new RegExp(`no synch point at or before 2020-01-01T23:59:59.999Z — the oldest is ${a.time.replace(/\./g, '\\.')}`), 'naming the oldest');

  const marker = path.join(root, 'post-ran');
  const failedPost = await salvo(['sync', mnt, '--label', 'post-fails', '--post', 'exit 5']);
  t.equal(failedPost.code, 1, 'a failing post hook fails the command');
  t.match(failedPost.stdout, /\.img {2}\(post-fails\)/, 'after printing the point it took');
  oneLine(t, failedPost.stderr, /COMMAND_FAILED: the post hook `exit 5` failed \(exit status 5\) — the synch point \S+ was taken; fix the hook/, 'saying the point stands');
  t.ok((JSON.parse((await salvo(['list', volume, '--json'])).stdout) as { label: string }[]).some((p) => p.label === 'post-fails'), 'and it does');
  const failedPre = await salvo(['sync', mnt, '--label', 'pre-fails', '--pre', 'echo quiesce failed >&2; exit 3', '--post', `touch ${marker}`]);
  t.equal(failedPre.code, 1, 'a failing pre hook fails the command');
  oneLine(t, failedPre.stderr, /the pre hook .* failed \(exit status 3\): quiesce failed/, 'with its own words');
  t.ok(fs.existsSync(marker), 'the post hook ran all the same, as the help says');
  t.notOk((JSON.parse((await salvo(['list', volume, '--json'])).stdout) as { label: string }[]).some((p) => p.label === 'pre-fails'), 'and no point was taken');

  const every = await salvo(['sync', mnt, '--every', '300ms', '--json'], { timeoutMs: 1500 });
  const lines = every.stdout.split('\n').filter(Boolean);
  t.ok(lines.length >= 2, `--every printed several points (${lines.length})`);
  for (const line of lines) t.match(JSON.parse(line), { time: String, file: String, label: null, frozen: null }, 'one JSON object a line');
});
