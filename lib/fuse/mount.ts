/**
 * The FUSE view of a volume (fuse-native):
 *
 *   /live/volume.img                      read-write, the live volume (not in a mount of an archive alone)
 *   /snapshots/<time>.img                 read-only, one per synch point, archived ones included
 *   /snapshots/latest.img                 symlink to the newest
 *   /snapshots/by-label/<label>.img       symlink to the newest point with that label
 *   /.salvo.json                          where the mount's control socket is (for the agent)
 *
 * A mount of an archive on its own serves /snapshots alone, and takes in what the volume's mount
 * archives meanwhile: at a listing of /snapshots (when the last look is a few seconds old) and
 * every half minute.
 *
 * Invariants: every callback is answered exactly once with a byte count or a negative errno,
 * never a thrown error; nothing here waits synchronously on the mount itself (a sync call
 * would stop the event loop that serves it). Requests are 128 KiB: fuse-native has no
 * big_writes option, but it joins its option list with commas, so fsname carries them.
 */
import fs from 'node:fs';
import Fuse, { type Stat } from 'fuse-native';
import createDebug from 'debug';
import { VolumeError } from '../errors.js';
import type { History } from '../history/history.js';
import type { Volume } from '../volume/volume.js';
import { synchPointTime, type SynchPoint } from '../volume/synch-point.js';
import { LatencyHistogram, REQUEST_BUCKETS } from '../util/latency-histogram.js';
import { toErrno } from './errno.js';
import { fuseDeviceDescriptors, isFuseDeviceOpen, isMountpoint, loopDevicesUnder } from './mount-table.js';
import { ReadAhead } from './read-ahead.js';
import { isDiscard } from './discard.js';
import { MountTree, type Node } from './tree.js';

const debug = createDebug('salvo:fuse');
const REQUEST_BYTES_MAX = 128 * 1024;
const O_ACCMODE = 3;
/** How often a mount looks for its own unmount from outside (watchForUnmount). */
const UNMOUNT_WATCH_MS = 1000;
/** A mount of an archive alone looks for new points this often, and at a listing of /snapshots when its last look is older than the second figure. */
const REFRESH_EVERY_MS = 30_000;
const REFRESH_ON_LIST_MS = 1_000;

export interface MountOptions {
  allowOther?: boolean;
  /** Contents of /.salvo.json. */
  control: Record<string, unknown>;
  /** Where problems (corrupt blocks, a full disk) are reported; default stderr. */
  report?: (message: string) => void;
}

/**
 * An open file. A snapshot handle keeps its point, not the rebuilt index: every read asks the
 * cache, so open files cannot hold more memory than the cache bound allows.
 */
type Handle = { kind: 'live' } | { kind: 'snapshot'; point: SynchPoint };

/** A history that can take in what was archived since it was opened (an archive read on its own). */
interface Refreshable {
  refresh(): Promise<void>;
}

/** The requests whose time to answer is recorded: those that move data or wait on the disk. */
export type TimedRequest = 'read' | 'write' | 'fsync' | 'fallocate';

export class VolumeMount {
  /** Time to answer each kind of request, from the call to the answer (`mount --metrics`). */
  readonly requestTimes: Readonly<Record<TimedRequest, LatencyHistogram>> = {
    read: new LatencyHistogram(REQUEST_BUCKETS),
    write: new LatencyHistogram(REQUEST_BUCKETS),
    fsync: new LatencyHistogram(REQUEST_BUCKETS),
    fallocate: new LatencyHistogram(REQUEST_BUCKETS),
  };
  /** Bytes served by reads of the live image and of the snapshots. */
  readonly bytesRead = { live: 0, snapshot: 0 };
  private readonly handles = new Map<number, Handle>();
  private nextHandle = 1;
  private liveMtimeMs = Date.now();
  private readonly mountedAt = new Date();
  private readonly controlBytes: Buffer;
  private readonly tree: MountTree;
  private readonly report: (message: string) => void;
  private readonly readAhead: ReadAhead | null;
  private readonly sizeBytes: number;
  private refreshing: Promise<void> | null = null;
  private refreshedAtMs = Date.now();
  private refreshTimer: NodeJS.Timeout | null = null;

