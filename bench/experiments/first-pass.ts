/**
 * A new volume's first pass through its slots against its second (an experiment, not one of the
 * benchmarks `npm run bench` runs):
 *
 *   node dist/bench/experiments/first-pass.js [--rounds N] [--dio] [--iodepth 4] [--size 1G] [--segment-size 64M]
 *                                             [--builds dirA,dirB] [--idle S] [--bw-log dir] [--perf]
 *
 * Each round, for each build (a directory holding `dist/`, `node_modules` and `build/`; default:
 * this one) in turn: `salvo init` a fresh volume, mount it, and write its image sequentially
 * with fio (1 MiB, direct=1, libaio, end_fsync) through a loop device until the log has gone
 * through every slot once (working set + spares segments), then, once the archive has caught
 * up, the same again: the first pass writes into fresh, sparse slot files, the second into
 * slots that have each held a segment. Reports each pass's rate and the ratio of the first to
 * the second, run by run, and the CPU time each pass took per GiB written (machine and mount).
 * `--idle S` leaves the fresh volume mounted and idle S seconds before its first pass.
 */
import fs from 'node:fs';
import path from 'node:path';
import { controlRequest } from '../../lib/agent/control.js';
import { parseSize } from '../../lib/cli/units.js';
import { GiB, MiB, archiveCatchUp, attachLoop, cell, exec, fuseLoopUnavailable, runIfMain, salvoMount, sleep, summarize, withCleanup, type Benchmark, type Table } from '../common.js';
import { fioArgs } from '../fio.js';
import { recordPerf, summarizePerf } from './perf-profile.js';

interface Options {
  rounds: number;
  dio: boolean;
  iodepth: number;
  sizeBytes: number;
  segmentSize: string;
  builds: string[];
  /** fio's bandwidth log of each pass (250 ms averages) into this directory. */
  bwLog: string | null;
  /** perf record of the whole machine for PERF_SECONDS of each pass, from PERF_AFTER_SECONDS in. */
  perf: boolean;
  /** Seconds the fresh volume stays mounted and idle before its first pass. */
  idleSeconds: number;
}

const PERF_AFTER_SECONDS = 3;
const PERF_SECONDS = 5;

interface PassResult {
  mbps: number;
  seconds: number;
  stalls: number;
  stalledMs: number;
}

interface Status {
  workingSetSegments: number;
  segmentSizeBytes: number;
  writeStalls: { count: number; totalMs: number };
}

function parse(args: readonly string[]): Options {
  const o: Options = { rounds: 3, dio: false, iodepth: 4, sizeBytes: GiB, segmentSize: '64M', builds: [], bwLog: null, perf: false, idleSeconds: 0 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--rounds') o.rounds = Number(args[++i]);
    else if (a === '--dio') o.dio = true;
    else if (a === '--iodepth') o.iodepth = Number(args[++i]);
    else if (a === '--size') o.sizeBytes = parseSize(args[++i]!, '--size');
    else if (a === '--segment-size') o.segmentSize = args[++i]!;
    else if (a === '--builds') o.builds = args[++i]!.split(',');
    else if (a === '--bw-log') o.bwLog = path.resolve(args[++i]!);
    else if (a === '--perf') o.perf = true;
    else if (a === '--idle') o.idleSeconds = Number(args[++i]);
    else throw new Error(`first-pass: unknown option ${a}`);
  }
  return o;
}

/** One fio pass of `bytes` over the device (wrapping round the image); its rate. */
async function pass(device: string, o: Options, bytes: number, logPrefix: string | null): Promise<{ mbps: number; seconds: number }> {
  const args = fioArgs({ name: 'first-pass', rw: 'write', blockSize: '1M', iodepth: o.iodepth, sizeBytes: o.sizeBytes, endFsync: true, fallocateNone: true }, device);
  args.push(`--io_size=${bytes}`);
  if (logPrefix) args.push(`--write_bw_log=${logPrefix}`, '--log_avg_msec=250');
  const { stdout } = await exec('fio', [...args, '--output-format=json'], { timeoutMs: 900_000 });
  const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { jobs: { job_runtime: number; write: { bw_bytes: number; io_bytes: number } }[] };
  const j = report.jobs[0]!;
  return { mbps: j.write.bw_bytes / 1e6, seconds: j.job_runtime / 1000 };
}

function cpuTimes(pid: number): { busy: number; idle: number; mount: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  const busy = f.slice(0, 8).reduce((a, b) => a + b, 0) - idle;
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return { busy: busy / 100, idle: idle / 100, mount: (Number(fields[11]) + Number(fields[12])) / 100 };
}

async function status(socket: string): Promise<Status> {
  return (await controlRequest<{ status: Status }>(socket, { cmd: 'status' }, 10_000)).status;
}

