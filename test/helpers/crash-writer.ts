/**
 * Child process for the crash test: writes blocks to a volume as fast as it can and prints
 * `ack <block> <count> <value>` after each acknowledged write, `discarding …` before and
 * `discard <block> <count> <value>` after each acknowledged discard (one operation in ten; the
 * blocks then read as zeros, and may already when the kill comes in between), and
 * `synch <time> <n>` after each synch point, until it is killed. The parent kills it with
 * SIGKILL at a random moment.
 */
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { Volume } from '../../lib/volume/volume.js';
import { prng } from './temp-volume.js';

const [dir, seedText, firstText] = process.argv.slice(2);
const random = prng(Number(seedText));
const volume = await Volume.open(dir!, { store: new MemoryStore(), onStall: () => undefined });
const blocks = volume.sizeBytes / 4096;
const data = Buffer.alloc(4 * 4096);
// Values keep increasing across runs, so a newer write always carries a larger value.
for (let value = Number(firstText); ; value++) {
  const block = Math.floor(random() * (blocks - 4));
  const count = 1 + Math.floor(random() * 4);
  if (value % 10 === 0) {
    process.stdout.write(`discarding ${block} ${count} ${value}\n`);
    await volume.discard(block * 4096, count * 4096);
    process.stdout.write(`discard ${block} ${count} ${value}\n`);
    continue;
  }
  for (let i = 0; i < count; i++) data.fill(0, i * 4096, (i + 1) * 4096).writeUInt32LE(value, i * 4096);
  await volume.write(data.subarray(0, count * 4096), block * 4096);
  process.stdout.write(`ack ${block} ${count} ${value}\n`);
  if (value % 200 === 0) process.stdout.write(`synch ${(await volume.synch()).recordSequence} ${value}\n`);
}
