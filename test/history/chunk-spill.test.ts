/**
 * The chunk spill (lib/history/chunk-spill.ts) and the two-tier chunk cache over it
 * (lib/history/chunk-cache.ts): a chunk read back is the chunk put, byte for byte, through any
 * number of laps of the ring; a chunk it no longer holds is a miss, never another chunk's bytes;
 * a full or failing spill only stops keeping chunks; its file is unlinked from the start and
 * gone once closed.
 */
import fs from 'node:fs';
import t from 'tap';
import { ChunkCache } from '../../lib/history/chunk-cache.js';
import { ChunkSpill } from '../../lib/history/chunk-spill.js';
import { prng, tempDir } from '../helpers/temp-volume.js';

/** The bytes of chunk `name`, `length` long: different for every name. */
function chunkBytes(name: string, length: number): Buffer {
  const random = prng([...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7));
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

/** This process's descriptors open on a spill file in `dir`. */
function spillFds(dir: string): string[] {
  const open: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/.salvo-chunks-`)) open.push(target);
    } catch {
      // closed since the listing
    }
  }
  return open;
}

t.test('chunk-spill: chunks read back byte for byte through many laps of the ring; what it forgot is a miss', async (t) => {
  const dir = tempDir(t, 'salvo-spill-');
  const capacity = 64 * 1024;
  const spill = new ChunkSpill({ dir, bytesMax: capacity });
  t.teardown(() => spill.close());
  const random = prng(11);
  const lengths = new Map<string, number>();
  let wrong = 0;
  let misses = 0;
  let hits = 0;
  for (let i = 0; i < 3000; i++) {
    // Names come back (a chunk put again after it was forgotten, or while still held).
    const name = `segments/${Math.floor(random() * 400)}#${i % 3}`;
    const length = 1 + Math.floor(random() * 12 * 1024);
    lengths.set(name, length);
    if (!spill.put(name, chunkBytes(name, length)) || !spill.has(name)) wrong++;
    if (spill.bytes > capacity) wrong++;
    // Read back a few chunks at random: a held one whole or in part, a forgotten one not at all.
    for (let k = 0; k < 4; k++) {
      const other = [...lengths.keys()][Math.floor(random() * lengths.size)]!;
      const full = lengths.get(other)!;
      const within = Math.floor(random() * full);
      const n = 1 + Math.floor(random() * (full - within));
      const target = Buffer.alloc(n + 8, 0xee);
      if (spill.readInto(other, within, n, target, 4)) {
        hits++;
        if (!target.subarray(4, 4 + n).equals(chunkBytes(other, full).subarray(within, within + n))) wrong++;
        if (target.readUInt32LE(0) !== 0xeeeeeeee || target.readUInt32LE(4 + n) !== 0xeeeeeeee) wrong++;
      } else {
        misses++;
        if (spill.has(other)) wrong++;
      }
    }
  }
  t.equal(wrong, 0, `every read matched the chunk named (${hits} hits, ${misses} misses)`);
  t.ok(spill.stats.chunksWritten === 3000 && spill.bytes > capacity / 2, `it kept the newest chunks within its bound (${spill.bytes} of ${capacity} bytes)`);
  t.notOk(spill.readInto([...lengths.keys()][0]!, 0, 1 << 20, Buffer.alloc(1 << 20), 0), 'a range past the chunk’s end is a miss');
});

t.test('chunk-spill: its file is unlinked as soon as it opens, opens only when a chunk spills, and is gone after close', async (t) => {
  const dir = tempDir(t, 'salvo-spill-');
  const spill = new ChunkSpill({ dir, bytesMax: 1 << 20 });
  t.same(spillFds(dir), [], 'nothing open before the first chunk');
  t.ok(spill.put('a#0', chunkBytes('a#0', 4096)));
  const fds = spillFds(dir);
  t.equal(fds.length, 1, 'one file open');
  t.match(fds[0], / \(deleted\)$/, 'already unlinked');
  t.same(fs.readdirSync(dir), [], 'and not in its directory');
  t.ok(spill.bytesMax > 0 && spill.bytesMax <= 1 << 20, `bounded (${spill.bytesMax} bytes)`);
  spill.close();
  spill.close();
  t.same(spillFds(dir), [], 'no descriptor after close (twice is fine)');
  t.notOk(spill.put('b#0', chunkBytes('b#0', 4096)), 'a closed spill keeps nothing');
  t.notOk(spill.readInto('a#0', 0, 16, Buffer.alloc(16), 0), 'and answers nothing');
  t.equal(spill.bytes, 0);
});

