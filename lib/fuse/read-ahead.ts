/**
 * Read-ahead for a sequential reader of the live image. The kernel sends a loop device's
 * requests to a FUSE file one at a time, so a request's latency is the throughput: when a
 * read follows the previous one, the next range is read and checked (CRCs) right after the
 * answer, in the idle time before the kernel asks for it, and the request that follows is
 * answered by a copy. A prefetched range is used only if nothing was appended since it was
 * read (a write, a zero write or a copy-forward could have changed its blocks); otherwise,
 * and for any other pattern, reads go to the volume as before.
 */
import type { Volume } from '../volume/volume.js';

export class ReadAhead {
  /** End of the last read answered, to recognise a sequential reader. */
  private lastEnd = -1;
  private ahead: { position: number; stamp: number; bytes: Buffer } | null = null;
  /** The buffer of a range consumed or dropped, reused for the next one. */
  private spare: Buffer | null = null;
  private scheduled = false;

  constructor(private readonly volume: Volume) {}

  /** Reads `target.length` bytes at `position`, as Volume.readInto does. */
  readInto(target: Buffer, position: number): void {
    const ahead = this.ahead;
    if (ahead && ahead.position === position && ahead.bytes.length === target.length && ahead.stamp === this.volume.appendStamp) {
      ahead.bytes.copy(target);
    } else {
      this.volume.readInto(target, position);
    }
    if (ahead) {
      this.spare = ahead.bytes;
      this.ahead = null;
    }
    const length = target.length; // not read later: fuse-native detaches its buffer once answered
    const sequential = position === this.lastEnd;
    this.lastEnd = position + length;
    if (sequential && !this.scheduled && this.lastEnd + length <= this.volume.sizeBytes) {
      this.scheduled = true;
      const next = this.lastEnd;
      setImmediate(() => this.fill(next, length));
    }
  }

  private fill(position: number, length: number): void {
    this.scheduled = false;
    // Another read came in meanwhile (another reader, or the kernel was quicker): skip.
    if (position !== this.lastEnd) return;
    const bytes = this.spare?.length === length ? this.spare : Buffer.allocUnsafe(length);
    this.spare = null;
    try {
      this.volume.readInto(bytes, position);
    } catch {
      this.spare = bytes;
      return; // the request itself reads again and reports the problem
    }
    this.ahead = { position, stamp: this.volume.appendStamp, bytes };
  }
}
