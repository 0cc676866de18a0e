/**
 * Runs the benchmarks and prints their tables (`npm run bench`).
 *
 *   node dist/bench/run.js                    every benchmark, 3 runs of each measurement
 *   node dist/bench/run.js --quick            tiny inputs, one run: a smoke test (seconds)
 *   node dist/bench/run.js --only fuse-io     one benchmark (a comma-separated list works too)
 *   node dist/bench/run.js --runs 5           more repetitions
 *   node dist/bench/run.js --save             also write the results into BENCHMARKS.md
 *   node dist/bench/run.js --compare          each figure beside the one BENCHMARKS.md holds
 *
 * With --save, each benchmark's section of BENCHMARKS.md (between its markers) is replaced
 * (hand-written notes between `<!-- notes:<name>:start/end -->` markers after it are kept)
 * and the others are kept, so `--only x --save` refreshes one section. Each section says
 * when, on what machine and with which command it was measured.
 *
 * Benchmark-specific flags go after `--`: `node dist/bench/run.js --only fuse-io -- --size 4G`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DIST_DIR, machineInfo, parseCommonArgs, renderResult, runBenchmark, type BenchResult, type Benchmark } from './common.js';
import { compareWithSaved } from './compare.js';
import { bench as archiveOpen } from './archive-open.js';
import { bench as bigVolume } from './big-volume.js';
import { bench as engine } from './engine.js';
import { bench as fuseIo } from './fuse-io.js';
import { bench as memory } from './memory.js';
import { bench as openPast } from './open-past.js';
import { bench as peers } from './peers.js';
import { bench as retention } from './retention.js';
import { bench as discard } from './discard.js';
import { bench as synchLatency } from './synch-latency.js';
import { bench as tails } from './tails.js';

export const BENCHMARKS: Benchmark[] = [engine, openPast, archiveOpen, tails, memory, synchLatency, fuseIo, peers, retention, discard, bigVolume];

const BENCHMARKS_FILE = path.resolve(DIST_DIR, '../../BENCHMARKS.md');

const HEADER = `# Benchmarks

Measured by \`bench/\` (\`npm run bench\`; \`node dist/bench/run.js --only <name> --save\` refreshes one
section). Each section names the machine, the date and the command. Cells are medians of the runs
with the range (min–max) in brackets; ratios compare measurements taken in the same round.
These are single runs on a shared 2-core machine: read differences under ~15% as noise.
`;

function usage(): string {
  return `usage: node dist/bench/run.js [--quick] [--runs N] [--only ${BENCHMARKS.map((b) => b.name).join('|')}[,…]] [--save] [--compare] [-- bench flags]`;
}

function section(name: string, body: string): string {
  return `<!-- bench:${name}:start -->\n${body.trim()}\n<!-- bench:${name}:end -->`;
}

/** The section BENCHMARKS.md holds for benchmark `name`, if any. */
function savedSection(name: string): string | undefined {
  const existing = fs.existsSync(BENCHMARKS_FILE) ? fs.readFileSync(BENCHMARKS_FILE, 'utf8') : '';
  return new RegExp(`<!-- bench:${name}:start -->[\\s\\S]*?<!-- bench:${name}:end -->`).exec(existing)?.[0];
}

/** Replaces the sections of the benchmarks just run, keeps the others, in BENCHMARKS order. */
function save(results: Map<string, string>): void {
  const existing = fs.existsSync(BENCHMARKS_FILE) ? fs.readFileSync(BENCHMARKS_FILE, 'utf8') : '';
  const sections: string[] = [];
  const block = (kind: string, name: string) => new RegExp(`<!-- ${kind}:${name}:start -->[\\s\\S]*?<!-- ${kind}:${name}:end -->`).exec(existing)?.[0];
  for (const b of BENCHMARKS) {
    const fresh = results.get(b.name);
    const kept = fresh ? section(b.name, fresh) : block('bench', b.name);
    if (kept) sections.push(kept);
    // Hand-written notes on a benchmark (experiments, analysis) follow its section and outlive a refresh.
    const notes = block('notes', b.name);
    if (notes) sections.push(notes);
  }
  // The figures the code's comments point to (hand-written, from runs of these benchmarks) close the file.
  const figures = block('figures', 'code');
  if (figures) sections.push(figures);
  fs.writeFileSync(BENCHMARKS_FILE, `${HEADER}\n${sections.join('\n\n')}\n`);
  process.stderr.write(`wrote ${BENCHMARKS_FILE}\n`);
}

async function main(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const benchArgs = dash >= 0 ? argv.slice(dash + 1) : [];
  const { quick, runs, rest } = parseCommonArgs(dash >= 0 ? argv.slice(0, dash) : argv);
  let only: string[] | null = null;
  let saveResults = false;
  let compare = false;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--only') only = (rest[++i] ?? '').split(',').filter(Boolean);
    else if (rest[i] === '--save') saveResults = true;
    else if (rest[i] === '--compare') compare = true;
    else if (rest[i] === '--help' || rest[i] === '-h') {
      process.stdout.write(`${usage()}\n`);
      return 0;
    } else {
      process.stderr.write(`unknown option ${rest[i]}\n${usage()}\n`);
      return 2;
    }
  }
  const unknown = (only ?? []).filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length > 0) {
    process.stderr.write(`no benchmark named ${unknown.join(', ')}\n${usage()}\n`);
    return 2;
  }
  if (saveResults && quick) {
    process.stderr.write('--save with --quick would record smoke-test numbers; run without --quick to save\n');
    return 2;
  }
  const chosen = only ? BENCHMARKS.filter((b) => only!.includes(b.name)) : BENCHMARKS;
  const machine = await machineInfo();
  process.stdout.write(`machine: ${Object.entries(machine).map(([k, v]) => `${k} ${v}`).join(', ')}\n\n`);
  const rendered = new Map<string, string>();
  let failed = 0;
  for (const b of chosen) {
    const started = Date.now();
    let result: BenchResult;
    try {
      result = await runBenchmark(b, { quick, runs, args: benchArgs });
    } catch (err) {
      failed++;
      process.stderr.write(`${b.name} failed: ${(err as Error).stack ?? err}\n`);
      continue;
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const text = renderResult(b, result);
    process.stdout.write(`${compare ? renderResult(b, compareWithSaved(result, savedSection(b.name))) : text}\n\n(${b.name}: ${seconds} s)\n\n`);
    const command = `node dist/bench/run.js --only ${b.name}${runs ? ` --runs ${runs}` : ''}${benchArgs.length ? ` -- ${benchArgs.join(' ')}` : ''}`;
    const where = `Measured ${machine.date} on ${machine.nproc} × ${machine.cpu}, ${machine.memory}, Linux ${machine.kernel}, Node ${machine.node}, ${machine.fio}; took ${seconds} s. Reproduce: \`npx tsc -p tsconfig.json && ${command}\` (as root).`;
    const [title, ...body] = text.split('\n');
    rendered.set(b.name, [title, '', b.description, '', where, ...body].join('\n'));
  }
  if (saveResults && rendered.size > 0) save(rendered);
  return failed > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
