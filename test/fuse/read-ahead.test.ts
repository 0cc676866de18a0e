/**
 * The live image's read-ahead: a sequential reader is answered from the range read ahead,
 * and never with bytes a later write changed; other patterns read the volume directly.
 */
import t from 'tap';
import { ReadAhead } from '../../lib/fuse/read-ahead.js';
import type { Volume } from '../../lib/volume/volume.js';
import { createTempVolume } from '../helpers/temp-volume.js';

const CHUNK = 16 * 1024;
const idle = () => new Promise((resolve) => setImmediate(resolve));

function pattern(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (seed * 131 + i * 7) & 0xff;
  return b;
}

/** Counts the reads that go to the volume itself from now on. */
function countReads(volume: Volume): { count: number } {
  const counter = { count: 0 };
  const readInto = volume.readInto.bind(volume);
  volume.readInto = (target, position) => {
    counter.count++;
    readInto(target, position);
  };
  return counter;
}

/** A volume holding pattern `seed` everywhere, and a read-ahead over it. */
async function setUp(t: Parameters<typeof createTempVolume>[0], seed: number): Promise<{ volume: Volume; image: Buffer; ahead: ReadAhead; got: Buffer }> {
  const { volume } = await createTempVolume(t);
  const image = pattern(seed, volume.sizeBytes);
  await volume.write(image, 0);
  return { volume, image, ahead: new ReadAhead(volume), got: Buffer.alloc(CHUNK) };
}

t.test('sequential reads are answered from the range read ahead, with the right bytes', async (t) => {
  const { volume, image, ahead, got } = await setUp(t, 1);
  const direct = countReads(volume);
  ahead.readInto(got, 0);
  ahead.readInto(got, CHUNK);
  t.ok(got.equals(image.subarray(CHUNK, 2 * CHUNK)));
  await idle(); // the read-ahead of [2, 3) chunks runs here
  const before = direct.count;
  ahead.readInto(got, 2 * CHUNK);
  t.ok(got.equals(image.subarray(2 * CHUNK, 3 * CHUNK)), 'the prefetched bytes are the volume’s');
  t.equal(direct.count, before, 'answered by a copy of the range read ahead');
});

t.test('the read-ahead does not depend on the request buffer, which fuse-native detaches once answered', async (t) => {
  const { volume, image, ahead } = await setUp(t, 4);
  // Like fuse-native: each request's buffer is detached (length 0) as soon as it is answered.
  const request = (position: number): Buffer => {
    const memory = new ArrayBuffer(CHUNK);
    const target = Buffer.from(memory);
    ahead.readInto(target, position);
    const copy = Buffer.from(target);
    structuredClone(memory, { transfer: [memory] });
    return copy;
  };
  request(0);
  request(CHUNK);
  await idle();
  const direct = countReads(volume);
  t.ok(request(2 * CHUNK).equals(image.subarray(2 * CHUNK, 3 * CHUNK)));
  t.equal(direct.count, 0, 'answered from the range read ahead');
});

t.test('a write after the read-ahead is never hidden by it', async (t) => {
  const { volume, ahead, got } = await setUp(t, 1);
  ahead.readInto(got, 0);
  ahead.readInto(got, CHUNK);
  await idle();
  const fresh = pattern(2, CHUNK);
  await volume.write(fresh, 2 * CHUNK);
  ahead.readInto(got, 2 * CHUNK);
  t.ok(got.equals(fresh), 'the new bytes, not the prefetched ones');
});

t.test('random reads never read ahead', async (t) => {
  const { volume, image, ahead, got } = await setUp(t, 3);
  const direct = countReads(volume);
  for (const chunk of [5, 1, 9, 3, 12]) {
    ahead.readInto(got, chunk * CHUNK);
    t.ok(got.equals(image.subarray(chunk * CHUNK, (chunk + 1) * CHUNK)));
    await idle();
  }
  t.equal(direct.count, 5, 'one read of the volume per request, none ahead');
});
