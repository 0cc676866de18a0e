import { randomBytes } from 'node:crypto';
import t from 'tap';
import { crc32c, crc32cBlocks, crc32cEachBlock, firstBadBlock, firstBadBlockEach, firstBadEntry, firstBadEntryEach, reseedDelta } from '../../lib/format/checksum.js';
import { native } from '../../lib/util/native.js';

t.test('checksum: crc32c is CRC-32C (Castagnoli)', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  t.equal(crc32c(Buffer.alloc(0)), 0);
});

t.test('checksum: a seed continues a CRC (format 2 seeds entries with the segment sequence)', async (t) => {
  const bytes = Buffer.from('123456789');
  t.equal(crc32c(bytes, 0), 0xe3069283, 'seed 0 is the standard CRC (format 1)');
  t.equal(crc32c(bytes.subarray(4), crc32c(bytes.subarray(0, 4))), 0xe3069283, 'continuing from the CRC of a prefix gives the CRC of the whole');
  t.not(crc32c(bytes, 7), crc32c(bytes, 8), 'the same bytes under two seeds differ');
});

t.test('checksum: crc32cBlocks gives each block the CRC that crc32c gives it, under any seed', async (t) => {
  t.ok(native().crc32cBlocks, 'this machine’s CPU has the CRC instruction, so the addon’s batched path is what runs here');
  // Sizes around the addon's three-stream rounds (3 × 256 bytes) and its 8-byte steps, real block sizes, and data
  // that starts at every alignment.
  const sizes = [1, 7, 8, 9, 255, 256, 767, 768, 769, 1536, 2311, 4096, 4099, 8192, 65536];
  for (const seed of [0, 1, 0xdeadbeef, 0xffffffff]) {
    for (const size of sizes) {
      for (const misalign of [0, 1, 3, 7]) {
        const count = size > 8192 ? 2 : 5;
        const data = randomBytes(misalign + size * count).subarray(misalign);
        const batched = Buffer.alloc(8 + 4 * count, 0xee);
        crc32cBlocks(data, size, batched, 8, seed);
        const each = Buffer.alloc(8 + 4 * count, 0xee);
        crc32cEachBlock(data, size, each, 8, seed);
        const expected = Array.from({ length: count }, (_, i) => crc32c(data.subarray(i * size, (i + 1) * size), seed));
        const got = Array.from({ length: count }, (_, i) => batched.readUInt32LE(8 + 4 * i));
        if (!t.same(got, expected, `blocks of ${size} bytes at offset ${misalign}, seed ${seed}`)) return;
        if (!t.ok(batched.equals(each), 'the fallback writes the same bytes')) return;
        if (!t.same(batched.subarray(0, 8), Buffer.alloc(8, 0xee), 'and nothing before outOffset')) return;
      }
    }
  }
  const zero = Buffer.alloc(4096);
  const out = Buffer.alloc(4);
  crc32cBlocks(zero, 4096, out, 0, 0);
  t.equal(out.readUInt32LE(0), crc32c(zero), 'a block of zeros');
});

t.test('checksum: reseedDelta moves a CRC from one seed to another without the bytes', async (t) => {
  for (const [length, from, to] of [
    [4096, 1, 2],
    [512, 0, 41],
    [65536, 0xffffffff, 7],
    [4096, 5, 5],
  ] as const) {
    const delta = reseedDelta(length, from, to);
    for (let i = 0; i < 4; i++) {
      const data = randomBytes(length);
      if (!t.equal((crc32c(data, from) ^ delta) >>> 0, crc32c(data, to), `${length} bytes, seed ${from} to ${to}`)) return;
    }
    t.equal(delta === 0, from === to, from === to ? 'the same seed needs nothing' : 'another seed always changes the CRC');
  }
});

t.test('checksum: crc32cBlocks refuses what is not whole blocks or does not fit', async (t) => {
  const data = Buffer.alloc(4096 * 2);
  t.throws(() => crc32cBlocks(data, 4096, Buffer.alloc(7), 0, 0), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => crc32cBlocks(data, 4096, Buffer.alloc(8), 4, 0), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => crc32cBlocks(data.subarray(1), 4096, Buffer.alloc(8), 0, 0), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => crc32cBlocks(data, 0, Buffer.alloc(8), 0, 0), { code: 'ERR_OUT_OF_RANGE' });
});

/** `count` block entries of `blockSize` bytes (a CRC32C from `seed`, then the block), all valid. */
function entries(count: number, blockSize: number, misalign = 0, seed = 0): Buffer {
  const bytes = randomBytes(misalign + count * (4 + blockSize)).subarray(misalign);
  for (let i = 0; i < count; i++) {
    const at = i * (4 + blockSize);
    bytes.writeUInt32LE(crc32c(bytes.subarray(at + 4, at + 4 + blockSize), seed), at);
  }
  return bytes;
}

