/**
 * Synch-point latency through a real mount: a salvo volume served by `salvo mount --daemon`,
 * a loop device on its live image, ext4 on that, mounted. Measured, each many times:
 *
 *   control request   one `sync` request on the mount's control socket (lib/agent/control.ts),
 *                     what the agent's own work costs: SYNCH record, fdatasync, tail queued
 *   status request    one `status` request on the same socket: no synch point, so what the
 *                     socket and the mount's event loop (busy serving fio) cost alone
 *   salvo sync        the CLI (`salvo sync <mnt> --json`): Node start-up included
 *   salvo sync --freeze   the CLI with fsfreeze -f / -u of the ext4 around the request
 *
 * on an idle filesystem, and on a busy one (fio writing 4 KiB blocks at random, O_DIRECT,
 * queue depth 16, into a file on the ext4, in the background).
 *
 *   node dist/bench/synch-latency.js [--quick] [--samples N]
 */
import fs from 'node:fs';
import path from 'node:path';
import { controlRequest } from '../lib/agent/control.js';
import {
  MiB,
  attachLoop,
  fuseLoopUnavailable,
  makeExt4,
  mountFs,
  ms,
  num,
  percentile,
  runIfMain,
  salvo,
  salvoMount,
  sleep,
  withCleanup,
  type BenchOptions,
  type BenchResult,
  type Benchmark,
} from './common.js';
import { fioInBackground, runFio, type FioJob } from './fio.js';

interface Settings {
  samples: number;
  cliSamples: number;
  pauseMs: number;
  size: string;
}

function settings(options: BenchOptions): Settings {
  const s: Settings = options.quick ? { samples: 2, cliSamples: 1, pauseMs: 10, size: '64M' } : { samples: 200, cliSamples: 20, pauseMs: 100, size: '512M' };
  const a = options.args;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--samples') s.samples = s.cliSamples = Number(a[++i]);
    else throw new Error(`synch-latency: unknown option ${a[i]}`);
  }
  return s;
}

async function timeEach(n: number, pauseMs: number, what: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = process.hrtime.bigint();
    await what();
    out.push(Number(process.hrtime.bigint() - started) / 1e6);
    await sleep(pauseMs);
  }
  return out;
}

export const bench: Benchmark = {
  name: 'synch-latency',
  title: 'Synch-point latency',
  description:
    'p50/p99 of a synch point: the control-socket request alone, the `salvo sync` CLI, and the CLI with --freeze of an ext4 on the volume; on an idle filesystem and with fio writing into it.',
  async run(options): Promise<BenchResult> {
    const unavailable = await fuseLoopUnavailable();
    if (unavailable) return { tables: [], skipped: unavailable };
    const s = settings(options);
    const { log, workDir } = options;
    return withCleanup(log, async (cleanup) => {
      const mount = await salvoMount(cleanup, workDir, { size: s.size, segmentSize: options.quick ? '2M' : '16M', segments: options.quick ? 48 : 48 });
      const loop = await attachLoop(cleanup, mount.image);
      await makeExt4(loop.device);
      const fsDir = path.join(workDir, 'fs');
      await mountFs(cleanup, loop.device, fsDir);
      // Something in the filesystem, so a freeze has metadata to write.
      fs.mkdirSync(path.join(fsDir, 'data'));
      for (let i = 0; i < 16; i++) await fs.promises.writeFile(path.join(fsDir, 'data', `f${i}`), Buffer.alloc(256 * 1024, i));

      const rows: { name: string; state: string; ms: number[] }[] = [];
      const control = () => controlRequest(mount.socket, { cmd: 'sync', label: null, info: { agent: 'bench' } });
      const status = () => controlRequest(mount.socket, { cmd: 'status' });
      const cli = () => salvo(['sync', mount.mountpoint, '--json']);
      const cliFreeze = () => salvo(['sync', mount.mountpoint, '--freeze', fsDir, '--json']);
      const measureAll = async (state: string) => {
        rows.push({ name: 'control request', state, ms: await timeEach(s.samples, s.pauseMs, control) });
        rows.push({ name: 'status request (no synch)', state, ms: await timeEach(s.samples, s.pauseMs, status) });
        log(`${state}: control requests done`);
        rows.push({ name: 'salvo sync (CLI)', state, ms: await timeEach(s.cliSamples, s.pauseMs, cli) });
        rows.push({ name: 'salvo sync --freeze (CLI)', state, ms: await timeEach(s.cliSamples, s.pauseMs, cliFreeze) });
        log(`${state}: CLI done`);
      };

      await measureAll('idle');

      const fileBytes = options.quick ? 16 * MiB : 128 * MiB;
      const job: FioJob = { name: 'salvo-bench-busy', rw: 'randwrite', blockSize: '4k', iodepth: 16, sizeBytes: fileBytes, runtimeSeconds: 3600, fallocateNone: true };
      const busyFile = path.join(fsDir, 'busy.dat');
      await runFio({ ...job, rw: 'write', blockSize: '1M', runtimeSeconds: undefined }, busyFile); // lay the file out
      const baseline = await runFio({ ...job, runtimeSeconds: options.quick ? 0.3 : 2 }, busyFile);
      const fio = fioInBackground(job, busyFile);
      const stopFio = cleanup.add('stop background fio', () => fio.stop());
      await sleep(500);
      try {
        await measureAll('busy (fio randwrite 4k QD16 O_DIRECT)');
      } finally {
        await stopFio();
      }

      const table = {
        title: `synch-point latency (ms): ${s.size} volume, ext4 on a loop device on the live image`,
        columns: ['what', 'filesystem', 'n', 'p50', 'p99', 'min', 'max'],
        rows: rows.map((r) => [r.name, r.state, String(r.ms.length), ms(percentile(r.ms, 50)), ms(percentile(r.ms, 99)), ms(Math.min(...r.ms)), ms(Math.max(...r.ms))]),
        notes: [
          `busy: fio on a ${num(fileBytes / MiB)} MiB file in the ext4 managed ${num(baseline.iops)} IOPS alone just before; the synch points are taken while it runs.`,
          `a pause of ${s.pauseMs} ms between samples; p99 is the nearest-rank percentile: of ${s.samples} control requests ${nthSlowest(s.samples)}, of ${s.cliSamples} CLI runs ${nthSlowest(s.cliSamples)}.`,
          'the CLI times include starting Node and loading salvo (the cost any agent pays per invocation); the control request is what the mount itself spends, the status request the part of it that is the socket and the wait for the mount’s event loop.',
        ],
      };
      return { tables: [table] };
    });
  },
};

runIfMain(import.meta.url, bench);

/** Which sample the nearest-rank p99 of `n` is, counted from the slowest. */
function nthSlowest(n: number): string {
  const k = n - Math.ceil(0.99 * n) + 1;
  return k === 1 ? 'the slowest' : `the ${k}${k === 2 ? 'nd' : k === 3 ? 'rd' : 'th'} slowest`;
}
