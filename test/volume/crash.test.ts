/**
 * kill -9 at random moments while a child process writes and discards: after reopening, every
 * write and discard the child had acknowledged is there (or a newer write the kill interrupted
 * before its ack), and every synch point taken before the kill is still in the catalog.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { Volume } from '../../lib/volume/volume.js';
import { SMALL_POLICY, prng, tempDir } from '../helpers/temp-volume.js';

const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../helpers/crash-writer.ts');

function runAndKill(dir: string, seed: number, firstValue: number, afterMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, WRITER, dir, String(seed), String(firstValue)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // Kill only once it is writing, at a random moment after that.
    const started = setInterval(() => {
      if (out.includes('ack')) {
        clearInterval(started);
        setTimeout(() => child.kill('SIGKILL'), afterMs);
      }
    }, 5);
    child.on('exit', (code, signal) => {
      clearInterval(started);
      if (signal === 'SIGKILL') resolve(out);
      else reject(new Error(`writer exited ${code}: ${err}`));
    });
  });
}

t.test('crash: kill -9 during writes loses no acknowledged write', async (t) => {
  const dir = path.join(tempDir(t), 'volume');
  await Volume.create(dir, { ...SMALL_POLICY, sizeBytes: 256 * 4096, workingSetSegments: 16, archive: 'memory://test', store: new MemoryStore() });
  const random = prng(Number(process.env.SEED ?? 7));
  const newest = new Map<number, number>(); // block → newest acknowledged value
  const discarded = new Set<number>(); // blocks whose newest acknowledged operation is a discard (they read 0)
  const synchs: number[] = [];
  let acknowledged = 0;
  let discards = 0;
  for (let round = 0; round < 8; round++) {
    const out = await runAndKill(dir, round + 1, (round + 1) * 10_000_000, Math.floor(random() * 400));
    const lines = out.split('\n');
    lines.pop(); // a line cut by the kill is not an acknowledgement
    // A discard the kill interrupted may have landed without its ack: its blocks may read 0.
    let inFlight: { block: number; count: number } | null = null;
    for (const line of lines) {
      const [kind, a, b, c] = line.split(' ');
      inFlight = kind === 'discarding' ? { block: Number(a), count: Number(b) } : null;
      if (kind === 'ack' || kind === 'discard') {
        for (let i = 0; i < Number(b); i++) {
          newest.set(Number(a) + i, Number(c));
          if (kind === 'discard') discarded.add(Number(a) + i);
          else discarded.delete(Number(a) + i);
        }
        acknowledged++;
        if (kind === 'discard') discards++;
      } else if (kind === 'synch') synchs.push(Number(a));
    }
    const volume = await Volume.open(dir, { store: new MemoryStore(), onStall: () => undefined });
    for (const [block, value] of newest) {
      const found = volume.read(block * 4096, 4096).readUInt32LE(0);
      // A write in flight at the kill may have landed without its ack: newer, never older.
      const cut = inFlight !== null && block >= inFlight.block && block < inFlight.block + inFlight.count;
      if (found === 0 && (discarded.has(block) || cut)) {
        discarded.add(block);
        continue;
      }
      if (found < value) t.fail(`round ${round}: block ${block} holds ${found}, acknowledged ${discarded.has(block) ? 'a discard' : 'write'} ${value}`);
      newest.set(block, found);
      discarded.delete(block);
    }
    const catalog = new Set(volume.catalog.all.map((p) => p.recordSequence));
    t.ok(synchs.every((s) => catalog.has(s)), `round ${round}: all ${synchs.length} synch points survive`);
    await volume.close();
  }
  t.ok(acknowledged > 500, `${acknowledged} acknowledged writes and discards checked over 8 kills`);
  t.ok(discards > 20, `${discards} of them discards`);
});