t.test('checksum: firstBadEntry finds the first entry whose block fails its CRC, as the fallback does', async (t) => {
  t.ok(native().firstBadEntry, 'the addon’s path is what runs here');
  for (const blockSize of [1, 9, 512, 769, 4096, 65536]) {
    for (const misalign of [0, 3]) {
      const count = blockSize > 4096 ? 4 : 9;
      const good = entries(count, blockSize, misalign);
      t.equal(firstBadEntry(good, blockSize, 0), -1, `${count} good entries of ${blockSize} bytes at offset ${misalign}`);
      t.equal(firstBadEntryEach(good, blockSize, 0), -1);
      for (const bad of [0, 1, count - 1]) {
        for (const where of ['crc', 'first byte', 'last byte'] as const) {
          const damaged = Buffer.from(good);
          const at = bad * (4 + blockSize) + (where === 'crc' ? 1 : where === 'first byte' ? 4 : 3 + blockSize);
          damaged[at]! ^= 0x10;
          if (!t.equal(firstBadEntry(damaged, blockSize, 0), bad, `${where} of entry ${bad} damaged (${blockSize}-byte blocks)`)) return;
          t.equal(firstBadEntryEach(damaged, blockSize, 0), bad);
        }
      }
      // Two damaged entries: the first one is named.
      const twice = Buffer.from(good);
      twice[2 * (4 + blockSize) + 4]! ^= 1;
      twice[(count - 1) * (4 + blockSize) + 4]! ^= 1;
      t.equal(firstBadEntry(twice, blockSize, 0), 2, 'the first of two');
    }
  }
  t.equal(firstBadEntry(Buffer.alloc(0), 4096, 0), -1, 'no entries, nothing bad');
});

t.test('checksum: firstBadBlock finds the first block that fails its CRC kept apart, as the fallback does', async (t) => {
  t.ok(native().firstBadBlock, 'the addon’s path is what runs here');
  for (const blockSize of [1, 9, 4096, 65536]) {
    for (const seed of [0, 41]) {
      const count = blockSize > 4096 ? 4 : 9;
      const blocks = randomBytes(count * blockSize);
      const crcs = Buffer.alloc(count * 4 + 8, 0xee); // room to spare: only the first `count` count
      for (let i = 0; i < count; i++) crcs.writeUInt32LE(crc32c(blocks.subarray(i * blockSize, (i + 1) * blockSize), seed), 4 * i);
      for (const check of [firstBadBlock, firstBadBlockEach]) {
        t.equal(check(blocks, blockSize, crcs, seed), -1, `${count} good blocks of ${blockSize} bytes, seed ${seed}`);
        t.equal(check(blocks, blockSize, crcs, seed + 1), 0, 'not under another seed');
        for (const bad of [0, 1, count - 1]) {
          const damaged = Buffer.from(blocks);
          damaged[bad * blockSize + (bad % 2 ? blockSize - 1 : 0)]! ^= 0x10;
          t.equal(check(damaged, blockSize, crcs, seed), bad, `block ${bad} damaged`);
          const wrongCrc = Buffer.from(crcs);
          wrongCrc[4 * bad + 3]! ^= 1;
          t.equal(check(blocks, blockSize, wrongCrc, seed), bad, `CRC ${bad} damaged`);
        }
      }
    }
  }
  for (const check of [firstBadBlock, firstBadBlockEach]) {
    t.throws(() => check(Buffer.alloc(4097), 4096, Buffer.alloc(8), 0), { message: /not whole blocks/ });
    t.throws(() => check(Buffer.alloc(8192), 4096, Buffer.alloc(7), 0), { message: /fewer CRCs than blocks/ });
  }
  t.equal(firstBadBlock(Buffer.alloc(0), 4096, Buffer.alloc(0), 0), -1, 'no blocks, nothing bad');
});

t.test('checksum: firstBadEntry checks against the seed it is given', async (t) => {
  for (const check of [firstBadEntry, firstBadEntryEach]) {
    const seeded = entries(5, 4096, 0, 41);
    t.equal(check(seeded, 4096, 41), -1, 'entries of segment 41 pass as segment 41’s');
    t.equal(check(seeded, 4096, 42), 0, 'and fail as segment 42’s: a stale entry in a reused slot');
    t.equal(check(seeded, 4096, 0), 0, 'and as format 1’s');
    // Moved to seed 42 by reseedDelta, as copy-forward does: good stays good, bad stays bad.
    const moved = Buffer.from(seeded);
    moved[2 * 4100 + 9]! ^= 1;
    const delta = reseedDelta(4096, 41, 42);
    for (let i = 0; i < 5; i++) moved.writeUInt32LE((moved.readUInt32LE(i * 4100) ^ delta) >>> 0, i * 4100);
    t.equal(check(moved, 4096, 42), 2, 'copied forward under the new seed, only the damaged entry fails');
  }
});

t.test('checksum: firstBadEntry refuses what is not whole entries', async (t) => {
  const bytes = entries(2, 4096);
  for (const check of [firstBadEntry, firstBadEntryEach]) {
    t.throws(() => check(bytes.subarray(1), 4096, 0), { message: /not whole entries/ });
    t.throws(() => check(bytes, 0, 0), { message: /not whole entries/ });
  }
});