/** A fresh volume of `build`: its first and second pass (with --perf, where the machine's time went in each, into `perfTables`). */
async function volumePasses(o: Options, build: string, workDir: string, log: (m: string) => void, tag: string, perfTables: Table[]): Promise<PassResult[]> {
  return withCleanup(log, async (cleanup) => {
    const base = fs.mkdtempSync(path.join(workDir, 'v-'));
    cleanup.add(`rm -r ${base}`, () => fs.promises.rm(base, { recursive: true, force: true }));
    const cli = path.join(build, 'dist/bin/salvo.js');
    const mount = await salvoMount(cleanup, base, { size: String(o.sizeBytes), segmentSize: o.segmentSize }, { cli });
    const device = (await attachLoop(cleanup, mount.image, { directIo: o.dio })).device;
    const first = await status(mount.socket);
    const slots = fs.readdirSync(path.join(mount.dir, 'slots')).filter((f) => f.endsWith('.slot')).length;
    const passBytes = slots * first.segmentSizeBytes;
    const out: PassResult[] = [];
    if (o.idleSeconds > 0) await sleep(o.idleSeconds * 1000);
    for (let p = 1; p <= 2; p++) {
      await exec('sync', []);
      const before = await status(mount.socket);
      const perfFile = path.join(base, `perf-${p}.data`);
      const recorded = o.perf ? sleep(PERF_AFTER_SECONDS * 1000).then(() => recordPerf(perfFile, PERF_SECONDS)) : null;
      const cpu0 = cpuTimes(mount.pid);
      const r = await pass(device, o, passBytes, o.bwLog ? path.join(o.bwLog, `${tag.replaceAll(' ', '-')}-pass${p}`) : null);
      const cpu1 = cpuTimes(mount.pid);
      log(`${tag} pass ${p} CPU s per GiB written: machine busy ${((cpu1.busy - cpu0.busy) / (passBytes / GiB)).toFixed(2)} (idle ${((cpu1.idle - cpu0.idle) / (passBytes / GiB)).toFixed(2)}), mount ${((cpu1.mount - cpu0.mount) / (passBytes / GiB)).toFixed(2)}`);
      if (recorded) {
        await recorded;
        perfTables.push(...(await summarizePerf(perfFile, mount.pid, PERF_SECONDS)).map((t) => ({ ...t, title: `${tag}, pass ${p}: ${t.title}` })));
      }
      const after = await status(mount.socket);
      const stalls = after.writeStalls.count - before.writeStalls.count;
      const stalledMs = after.writeStalls.totalMs - before.writeStalls.totalMs;
      out.push({ ...r, stalls, stalledMs });
      log(`${tag} pass ${p}: ${r.mbps.toFixed(0)} MB/s over ${(passBytes / MiB).toFixed(0)} MiB (${slots} slots), ${r.seconds.toFixed(1)} s, writes stalled ${stalls} times, ${stalledMs} ms`);
      const caughtUp = await archiveCatchUp(mount.socket);
      log(`${tag} archive caught up in ${caughtUp.toFixed(1)} s`);
    }
    return out;
  });
}

export const bench: Benchmark = {
  name: 'first-pass',
  title: 'A new volume’s first pass through its slots',
  description: 'fio sequential 1 MiB writes through a loop device on a fresh volume’s image: the first pass through every slot, then the second.',
  async run(options) {
    const unavailable = await fuseLoopUnavailable();
    if (unavailable) return { tables: [], skipped: unavailable };
    const o = parse(options.args);
    const builds = o.builds.length > 0 ? o.builds.map((b) => path.resolve(b)) : [path.resolve(import.meta.dirname, '../../..')];
    const perfTables: Table[] = [];
    const results = new Map<string, PassResult[][]>(builds.map((b) => [b, []]));
    for (let round = 1; round <= o.rounds; round++) {
      for (const b of builds) {
        const tag = `round ${round} ${path.basename(b)}`;
        results.get(b)!.push(await volumePasses(o, b, options.workDir, options.log, tag, perfTables));
      }
    }
    const table: Table = {
      title: `sequential 1 MiB writes, iodepth ${o.iodepth}, ${o.dio ? '--direct-io=on' : 'buffered'} loop device, ${o.sizeBytes / MiB} MiB volume of ${o.segmentSize} segments; median (min–max) over ${o.rounds} rounds`,
      columns: ['build', 'first pass (MB/s)', 'second pass (MB/s)', 'first ÷ second', 'first pass by round', 'ratio by round'],
      rows: builds.map((b) => {
        const rs = results.get(b)!;
        return [
          path.basename(b),
          cell(summarize(rs.map((r) => r[0]!.mbps))),
          cell(summarize(rs.map((r) => r[1]!.mbps))),
          cell(summarize(rs.map((r) => r[0]!.mbps / r[1]!.mbps)), (x) => x.toFixed(2), '×'),
          rs.map((r) => r[0]!.mbps.toFixed(0)).join(', '),
          rs.map((r) => (r[0]!.mbps / r[1]!.mbps).toFixed(2)).join(', '),
        ];
      }),
    };
    return { tables: [table, ...perfTables], notes: [`stalls (writes waiting for a blank slot): ${builds.map((b) => results.get(b)!.map((r) => `${r[0]!.stalls}/${r[1]!.stalls}`).join(' ')).join(' | ')}`] };
  },
};

runIfMain(import.meta.url, bench);

