/**
 * Slot files on disk (lib/volume/slot-file.ts) under a pool of descriptors smaller than the
 * volume's slot count: nothing written is lost when descriptors are closed and opened again,
 * and running out of descriptors is a limit of the system, never a damaged volume.
 */
import fs from 'node:fs';
import t from 'tap';
import { DescriptorPool } from '../../lib/volume/descriptor-pool.js';
import { FsVolumeFiles, slotsDirectory } from '../../lib/volume/files.js';
import { Volume } from '../../lib/volume/volume.js';
import { createTempVolume, historyOf, prng, SMALL_POLICY } from '../helpers/temp-volume.js';

const BS = SMALL_POLICY.blockSizeBytes;
/** 16 slot files; the pool holds 4 of them. */
const POLICY = { ...SMALL_POLICY, workingSetSegments: 12, spareSegments: 4 };
const POOL = 4;

/** Descriptors this process holds on files under `dir`. */
function descriptorsUnder(dir: string): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/`);
    } catch {
      return false; // the descriptor readdir itself used, closed by now
    }
  }).length;
}

t.test('slot-file: a volume of more slot files than its pool of descriptors writes, recovers and reads everything back', async (t) => {
  const { dir, volume, reopen } = await createTempVolume(t, POLICY, { slotDescriptors: POOL });
  const blocks = POLICY.sizeBytes / BS;
  const model = Buffer.alloc(POLICY.sizeBytes);
  const random = prng(25);
  // Enough writes to pass through every slot twice: sealed, archived (read through a pinned descriptor), recycled.
  const slots = POLICY.workingSetSegments + POLICY.spareSegments;
  for (let i = 0; volume.counters.segmentsRecycled < 2 * slots; i++) {
    const block = Math.floor(random() * blocks);
    const count = 1 + Math.floor(random() * Math.min(8, blocks - block));
    const data = Buffer.alloc(count * BS, 1 + (i % 251));
    data.writeUInt32LE(i, 0);
    await volume.write(data, block * BS);
    data.copy(model, block * BS);
  }
  t.ok(volume.counters.segmentsSealed > 2 * slots, `${volume.counters.segmentsSealed} segments sealed over ${slots} slot files`);
  t.ok(volume.read(0, POLICY.sizeBytes).equals(model), 'every block reads back while descriptors come and go');
  const point = await volume.synch({ label: 'pooled' });
  await volume.idle();
  t.ok(descriptorsUnder(slotsDirectory(dir)) <= POOL, `at most ${POOL} slot files open once nothing is in flight`);

  // The past: a snapshot reads its window's slots off the event loop (pinned descriptors).
  const snapshot = await historyOf(volume).snapshots.open(point);
  t.ok((await snapshot.read(0, POLICY.sizeBytes)).equals(model), 'the synch point reads back through the history');

  await volume.close();
  t.equal(descriptorsUnder(slotsDirectory(dir)), 0, 'close releases every slot descriptor');

  // Recovery reads every slot's header and rebuilds the index by the backward scan, through the same small pool.
  const again = await reopen({ slotDescriptors: POOL });
  t.ok(again.read(0, POLICY.sizeBytes).equals(model), 'after close and reopen, everything reads back');
  t.ok(descriptorsUnder(slotsDirectory(dir)) <= POOL, 'recovery kept within the pool');
  await again.close();
});

t.test('slot-file: out of descriptors at any time is RESOURCE_LIMIT naming the limit, and the volume goes on once there is room', async (t) => {
  const { dir, store, volume: first } = await createTempVolume(t, POLICY);
  const before = Buffer.alloc(POLICY.sizeBytes);
  for (let i = 0; i < 4; i++) {
    before.fill(1 + i);
    await first.write(before, 0); // the volume's blocks spread over several segments
  }
  await first.close();
  let opens = 0;
  let exhausted = false;
  const system = {
    open(file: string): number {
      if (exhausted) throw Object.assign(new Error(`EMFILE: too many open files, open '${file}'`), { code: 'EMFILE' });
      opens++;
      return fs.openSync(file, 'r+');
    },
    close: (fd: number) => fs.closeSync(fd),
  };
  const volume = await Volume.open(dir, { store, files: new FsVolumeFiles(dir, new DescriptorPool(POOL, system)), onStall: () => undefined });
  t.teardown(() => volume.close().catch(() => undefined));
  t.ok(opens > POOL, `recovery opened ${opens} descriptors through a pool of ${POOL}`);

  exhausted = true; // from now on every open fails: the pool closes its idle descriptors, retries, and gives up
  t.throws(() => volume.read(0, POLICY.sizeBytes), {
    code: 'RESOURCE_LIMIT',
    message: /segment slot .*\.slot cannot be opened: this process's limit of open files .*is reached \(EMFILE\), with 0 slot files open and none idle/,
    hint: /raise the limit of open files \(ulimit -n/,
  }, 'a read: a limit of the system, not CORRUPT_*');
  await t.rejects(volume.write(Buffer.alloc(BS, 9), 0), { code: 'RESOURCE_LIMIT' }, 'a write: the same, and nothing acknowledged');

  exhausted = false;
  t.ok(volume.read(0, POLICY.sizeBytes).equals(before), 'once descriptors are free again, every block reads back as it was');
  await volume.write(Buffer.alloc(BS, 9), 0);
  await volume.synch();
  before.fill(9, 0, BS);
  t.ok(volume.read(0, POLICY.sizeBytes).equals(before), 'and writes go on');
});
