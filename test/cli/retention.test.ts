/**
 * Retention through the commands users type, on the real mount: `init --keep-*` saves a policy;
 * `forget --dry-run --json` says keep or drop and why for every point; `forget` hides the
 * dropped points from `list` and from the mount's /snapshots at once; `forget --undo` brings
 * them back; `forget --prune` deletes the segments only they needed, after which the kept points
 * restore byte for byte and verify passes; `policy` shows and changes the saved policy; bad
 * input gets one line.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, must, salvo, sha256, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { oneLine, syncPoint } from '../helpers/cli.js';

/** 8 MiB in 1 MiB segments with the shortest working set it allows: a window is 13 segments, so a short history has some to prune. */
const TINY_VOLUME = ['--size', '8M', '--segment-size', '1M', '--segments', '12'];

interface Decision {
  time: string;
  label: string | null;
  keep: boolean;
  reason: string;
}

const jsonLines = <T>(text: string): T[] => text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as T);
const listed = async (target: string) => (JSON.parse((await salvo(['list', target, '--json'])).stdout) as { time: string }[]).map((p) => p.time);
const objects = (archive: string, dir: string) => (fs.existsSync(path.join(archive, dir)) ? fs.readdirSync(path.join(archive, dir)).length : 0);

t.test('retention: forget, undo, prune and policy through the CLI and the real mount', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-retention-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const archive = path.join(root, 'archive');
  const mnt = path.join(root, 'mnt');
  const init = await salvo(['init', volume, ...TINY_VOLUME, '--archive', archive, '--keep-last', '2']);
  t.equal(init.code, 0, `init with a policy ${init.stderr}`);
  t.match(init.stdout, /retention +keep-last 2/, 'init says the policy');
  t.match((await salvo(['policy', archive])).stdout, /policy: keep-last 2/, 'the archive holds the policy');
  await cleanup.salvoMount(volume, mnt);

  // 8 points, 3 MiB of writes before each: the log runs past several windows.
  const image = path.join(mnt, 'live/volume.img');
  const points: { time: string; label: string | null }[] = [];
  for (let i = 0; i < 8; i++) {
    await must('dd', ['if=/dev/urandom', `of=${image}`, 'bs=1M', 'count=3', `seek=${(i * 3) % 6}`, 'conv=notrunc,fsync', 'status=none']);
    points.push(await syncPoint(mnt, i === 2 ? ['--label', 'pinned'] : []));
  }
  await must('cp', [path.join(mnt, 'snapshots', `${points[7]!.time}.img`), path.join(root, 'newest.img')]);
  await must('cp', [path.join(mnt, 'snapshots/by-label/pinned.img'), path.join(root, 'pinned.img')]);
  t.same(await listed(volume), points.map((p) => p.time), 'list shows the 8 points');

  const dry = await salvo(['forget', volume, '--dry-run', '--json']);
  t.equal(dry.code, 0, `forget --dry-run ${dry.stderr}`);
  const decisions = jsonLines<Decision>(dry.stdout);
  t.same(decisions.map((d) => [d.time, d.keep]), points.map((p, i) => [p.time, i === 2 || i >= 6]), 'the saved policy keeps the last 2 and the labelled point');
  t.same([decisions[7]!.reason, decisions[6]!.reason, decisions[2]!.reason, decisions[0]!.reason], ['newest, last 1/2', 'last 2/2', 'labelled pinned', 'no rule keeps it'], 'with the rule that decided each');
  t.same(await listed(volume), points.map((p) => p.time), 'a dry run changes nothing');
  const human = await salvo(['forget', volume, '--dry-run']);
  t.match(human.stdout, /3 kept, would forget 5; a prune would then delete \d+ segments \(.*\) and compact/, 'the table ends with what a prune would delete');

  t.equal((await salvo(['forget', volume])).code, 0, 'forget by the saved policy');
  const kept = [points[2]!.time, points[6]!.time, points[7]!.time];
  t.same(await listed(volume), kept, 'list shows only the points not forgotten');
  t.same(await listed(archive), kept, 'and so does list of the archive');
  const shown = fs.readdirSync(path.join(mnt, 'snapshots')).filter((n) => n.endsWith('.img') && n !== 'latest.img');
  t.same(shown.sort(), kept.map((time) => `${time}.img`), 'the mount hides the forgotten points from /snapshots at once');

  const undo = await salvo(['forget', volume, '--undo']);
  t.match(undo.stdout, /brought back 5 forgotten points/, `undo ${undo.stderr}`);
  t.same(await listed(volume), points.map((p) => p.time), 'every point is back');
  t.equal(fs.readdirSync(path.join(mnt, 'snapshots')).filter((n) => n.endsWith('Z.img')).length, 8, 'in /snapshots too');

  const segmentsBefore = objects(archive, 'segments');
  const pruned = await salvo(['forget', volume, '--keep-last', '1', '--prune', '--grace', '0']);
  t.equal(pruned.code, 0, `forget --keep-last 1 --prune ${pruned.stderr}`);
  t.match(pruned.stdout, /pruned \d+ segments(, compacted \d+ \(.* → .*\))?, freed /, 'prune says what it freed');
  t.ok(objects(archive, 'segments') < segmentsBefore, `segment objects deleted: ${segmentsBefore} → ${objects(archive, 'segments')}`);
  t.same(await listed(archive), [points[2]!.time, points[7]!.time], 'the archive lists the newest and the labelled point');
  t.same(await listed(volume), [points[2]!.time, points[7]!.time], 'and so does the volume');

  for (const [at, file] of [['latest', 'newest.img'], ['pinned', 'pinned.img']] as const) {
    const out = path.join(root, `restored-${at}.img`);
    const r = await salvo(['restore', archive, '--at', at, out]);
    t.equal(r.code, 0, `restore ${at} from the pruned archive ${r.stderr}`);
    t.equal(sha256(out), sha256(path.join(root, file)), `${at}: the restored image is the point as it was`);
  }
  t.equal(sha256(path.join(mnt, 'snapshots/by-label/pinned.img')), sha256(path.join(root, 'pinned.img')), 'the mount reads the pinned point as it was');
  const verify = await salvo(['verify', archive]);
  t.equal(verify.code, 0, `verify of the pruned archive passes ${verify.stdout}${verify.stderr}`);
  t.equal((await salvo(['prune', archive, '--grace', '0'])).stdout.trim(), 'nothing to prune: every archived segment is needed by a point that shows, and none is mostly dead', 'a second prune finds nothing');

  t.match((await salvo(['policy', volume, '--keep-daily', '7', '--keep-within', '36h'])).stdout, /saved policy: keep-within 36h, keep-daily 7/, 'policy saves a new one');
  t.match((await salvo(['policy', archive])).stdout, /policy: keep-within 36h, keep-daily 7/, 'which the archive holds');
  const status = JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { retention: { policy: string; record: number } };
  t.equal(status.retention.policy, 'keep-within 36h, keep-daily 7', 'and the mount applies it (status)');
  t.match((await salvo(['status', mnt])).stdout, /\nretention +keep-within 36h, keep-daily 7; \d+ points forgotten/, 'status says so');

  for (const [args, pattern, code] of [
    [['forget', volume, '--undo', '--keep-last', '1'], /--undo brings forgotten points back; it takes no --keep-\*, --dry-run or --prune/, 2],
    [['forget', volume, '--keep-within', '3 weeks'], /BAD_POLICY: keep-within '3 weeks' is not a positive duration/, 2],
    [['forget', volume, '--keep-daily', 'x'], /--keep-daily 'x' is not a whole number of at least 1/, 2],
    [['policy', volume, '--keep-everything', '--keep-last', '1'], /--keep-everything saves no policy/, 2],
    [['prune', path.join(root, 'nowhere')], /does not exist/, 2],
  ] as const) {
    const r = await salvo([...args]);
    t.equal(r.code, code, `${args.join(' ')}: exit ${code}`);
    oneLine(t, r.stderr, pattern, args.join(' '));
  }
  t.equal((await salvo(['policy', volume, '--keep-everything'])).code, 0, 'policy --keep-everything');
  const none = await salvo(['forget', volume]);
  t.equal(none.code, 2, 'forget without a policy given or saved is refused');
  oneLine(t, none.stderr, /no policy given, and .* has none saved — give --keep-\* options/, 'forget without a policy');
});
