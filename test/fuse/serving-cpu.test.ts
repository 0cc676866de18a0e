/**
 * `salvo mount --cpu N`: the event loop's thread and the threads serving /dev/fuse run on CPU N
 * only, the threads doing the heavy work (libuv's pool, the compression workers) on every CPU,
 * and the mount works as without.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { allowedCpus, parseCpu } from '../../lib/fuse/serving-cpu.js';
import { Cleanup, must, salvo, sha256, systemReady } from '../helpers/system.js';
import { tempDir } from '../helpers/temp-volume.js';

interface Thread {
  tid: number;
  waitsIn: string;
  cpus: string;
}

/** The CPUs a process or thread may run on, as its status file lists them ("0-1"). */
function cpusOf(dir: string): string {
  return /^Cpus_allowed_list:\s*(\S+)$/m.exec(fs.readFileSync(`${dir}/status`, 'utf8'))![1]!;
}

function threadsOf(pid: number): Thread[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => ({
    tid: Number(tid),
    waitsIn: fs.readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8'),
    cpus: cpusOf(`/proc/${pid}/task/${tid}`),
  }));
}

t.test('serving-cpu: --cpu takes one CPU this process may run on', async (t) => {
  const allowed = allowedCpus();
  t.equal(allowed.length, os.availableParallelism(), 'the allowed list has as many CPUs as Node counts');
  t.equal(parseCpu(String(allowed.at(-1))), allowed.at(-1));
  for (const bad of ['x', '-1', '1.5', '', String(Math.max(...allowed) + 1), '0x1']) {
    t.throws(() => parseCpu(bad), { code: 'BAD_INPUT', message: /is not a CPU this process may run on/ }, `refuses '${bad}'`);
  }
});

t.test('serving-cpu: a bad --cpu is refused in one line before anything is mounted', async (t) => {
  const root = tempDir(t, 'salvo-cpu-');
  const volume = path.join(root, 'volume');
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  t.equal((await salvo(['init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', path.join(root, 'archive')])).code, 0);
  for (const daemon of [[], ['--daemon']]) {
    const r = await salvo(['mount', volume, mnt, '--cpu', '4096', ...daemon]);
    t.equal(r.code, 2, `exit 2 ${daemon.join('')}`);
    t.match(r.stderr, /^salvo: BAD_INPUT: --cpu 4096 is not a CPU this process may run on — give one of \d/, 'says what to give');
    t.equal(r.stderr.trim().split('\n').length, 1, 'in one line');
  }
  t.notOk(fs.readFileSync('/proc/mounts', 'utf8').includes(mnt), 'nothing mounted');
});

t.test('serving-cpu: mounted with --cpu, the serving threads keep to that CPU and the rest keep every CPU', async (t) => {
  if (!systemReady(t)) return;
  const allowed = allowedCpus();
  const cpu = allowed.at(-1)!;
  const root = tempDir(t, 'salvo-cpu-');
  const cleanup = new Cleanup(t);
  const volume = path.join(root, 'volume');
  const mnt = path.join(root, 'mnt');
  t.equal((await salvo(['init', volume, '--size', '64M', '--segment-size', '1M', '--segments', '100', '--archive', path.join(root, 'archive')])).code, 0);
  await cleanup.salvoMount(volume, mnt, ['--cpu', String(cpu)]);
  const status = JSON.parse((await salvo(['status', mnt, '--json'])).stdout) as { pid: number; cpu: number };
  t.equal(status.cpu, cpu, 'status names the CPU');
  t.match((await salvo(['status', mnt])).stdout, new RegExp(`mounted on .* \\(serving on CPU ${cpu}\\)`), 'and says so');

  // Requests through a loop device: libfuse adds threads under load, which must inherit the CPU too.
  const device = await cleanup.loop(path.join(mnt, 'live', 'volume.img'));
  const data = path.join(root, 'data');
  fs.writeFileSync(data, Buffer.alloc(8 * 1024 * 1024, 'salvo'));
  await must('fio', ['--name=w', `--filename=${device}`, '--rw=randwrite', '--bs=4k', '--size=8M', '--iodepth=16', '--ioengine=libaio', '--direct=1', '--output=/dev/null']);
  await must('dd', [`if=${data}`, `of=${device}`, 'bs=1M', 'oflag=direct', 'status=none']);
  t.equal((await salvo(['sync', mnt])).code, 0, 'a synch point');

  const threads = threadsOf(status.pid);
  const main = threads.find((th) => th.tid === status.pid)!;
  const serving = threads.filter((th) => th.waitsIn === 'fuse_dev_do_read');
  t.equal(main.cpus, String(cpu), 'the event loop keeps to the CPU');
  t.ok(serving.length > 0, `threads wait for FUSE requests (${serving.length})`);
  t.same(serving.map((th) => th.cpus), serving.map(() => String(cpu)), 'every one of them keeps to the CPU');
  if (allowed.length > 1) {
    // The rest (libuv's pool, the compression workers, V8's) keep every CPU: only fuse-native's
    // own thread, which runs libfuse's loop and waits for its threads, may keep to the CPU besides.
    const pinned = threads.filter((th) => th.cpus === String(cpu));
    t.ok(pinned.length <= serving.length + 2, `no other thread keeps to the CPU (${pinned.length} of ${threads.length} do)`);
    t.equal(threads.length - pinned.length, threads.filter((th) => th.cpus === cpusOf('/proc/self')).length, 'and those keep every CPU');
  }

  await must('dd', [`if=${device}`, `of=${path.join(root, 'back')}`, 'bs=1M', 'count=8', 'iflag=direct', 'status=none']);
  t.equal(sha256(path.join(root, 'back')), sha256(data), 'what was written reads back');
});
