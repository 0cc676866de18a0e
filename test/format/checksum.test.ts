import { randomBytes } from 'node:crypto';
import t from 'tap';
import { crc32c, crc32cBlocks, crc32cEachBlock, firstBadEntry, firstBadEntryEach } from '../../lib/format/checksum.js';
import { native } from '../../lib/util/native.js';

t.test('checksum: crc32c is CRC-32C (Castagnoli)', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  t.equal(crc32c(Buffer.alloc(0)), 0);
});

t.test('checksum: crc32cBlocks gives each block the CRC that crc32c gives it', async (t) => {
  t.ok(native().crc32cBlocks, 'this machine’s CPU has the CRC instruction, so the addon’s batched path is what runs here');
  // Sizes around the addon's three-stream rounds (3 × 256 bytes) and its 8-byte steps, real block sizes, and data
  // that starts at every alignment.
  const sizes = [1, 7, 8, 9, 255, 256, 767, 768, 769, 1536, 2311, 4096, 4099, 8192, 65536];
  for (const size of sizes) {
    for (const misalign of [0, 1, 3, 7]) {
      const count = size > 8192 ? 2 : 5;
      const data = randomBytes(misalign + size * count).subarray(misalign);
      const batched = Buffer.alloc(8 + 4 * count, 0xee);
      crc32cBlocks(data, size, batched, 8);
      const each = Buffer.alloc(8 + 4 * count, 0xee);
      crc32cEachBlock(data, size, each, 8);
      const expected = Array.from({ length: count }, (_, i) => crc32c(data.subarray(i * size, (i + 1) * size)));
      const got = Array.from({ length: count }, (_, i) => batched.readUInt32LE(8 + 4 * i));
      if (!t.same(got, expected, `blocks of ${size} bytes at offset ${misalign}`)) return;
      t.ok(batched.equals(each), 'the fallback writes the same bytes');
      t.same(batched.subarray(0, 8), Buffer.alloc(8, 0xee), 'and nothing before outOffset');
    }
  }
  const zero = Buffer.alloc(4096);
  const out = Buffer.alloc(4);
  crc32cBlocks(zero, 4096, out, 0);
  t.equal(out.readUInt32LE(0), crc32c(zero), 'a block of zeros');
});

t.test('checksum: crc32cBlocks refuses what is not whole blocks or does not fit', async (t) => {
  const data = Buffer.alloc(4096 * 2);
  t.throws(() => crc32cBlocks(data, 4096, Buffer.alloc(7), 0), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => crc32cBlocks(data, 4096, Buffer.alloc(8), 4), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => crc32cBlocks(data.subarray(1), 4096, Buffer.alloc(8), 0), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => crc32cBlocks(data, 0, Buffer.alloc(8), 0), { code: 'ERR_OUT_OF_RANGE' });
});

/** `count` block entries of `blockSize` bytes (a CRC32C, then the block), all valid. */
function entries(count: number, blockSize: number, misalign = 0): Buffer {
  const bytes = randomBytes(misalign + count * (4 + blockSize)).subarray(misalign);
  for (let i = 0; i < count; i++) {
    const at = i * (4 + blockSize);
    bytes.writeUInt32LE(crc32c(bytes.subarray(at + 4, at + 4 + blockSize)), at);
  }
  return bytes;
}

t.test('checksum: firstBadEntry finds the first entry whose block fails its CRC, as the fallback does', async (t) => {
  t.ok(native().firstBadEntry, 'the addon’s path is what runs here');
  for (const blockSize of [1, 9, 512, 769, 4096, 65536]) {
    for (const misalign of [0, 3]) {
      const count = blockSize > 4096 ? 4 : 9;
      const good = entries(count, blockSize, misalign);
      t.equal(firstBadEntry(good, blockSize), -1, `${count} good entries of ${blockSize} bytes at offset ${misalign}`);
      t.equal(firstBadEntryEach(good, blockSize), -1);
      for (const bad of [0, 1, count - 1]) {
        for (const where of ['crc', 'first byte', 'last byte'] as const) {
          const damaged = Buffer.from(good);
          const at = bad * (4 + blockSize) + (where === 'crc' ? 1 : where === 'first byte' ? 4 : 3 + blockSize);
          damaged[at]! ^= 0x10;
          if (!t.equal(firstBadEntry(damaged, blockSize), bad, `${where} of entry ${bad} damaged (${blockSize}-byte blocks)`)) return;
          t.equal(firstBadEntryEach(damaged, blockSize), bad);
        }
      }
      // Two damaged entries: the first one is named.
      const twice = Buffer.from(good);
      twice[2 * (4 + blockSize) + 4]! ^= 1;
      twice[(count - 1) * (4 + blockSize) + 4]! ^= 1;
      t.equal(firstBadEntry(twice, blockSize), 2, 'the first of two');
    }
  }
  t.equal(firstBadEntry(Buffer.alloc(0), 4096), -1, 'no entries, nothing bad');
});

t.test('checksum: firstBadEntry refuses what is not whole entries', async (t) => {
  const bytes = entries(2, 4096);
  for (const check of [firstBadEntry, firstBadEntryEach]) {
    t.throws(() => check(bytes.subarray(1), 4096), { message: /not whole entries/ });
    t.throws(() => check(bytes, 0), { message: /not whole entries/ });
  }
});
