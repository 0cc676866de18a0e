/**
 * Seeded fault tests run many seeds and name each failing one; `SEED=n` replays one exactly, and
 * an environment variable sets how many run (a longer run is one command).
 */

/** Runs `runSeed` for each seed; the failures as lines (a seed that throws names itself like one that fails a check). */
export async function runSeeds(countVar: string, defaultCount: number, runSeed: (seed: number) => Promise<string | null>): Promise<{ failures: string[]; seeds: number; first: number }> {
  const first = Number(process.env.SEED ?? 1);
  const seeds = process.env.SEED ? 1 : Number(process.env[countVar] ?? defaultCount);
  const failures: string[] = [];
  for (let seed = first; seed < first + seeds; seed++) {
    const failure = await runSeed(seed).catch((err: Error) => `seed ${seed}: ${err.message}`);
    if (failure) failures.push(failure);
  }
  return { failures, seeds, first };
}
