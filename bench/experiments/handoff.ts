/**
 * What it costs here to hand work from one thread to another and back: the round trip every
 * FUSE request makes between libfuse's thread and the server's event loop (libfuse's thread
 * wakes the loop with the request and sleeps; the loop wakes it with the answer). Two threads
 * take turns through a futex (Atomics.wait/notify); the first works `work` µs before each
 * turn, as a server does between request and answer. Measured with both threads free to run
 * on any CPU, and with both on one CPU (the process under `taskset`).
 *
 * On a VM whose idle vCPUs halt (no guest halt-polling), waking a thread that sleeps on another
 * vCPU costs the waker an IPI and the sleeper a vCPU wake-up: the round trip is then no longer
 * the work plus a few microseconds. BENCHMARKS.md's fuse-io notes relate this to salvo's
 * random-write IOPS.
 *
 *   node dist/bench/handoff.js [--quick] [--runs N]
 */
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { cell, exec, runIfMain, summarize, type BenchResult, type Benchmark, type Table } from '../common.js';

const WORK_US = [0, 5, 20, 40];

interface Turns {
  /** Mean time a turn took beyond its work (the hand-off there and back), µs. */
  roundTripUs: number;
  /** Mean time the waker spent inside Atomics.notify, µs. */
  notifyUs: number;
}

function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

function spin(us: number): void {
  const end = nowUs() + us;
  while (nowUs() < end);
}

/** In the child process: `turns` turns at each work, with a worker thread answering. */
async function measureTurns(turns: number): Promise<Record<number, Turns>> {
  const shared = new Int32Array(new SharedArrayBuffer(8)); // [0]: 1 = the worker's turn; [1]: 1 = stop
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const t = new Int32Array(workerData);
     for (;;) {
       Atomics.wait(t, 0, 0);
       if (Atomics.load(t, 1) === 1) break;
       Atomics.store(t, 0, 0);
       Atomics.notify(t, 0);
     }`,
    { eval: true, workerData: shared.buffer },
  );
  await new Promise<void>((resolve, reject) => worker.once('online', resolve).once('error', reject));
  const out: Record<number, Turns> = {};
  const turn = (): number => {
    Atomics.store(shared, 0, 1);
    const t0 = nowUs();
    Atomics.notify(shared, 0);
    const notified = nowUs() - t0;
    Atomics.wait(shared, 0, 1);
    return notified;
  };
  for (let i = 0; i < 200; i++) turn(); // the worker is running and both are compiled
  for (const work of WORK_US) {
    let notify = 0;
    const start = nowUs();
    for (let i = 0; i < turns; i++) {
      spin(work);
      notify += turn();
    }
    out[work] = { roundTripUs: (nowUs() - start) / turns - work, notifyUs: notify / turns };
  }
  Atomics.store(shared, 1, 1);
  Atomics.store(shared, 0, 1);
  Atomics.notify(shared, 0);
  await worker.terminate();
  return out;
}

async function child(pinned: boolean, turns: number): Promise<Record<number, Turns>> {
  const script = [fileURLToPath(import.meta.url), '--child', String(turns)];
  const { stdout } = pinned ? await exec('taskset', ['-c', '0', process.execPath, ...script], { timeoutMs: 120_000 }) : await exec(process.execPath, script, { timeoutMs: 120_000 });
  return JSON.parse(stdout) as Record<number, Turns>;
}

export const bench: Benchmark = {
  name: 'handoff',
  title: 'Handing a request between two threads',
  description:
    'The round trip every FUSE request makes between libfuse’s thread and the event loop, alone: two threads of one process take turns through a futex (Atomics.wait/notify), one of them working a set time before each turn as a server does between request and answer; with the threads free to run on any CPU, and with both on one CPU.',
  async run(options): Promise<BenchResult> {
    const turns = options.quick ? 300 : 5000;
    const free: Record<number, Turns>[] = [];
    const one: Record<number, Turns>[] = [];
    for (let run = 0; run < options.runs; run++) {
      free.push(await child(false, turns));
      one.push(await child(true, turns));
      options.log(`run ${run + 1}: ${WORK_US.map((w) => `${w} µs work: ${free.at(-1)![w]!.roundTripUs.toFixed(1)} / ${one.at(-1)![w]!.roundTripUs.toFixed(1)} µs`).join(', ')}`);
    }
    const us = (v: number) => v.toFixed(1);
    const col = (runs: Record<number, Turns>[], w: number, key: keyof Turns) => cell(summarize(runs.map((r) => r[w]![key])), us);
    const table: Table = {
      title: `hand-off round trip beside the work, ${turns} turns at each work, ${cpus().length} CPUs (µs)`,
      columns: ['work before each turn', 'round trip, threads on any CPU', 'round trip, both on one CPU', 'notify (the waker’s cost), any CPU', 'notify, one CPU'],
      rows: WORK_US.map((w) => [`${w} µs`, col(free, w, 'roundTripUs'), col(one, w, 'roundTripUs'), col(free, w, 'notifyUs'), col(one, w, 'notifyUs')]),
    };
    return {
      tables: [table],
      notes: ['round trip: time per turn less the work; one CPU: the process under `taskset -c 0`, so the hand-off is a context switch rather than a wake-up of another CPU.'],
    };
  },
};

// `child` runs this file again with --child: the measurement itself, in a process of its own.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--child') {
  process.stdout.write(JSON.stringify(await measureTurns(Number(process.argv[3]))));
} else {
  runIfMain(import.meta.url, bench);
}
