/**
 * Reference (c) for fuse-io: a minimal pass-through FUSE file. `/volume.img` under the
 * mountpoint is a file on the local disk, read and written with positioned synchronous
 * calls, as salvo's engine writes its segment slots (a local file, never one under this
 * mount, so a synchronous call cannot deadlock: it lands in the page cache in microseconds
 * and skips the thread-pool hop).
 *
 *   node dist/bench/passthrough-fs.js [--defaults] <backing-file> <mountpoint>
 *
 * The backing file must exist; its size is the served file's size. Prints `ready` once mounted.
 */
import fs from 'node:fs';
import Fuse from 'fuse-native';
import { parseChildArgs, serveFile } from './fuse-file.js';

const { defaults, args } = parseChildArgs(process.argv.slice(2));
const [backing, mountpoint] = args;
if (!backing || !mountpoint) {
  process.stderr.write('usage: passthrough-fs.js [--defaults] <backing-file> <mountpoint>\n');
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

serveFile(
  mountpoint,
  {
    sizeBytes,
    read: (buf, len, pos, cb) => io(() => fs.readSync(fd, buf, 0, len, pos), cb),
    write: (buf, len, pos, cb) => io(() => fs.writeSync(fd, buf, 0, len, pos), cb),
    fsync: (cb) => io(() => (fs.fdatasyncSync(fd), 0), cb),
  },
  { defaults },
);
