/** The perf summary of `fuse-io --profile … --perf`: samples sorted into the mount's threads and the rest. */
import t from 'tap';
import { summarizeSamples } from '../../bench/experiments/perf-profile.js';

// `perf script -F comm,pid,tid,ip,sym`: a header per sample, then its stack, leaf first.
const stack = (comm: string, pid: number, tid: number, frames: string[]) =>
  `${comm.padStart(16)} ${pid}/${tid}\n${frames.map((f, i) => `\t    ffffffff${i.toString(16).padStart(8, '0')} ${f}\n`).join('')}\n`;

const MOUNT = 4242;
const text = [
  ...Array.from({ length: 4 }, () => stack('node', MOUNT, MOUNT, ['copy_folio_from_iter_atomic', 'generic_perform_write', 'do_pwritev', '__x64_sys_pwritev', 'node::Start'])),
  ...Array.from({ length: 2 }, () => stack('node', MOUNT, MOUNT + 9, ['ZSTD_compressBlock_fast', 'node::worker::Worker::StartThread'])),
  stack('node', MOUNT, MOUNT + 3, ['copy_folio_from_iter_atomic', 'do_writev', 'uv__fs_work', 'worker', 'start_thread']),
  stack('node', MOUNT, MOUNT + 5, ['fuse_copy_fill', '__x64_sys_read', 'fuse_session_loop', 'start_thread']),
  stack('fio', 77, 77, ['io_submit', '__x64_sys_io_submit']),
  stack('swapper', 0, 0, ['pv_native_safe_halt', 'do_idle']),
].join('');

t.test('perf samples become CPU shares by kind of thread, with their functions and system calls', async (t) => {
  const tables = summarizeSamples(text, MOUNT, 5, 2);
  const byThread = new Map(tables[0]!.rows.map(([kind, share, seconds]) => [kind, { share, seconds }]));
  t.same(byThread.get('mount: main thread (JavaScript, slot I/O, FUSE replies)'), { share: '40.0%', seconds: '4.00' });
  t.equal(byThread.get('mount: compression workers (nice 10)')?.share, '20.0%');
  t.equal(byThread.get('mount: libuv thread pool (async fs: archive, slot reads, fdatasync)')?.share, '10.0%');
  t.equal(byThread.get('mount: FUSE thread (libfuse, fuse-native)')?.share, '10.0%');
  t.equal(byThread.get('fio')?.share, '10.0%');
  t.equal(byThread.get('idle')?.share, '10.0%');
  const main = tables.find((x) => x.title.startsWith('mount: main thread') && x.title.endsWith('by system call'))!;
  t.same(main.rows, [['pwritev', '40.0%']], 'the main thread was in pwritev');
  t.notOk(tables.some((x) => x.title.startsWith('idle:')), 'idle time has no breakdown');
});
