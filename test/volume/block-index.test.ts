import t from 'tap';
import { BlockIndex } from '../../lib/volume/block-index.js';
import { Mutex } from '../../lib/volume/mutex.js';

t.test('block-index: overwrite returns the newest location; cleared blocks read as zeros', async (t) => {
  const index = new BlockIndex(1000);
  t.equal(index.slotOf(5), -1, 'an unwritten block has no slot');
  index.set(5, 0, 64);
  index.set(5, 3, 4196);
  t.equal(index.slotOf(5), 3);
  t.equal(index.offsetOf(5), 4196);
  t.ok(index.points(5, 3, 4196), 'the newest entry is live');
  t.notOk(index.points(5, 0, 64), 'the older one is not');
  index.clear(5);
  t.equal(index.slotOf(5), -1);
});

t.test('mutex: tasks run one at a time, in order, and a failure does not block the next', async (t) => {
  const mutex = new Mutex();
  const order: string[] = [];
  const slow = mutex.run(async () => {
    await new Promise((r) => setTimeout(r, 20));
    order.push('slow');
  });
  const failing = mutex.run(() => {
    order.push('failing');
    throw new Error('boom');
  });
  const fast = mutex.run(() => order.push('fast'));
  await slow;
  await t.rejects(failing, /boom/);
  await fast;
  t.same(order, ['slow', 'failing', 'fast']);
});
