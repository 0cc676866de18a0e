/**
 * The freeze around a synch point belongs to the mount (agent/freeze.ts): the filesystem is
 * thawed whatever the agent does (killed with SIGKILL mid-sync), and at the deadline even if the
 * point has not come, which is then not taken: a point that says frozen was taken while frozen.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import t from 'tap';
import { synchFrozen } from '../../lib/agent/freeze.js';
import { CLI, Cleanup, must, run, salvo, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';
import { initVolume } from '../helpers/cli.js';

/** True when a write to the filesystem at `dir` completes within `ms` (a frozen one blocks it). */
async function writable(dir: string, ms = 5000): Promise<boolean> {
  return (await run('timeout', [String(ms / 1000), 'touch', path.join(dir, `w-${Date.now()}`)])).code === 0;
}

t.test('freeze: at the deadline the filesystem is thawed and the point refused, not taken', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-freeze-');
  const cleanup = new Cleanup(t);
  const image = path.join(root, 'fs.img');
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 64 * 1024 * 1024);
  await must('mkfs.ext4', ['-q', image]);
  const dir = await cleanup.mount(await cleanup.loop(image), path.join(root, 'fs'));
  let checked = false;
  const taking = synchFrozen(
    dir,
    async (stillFrozen) => {
      await new Promise((r) => setTimeout(r, 600)); // the engine held back (an archive stall)
      checked = true;
      stillFrozen();
      return 'a point';
    },
    200,
  );
  await t.rejects(taking, { code: 'COMMAND_FAILED', message: /was thawed after 0\.2 s, before the synch point could be taken: none was taken/ });
  t.ok(checked, 'the check ran where the record would be placed');
  t.ok(await writable(dir), 'the filesystem is writable again');
  t.equal(await synchFrozen(dir, async (stillFrozen) => (stillFrozen(), 'a point')), 'a point', 'in time, the point is taken');
  t.ok(await writable(dir), 'and thawed after');
});

t.test('freeze: kill -9 of `salvo sync --freeze` never leaves the filesystem frozen', async (t) => {
  if (!systemReady(t)) return;
  const root = tempDir(t, 'salvo-freeze-kill-');
  const cleanup = new Cleanup(t);
  const { volume, mnt } = await initVolume(root);
  await cleanup.salvoMount(volume, mnt);
  const device = await cleanup.loop(path.join(mnt, 'live/volume.img'));
  await must('mkfs.ext4', ['-q', device]);
  const fsDir = await cleanup.mount(device, path.join(root, 'fs'));
  for (let i = 0; i < 8; i++) {
    await must('dd', ['if=/dev/urandom', `of=${fsDir}/f${i}`, 'bs=1M', 'count=4', 'status=none']);
    const agent = spawn(process.execPath, [CLI, 'sync', mnt, '--freeze', fsDir, '--label', `k${i}`], { stdio: 'ignore' });
    const exited = new Promise((r) => agent.once('exit', r)); // it may finish before the kill
    await new Promise((r) => setTimeout(r, 40 + i * 60));
    agent.kill('SIGKILL');
    await exited;
    t.ok(await writable(fsDir, 10_000), `kill after ${40 + i * 60} ms: the filesystem is writable`);
  }
  const listed = JSON.parse((await salvo(['list', volume, '--json'])).stdout) as { info: Record<string, string> }[];
  t.ok(listed.every((p) => p.info.frozen === fsDir), 'every point taken says frozen, and was');
});
