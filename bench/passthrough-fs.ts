/**
 * References (c) for fuse-io: a minimal pass-through FUSE file. `/volume.img` under the
 * mountpoint is a file on the local disk, read and written in one of two ways:
 *
 *   (default)     positioned synchronous calls, as salvo's engine writes its segment slots (a
 *                 local file, never one under this mount, so a synchronous call cannot
 *                 deadlock: it lands in the page cache in microseconds and skips the
 *                 thread-pool hop): the fastest a Node pass-through can be here.
 *   --threadpool  fs.read/fs.write/fs.fdatasync with callbacks, through libuv's thread pool:
 *                 how a Node FUSE server is usually written, and the reference the
 *                 random-write target assumes ("pays a thread-pool round trip per write").
 *
 *   node dist/bench/passthrough-fs.js [--defaults] [--threadpool] <backing-file> <mountpoint>
 *
 * The backing file must exist; its size is the served file's size. Prints `ready` once mounted.
 */
import fs from 'node:fs';
import Fuse from 'fuse-native';
import { parseChildArgs, serveFile, type FileHandlers } from './fuse-file.js';

const parsed = parseChildArgs(process.argv.slice(2));
const threadpool = parsed.args.includes('--threadpool');
const [backing, mountpoint] = parsed.args.filter((a) => a !== '--threadpool');
if (!backing || !mountpoint) {
  process.stderr.write('usage: passthrough-fs.js [--defaults] [--threadpool] <backing-file> <mountpoint>\n');
  process.exit(2);
}
const fd = fs.openSync(backing, 'r+');
const sizeBytes = fs.fstatSync(fd).size;

function io(op: () => number, cb: (result: number) => void): void {
  try {
    cb(op());
  } catch {
    cb(Fuse.EIO);
  }
}

function done(cb: (result: number) => void): (err: Error | null, n?: number) => void {
  return (err, n) => cb(err ? Fuse.EIO : (n ?? 0));
}

const handlers: FileHandlers = threadpool
  ? {
      sizeBytes,
      read: (buf, len, pos, cb) => fs.read(fd, buf, 0, len, pos, done(cb)),
      write: (buf, len, pos, cb) => fs.write(fd, buf, 0, len, pos, done(cb)),
      fsync: (cb) => fs.fdatasync(fd, done(cb)),
    }
  : {
      sizeBytes,
      read: (buf, len, pos, cb) => io(() => fs.readSync(fd, buf, 0, len, pos), cb),
      write: (buf, len, pos, cb) => io(() => fs.writeSync(fd, buf, 0, len, pos), cb),
      fsync: (cb) => io(() => (fs.fdatasyncSync(fd), 0), cb),
    };

serveFile(mountpoint, handlers, { defaults: parsed.defaults });
