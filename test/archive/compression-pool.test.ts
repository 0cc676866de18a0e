import t from 'tap';
import { CompressionPool } from '../../lib/archive/compression-pool.js';

t.test('chunks come back whole, small and large, compressed or not, and the inputs are moved only when asked', async (t) => {
  const pool = new CompressionPool();
  t.teardown(() => pool.close());
  const patterned = Buffer.alloc(2 << 20);
  for (let i = 0; i < patterned.length; i++) patterned[i] = (i * 7919) % 251;
  const random = Buffer.alloc(1 << 20);
  for (let i = 0; i < random.length; i++) random[i] = Math.floor(Math.random() * 256);
  // Highly compressible chunks come back under 4 KiB, so from Buffer's shared pool in the worker.
  const inputs = [patterned.subarray(0, 1 << 20), patterned.subarray(1 << 20), Buffer.alloc(1 << 20), random, Buffer.alloc(0)];
  const compressed = await pool.compress(inputs);
  t.ok(compressed[2]!.length < 4096, 'a chunk of zeros compresses to a few bytes');
  t.ok(compressed[3]!.length >= random.length, 'random bytes do not compress');
  t.equal(patterned.length, 2 << 20, 'without transfer the inputs stay usable');
  const restored = await pool.decompress(compressed);
  t.same(restored.map((b, i) => b.equals(inputs[i]!)), [true, true, true, true, true]);

  const moved = Buffer.from(random);
  const [again] = await pool.compress([moved], { transfer: true });
  t.equal(moved.length, 0, 'a transferred input is gone from the caller');
  t.ok((await pool.decompress([again!]))[0]!.equals(random));
});