t.test('chunk-spill: a chunk longer than the spill is not kept; a spill it cannot open, or one that fails to write, is off', async (t) => {
  const dir = tempDir(t, 'salvo-spill-');
  const small = new ChunkSpill({ dir, bytesMax: 8192 });
  t.teardown(() => small.close());
  t.notOk(small.put('big#0', chunkBytes('big#0', 8193)), 'longer than the whole file: not kept');
  t.ok(small.put('fits#0', chunkBytes('fits#0', 8192)), 'as long as the file: kept');
  t.notOk(new ChunkSpill({ bytesMax: 0 }).put('x#0', chunkBytes('x#0', 16)), 'bytesMax 0: off');
  const nowhere = new ChunkSpill({ dir: `${dir}/missing`, bytesMax: 1 << 20 });
  t.notOk(nowhere.put('x#0', chunkBytes('x#0', 16)), 'a directory that is not there: off, no error');

  const failing = new ChunkSpill({ dir, bytesMax: 1 << 20 });
  t.ok(failing.put('a#0', chunkBytes('a#0', 4096)));
  const writeSync = fs.writeSync;
  fs.writeSync = (() => {
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  }) as typeof fs.writeSync;
  try {
    t.notOk(failing.put('b#0', chunkBytes('b#0', 4096)), 'ENOSPC: the chunk is not kept');
  } finally {
    fs.writeSync = writeSync;
  }
  t.ok(failing.stats.failed, 'the spill turned itself off');
  t.notOk(failing.has('a#0'), 'forgetting what it held');
  t.notOk(failing.put('c#0', chunkBytes('c#0', 4096)), 'for good');
  t.equal(spillFds(dir).length, 1, 'its file closed (the small spill’s stays open)');
});

t.test('chunk-cache: memory first, what it evicts goes to the spill, and both answer the same bytes', async (t) => {
  const dir = tempDir(t, 'salvo-spill-');
  const cache = new ChunkCache(3 * 4096, { dir, bytesMax: 1 << 20 });
  t.teardown(() => cache.close());
  const names = ['p#0', 'p#1', 'p#2', 'p#3', 'p#4'];
  for (const name of names) {
    cache.set(name, chunkBytes(name, 4096), name !== 'p#1' && name !== 'p#2');
    if (name === 'p#1') cache.keepOnDisk(name);
  }
  t.equal(cache.bytes, 3 * 4096, 'memory holds three chunks, its bound');
  t.equal(cache.spill.bytes, 2 * 4096, 'the two it evicted are in the spill');
  cache.set('p#5', chunkBytes('p#5', 4096));
  t.notOk(cache.has('p#2'), 'one not to keep on disk is dropped when evicted');
  for (const name of ['p#0', 'p#1', 'p#3', 'p#4', 'p#5']) {
    const target = Buffer.alloc(100);
    const tier = cache.readInto(name, 1000, 100, target, 0);
    t.equal(tier, ['p#0', 'p#1'].includes(name) ? 'spill' : 'memory', `${name} from ${tier}`);
    t.ok(target.equals(chunkBytes(name, 4096).subarray(1000, 1100)), `${name}: its own bytes`);
  }
  t.equal(cache.readInto('p#2', 0, 1, Buffer.alloc(1), 0), null, 'a chunk in neither tier is a miss');
  cache.set('huge#0', chunkBytes('huge#0', 4 * 4096));
  t.equal(cache.bytes, 3 * 4096, 'a chunk larger than memory goes straight to the spill');
  t.ok(cache.has('huge#0'));
  cache.close();
  t.same(spillFds(dir), [], 'close closes the spill');
  t.equal(cache.bytes, 0, 'and frees memory');
});
