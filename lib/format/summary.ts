/**
 * The segment summary: which blocks a segment (or a piece of one) holds and where, and its
 * synch points — everything a backward scan needs, without the data. It is kept in memory
 * for the current segment, written beside a sealed slot on primary storage, and placed at
 * the front of every archived object so that a scan fetches it alone by one range request.
 *
 * Layout: a 56-byte header, then `extentCount` extents of 12 bytes (block u32, count u32 with
 * bit 31 set for a ZERO extent, offset u32), then `synchCount` synch entries (offset u32,
 * record sequence u64, body length u32, synch body). Offsets are raw byte offsets in the
 * segment: of the first block entry (its CRC) for a WRITE, of the record for ZERO and SYNCH.
 * Extents are in log order, so a later extent supersedes an earlier one.
 *
 * Invariants: the CRC at byte 52 covers header bytes 0..52 and the whole body.
 */
import assert from 'node:assert';
import { endianness } from 'node:os';
import { crc32c } from './checksum.js';
import { readU64, writeU64 } from './bytes.js';
import { decodeSynchBody, encodeSynchBody, type SynchBody } from './record.js';

export const SUMMARY_MAGIC = 0x4d555353; // "SSUM"
export const SUMMARY_HEADER_SIZE = 56;
const SUMMARY_VERSION = 1;
const EXTENT_SIZE = 12;
const ZERO_FLAG = 0x8000_0000;
// Extents are copied to and from bytes as a Uint32Array, which is little-endian only here.
assert(endianness() === 'LE', 'salvo needs a little-endian CPU');

/** A synch point as the summary records it. */
export interface SynchEntry extends SynchBody {
  /** Raw offset of the SYNCH record in its segment. */
  offset: number;
  recordSequence: number;
}

export class SegmentSummary {
  extentCount = 0;
  private extentWords: Uint32Array;
  readonly synchs: SynchEntry[] = [];

  constructor(
    readonly sequence: number,
    readonly firstRecordSequence: number,
    /** Raw offset where the covered part of the segment starts (the header's end, or a tail's start). */
    readonly rawStart: number,
    /** Raw offset just past the last covered record; grows as records are appended. */
    public rawEnd: number,
    /** Sequence the next record after the covered part will carry. */
    public nextRecordSequence: number,
    capacity = 64,
  ) {
    this.extentWords = new Uint32Array(capacity * 3);
  }

  addExtent(block: number, count: number, zero: boolean, offset: number): void {
    assert(count > 0 && count < ZERO_FLAG);
    if ((this.extentCount + 1) * 3 > this.extentWords.length) {
      const grown = new Uint32Array(this.extentWords.length * 2);
      grown.set(this.extentWords);
      this.extentWords = grown;
    }
    const at = this.extentCount * 3;
    this.extentWords[at] = block;
    this.extentWords[at + 1] = zero ? (count | ZERO_FLAG) >>> 0 : count;
    this.extentWords[at + 2] = offset;
    this.extentCount++;
  }

  extentBlock(i: number): number {
    return this.extentWords[i * 3]!;
  }
  extentBlocks(i: number): number {
    return (this.extentWords[i * 3 + 1]! & ~ZERO_FLAG) >>> 0;
  }
  extentIsZero(i: number): boolean {
    return (this.extentWords[i * 3 + 1]! & ZERO_FLAG) !== 0;
  }
  extentOffset(i: number): number {
    return this.extentWords[i * 3 + 2]!;
  }

