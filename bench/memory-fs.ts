/**
 * Reference (d) for fuse-io: an in-memory FUSE file, the cost of the crossing alone (kernel →
 * libfuse → fuse-native → JS and back, plus one copy). Pages of 1 MiB are allocated when
 * first written; unwritten ranges read as zeros.
 *
 *   node dist/bench/memory-fs.js [--defaults] <mountpoint> <size-bytes>
 *
 * Prints `ready` once mounted.
 */
import { parseChildArgs, serveFile } from './fuse-file.js';

const PAGE_BYTES = 1024 * 1024;

const { defaults, args } = parseChildArgs(process.argv.slice(2));
const [mountpoint, sizeText] = args;
const sizeBytes = Number(sizeText);
if (!mountpoint || !Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) {
  process.stderr.write('usage: memory-fs.js [--defaults] <mountpoint> <size-bytes>\n');
  process.exit(2);
}
const pages: (Buffer | undefined)[] = new Array(Math.ceil(sizeBytes / PAGE_BYTES));

/** Calls `each(page, offsetInPage, offsetInBuf, length)` for the pages [pos, pos+len) touches. */
function span(pos: number, len: number, each: (page: number, within: number, at: number, n: number) => void): void {
  for (let done = 0; done < len; ) {
    const page = Math.floor((pos + done) / PAGE_BYTES);
    const within = (pos + done) % PAGE_BYTES;
    const n = Math.min(len - done, PAGE_BYTES - within);
    each(page, within, done, n);
    done += n;
  }
}

serveFile(
  mountpoint,
  {
    sizeBytes,
    read(buf, len, pos, cb) {
      span(pos, len, (page, within, at, n) => {
        const p = pages[page];
        if (p) p.copy(buf, at, within, within + n);
        else buf.fill(0, at, at + n);
      });
      cb(len);
    },
    write(buf, len, pos, cb) {
      span(pos, len, (page, within, at, n) => {
        const p = (pages[page] ??= Buffer.alloc(PAGE_BYTES));
        buf.copy(p, within, at, at + n);
      });
      cb(len);
    },
    fsync(cb) {
      cb(0);
    },
  },
  { defaults },
);
