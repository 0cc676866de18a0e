import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DescriptorPool, type DescriptorSystem } from '../../lib/volume/descriptor-pool.js';
import { DESCRIPTORS_RESERVED, SLOT_DESCRIPTORS_MAX, SLOT_DESCRIPTORS_MIN, slotDescriptors } from '../../lib/volume/open-files.js';
import { tempDir } from '../helpers/temp-volume.js';

/** A system of numbered fake descriptors that records what was opened and closed, and fails opens with EMFILE beyond `room`. */
function fakeSystem(room = Infinity): DescriptorSystem & { opened: string[]; closed: number[]; live: Map<number, string> } {
  let next = 100;
  const live = new Map<number, string>();
  return {
    opened: [],
    closed: [],
    live,
    open(file) {
      if (live.size >= room) throw Object.assign(new Error(`EMFILE: too many open files, open '${file}'`), { code: 'EMFILE' });
      const fd = next++;
      live.set(fd, file);
      this.opened.push(file);
      return fd;
    },
    close(fd) {
      if (!live.delete(fd)) throw new Error(`close of ${fd}, which is not open`);
      this.closed.push(fd);
    },
  };
}

t.test('descriptor-pool: keeps at most its capacity open, closing the least recently used', async (t) => {
  const system = fakeSystem();
  const pool = new DescriptorPool(2, system);
  const a = pool.add('a');
  const b = pool.add('b');
  t.same(system.opened, ['a', 'b'], 'add opens at once (a missing file fails there)');
  pool.take(a); // a is now the most recent
  const c = pool.add('c');
  t.equal(pool.size, 2, 'never more than its capacity');
  t.equal(b.fd, -1, 'b, the least recently used, was closed');
  t.ok(a.fd >= 0 && c.fd >= 0);
  const fd = pool.take(b);
  t.ok(fd >= 0, 'b is opened again on its next use');
  t.equal(a.fd, -1, 'and a is now the one closed');
  t.same(system.opened, ['a', 'b', 'c', 'b']);
  t.equal(pool.take(b), fd, 'a hit reuses the descriptor');
  pool.close(b);
  pool.close(c);
  pool.close(a);
  t.equal(pool.size, 0);
  t.same([...system.live], [], 'closing the files closes every descriptor');
  t.throws(() => pool.take(b), /was closed/, 'a closed file is not opened again');
});

t.test('descriptor-pool: a pinned descriptor is never closed under its operation', async (t) => {
  const system = fakeSystem();
  const pool = new DescriptorPool(2, system);
  const a = pool.add('a');
  const b = pool.add('b');
  const fdA = pool.pin(a);
  const fdB = pool.pin(b);
  const c = pool.add('c');
  t.equal(pool.size, 3, 'with every descriptor pinned the pool goes over its capacity rather than close one');
  t.equal(system.live.get(fdA), 'a', 'a stays open');
  t.equal(system.live.get(fdB), 'b', 'b stays open');
  pool.take(c);
  pool.unpin(a);
  t.equal(pool.size, 2, 'back to its capacity when a pin is released');
  t.equal(a.fd, -1, 'the least recently used idle one went');
  t.equal(system.live.get(fdB), 'b', 'the pinned one did not');

  pool.pin(b); // a second operation on b
  pool.close(b);
  t.equal(system.live.get(fdB), 'b', 'closing a file whose descriptor is pinned waits');
  pool.unpin(b);
  t.equal(system.live.get(fdB), 'b', 'for the last operation');
  pool.unpin(b);
  t.notOk(system.live.has(fdB), 'and closes it when that one ends');
  t.equal(b.fd, -1);
  pool.close(c);
  t.equal(pool.size, 0);
});

t.test('descriptor-pool: out of descriptors, closes an idle one and retries; EMFILE only when every one is pinned', async (t) => {
  const system = fakeSystem(3); // the process may open 3 files, though the pool would keep 10
  const pool = new DescriptorPool(10, system);
  const files = ['a', 'b', 'c'].map((name) => pool.add(name));
  const d = pool.add('d');
  t.ok(d.fd >= 0, 'd opened on the retry');
  t.equal(files[0]!.fd, -1, 'after closing the least recently used');
  t.equal(pool.size, 3);
  for (const f of [files[1]!, files[2]!, d]) pool.pin(f);
  t.throws(() => pool.add('e'), { code: 'EMFILE' }, 'with nothing idle to close, EMFILE reaches the caller');
  t.equal(pool.size, 3, 'and nothing was closed');
  pool.unpin(d);
  t.ok(pool.take(files[0]!) >= 0, 'once one is idle again, the next open goes through');
  t.equal(d.fd, -1, 'closing it');
});

t.test('descriptor-pool: other open failures are not retried', async (t) => {
  const pool = new DescriptorPool(4);
  const dir = tempDir(t);
  t.throws(() => pool.add(path.join(dir, 'missing')), { code: 'ENOENT' });
  fs.writeFileSync(path.join(dir, 'present'), 'x');
  const real = pool.add(path.join(dir, 'present'));
  t.ok(real.fd >= 0, 'a real file opens read-write');
  pool.close(real);
});

t.test('open-files: slot descriptors come from the limit less the reserve, capped, and a limit below the floor is named', async (t) => {
  t.equal(slotDescriptors(20_000), SLOT_DESCRIPTORS_MAX, 'a common limit: the cap');
  t.equal(slotDescriptors(1024), 1024 - DESCRIPTORS_RESERVED);
  t.equal(slotDescriptors(null), SLOT_DESCRIPTORS_MAX, 'no limit');
  t.equal(slotDescriptors(DESCRIPTORS_RESERVED + SLOT_DESCRIPTORS_MIN), SLOT_DESCRIPTORS_MIN);
  t.throws(() => slotDescriptors(DESCRIPTORS_RESERVED + SLOT_DESCRIPTORS_MIN - 1), {
    code: 'RESOURCE_LIMIT',
    message: /this process may open 271 files, and a volume needs 272/,
    hint: /ulimit -n/,
  });
});
