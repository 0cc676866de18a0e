/**
 * zstd compression off the event loop. zstd-napi is synchronous: run on the main thread it
 * would stall every FUSE request while a segment is compressed, so chunks are
 * compressed and decompressed in a small pool of worker threads. The same workers read each
 * sealed segment the archive is about to compress (readFile), at their low priority.
 *
 * The worker is a few lines of CommonJS passed as a string, so that it runs the same way
 * whether salvo runs compiled or from TypeScript under the test runner.
 */
import assert from 'node:assert';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { native } from '../util/native.js';

/**
 * Level 1: on two cores the archiver shares the CPU with the FUSE server, and sustained writes
 * were archive-bound at level 3; a little less ratio buys much more archive speed
 * (BENCHMARKS.md, "Compression level").
 */
export const COMPRESSION_LEVEL = 1;

/**
 * Compression runs at a lower CPU priority than the threads serving the volume (nice 10: about
 * a tenth of their weight when both want the CPU): a FUSE request, or the application and
 * kernel threads behind it, never waits behind a segment being compressed, and archiving still
 * takes every cycle they leave. Sustained writes that leave none stall on spare slots instead.
 */
const WORKER_NICE = 10;

/**
 * readFile's pieces: a long pread from the page cache runs in the kernel, where this kernel
 * (PREEMPT_NONE) lets no waiting thread in; each return to user space does. Small pieces on a
 * low-priority worker kept the archive's read of a sealed segment from holding FUSE requests
 * back (BENCHMARKS.md, "Sealed segments read in pieces, at low priority").
 */
