/**
 * The fuzz harness: feeds one decoder random bytes and mutations of valid encodings for a
 * time budget and classifies every outcome.
 *
 * An outcome is fine when the decoder either
 *   - rejects the input with a VolumeError whose code is one the fuzzer allows (CORRUPT_*), or
 *   - accepts it, and the fuzzer's `check` passes (a lossless round trip, and whatever else the
 *     decoder promises about what it accepts).
 * Anything else is a failure: another error type (RangeError, TypeError, AssertionError), a
 * VolumeError with another code, or an accepted input whose check fails. A fuzzer that must
 * never throw (scanSegment) has no allowed codes.
 *
 * Failures that match a known lib/ bug (described in the fuzzer's `known` list) are counted and
 * reported, not fatal, so the fuzzer keeps looking for new ones; the first other failure ends
 * the run with the input that caused it.
 *
 * Inputs depend only on the seed (a mulberry32 PRNG, below), so `SEED=n` replays a run; with a time budget, a failure
 * found after more iterations than a slower machine reaches may need a larger FUZZ_MS (or
 * FUZZ_ITERATIONS=n, which runs exactly n inputs).
 */
import { VolumeError, type VolumeErrorCode } from '../../lib/errors.js';

export interface FuzzInput {
  bytes: Buffer;
  /** Which generator made it: random, bitflip, byteset, truncate, extend, splice, zero-range, structured. */
  how: string;
  /**
   * True when the generator kept every checksum valid (a structured input): the decoder may
   * accept field values no encoder would write, so `check` may only demand a semantic round trip.
   */
  sealed: boolean;
}

export interface KnownBug {
  /** Short id used in reports. */
  id: string;
  description: string;
  /** True when this failure is the known bug. */
  matches: (failure: { error: unknown; message: string; input: FuzzInput }) => boolean;
}

export interface Fuzzer<V = unknown> {
  name: string;
  /** Valid encodings to mutate and splice (built once per run from the fuzzer's random stream). */
  corpus: (random: Random) => Buffer[];
  /** Inputs with valid checksums but arbitrary field values. */
  structured?: (random: Random, corpus: readonly Buffer[]) => Buffer;
  /** The decoder under test, adapted to take bytes (may throw). */
  decode: (bytes: Buffer) => V;
  /** Called when `decode` accepted the input; throws to report a lossy round trip or a broken promise. */
  check?: (value: V, input: FuzzInput) => void;
  /** Codes `decode` may reject with; empty when it must never throw. */
  codes: readonly VolumeErrorCode[];
  /** Largest random input, in bytes. */
  maxLength: number;
  known?: readonly KnownBug[];
  /** A deliberately broken decoder: the harness must report a failure for it. */
  canary?: boolean;
}

export interface FuzzFailure {
  iteration: number;
  how: string;
  message: string;
  /** The input, hex (cut to 512 bytes) and its length. */
  inputHex: string;
  inputLength: number;
}

export interface FuzzReport {
  name: string;
  tried: number;
  accepted: number;
  rejected: number;
  /** Inputs that hit a known bug, by bug id, with the first such input. */
  known: Map<string, { count: number; first: FuzzFailure }>;
  failure: FuzzFailure | null;
  elapsedMs: number;
}

export function describeError(err: unknown): string {
  if (err instanceof VolumeError) return `VolumeError ${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.constructor.name}${'code' in err ? ` ${String((err as { code: unknown }).code)}` : ''}: ${err.message}`;
  return `non-Error ${typeof err}: ${String(err)}`;
}

/** Runs `fuzzer` for `budgetMs` (or exactly `iterations` inputs when given) from `seed`. */
export function runFuzzer<V>(fuzzer: Fuzzer<V>, seed: number, budgetMs: number, iterations?: number): FuzzReport {
  const random = new Random((seed ^ hashName(fuzzer.name)) >>> 0);
  const corpus = fuzzer.corpus(random);
  const report: FuzzReport = { name: fuzzer.name, tried: 0, accepted: 0, rejected: 0, known: new Map(), failure: null, elapsedMs: 0 };
  const started = performance.now();
  const done = () => (iterations !== undefined ? report.tried >= iterations : performance.now() - started >= budgetMs);
  while (!done()) {
    for (let batch = 0; batch < 16 && !(iterations !== undefined && report.tried >= iterations); batch++) {
      const input = generate(random, fuzzer, corpus);
      report.tried++;
      const outcome = runOne(fuzzer, input);
      if (outcome === 'accepted') report.accepted++;
      else if (outcome === 'rejected') report.rejected++;
      else {
        const failure: FuzzFailure = {
          iteration: report.tried,
          how: input.how,
          message: outcome.message,
          inputHex: input.bytes.subarray(0, 512).toString('hex'),
          inputLength: input.bytes.length,
        };
        const bug = fuzzer.known?.find((k) => k.matches({ error: outcome.error, message: outcome.message, input }));
        if (bug) {
          const seen = report.known.get(bug.id);
          if (seen) seen.count++;
          else report.known.set(bug.id, { count: 1, first: failure });
          continue;
        }
        report.failure = failure;
        report.elapsedMs = performance.now() - started;
        return report;
      }
    }
  }
  report.elapsedMs = performance.now() - started;
  return report;
}

type Outcome = 'accepted' | 'rejected' | { error: unknown; message: string };