  /**
   * The part of this summary from raw offset `rawStart` (a record boundary) to its end, whose
   * first record carries `firstRecordSequence`: the summary of a tail piece.
   */
  sliceFrom(rawStart: number, firstRecordSequence: number): SegmentSummary {
    const slice = new SegmentSummary(this.sequence, firstRecordSequence, rawStart, this.rawEnd, this.nextRecordSequence, 16);
    let low = 0;
    let high = this.extentCount;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.extentOffset(mid) < rawStart) low = mid + 1;
      else high = mid;
    }
    for (let e = low; e < this.extentCount; e++) slice.addExtent(this.extentBlock(e), this.extentBlocks(e), this.extentIsZero(e), this.extentOffset(e));
    slice.synchs.push(...this.synchs.filter((s) => s.offset >= rawStart));
    return slice;
  }

  /** Bytes the summary takes in memory, for cache accounting. */
  get memoryBytes(): number {
    return this.extentWords.byteLength + this.synchs.length * 256;
  }

  encode(): Buffer {
    const synchBodies = this.synchs.map((s) => encodeSynchBody(s, 0));
    const bodyLength = this.extentCount * EXTENT_SIZE + synchBodies.reduce((n, b) => n + 16 + b.length, 0);
    const bytes = Buffer.alloc(SUMMARY_HEADER_SIZE + bodyLength);
    bytes.writeUInt32LE(SUMMARY_MAGIC, 0);
    bytes.writeUInt16LE(SUMMARY_VERSION, 4);
    bytes.writeUInt16LE(SUMMARY_HEADER_SIZE, 6);
    writeU64(bytes, 8, this.sequence);
    writeU64(bytes, 16, this.firstRecordSequence);
    writeU64(bytes, 24, this.nextRecordSequence);
    bytes.writeUInt32LE(this.rawStart, 32);
    bytes.writeUInt32LE(this.rawEnd, 36);
    bytes.writeUInt32LE(this.extentCount, 40);
    bytes.writeUInt32LE(this.synchs.length, 44);
    bytes.writeUInt32LE(bodyLength, 48);
    Buffer.from(this.extentWords.buffer, this.extentWords.byteOffset, this.extentCount * EXTENT_SIZE).copy(bytes, SUMMARY_HEADER_SIZE);
    let at = SUMMARY_HEADER_SIZE + this.extentCount * EXTENT_SIZE;
    this.synchs.forEach((s, i) => {
      const body = synchBodies[i]!;
      bytes.writeUInt32LE(s.offset, at);
      writeU64(bytes, at + 4, s.recordSequence);
      bytes.writeUInt32LE(body.length, at + 12);
      body.copy(bytes, at + 16);
      at += 16 + body.length;
    });
    bytes.writeUInt32LE(crc32c(bytes.subarray(SUMMARY_HEADER_SIZE), crc32c(bytes.subarray(0, 52))), 52);
    return bytes;
  }

  /** Bytes the encoded summary at the front of `bytes` takes (header + body), or -1 if not a summary. */
  static encodedLength(bytes: Buffer): number {
    if (bytes.length < SUMMARY_HEADER_SIZE || bytes.readUInt32LE(0) !== SUMMARY_MAGIC) return -1;
    return SUMMARY_HEADER_SIZE + bytes.readUInt32LE(48);
  }

  /**
   * Decodes a summary. `corrupt(what)` builds the error to throw (CORRUPT_SEGMENT on primary,
   * CORRUPT_ARCHIVE in the archive), so every caller reports damage in its own terms.
   */
  static decode(bytes: Buffer, corrupt: (what: string) => Error): SegmentSummary {
    const length = SegmentSummary.encodedLength(bytes);
    if (length < 0) throw corrupt('not a segment summary (bad magic)');
    if (bytes.length < length) throw corrupt('summary truncated');
    if (bytes.readUInt16LE(4) !== SUMMARY_VERSION || bytes.readUInt16LE(6) !== SUMMARY_HEADER_SIZE) {
      throw corrupt(`summary version ${bytes.readUInt16LE(4)} is not supported`);
    }
    if (bytes.readUInt32LE(52) !== crc32c(bytes.subarray(SUMMARY_HEADER_SIZE, length), crc32c(bytes.subarray(0, 52)))) {
      throw corrupt('summary checksum mismatch');
    }
    const sequence = readU64(bytes, 8);
    const firstRecordSequence = readU64(bytes, 16);
    const nextRecordSequence = readU64(bytes, 24);
    const rawStart = bytes.readUInt32LE(32);
    const rawEnd = bytes.readUInt32LE(36);
    const extentCount = bytes.readUInt32LE(40);
    const synchCount = bytes.readUInt32LE(44);
    if (sequence < 1 || firstRecordSequence < 0 || nextRecordSequence < firstRecordSequence || rawEnd < rawStart) {
      throw corrupt('summary fields out of range');
    }
    if (SUMMARY_HEADER_SIZE + extentCount * EXTENT_SIZE > length) throw corrupt('summary extent table overruns it');
    const summary = new SegmentSummary(sequence, firstRecordSequence, rawStart, rawEnd, nextRecordSequence, 1);
    const words = new Uint32Array(extentCount * 3);
    Buffer.from(words.buffer).set(bytes.subarray(SUMMARY_HEADER_SIZE, SUMMARY_HEADER_SIZE + extentCount * EXTENT_SIZE));
    for (let i = 0; i < extentCount; i++) {
      const count = (words[i * 3 + 1]! & ~ZERO_FLAG) >>> 0;
      const offset = words[i * 3 + 2]!;
      if (count === 0 || offset < rawStart || offset >= rawEnd) throw corrupt(`summary extent ${i} out of range`);
    }
    summary.extentWords = words;
    summary.extentCount = extentCount;
    let at = SUMMARY_HEADER_SIZE + extentCount * EXTENT_SIZE;
    for (let i = 0; i < synchCount; i++) {
      if (at + 16 > length) throw corrupt('summary synch table overruns it');
      const offset = bytes.readUInt32LE(at);
      const recordSequence = readU64(bytes, at + 4);
      const bodyLength = bytes.readUInt32LE(at + 12);
      if (at + 16 + bodyLength > length || recordSequence < 0 || offset < rawStart || offset >= rawEnd) {
        throw corrupt(`summary synch entry ${i} out of range`);
      }
      let body: SynchBody;
      try {
        body = decodeSynchBody(bytes.subarray(at + 16, at + 16 + bodyLength), 'summary', 0);
      } catch (err) {
        throw corrupt(`summary synch entry ${i}: ${(err as Error).message}`);
      }
      summary.synchs.push({ ...body, offset, recordSequence });
      at += 16 + bodyLength;
    }
    if (at !== length) throw corrupt('summary has trailing bytes');
    return summary;
  }
}
