/**
 * zstd compression off the event loop. zstd-napi is synchronous (~0.1 s for a 64 MiB segment
 * at level 3): run on the main thread it would stall every FUSE request, so chunks are
 * compressed and decompressed in a small pool of worker threads.
 *
 * The worker is a few lines of CommonJS passed as a string, so that it runs the same way
 * whether salvo runs compiled or from TypeScript under the test runner.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';

/**
 * Level 1: ratio 5.1 at 915 MB/s on volume data here, against 5.7 at 650 MB/s for level 3.
 * On two cores the archiver shares the CPU with the FUSE server, and sustained writes were
 * archive-bound at level 3 (bench/engine): the 10% of ratio buys ~40% more archive speed.
 */
export const COMPRESSION_LEVEL = 1;

/**
 * Compression runs at a lower CPU priority than the threads serving the volume (nice 10: about
 * a tenth of their weight when both want the CPU): a FUSE request, or the application and
 * kernel threads behind it, never waits behind a segment being compressed, and archiving still
 * takes every cycle they leave. Sustained writes that leave none stall on spare slots instead.
 */
const WORKER_NICE = 10;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zstd = require(workerData.zstdPath);
// On Linux the nice value is per thread and pid 0 is this thread: only the worker yields.
try { require('node:os').setPriority(0, workerData.nice); } catch {}
// Outputs travel back by transfer, not by copy: cloning them cost the main thread a copy into
// fresh memory of every chunk. Below 4 KiB a Buffer may lie in Buffer's shared pool, which
// must stay here: those few bytes are copied.
const movable = (o) => (o.byteLength >= 4096 ? o : new Uint8Array(o));
parentPort.on('message', ({ id, op, inputs, level }) => {
  try {
    const outputs = inputs.map((input) => movable(op === 'compress' ? zstd.compress(input, { compressionLevel: level }) : zstd.decompress(input)));
    parentPort.postMessage({ id, outputs }, outputs.map((output) => output.buffer));
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message) });
  }
});
`;

interface Task {
  id: number;
  op: 'compress' | 'decompress';
  inputs: Uint8Array[];
  /** ArrayBuffers moved to the worker rather than copied. */
  transfer: ArrayBuffer[];
  resolve: (outputs: Buffer[]) => void;
  reject: (err: Error) => void;
}

export class CompressionPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Task>();
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;

  constructor(size = Math.max(1, Math.min(2, availableParallelism()))) {
    const zstdPath = createRequire(import.meta.url).resolve('zstd-napi');
    for (let i = 0; i < size; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { zstdPath, nice: WORKER_NICE } });
      worker.unref();
      worker.on('message', (message: { id: number; outputs?: Uint8Array[]; error?: string }) => this.finish(worker, message));
      worker.on('error', (err) => this.fail(worker, err));
      this.idle.push(worker);
    }
  }

  /**
   * Compresses. With `transfer`, the inputs' memory (one ArrayBuffer of the caller's own,
   * not Buffer's shared pool) moves to the worker instead of being copied — 64 MiB a
   * segment — and the inputs are unusable afterwards.
   */
  compress(inputs: Uint8Array[], options: { transfer?: boolean } = {}): Promise<Buffer[]> {
    return this.submit('compress', inputs, options.transfer === true);
  }

  /** Decompresses; a chunk that is not valid zstd rejects (the caller reports the object as corrupt). */
  decompress(inputs: Uint8Array[]): Promise<Buffer[]> {
    return this.submit('decompress', inputs);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.queue.splice(0)) task.reject(new Error('compression pool closed'));
    await Promise.all([...this.idle, ...this.busy.keys()].map((w) => w.terminate()));
  }

  private submit(op: Task['op'], inputs: Uint8Array[], transfer = false): Promise<Buffer[]> {
    if (this.closed) return Promise.reject(new Error('compression pool closed'));
    return new Promise((resolve, reject) => {
      const buffers = transfer ? [...new Set(inputs.map((i) => i.buffer as ArrayBuffer))] : [];
      this.queue.push({ id: this.nextId++, op, inputs, transfer: buffers, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const task = this.queue.shift()!;
      this.busy.set(worker, task);
      worker.ref(); // a task in flight keeps the process alive until it answers
      worker.postMessage({ id: task.id, op: task.op, inputs: task.inputs, level: COMPRESSION_LEVEL }, task.transfer);
    }
  }

  private finish(worker: Worker, message: { id: number; outputs?: Uint8Array[]; error?: string }): void {
    const task = this.busy.get(worker);
    this.busy.delete(worker);
    worker.unref();
    this.idle.push(worker);
    if (task && task.id === message.id) {
      if (message.error !== undefined) task.reject(new Error(`zstd ${task.op}: ${message.error}`));
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