  private readonly fuse: Fuse;
  /** The mountpoint as the kernel lists it (symlinks resolved), once mounted. */
  private listedAs = '';
  /** libfuse's descriptor of /dev/fuse for this mount (null if it could not be told apart). */
  private sessionFd: number | null = null;
  private unmountWatch: NodeJS.Timeout | null = null;

  private constructor(
    /** The live volume; null for a mount of an archive alone. */
    readonly volume: Volume | null,
    /** The volume's past: what /snapshots serves. */
    readonly history: History & Partial<Refreshable>,
    readonly mountpoint: string,
    options: MountOptions,
  ) {
    this.fuse = new Fuse(mountpoint, operations(this), {
      fsname: `salvo,big_writes,max_write=${REQUEST_BYTES_MAX}`,
      subtype: 'salvo', // the mount table then says fuse.salvo: how `salvo unmount` knows its own
      maxRead: REQUEST_BYTES_MAX,
      timeout: false,
      force: true,
      allowOther: options.allowOther ?? false,
      // The kernel checks every access against the modes stat shows: with --allow-other, other users read what those allow and write nothing.
      defaultPermissions: true,
    });
    this.readAhead = volume ? new ReadAhead(volume) : null;
    this.tree = new MountTree(history.catalog, volume !== null);
    this.sizeBytes = history.config.sizeBytes;
    this.controlBytes = Buffer.from(JSON.stringify(options.control, null, 2) + '\n');
    this.report = options.report ?? ((m) => process.stderr.write(`salvo: ${m}\n`));
  }

  static async mount(volume: Volume | null, history: History & Partial<Refreshable>, mountpoint: string, options: MountOptions): Promise<VolumeMount> {
    const mount = new VolumeMount(volume, history, mountpoint, options);
    const before = new Set(fuseDeviceDescriptors());
    await new Promise<void>((resolve, reject) =>
      mount.fuse.mount((err) =>
        err
          ? reject(new VolumeError('BAD_INPUT', `cannot mount on ${mountpoint}: ${err.message}`, { hint: 'the mountpoint must be an empty directory that is not in use' }))
          : resolve(),
      ),
    );
    // Asked of our own mount: the root's getattr is answered meanwhile, as the promise waits.
    // (Were it to fail, the path as given: a mount must not be left behind for this.)
    mount.listedAs = await fs.promises.realpath(mountpoint).catch(() => mountpoint);
    const opened = fuseDeviceDescriptors().filter((fd) => !before.has(fd));
    mount.sessionFd = opened.length === 1 ? opened[0]! : null;
    debug('mounted %s on %s', volume?.dir ?? history.store.location, mountpoint);
    if (history.refresh) {
      mount.refreshTimer = setInterval(() => void mount.refresh(), REFRESH_EVERY_MS);
      mount.refreshTimer.unref();
    }
    return mount;
  }

  /**
   * Calls `onGone` once the mount has been unmounted from outside salvo (`umount`): libfuse's
   * loop then ends without a word to the server, which would otherwise go on holding the volume
   * and its lock for nothing. The sign is libfuse closing its /dev/fuse descriptor, looked for
   * every second; not the mount table, which a lazy unmount (`umount -l`) leaves while a loop
   * device still holds the live image and writes through the detached mount. (Nor the open
   * handles: the kernel drops the release of the last one when it ends the session.)
   */
  watchForUnmount(onGone: () => void): void {
    const fd = this.sessionFd;
    if (fd === null) return debug('no /dev/fuse descriptor of its own found: an unmount from outside goes unnoticed');
    this.unmountWatch = setInterval(() => {
      if (isFuseDeviceOpen(fd)) return;
      this.stopWatching();
      onGone();
    }, UNMOUNT_WATCH_MS);
    this.unmountWatch.unref();
  }

