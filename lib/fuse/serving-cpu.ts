/**
 * `salvo mount --cpu N`: the threads that pass each FUSE request back and forth, kept on one CPU.
 *
 * A request crosses twice: libfuse's thread reads it from /dev/fuse, wakes the event loop and
 * sleeps until the answer wakes it again. Where an idle vCPU halts at once (a VM whose guest does
 * not poll before halting), each wake-up of a thread on another CPU costs far more than on the
 * same CPU, and small random writes pay it on every request. The price: pinned threads cannot
 * leave a busy CPU, so reads and copy-forward lose (BENCHMARKS.md, "Serving threads on one CPU").
 * So it is an option, not the default.
 *
 * The event loop's thread is pinned before fuse.mount(): the threads the mount starts
 * (fuse-native's and libfuse's, and those libfuse adds under load) inherit its CPU, as every
 * thread inherits its creator's. The threads doing the heavy work exist by then and keep every
 * CPU: libuv's pool, started by Volume.open's first file call, and the archive's compression
 * workers, started by Volume.open.
 */
import fs from 'node:fs';
import { VolumeError } from '../errors.js';
import { native } from '../util/native.js';

/** The CPUs this process may run on, from /proc/self/status (`Cpus_allowed_list: 0-3,8`). */
export function allowedCpus(): number[] {
  const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  return list.split(',').flatMap((range) => {
    const [first, last = first] = range.split('-').map(Number) as [number, number?];
    return Array.from({ length: last - first + 1 }, (_, i) => first + i);
  });
}

/** `--cpu`'s value: one CPU this process may run on. */
export function parseCpu(text: string): number {
  const allowed = allowedCpus();
  const cpu = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!allowed.includes(cpu)) {
    throw VolumeError.badInput(`--cpu ${text} is not a CPU this process may run on`, `give one of ${allowed.join(', ')}`);
  }
  return cpu;
}

/** Pins the calling thread, the event loop's, to `cpu`: call it before the FUSE mount starts. */
export function pinServingThreads(cpu: number): void {
  try {
    native().pinThread(cpu);
  } catch (err) {
    throw VolumeError.badInput(`cannot keep the mount's threads on CPU ${cpu}: ${(err as Error).message}`, 'give another --cpu, or none');
  }
}
