/**
 * The benchmarks run on tiny inputs so they cannot rot (their numbers are not checked here:
 * speed is measured by `npm run bench`, never by a timed test).
 */
import path from 'node:path';
import t from 'tap';
import { ROOT, run, systemReady } from '../helpers/system.js';

t.test('bench: every benchmark runs on tiny inputs and cleans up after itself', async (t) => {
  if (!systemReady(t)) return;
  const result = await run(process.execPath, [path.join(ROOT, 'dist/bench/run.js'), '--quick'], { timeoutMs: 300_000 });
  t.equal(result.code, 0, `npm run bench -- --quick: ${result.stderr.slice(-2000)}`);
  t.match(result.stdout, /engine/, 'it printed the tables');
  t.match(result.stdout, /big-volume/, 'big-volume too (64 MiB and 1 GiB volumes at --quick)');
  const leftovers = (await run('losetup', ['-a'])).stdout.split('\n').filter((l) => l.includes('salvo-bench'));
  t.same(leftovers, [], 'no loop device left attached');
});

t.test('bench: the experiments run on tiny inputs too', async (t) => {
  if (!systemReady(t)) return;
  for (const [script, pattern] of [
    ['experiments/profile.js', /self time/i],
    ['experiments/handoff.js', /round trip/],
    ['experiments/block-map.js', /block map/],
    ['experiments/slot-descriptors.js', /slot descriptors: [\s\S]*pool 4: \d+k/],
  ] as const) {
    const result = await run(process.execPath, [path.join(ROOT, 'dist/bench', script), '--quick'], { timeoutMs: 300_000 });
    t.equal(result.code, 0, `${script} --quick: ${result.stderr.slice(-2000)}`);
    t.match(result.stdout, pattern, `${script} printed its tables`);
  }
  const leftovers = (await run('losetup', ['-a'])).stdout.split('\n').filter((l) => l.includes('salvo-bench'));
  t.same(leftovers, [], 'no loop device left attached');
});