  private stopWatching(): void {
    if (this.unmountWatch) clearInterval(this.unmountWatch);
    this.unmountWatch = null;
  }

  /** Loop devices attached to any image of the mount, live or snapshot (a busy mount must not go away under them). */
  attachedLoopDevices(): string[] {
    return loopDevicesUnder(this.listedAs).map((l) => l.device);
  }

  async unmount(): Promise<void> {
    this.stopWatching();
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    await this.refreshing;
    // Gone from the mount table already (`umount`, `umount -l` from outside): fusermount would fail.
    if (!isMountpoint(this.listedAs)) return debug('%s was unmounted from outside', this.mountpoint);
    await new Promise<void>((resolve, reject) => this.fuse.unmount((err) => (err ? reject(err) : resolve())));
    debug('unmounted %s', this.mountpoint);
  }

  /** Takes in the points archived since the last look (an archive mount); a failure keeps what is known and is logged. */
  private refresh(): Promise<void> {
    const history = this.history;
    if (!history.refresh) return Promise.resolve();
    this.refreshing ??= history
      .refresh()
      .catch((err) => this.report(`looking for new synch points in ${history.store.location} failed: ${(err as Error).message}`))
      .finally(() => {
        this.refreshedAtMs = Date.now();
        this.refreshing = null;
      });
    return this.refreshing;
  }

  // --- what stat shows