const READ_PIECE_BYTES = 256 * 1024;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zstd = require(workerData.zstdPath);
const binding = require(workerData.zstdBindingPath);
const { crc32c } = require(workerData.crcPath);
// On Linux the nice value is per thread and pid 0 is this thread: only the worker yields.
try { require('node:os').setPriority(0, workerData.nice); } catch {}
// Outputs travel back by transfer, not by copy: cloning them cost the main thread a copy into
// fresh memory of every chunk. Below 4 KiB a Buffer may lie in Buffer's shared pool, which
// must stay here: those few bytes are copied.
const movable = (o) => (o.byteLength >= 4096 ? o : new Uint8Array(o));
const fs = require('node:fs');
// Fills dst (shared memory) from the file at position; returns the bytes read (fewer at its end).
function readFile({ fd, dst, position, pieceBytes }) {
  let done = 0;
  while (done < dst.length) {
    const n = fs.readSync(fd, dst, done, Math.min(pieceBytes, dst.length - done), position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
let cctx = null;
// Each chunk of src compressed into dst, back to back (dst has room for every chunk's bound):
// both are shared memory the caller reuses, so nothing is allocated, copied or faulted in.
function compressChunks({ src, dst, chunkSize, level }) {
  if (!cctx) {
    cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.compressionLevel, level);
  }
  const lengths = [];
  const crcs = [];
  let out = 0;
  for (let at = 0; at < src.length; at += chunkSize) {
    const n = cctx.compress2(dst.subarray(out), src.subarray(at, Math.min(at + chunkSize, src.length)));
    crcs.push(crc32c(dst.subarray(out, out + n)) >>> 0);
    lengths.push(n);
    out += n;
  }
  return { lengths, crcs };
}
parentPort.on('message', (message) => {
  const { id, op, inputs, level } = message;
  try {
    if (op === 'compressChunks') return parentPort.postMessage({ id, chunks: compressChunks(message) });
    if (op === 'readFile') return parentPort.postMessage({ id, bytesRead: readFile(message) });
    const outputs = inputs.map((input) => movable(op === 'compress' ? zstd.compress(input, { compressionLevel: level }) : zstd.decompress(input)));
    parentPort.postMessage({ id, outputs }, outputs.map((output) => output.buffer));
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message), code: err && err.code });
  }
});
`;

/** Compressed chunks laid back to back in a shared output buffer, with each one's CRC32C. */
export interface CompressedChunks {
  lengths: number[];
  crcs: number[];
}

type Message =
  | { op: 'compress' | 'decompress'; inputs: Uint8Array[] }
  | { op: 'compressChunks'; src: Uint8Array; dst: Uint8Array; chunkSize: number }
  | { op: 'readFile'; fd: number; dst: Uint8Array; position: number; pieceBytes: number };

interface Task {
  id: number;
  message: Message;
  resolve: (result: Result) => void;
  reject: (err: Error) => void;
}

type Result = Buffer[] | CompressedChunks | number;
type Reply = { id: number; outputs?: Uint8Array[]; chunks?: CompressedChunks; bytesRead?: number; error?: string; code?: string };

const zstdBinding = createRequire(import.meta.url)('zstd-napi/binding') as { compressBound(size: number): number };

/** Room compressChunks needs in `dst` for `length` raw bytes cut into chunks of `chunkSizeBytes`. */
export function chunksBound(length: number, chunkSizeBytes: number): number {
  let bound = 0;
  for (let at = 0; at < length; at += chunkSizeBytes) bound += zstdBinding.compressBound(Math.min(chunkSizeBytes, length - at));
  return bound;
}

/** A Buffer over shared memory: a worker reads and writes it in place. */
export function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

/**
 * Gives the pages of `bytes` back to the OS: it reads as zeros after, and holds no memory until
 * written again. Shared memory is freed only once every worker that saw it has collected its
 * garbage, which an idle worker never does: memory kept for reuse is released so instead.
 * `bytes` may not be touched until the promise settles.
 */
export function releasePages(bytes: Buffer): Promise<void> {
  return native().releasePages(bytes);
}

export class CompressionPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Task>();
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;

  constructor(size = Math.max(1, Math.min(2, availableParallelism()))) {
    const require = createRequire(import.meta.url);
    const workerData = { zstdPath: require.resolve('zstd-napi'), zstdBindingPath: require.resolve('zstd-napi/binding'), crcPath: require.resolve('@node-rs/crc32'), nice: WORKER_NICE };
    for (let i = 0; i < size; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
      worker.unref();
      worker.on('message', (message: Reply) => this.finish(worker, message));
      worker.on('error', (err) => this.fail(worker, err));
      this.idle.push(worker);
    }
  }

  /** Compresses each input on its own (copied to the worker and back). */
  compress(inputs: Uint8Array[]): Promise<Buffer[]> {
    return this.submit({ op: 'compress', inputs }) as Promise<Buffer[]>;
  }

  /** Decompresses; a chunk that is not valid zstd rejects (the caller reports the object as corrupt). */
  decompress(inputs: Uint8Array[]): Promise<Buffer[]> {
    return this.submit({ op: 'decompress', inputs }) as Promise<Buffer[]>;
  }

  /**
   * Compresses `src` cut into chunks of `chunkSizeBytes`, each on its own, into `dst` back to
   * back. Both must lie in shared memory (sharedBuffer), where the worker works in place:
   * the archiver reuses them for every segment, so its 64 MiB a segment is neither allocated,
   * copied nor faulted in anew. `dst` needs chunksBound(src.length) bytes. Neither may be
   * touched until the promise settles.
   */
  compressChunks(src: Buffer, chunkSizeBytes: number, dst: Buffer): Promise<CompressedChunks> {
    assert(src.buffer instanceof SharedArrayBuffer && dst.buffer instanceof SharedArrayBuffer, 'compressChunks works in shared memory');
    assert(dst.length >= chunksBound(src.length, chunkSizeBytes), 'compressChunks: dst too small');
    return this.submit({ op: 'compressChunks', src, dst, chunkSize: chunkSizeBytes }) as Promise<CompressedChunks>;
  }

  /**
   * Fills `dst` (shared memory) from file descriptor `fd` at `position` in a worker, at its low
   * priority and in short reads (READ_PIECE_BYTES); resolves to the bytes read, fewer only at
   * the file's end. The archive reads sealed segments so. `dst` may not be touched until it settles.
   */
  readFile(fd: number, dst: Buffer, position: number): Promise<number> {
    assert(dst.buffer instanceof SharedArrayBuffer, 'readFile works in shared memory');
    return this.submit({ op: 'readFile', fd, dst, position, pieceBytes: READ_PIECE_BYTES }) as Promise<number>;
  }

  /** releasePages, asked of the pool whose workers share the memory (the simulation's pool, which has none, clears it inline). */
  releasePages(bytes: Buffer): Promise<void> {
    return releasePages(bytes);
  }

  async close(): Promise<void> {
    this.closed = true;
    // Tasks in flight are ended too: their workers are terminated, and an answer never comes.
    const workers = [...this.idle, ...this.busy.keys()];
    const tasks = [...this.queue.splice(0), ...this.busy.values()];
    this.busy.clear();
    for (const task of tasks) task.reject(new Error('compression pool closed'));
    // An idle worker is unref'd: without ref() the process could end before the exits it waits for, with close() never settled.
    for (const worker of workers) worker.ref();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private submit(message: Message): Promise<Result> {
    if (this.closed) return Promise.reject(new Error('compression pool closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, message, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const task = this.queue.shift()!;
      this.busy.set(worker, task);
      worker.ref(); // a task in flight keeps the process alive until it answers
      worker.postMessage({ id: task.id, level: COMPRESSION_LEVEL, ...task.message });
    }
  }

  private finish(worker: Worker, message: Reply): void {
    if (this.closed) return; // its task was rejected by close(), and the worker stays ref'd until it exits
    const task = this.busy.get(worker);
    this.busy.delete(worker);
    worker.unref();
    this.idle.push(worker);
    if (task && task.id === message.id) {
      if (message.error !== undefined) task.reject(workerError(task.message.op, message));
      else if (message.chunks) task.resolve(message.chunks);
      else if (message.bytesRead !== undefined) task.resolve(message.bytesRead);
      else task.resolve(message.outputs!.map((o) => Buffer.from(o.buffer, o.byteOffset, o.byteLength)));
    }
    this.dispatch();
  }

  private fail(worker: Worker, err: Error): void {
    const task = this.busy.get(worker);
    this.busy.delete(worker);
    task?.reject(err);
  }
}

/** A worker's failure as an Error; a failed read keeps its errno code (EIO, EBADF) as fs's errors do. */
function workerError(op: Message['op'], reply: Reply): Error {
  if (op !== 'readFile') return new Error(`zstd ${op}: ${reply.error}`);
  return Object.assign(new Error(reply.error), reply.code ? { code: reply.code } : {});
}
