/**
 * What status and list say of an unmounted volume is what its archive shows: after a clean
 * unmount nothing waits and the newest point is the recovery point; a point listed on primary
 * restores with the archive out of reach, and one listed in the archive does not.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Cleanup, must, salvo, sha256, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { initVolume, syncPoint } from '../helpers/cli.js';

interface Status {
  archive: { pendingItems: number; bytesWaiting: number; recoveryPoint: string | null };
}

async function statusOf(target: string): Promise<Status> {
  const r = await salvo(['status', target, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Status;
}

/** Runs `fn` with the archive directory moved out of reach, and puts it back. */
async function withoutArchive<T>(archive: string, fn: () => Promise<T>): Promise<T> {
  const away = `${archive}.away`;
  fs.renameSync(archive, away);
  try {
    return await fn();
  } finally {
    fs.renameSync(away, archive);
  }
}

t.test('status and list of an unmounted volume tell what its archive holds', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-truth-');
  const cleanup = new Cleanup(t);
  const { volume, archive, mnt } = await initVolume(root);
  const live = path.join(mnt, 'live/volume.img');
  const write = (mib: number, seekMib: number) => must('dd', ['if=/dev/urandom', `of=${live}`, 'bs=1M', `count=${mib}`, `seek=${seekMib}`, 'conv=notrunc,fsync', 'status=none']);
  const where = async () => Object.fromEntries((JSON.parse((await salvo(['list', volume, '--json'])).stdout) as { time: string; archived: boolean }[]).map((p) => [p.time, p.archived]));
  const plan = async (at: string) =>
    JSON.parse((await salvo(['restore', volume, '--at', at, path.join(root, 'plan.img'), '--dry-run', '--json'])).stdout) as { summariesFromArchive: number; bytesFromArchive: number };

  await cleanup.salvoMount(volume, mnt);
  await write(20, 0);
  const first = await syncPoint(mnt, ['--label', 'first']);
  await write(3, 30);
  const second = await syncPoint(mnt, ['--label', 'second']);
  t.equal((await salvo(['unmount', mnt])).code, 0, 'unmount');

  const status = await statusOf(volume);
  t.equal(status.archive.pendingItems, 0, 'nothing is queued: the archive has every sealed segment');
  t.equal(status.archive.bytesWaiting, 0, 'no bytes wait');
  t.equal(status.archive.recoveryPoint, second.time, 'the recovery point is the newest point');
  t.equal((JSON.parse((await salvo(['status', archive, '--json'])).stdout) as { recoveryPoint: string }).recoveryPoint, second.time, 'as the archive’s own status says');
  t.equal((await statusOf(volume)).archive.pendingItems, 0, 'and again at the next look: nothing was shipped twice');

  t.equal((await where())[first.time], false, 'while every segment of its window is on primary, a point is listed on primary');
  const firstPlan = await plan('first');
  t.equal(firstPlan.summariesFromArchive + firstPlan.bytesFromArchive, 0, 'and its dry run reads nothing from the archive');
  const withArchive = path.join(root, 'first.img');
  t.equal((await salvo(['restore', volume, '--at', 'first', withArchive])).code, 0, 'restore of the first point');
  await withoutArchive(archive, async () => {
    const alone = path.join(root, 'first-primary.img');
    const r = await salvo(['restore', volume, '--at', 'first', alone]);
    t.equal(r.code, 0, `and it restores with the archive out of reach: ${r.stderr}`);
    if (r.code === 0) t.equal(sha256(alone), sha256(withArchive), 'to the same image');
    t.notOk(fs.existsSync(archive), 'nothing made a new archive where the old one was');
  });

  await cleanup.salvoMount(volume, mnt);
  for (let i = 0; i < 3; i++) await write(40, 10); // more than the 108 slots hold: the windows leave primary
  t.equal((await salvo(['unmount', mnt])).code, 0, 'unmount after the churn');
  t.equal((await where())[first.time], true, 'once its window has left primary, the point is listed in the archive');
  t.ok((await plan('first')).summariesFromArchive > 0, 'and its dry run reads summaries from the archive');
  await withoutArchive(archive, async () => {
    const r = await salvo(['restore', volume, '--at', 'first', path.join(root, 'first-gone.img')]);
    t.not(r.code, 0, 'and it does not restore without the archive');
  });
});