  private stat(node: Node): Stat {
    const base = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, atime: this.mountedAt, ctime: this.mountedAt, mtime: this.mountedAt, nlink: 1 };
    switch (node.kind) {
      case 'dir':
        return { ...base, mode: 0o40755, size: 4096, nlink: 2 };
      case 'control':
        return { ...base, mode: 0o100444, size: this.controlBytes.length };
      case 'live':
        return { ...base, mode: 0o100644, size: this.sizeBytes, mtime: new Date(this.liveMtimeMs), ctime: new Date(this.liveMtimeMs), blksize: REQUEST_BYTES_MAX };
      case 'snapshot': {
        const time = new Date(node.point.timeMs);
        return { ...base, mode: 0o100444, size: this.sizeBytes, mtime: time, ctime: time, atime: time, blksize: REQUEST_BYTES_MAX };
      }
      case 'link': {
        const time = new Date(node.point.timeMs);
        return { ...base, mode: 0o120777, size: node.target.length, mtime: time, ctime: time, atime: time };
      }
    }
  }

  // --- operations (each answers its callback exactly once)

  op_getattr(path: string, cb: (err: number, stat?: Stat) => void): void {
    const node = this.tree.lookup(path);
    if (!node) return cb(Fuse.ENOENT);
    cb(0, this.stat(node));
  }

  op_readdir(path: string, cb: (err: number, names?: string[]) => void): void {
    const answer = () => {
      const node = this.tree.lookup(path);
      if (!node) return cb(Fuse.ENOENT);
      if (node.kind !== 'dir') return cb(Fuse.ENOTDIR);
      cb(0, node.entries());
    };
    // `ls` of an archive mount's /snapshots shows what was archived until a moment ago.
    if (path.startsWith('/snapshots') && this.history.refresh && Date.now() - this.refreshedAtMs > REFRESH_ON_LIST_MS) return void this.refresh().then(answer);
    answer();
  }

  op_readlink(path: string, cb: (err: number, target?: string) => void): void {
    const node = this.tree.lookup(path);
    if (!node) return cb(Fuse.ENOENT);
    if (node.kind !== 'link') return cb(Fuse.EINVAL);
    cb(0, node.target);
  }

  op_open(path: string, flags: number, cb: (err: number, fd?: number) => void): void {
    const node = this.tree.lookup(path);
    if (!node) return cb(Fuse.ENOENT);
    const writing = (flags & O_ACCMODE) !== 0;
    if (node.kind === 'live') return cb(0, this.addHandle({ kind: 'live' }));
    if (node.kind === 'control') return writing ? cb(Fuse.EROFS) : cb(0, 0);
    if (node.kind !== 'snapshot') return cb(Fuse.EISDIR);
    if (writing) return cb(Fuse.EROFS);
    this.history.snapshots.open(node.point).then(
      () => cb(0, this.addHandle({ kind: 'snapshot', point: node.point })),
      (err) => cb(toErrno(err, `opening snapshot ${synchPointTime(node.point)}`, this.report)),
    );
  }

  op_read(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void {
    if (path === '/.salvo.json') {
      const n = Math.max(0, Math.min(len, this.controlBytes.length - pos));
      if (n > 0) this.controlBytes.copy(buf, 0, pos, pos + n);
      return cb(n);
    }
    const handle = this.handles.get(fd);
    if (!handle) return cb(Fuse.EBADF);
    const n = Math.max(0, Math.min(len, this.sizeBytes - pos));
    if (n === 0) return cb(0);
    const answer = this.timed('read', cb);
    if (handle.kind === 'live') {
      try {
        this.readAhead!.readInto(buf.subarray(0, n), pos);
        this.bytesRead.live += n;
        return answer(n);
      } catch (err) {
        return answer(toErrno(err, `reading ${n} bytes at ${pos} of the live volume`, this.report));
      }
    }
    this.history.snapshots
      .open(handle.point)
      .then((snapshot) => snapshot.readInto(buf.subarray(0, n), pos))
      .then(
        () => {
          this.bytesRead.snapshot += n;
          answer(n);
        },
        (err) => answer(toErrno(err, `reading ${n} bytes at ${pos} of snapshot ${synchPointTime(handle.point)}`, this.report)),
      );
  }

  op_write(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void {
    const handle = this.handles.get(fd);
    if (!handle) return cb(path.startsWith('/snapshots/') ? Fuse.EROFS : Fuse.EBADF);
    const volume = this.volume;
    if (handle.kind !== 'live' || !volume) return cb(Fuse.EROFS);
    if (pos + len > this.sizeBytes) return cb(Fuse.EFBIG);
    const data = buf.subarray(0, len);
    const answer = this.timed('write', cb);
    const written = () => {
      this.liveMtimeMs = Date.now();
      answer(len);
    };
    const failed = (err: unknown) => answer(toErrno(err, `writing ${len} bytes at ${pos} of the live volume`, this.report));
    try {
      // Most writes complete in this turn; the rest (a roll, an unaligned write) wait their turn.
      if (volume.writeNow(data, pos)) return written();
    } catch (err) {
      return failed(err);
    }
    volume.write(data, pos).then(written, failed);
  }

  op_flush(_path: string, _fd: number, cb: (err: number) => void): void {
    cb(0);
  }

  op_fsync(path: string, _datasync: boolean, _fd: number, cb: (err: number) => void): void {
    if (path !== '/live/volume.img' || !this.volume) return cb(0);
    const answer = this.timed('fsync', cb);
    this.volume.flush().then(
      () => answer(0),
      (err) => answer(toErrno(err, 'fsync of the live volume', this.report)),
    );
  }

  op_release(_path: string, fd: number, cb: (err: number) => void): void {
    this.handles.delete(fd);
    cb(0);
  }

  op_truncate(path: string, size: number, cb: (err: number) => void): void {
    const node = this.tree.lookup(path);
    if (!node) return cb(Fuse.ENOENT);
    if (node.kind !== 'live') return cb(Fuse.EROFS);
    // The volume's size is fixed at init; truncating to it (as `O_TRUNC`-less tools do) is a no-op.
    cb(size === this.sizeBytes ? 0 : Fuse.EINVAL);
  }

  op_ftruncate(path: string, _fd: number, size: number, cb: (err: number) => void): void {
    this.op_truncate(path, size, cb);
  }

  /**
   * Discards (the loop driver's PUNCH_HOLE|KEEP_SIZE for fstrim, blkdiscard and `mount -o
   * discard`; ZERO_RANGE for write-zeroes) make the range read as zeros from now on. The
   * image's size is fixed, so the range is cut at its end and nothing else (preallocation,
   * collapse, insert) is offered.
   */
  op_fallocate(path: string, mode: number, offset: number, length: number, _fd: number, cb: (err: number) => void): void {
    const node = this.tree.lookup(path);
    if (!node) return cb(Fuse.ENOENT);
    if (node.kind !== 'live' || !this.volume) return cb(Fuse.EROFS);
    if (!isDiscard(mode)) return cb(Fuse.EOPNOTSUPP);
    if (offset < 0 || length <= 0) return cb(Fuse.EINVAL);
    const end = Math.min(offset + length, this.sizeBytes);
    if (end <= offset) return cb(0);
    const answer = this.timed('fallocate', cb);
    this.volume.discard(offset, end - offset).then(
      () => {
        this.liveMtimeMs = Date.now();
        answer(0);
      },
      (err) => answer(toErrno(err, `discarding ${end - offset} bytes at ${offset} of the live volume`, this.report)),
    );
  }

  op_utimens(path: string, _atime: Date, _mtime: Date, cb: (err: number) => void): void {
    const node = this.tree.lookup(path);
    if (!node) return cb(Fuse.ENOENT);
    cb(node.kind === 'live' || node.kind === 'dir' ? 0 : Fuse.EROFS);
  }

  op_chmod(path: string, _mode: number, cb: (err: number) => void): void {
    this.refuse(path, cb);
  }

  op_chown(path: string, _uid: number, _gid: number, cb: (err: number) => void): void {
    this.refuse(path, cb);
  }

  op_create(path: string, _mode: number, cb: (err: number) => void): void {
    this.refuse(path, cb);
  }

  op_unlink(path: string, cb: (err: number) => void): void {
    this.refuse(path, cb);
  }

  op_mkdir(path: string, _mode: number, cb: (err: number) => void): void {
    this.refuse(path, cb);
  }

  op_rmdir(path: string, cb: (err: number) => void): void {
    this.refuse(path, cb);
  }

  op_rename(src: string, _dest: string, cb: (err: number) => void): void {
    this.refuse(src, cb);
  }

  op_symlink(_src: string, dest: string, cb: (err: number) => void): void {
    this.refuse(dest, cb);
  }

  op_statfs(_path: string, cb: (err: number, statfs?: import('fuse-native').Statfs) => void): void {
    const blocks = Math.ceil(this.sizeBytes / 4096);
    cb(0, { bsize: 4096, frsize: 4096, blocks, bfree: 0, bavail: 0, files: 3 + this.history.catalog.all.length, ffree: 0, favail: 0, namemax: 255 });
  }

  /** `cb`, recording the time from now until it is called as a request of kind `op` (`mount --metrics`). */
  private timed(op: TimedRequest, cb: (result: number) => void): (result: number) => void {
    const started = performance.now();
    const times = this.requestTimes[op];
    return (result) => {
      times.since(started);
      cb(result);
    };
  }

  /** The layout is fixed: history cannot be changed, and nothing can be added beside it. */
  private refuse(path: string, cb: (err: number) => void): void {
    cb(path.startsWith('/snapshots') ? Fuse.EROFS : Fuse.EPERM);
  }

  private addHandle(handle: Handle): number {
    const fd = this.nextHandle++;
    this.handles.set(fd, handle);
    return fd;
  }
}

const OPERATIONS = [
  'getattr', 'readdir', 'readlink', 'open', 'read', 'write', 'flush', 'fsync', 'release', 'truncate', 'ftruncate',
  'utimens', 'chmod', 'chown', 'create', 'unlink', 'mkdir', 'rmdir', 'rename', 'symlink', 'statfs', 'fallocate',
] as const;

/** The fuse-native operations table: each entry calls the mount's `op_<name>` method. */
function operations(mount: VolumeMount): import('fuse-native').Operations {
  const methods = mount as unknown as Record<string, (...args: unknown[]) => void>;
  return Object.fromEntries(OPERATIONS.map((name) => [name, (...args: unknown[]) => methods[`op_${name}`]!.apply(mount, args)]));
}
