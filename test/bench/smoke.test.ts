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
  const leftovers = (await run('losetup', ['-a'])).stdout.split('\n').filter((l) => l.includes('salvo-bench'));
  t.same(leftovers, [], 'no loop device left attached');
});

t.test('bench: fuse-io --async-dio preloads its shim into every FUSE server, the thread-pool pass-through among them', async (t) => {
  if (!systemReady(t)) return;
  const args = ['--quick', '--dio', '--async-dio', '--targets', 'pool,salvo'];
  const result = await run(process.execPath, [path.join(ROOT, 'dist/bench/fuse-io.js'), ...args], { timeoutMs: 300_000 });
  // fuse-io stops with an error unless each server's INIT reply carried FUSE_ASYNC_DIO.
  t.equal(result.code, 0, `fuse-io ${args.join(' ')}: ${result.stderr.slice(-2000)}`);
  t.match(result.stdout, /FUSE_ASYNC_DIO forced/, 'its tables say so');
  t.match(result.stdout, /salvo\/pool/, 'salvo is compared with the thread-pool pass-through');
  const leftovers = (await run('losetup', ['-a'])).stdout.split('\n').filter((l) => l.includes('salvo-bench'));
  t.same(leftovers, [], 'no loop device left attached');
});

t.test('bench: fuse-io --pin pins the other FUSE servers’ libfuse threads beside their main thread, mounts salvo with --cpu 0, and says so', async (t) => {
  if (!systemReady(t)) return;
  const args = ['--quick', '--pin', '--targets', 'memory,salvo'];
  const result = await run(process.execPath, [path.join(ROOT, 'dist/bench/fuse-io.js'), ...args], { timeoutMs: 300_000 });
  // fuse-io stops with an error where a server has no thread waiting for a FUSE request to pin.
  t.equal(result.code, 0, `fuse-io ${args.join(' ')}: ${result.stderr.slice(-2000)}`);
  t.match(result.stdout, /pinned to CPU 0 \(salvo with its --cpu 0\)/, 'its tables say so');
  t.match(result.stdout, /salvo\/memory/, 'salvo is compared with the in-memory file');
});
