/**
 * Reading a segment's records forward from its raw bytes: recovery uses it to find the end
 * of the current segment (the first record that is blank, out of sequence or fails a
 * checksum), `verify` to check every block, and both to rebuild a missing summary.
 */
import { firstBadEntry } from '../format/checksum.js';
import { BLOCK_CRC_SIZE, RECORD_HEADER_SIZE, RecordType, decodeRecordHeader, decodeSynchBody } from '../format/record.js';
import { SegmentSummary } from '../format/summary.js';

export interface ScanOptions {
  sequence: number;
  firstRecordSequence: number;
  /** Raw offset of `bytes[0]` in the segment. */
  rawStart: number;
  blockSizeBytes: number;
  /** What the segment's block entry and synch body CRCs continue from (format/record.ts entrySeed). */
  entrySeed: number;
  /** Where, for messages. */
  where: string;
  /**
   * 'stop': a block failing its CRC ends the scan there (a torn tail).
   * 'report': it is listed in `badBlocks` and the scan goes on (verify of a sealed segment).
   */
  badBlock: 'stop' | 'report';
}

export interface ScanResult {
  summary: SegmentSummary;
  /** Why the scan ended before a blank record or the end of the bytes; null if it did not. */
  stoppedBy: string | null;
  /** The bytes ran out (fewer than a record header left, or a record running past them): more bytes might hold more records. */
  exhausted: boolean;
  badBlocks: { block: number; offset: number }[];
}

export function scanSegment(bytes: Buffer, options: ScanOptions): ScanResult {
  const { rawStart, blockSizeBytes, where } = options;
  const summary = new SegmentSummary(options.sequence, options.firstRecordSequence, rawStart, rawStart, options.firstRecordSequence);
  const badBlocks: { block: number; offset: number }[] = [];
  const entrySize = BLOCK_CRC_SIZE + blockSizeBytes;
  let at = 0;
  let stoppedBy: string | null = null;
  let exhausted = false;
  scan: for (;;) {
    if (at + RECORD_HEADER_SIZE > bytes.length) {
      exhausted = true;
      break;
    }
    const offset = rawStart + at;
    let header;
    try {
      header = decodeRecordHeader(bytes, at, `${where} at offset ${offset}`, blockSizeBytes);
    } catch (err) {
      stoppedBy = (err as Error).message;
      break;
    }
    if (header === null) break;
    if (header.sequence !== summary.nextRecordSequence) {
      stoppedBy = `${where} at offset ${offset}: record sequence ${header.sequence}, expected ${summary.nextRecordSequence}`;
      break;
    }
    const bodyStart = at + RECORD_HEADER_SIZE;
    if (bodyStart + header.bodyLength > bytes.length) {
      stoppedBy = `${where} at offset ${offset}: record runs past the end of the segment`;
      exhausted = true;
      break;
    }
    if (header.type === RecordType.Write) {
      // One call checks the entries up to the first bad one; 'report' goes on after it.
      for (let i = 0; i < header.count; i++) {
        const bad = firstBadEntry(bytes.subarray(bodyStart + i * entrySize, bodyStart + header.count * entrySize), blockSizeBytes, options.entrySeed);
        if (bad < 0) break;
        i += bad;
        const entry = bodyStart + i * entrySize;
        if (options.badBlock === 'stop') {
          stoppedBy = `${where} at offset ${rawStart + entry}: block ${header.block + i} failed its checksum`;
          break scan;
        }
        badBlocks.push({ block: header.block + i, offset: rawStart + entry });
      }
      summary.addExtent(header.block, header.count, false, rawStart + bodyStart);
    } else if (header.type === RecordType.Zero) {
      summary.addExtent(header.block, header.count, true, offset);
    } else {
      try {
        const body = decodeSynchBody(bytes.subarray(bodyStart, bodyStart + header.bodyLength), `${where} at offset ${offset}`, options.entrySeed);
        summary.synchs.push({ ...body, offset, recordSequence: header.sequence });
      } catch (err) {
        stoppedBy = (err as Error).message;
        break;
      }
    }
    at = bodyStart + header.bodyLength;
    summary.rawEnd = rawStart + at;
    summary.nextRecordSequence++;
  }
  return { summary, stoppedBy, badBlocks, exhausted };
}
