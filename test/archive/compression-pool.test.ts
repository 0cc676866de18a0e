import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { crc32c } from '../../lib/format/checksum.js';
import { CompressionPool, chunksBound, releasePages, sharedBuffer } from '../../lib/archive/compression-pool.js';

function samples(): { patterned: Buffer; random: Buffer } {
  const patterned = Buffer.alloc(2 << 20);
  for (let i = 0; i < patterned.length; i++) patterned[i] = (i * 7919) % 251;
  const random = Buffer.alloc(1 << 20);
  for (let i = 0; i < random.length; i++) random[i] = Math.floor(Math.random() * 256);
  return { patterned, random };
}

t.test('chunks come back whole, small and large, compressed or not', async (t) => {
  const pool = new CompressionPool();
  t.teardown(() => pool.close());
  const { patterned, random } = samples();
  // Highly compressible chunks come back under 4 KiB, so from Buffer's shared pool in the worker.
  const inputs = [patterned.subarray(0, 1 << 20), patterned.subarray(1 << 20), Buffer.alloc(1 << 20), random, Buffer.alloc(0)];
  const compressed = await pool.compress(inputs);
  t.ok(compressed[2]!.length < 4096, 'a chunk of zeros compresses to a few bytes');
  t.ok(compressed[3]!.length >= random.length, 'random bytes do not compress');
  t.equal(patterned.length, 2 << 20, 'the inputs stay usable');
  const restored = await pool.decompress(compressed);
  t.same(restored.map((b, i) => b.equals(inputs[i]!)), [true, true, true, true, true]);
});

t.test('compressChunks compresses shared memory in place, chunk by chunk, with each chunk’s CRC', async (t) => {
  const pool = new CompressionPool();
  t.teardown(() => pool.close());
  const { patterned, random } = samples();
  const chunk = 1 << 20;
  // Four full chunks and a short last one: patterned, zeros, random, patterned, 1000 random bytes.
  const raw = Buffer.concat([patterned.subarray(0, chunk), Buffer.alloc(chunk), random, patterned.subarray(chunk), random.subarray(0, 1000)]);
  const src = sharedBuffer(raw.length);
  raw.copy(src);
  const dst = sharedBuffer(chunksBound(raw.length, chunk));
  const { lengths, crcs } = await pool.compressChunks(src, chunk, dst);
  t.equal(lengths.length, 5, 'one output a chunk');
  const outputs: Buffer[] = [];
  for (let i = 0, at = 0; i < lengths.length; at += lengths[i]!, i++) outputs.push(Buffer.from(dst.subarray(at, at + lengths[i]!)));
  t.same(crcs, outputs.map((o) => crc32c(o)), 'each CRC is that of the chunk as stored');
  t.ok(lengths[1]! < 100 && lengths[2]! >= chunk, 'zeros shrink, random bytes do not');
  const restored = await pool.decompress(outputs);
  t.ok(Buffer.concat(restored).equals(raw), 'they decompress to the raw bytes, in order');
  t.ok(src.equals(raw), 'the input is left as it was');

  // The same memory serves again (the archiver reuses it from segment to segment).
  random.copy(src, 0, 0, chunk);
  const again = await pool.compressChunks(src.subarray(0, chunk), chunk, dst);
  t.ok((await pool.decompress([Buffer.from(dst.subarray(0, again.lengths[0]!))]))[0]!.equals(random));

  t.throws(() => pool.compressChunks(Buffer.from(raw), chunk, dst), /shared memory/, 'ordinary buffers are refused');
  t.throws(() => pool.compressChunks(src, chunk, dst.subarray(0, 100)), /dst too small/);
});

t.test('readFile fills shared memory from a file in a worker, short at its end, and keeps a failure’s errno code', async (t) => {
  const pool = new CompressionPool();
  t.teardown(() => pool.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salvo-read-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Longer than one of the worker's short reads and not a multiple of it.
  const bytes = samples().random.subarray(0, 700 * 1024 + 5);
  const file = path.join(dir, 'f');
  fs.writeFileSync(file, bytes);
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const whole = sharedBuffer(bytes.length - 100);
  t.equal(await pool.readFile(fd, whole, 100), bytes.length - 100, 'every byte from the position on');
  t.ok(whole.equals(bytes.subarray(100)), 'in place, in order');
  const past = sharedBuffer(4096);
  t.equal(await pool.readFile(fd, past, bytes.length - 10), 10, 'fewer at the end of the file');
  t.ok(past.subarray(0, 10).equals(bytes.subarray(bytes.length - 10)));
  await t.rejects(pool.readFile(987654, sharedBuffer(16), 0), { code: 'EBADF' }, 'a bad descriptor rejects with its code');
  t.throws(() => pool.readFile(fd, Buffer.alloc(16), 0), 'memory the worker cannot share is refused');
});

/** Resident anonymous memory of this process (SharedArrayBuffers are private anonymous pages here). */
function residentAnonBytes(): number {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('RssAnon:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

t.test('releasePages gives shared memory’s pages back: it reads as zeros and stays usable', async (t) => {
  const MiB = 1 << 20;
  const bytes = sharedBuffer(64 * MiB);
  bytes.fill(7);
  const before = residentAnonBytes();
  await releasePages(bytes);
  const freed = before - residentAnonBytes();
  t.ok(freed > 48 * MiB, `the pages left the process (${(freed / MiB).toFixed(1)} MiB of 64)`);
  // Only whole pages go: the partial pages at either end (the allocation need not be page-aligned) keep their bytes.
  t.equal(bytes.subarray(4096, bytes.length - 4096).findIndex((b) => b !== 0), -1, 'the whole pages read as zeros');
  bytes.fill(9, 0, MiB);
  t.equal(bytes[MiB - 1], 9, 'and take writes again');
  t.throws(() => releasePages({} as Buffer), { code: 'ERR_INVALID_ARG_TYPE' }, 'anything but a Uint8Array is refused');
});

t.test('close ends the tasks in flight and queued, and settles itself', async (t) => {
  const pool = new CompressionPool(1);
  const big = Buffer.alloc(8 * 1024 * 1024, 1);
  const tasks = [pool.compress([big]), pool.compress([big]), pool.compress([big])].map((task) => task.then(() => 'answered', (err: Error) => err.message));
  await pool.close();
  t.same(await Promise.all(tasks), ['compression pool closed', 'compression pool closed', 'compression pool closed'], 'the task in flight and the queued ones are rejected, none left pending');
});
