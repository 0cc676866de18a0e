import t from 'tap';
import { BlockMap, HOLE, HOLDER_MAX } from '../../lib/volume/block-map.js';

/** A small seeded generator (xorshift32), so a failure replays. */
function random(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

t.test('block-map: every operation agrees with a plain Map, through sparse, dense and shrinking pages', async (t) => {
  for (const seed of [1, 2, 3]) {
    const next = random(seed);
    const blocks = 3 * 4096 + 100; // three whole pages and a short last one
    const map = new BlockMap(blocks);
    const model = new Map<number, [number, number]>();
    // Phases: fill one region past the dense threshold, then delete most of it, then churn everywhere.
    for (let op = 0; op < 40_000; op++) {
      const phase = op < 15_000 ? 0 : op < 25_000 ? 1 : 2;
      const block = phase === 2 ? Math.floor(next() * blocks) : Math.floor(next() * 4096) + 4096;
      const holder = Math.floor(next() * (HOLDER_MAX + 1));
      const offset = Math.floor(next() * 2 ** 32);
      const roll = next();
      if (phase === 1 ? roll < 0.8 : roll < 0.15) {
        map.delete(block);
        model.delete(block);
      } else if (roll < 0.5) {
        const had = model.has(block);
        t.equal(map.setIfAbsent(block, holder, offset), !had, 'setIfAbsent tells whether it set');
        if (!had) model.set(block, [holder, offset]);
      } else {
        map.set(block, holder, offset);
        model.set(block, [holder, offset]);
      }
      if (op % 997 === 0) {
        const probe = Math.floor(next() * blocks);
        const want = model.get(probe);
        t.equal(map.find(probe), want !== undefined);
        if (want) t.same([map.holder, map.offset], want);
      }
    }
    t.equal(map.size, model.size, `seed ${seed}: the sizes agree`);
    const seen: [number, number, number][] = [];
    map.forEach((block, holder, offset) => seen.push([block, holder, offset]));
    t.same(seen, [...model.entries()].sort((a, b) => a[0] - b[0]).map(([b, [h, o]]) => [b, h, o]), 'forEach visits every block in order');
  }
});

t.test('block-map: 2^32 blocks (16 TiB of 4 KiB blocks) cost 7 MiB empty; random blocks about 8 bytes each', async (t) => {
  const map = new BlockMap(2 ** 32);
  t.ok(map.memoryBytes <= 7.5 * 2 ** 20, `empty: ${map.memoryBytes} bytes`);
  map.set(2 ** 32 - 1, HOLDER_MAX, 2 ** 32 - 1);
  t.ok(map.find(2 ** 32 - 1) && map.holder === HOLDER_MAX && map.offset === 2 ** 32 - 1, 'the last block and the largest values round-trip');
  const empty = map.memoryBytes;
  const next = random(7);
  const n = 1_000_000;
  for (let i = 0; i < n; i++) map.set(Math.floor(next() * 2 ** 32), i & 0xffff, i);
  const perBlock = (map.memoryBytes - empty) / map.size;
  t.ok(perBlock < 10, `${perBlock.toFixed(2)} bytes a random block`);

  const dense = new BlockMap(2 ** 20);
  for (let b = 0; b < 2 ** 20; b++) dense.set(b, 1, b * 4100);
  t.ok(dense.memoryBytes / dense.size < 8.5, `${(dense.memoryBytes / dense.size).toFixed(2)} bytes a block, every block written`);
});

t.test('block-map: pages growing together are compacted, and every block still reads right', async (t) => {
  const next = random(11);
  const map = new BlockMap(2 ** 26);
  const model = new Map<number, number>();
  for (let i = 0; i < 1_000_000; i++) {
    const block = Math.floor(next() * 2 ** 26);
    map.set(block, i % 1000, i);
    model.set(block, i);
  }
  // ~61 blocks a page: 8 bytes an entry in a class of 64 or 96, given-back room up to half of that (22 bytes without compaction).
  t.ok(map.memoryBytes / map.size < 16, `${(map.memoryBytes / map.size).toFixed(2)} bytes a block: the slabs emptied by growth were given back`);
  let wrong = 0;
  for (const [block, offset] of model) if (!map.find(block) || map.offset !== offset || map.holder !== offset % 1000) wrong++;
  t.equal(wrong, 0, 'every block reads its newest entry');
  let i = 0;
  for (const block of model.keys()) if (i++ % 2 === 0) map.delete(block);
  i = 0;
  for (const [block, offset] of model) if ((i++ % 2 === 0) === map.find(block) || (map.find(block) && map.offset !== offset)) wrong++;
  t.equal(wrong, 0, 'after deleting half (pages shrink and compact again), the rest still read right');
});

t.test('block-map: HOLE marks are kept apart and can be swept', async (t) => {
  const map = new BlockMap(10_000);
  map.setIfAbsent(1, HOLE, 0);
  map.setIfAbsent(2, 5, 64);
  t.notOk(map.setIfAbsent(1, 7, 99), 'a marked block counts as seen');
  t.ok(map.find(1) && map.holder === HOLE);
  map.deleteHolder(HOLE);
  t.notOk(map.find(1), 'the mark is gone');
  t.ok(map.is(2, 5, 64), 'other blocks stay');
  t.equal(map.size, 1);
});
