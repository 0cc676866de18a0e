/**
 * A mount with one file, `/volume.img`, served by fuse-native with the options salvo uses
 * (128 KiB requests: big_writes and max_write through fsname, maxRead; no per-request
 * timer). The reference children (passthrough-fs.ts, memory-fs.ts) give it their read and
 * write; what is left is the cost of FUSE and fuse-native themselves.
 *
 * Runs in its own process: it prints `ready` once mounted and unmounts on SIGTERM/SIGINT.
 */
import Fuse, { type Stat } from 'fuse-native';

export const REQUEST_BYTES_MAX = 128 * 1024;
const FILE = '/volume.img';

export interface FileHandlers {
  sizeBytes: number;
  /** Fills `buf[0, len)` from `pos`; returns the byte count or a negative errno (may be async). */
  read(buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
  write(buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
  fsync(cb: (result: number) => void): void;
}

export function serveFile(mountpoint: string, handlers: FileHandlers, options: { defaults?: boolean } = {}): void {
  const now = new Date();
  const base = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, atime: now, mtime: now, ctime: now };
  const ops: import('fuse-native').Operations = {
    getattr(path, cb) {
      if (path === '/') return cb(0, { ...base, mode: 0o40755, size: 4096, nlink: 2 } as Stat);
      if (path === FILE) return cb(0, { ...base, mode: 0o100644, size: handlers.sizeBytes, nlink: 1, blksize: REQUEST_BYTES_MAX } as Stat);
      cb(Fuse.ENOENT);
    },
    readdir(path, cb) {
      if (path === '/') return cb(0, [FILE.slice(1)]);
      cb(Fuse.ENOENT);
    },
    open(path, _flags, cb) {
      cb(path === FILE ? 0 : Fuse.ENOENT, 1);
    },
    read(_path, _fd, buf, len, pos, cb) {
      const n = Math.max(0, Math.min(len, handlers.sizeBytes - pos));
      if (n === 0) return cb(0);
      handlers.read(buf, n, pos, cb);
    },
    write(_path, _fd, buf, len, pos, cb) {
      if (pos + len > handlers.sizeBytes) return cb(Fuse.EFBIG);
      handlers.write(buf, len, pos, cb);
    },
    fsync(_path, _datasync, _fd, cb) {
      handlers.fsync(cb);
    },
    flush(_path, _fd, cb) {
      cb(0);
    },
    release(_path, _fd, cb) {
      cb(0);
    },
    truncate(_path, size, cb) {
      cb(size === handlers.sizeBytes ? 0 : Fuse.EINVAL);
    },
    ftruncate(_path, _fd, size, cb) {
      cb(size === handlers.sizeBytes ? 0 : Fuse.EINVAL);
    },
    utimens(_path, _a, _m, cb) {
      cb(0);
    },
  };
  const fuse = new Fuse(
    mountpoint,
    ops,
    options.defaults ? { force: true } : { fsname: `bench,big_writes,max_write=${REQUEST_BYTES_MAX}`, maxRead: REQUEST_BYTES_MAX, timeout: false, force: true },
  );
  fuse.mount((err) => {
    if (err) {
      process.stderr.write(`cannot mount on ${mountpoint}: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write('ready\n');
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    fuse.unmount((err) => {
      if (err) process.stderr.write(`unmount ${mountpoint}: ${err.message}\n`);
      process.exit(err ? 1 : 0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** `[--defaults] <args…>`: the flag asks for fuse-native's default options (4 KiB writes), for comparison. */
export function parseChildArgs(argv: string[]): { defaults: boolean; args: string[] } {
  const defaults = argv.includes('--defaults');
  return { defaults, args: argv.filter((a) => a !== '--defaults') };
}