function runOne<V>(fuzzer: Fuzzer<V>, input: FuzzInput): Outcome {
  let value: V;
  try {
    value = fuzzer.decode(input.bytes);
  } catch (err) {
    if (err instanceof VolumeError && fuzzer.codes.includes(err.code)) {
      if (input.how === 'valid') return { error: err, message: `rejected a valid encoding: ${describeError(err)}` };
      return 'rejected';
    }
    const wanted = fuzzer.codes.length === 0 ? 'no error at all' : `a VolumeError ${fuzzer.codes.join('/')}`;
    return { error: err, message: `threw ${describeError(err)} (wanted ${wanted})` };
  }
  try {
    fuzzer.check?.(value, input);
  } catch (err) {
    return { error: err, message: `accepted, but ${describeError(err)}` };
  }
  return 'accepted';
}

/** One input: random bytes, a mutation of a valid encoding, or a structured one. */
export function generate<V>(random: Random, fuzzer: Fuzzer<V>, corpus: readonly Buffer[]): FuzzInput {
  const r = random.next();
  if (corpus.length === 0 || r < 0.1) return { bytes: randomBytes(random, fuzzer.maxLength, corpus), how: 'random', sealed: false };
  if (fuzzer.structured && r < 0.35) return { bytes: fuzzer.structured(random, corpus), how: 'structured', sealed: true };
  const base = Buffer.from(random.pick(corpus));
  const how = random.pick(['bitflip', 'bitflip', 'byteset', 'truncate', 'extend', 'splice', 'zero-range', 'valid'] as const);
  return { bytes: mutate(random, how, base, corpus), how, sealed: false };
}

function randomBytes(random: Random, maxLength: number, corpus: readonly Buffer[]): Buffer {
  const bytes = random.bytes(random.length(maxLength));
  // Half the time keep a valid prefix (the magic, say) so the decoder gets past its first check.
  if (corpus.length > 0 && random.chance(0.5)) {
    const prefix = random.pick(corpus);
    prefix.copy(bytes, 0, 0, Math.min(bytes.length, random.between(1, 16)));
  }
  return bytes;
}

export function mutate(random: Random, how: string, base: Buffer, corpus: readonly Buffer[]): Buffer {
  switch (how) {
    case 'bitflip': {
      if (base.length === 0) return base;
      const flips = random.pick([1, 1, 1, 2, 3, 8]);
      for (let i = 0; i < flips; i++) base[random.int(base.length)]! ^= 1 << random.int(8);
      return base;
    }
    case 'byteset': {
      if (base.length === 0) return base;
      const sets = random.between(1, 4);
      for (let i = 0; i < sets; i++) base[random.int(base.length)] = random.pick([0, 0xff, 0x7f, 0x80, 0x01, random.int(256)]);
      return base;
    }
    case 'truncate':
      return base.subarray(0, random.int(base.length + 1));
    case 'extend':
      return Buffer.concat([base, random.chance(0.5) ? Buffer.alloc(random.between(1, 64)) : random.bytes(random.between(1, 64))]);
    case 'splice': {
      const other = random.pick(corpus);
      const cut = random.int(base.length + 1);
      const from = random.chance(0.5) ? cut : random.int(other.length + 1);
      return Buffer.concat([base.subarray(0, cut), other.subarray(Math.min(from, other.length))]);
    }
    case 'zero-range': {
      if (base.length === 0) return base;
      const start = random.int(base.length);
      base.fill(0, start, Math.min(base.length, start + random.between(1, 64)));
      return base;
    }
    default:
      return base; // 'valid': the encoding itself must decode
  }
}

/** `bytes` padded with zeros to at least `length`, as a slot reads past its file's end. */
export function padTo(bytes: Buffer, length: number): Buffer {
  return bytes.length >= length ? bytes : Buffer.concat([bytes, Buffer.alloc(length - bytes.length)]);
}

/** Throws a plain Error with `message` unless `condition` holds (checks inside `Fuzzer.check`). */
export function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------------------------------------
// Seeded pseudo-random numbers: mulberry32, so a failing seed replays exactly. Nothing here
// reads the clock or Math.random.

export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let x = this.state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [low, high]. */
  between(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  u32(): number {
    return (this.next() * 4294967296) >>> 0;
  }

  bytes(length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }

  /** A length biased towards small values and the edges codecs care about. */
  length(max: number): number {
    const r = this.next();
    if (r < 0.1) return this.int(Math.min(max, 17));
    if (r < 0.6) return this.int(Math.min(max, 128) + 1);
    return this.int(max + 1);
  }

  /** 32 hex digits: a volume id. */
  volumeId(): string {
    return this.bytes(16).toString('hex');
  }

  /** A u32 field value, biased towards the boundaries. */
  edgyU32(): number {
    return this.pick([0, 1, 2, 0x7fff_ffff, 0x8000_0000, 0x8000_0001, 0xffff_fffe, 0xffff_ffff, this.u32(), this.int(64)]);
  }

  /** A u64 field value as a number, biased towards 2^53 (where the codecs switch to "corrupt"). */
  edgyU64(): number {
    return this.pick([0, 1, 2, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 2, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 60, this.u32(), this.u32() * 0x20_0000 + this.u32()]);
  }
}

/** A stable 32-bit hash of a string (FNV-1a), to give each fuzzer its own stream from one seed. */
export function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
