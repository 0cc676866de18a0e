/**
 * The block map (lib/volume/block-map.ts) against the flat arrays it replaced (8 bytes for every
 * block of the volume, written or not), in one process, alternated round by round so that a
 * busy machine slows both alike: ns a block to set, to look up, and to extend a read's run
 * over contiguous entries, and bytes a block set, on a 1 GiB volume written all over and on a
 * 256 GiB one written thinly at random.
 *
 *   node dist/bench/experiments/block-map.js [--quick] [--runs N]
 */
import { BlockMap } from '../../lib/volume/block-map.js';
import { cell, runIfMain, summarize, type BenchResult, type Benchmark } from '../common.js';

/** The live index as it was: two Uint32Arrays over every block. */
class FlatMap {
  private readonly holders: Uint32Array;
  private readonly offsets: Uint32Array;
  holder = 0;
  offset = 0;

  constructor(readonly blocks: number) {
    this.holders = new Uint32Array(blocks);
    this.offsets = new Uint32Array(blocks);
  }

  get memoryBytes(): number {
    return this.holders.byteLength + this.offsets.byteLength;
  }

  find(block: number): boolean {
    const h = this.holders[block]!;
    if (h === 0) return false;
    this.holder = h - 1;
    this.offset = this.offsets[block]!;
    return true;
  }

  is(block: number, holder: number, offset: number): boolean {
    return this.holders[block] === holder + 1 && this.offsets[block] === offset;
  }

  set(block: number, holder: number, offset: number): void {
    this.holders[block] = holder + 1;
    this.offsets[block] = offset;
  }
}

type AnyMap = Pick<BlockMap, 'find' | 'is' | 'set' | 'holder' | 'offset' | 'memoryBytes'>;
const ENTRY = 4100;

function keys(count: number, blocks: number, seed: number): Uint32Array {
  let x = seed;
  return Uint32Array.from({ length: count }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % blocks;
  });
}

function ns(start: bigint, count: number): number {
  return Number(process.hrtime.bigint() - start) / count;
}

/** One round on one kind of map: random sets, random lookups, and runs read over a sequentially written map. */
function round(make: (blocks: number) => AnyMap, blocks: number, random: Uint32Array): Record<string, number> {
  const map = make(blocks);
  let start = process.hrtime.bigint();
  for (let i = 0; i < random.length; i++) map.set(random[i]!, i & 63, (i * ENTRY) % 2 ** 26);
  const set = ns(start, random.length);
  start = process.hrtime.bigint();
  let found = 0;
  for (let i = 0; i < random.length; i++) if (map.find(random[(i * 7) % random.length]!)) found += map.offset & 1;
  const find = ns(start, random.length);
  const written = new Set(random).size;
  const bytes = map.memoryBytes / written;

  const sequential = make(Math.min(blocks, 2 ** 18));
  const span = Math.min(blocks, 2 ** 18);
  for (let b = 0; b < span; b++) sequential.set(b, 3, 64 + b * ENTRY);
  start = process.hrtime.bigint();
  for (let b = 0; b < span; b += 32) {
    if (!sequential.find(b)) continue;
    const { holder, offset } = sequential;
    let run = 1;
    while (run < 32 && sequential.is(b + run, holder, offset + run * ENTRY)) run++;
    found += run;
  }
  const run = ns(start, span);
  return { set, find, run, bytes, found };
}

export const bench: Benchmark = {
  name: 'block-map',
  title: 'The block map against flat arrays',
  description:
    'The sparse block map of the live and snapshot indexes against the flat arrays it replaced, in one process, alternated: ns a block to set at random, to look up, and to extend a read over contiguous entries, and the bytes it takes for each block set.',
  async run(options): Promise<BenchResult> {
    const cases = [
      { name: '1 GiB volume, 2M random writes (all over)', blocks: 2 ** 18, writes: options.quick ? 20_000 : 2_000_000 },
      { name: '256 GiB volume, 1M random writes (thin)', blocks: 2 ** 26, writes: options.quick ? 10_000 : 1_000_000 },
    ];
    const rows: string[][] = [];
    for (const c of cases) {
      const random = keys(c.writes, c.blocks, 12345);
      const results: Record<'flat' | 'map', Record<string, number>[]> = { flat: [], map: [] };
      for (let r = 0; r < options.runs; r++) {
        results.flat.push(round((b) => new FlatMap(b), c.blocks, random));
        results.map.push(round((b) => new BlockMap(b), c.blocks, random));
      }
      for (const kind of ['flat', 'map'] as const) {
        const col = (k: string) => cell(summarize(results[kind].map((r) => r[k]!)));
        rows.push([c.name, kind === 'flat' ? 'flat arrays (before)' : 'block map', col('set'), col('find'), col('run'), col('bytes')]);
      }
    }
    return {
      tables: [
        {
          title: 'ns a block, and bytes a block set',
          columns: ['volume', 'index', 'set at random (ns)', 'look up (ns)', 'extend a run (ns a block)', 'bytes a block set'],
          rows,
          notes: ['each round builds a new map of each kind; the runs are read over a map written sequentially (256k blocks), as the live reader extends a request over contiguous entries.'],
        },
      ],
    };
  },
};

runIfMain(import.meta.url, bench);
