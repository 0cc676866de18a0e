/**
 * A lost catalog.jsonl: recovery finds the points of the log on primary, and the open adds those
 * the archive holds in segments gone from primary, so no point the archive restores drops out
 * of /snapshots or `salvo list`.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { Catalog } from '../../lib/volume/synch-point.js';
import { FsVolumeFiles } from '../../lib/volume/files.js';
import { createTempVolume, writeUntilRoll } from '../helpers/temp-volume.js';

t.test('catalog rebuild: points only in the archive come back to a lost or cut catalog.jsonl', async (t) => {
  const warnings: string[] = [];
  const { volume, dir, reopen } = await createTempVolume(t, {}, { onWarning: (m) => warnings.push(m) });
  let block = 0;
  for (let i = 0; i < 12; i++) {
    block = await writeUntilRoll(volume, i + 1, block);
    await volume.synch({ label: `p${i}` });
  }
  await volume.idle();
  const points = [...volume.catalog.all];
  const all = points.map((p) => p.label);
  await volume.close();
  const file = path.join(dir, 'catalog.jsonl');
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);

  for (const [what, damage] of [
    ['deleted', () => fs.rmSync(file)],
    ['cut to its first lines', () => fs.writeFileSync(file, lines.slice(0, 2).join('\n') + '\n')],
  ] as const) {
    damage();
    const reopened = await reopen();
    const onPrimary = Math.min(...reopened.internals.log.slots.filter((s) => s.sequence > 0).map((s) => s.sequence));
    t.ok(points.filter((p) => p.sequence < onPrimary).length >= 2, `${what}: points in segments gone from primary, which recovery alone cannot find`);
    await reopened.close(); // waits for the look at the archive
    const rebuilt = Catalog.load(new FsVolumeFiles(dir)).all;
    t.same(rebuilt.map((p) => p.label), all, `${what}: every point is listed again, the archived ones (segments < ${onPrimary}) too`);
  }
  t.match(warnings.join('\n'), /synch points missing from .*catalog\.jsonl were restored from the archive/, 'and the open says so');
});
