/**
 * Compression on the calling thread, for the simulation: worker threads answer when the machine
 * lets them, and a run must replay exactly from its seed. The same zstd level and checksums
 * as the pool's workers; a chunk that is not zstd rejects, as there.
 */
import { createRequire } from 'node:module';
import { COMPRESSION_LEVEL, CompressionPool, type CompressedChunks } from '../../lib/archive/compression-pool.js';
import { crc32c } from '../../lib/format/checksum.js';

const require = createRequire(import.meta.url);
const zstd = require('zstd-napi') as { compress(input: Uint8Array, options: { compressionLevel: number }): Buffer; decompress(input: Uint8Array): Buffer };

export class InlinePool extends CompressionPool {
  constructor() {
    super(0);
  }

  override async compress(inputs: Uint8Array[]): Promise<Buffer[]> {
    return inputs.map((input) => zstd.compress(input, { compressionLevel: COMPRESSION_LEVEL }));
  }

  override async decompress(inputs: Uint8Array[]): Promise<Buffer[]> {
    return inputs.map((input) => zstd.decompress(input));
  }

  override async compressChunks(src: Buffer, chunkSizeBytes: number, dst: Buffer): Promise<CompressedChunks> {
    const lengths: number[] = [];
    const crcs: number[] = [];
    let out = 0;
    for (let at = 0; at < src.length; at += chunkSizeBytes) {
      const compressed = zstd.compress(src.subarray(at, Math.min(at + chunkSizeBytes, src.length)), { compressionLevel: COMPRESSION_LEVEL });
      compressed.copy(dst, out);
      crcs.push(crc32c(compressed) >>> 0);
      lengths.push(compressed.length);
      out += compressed.length;
    }
    return { lengths, crcs };
  }

  /** Reads as zeros after, as the pages given back do. */
  override async releasePages(bytes: Buffer): Promise<void> {
    bytes.fill(0);
  }

  override async readFile(): Promise<number> {
    throw new Error('the simulation reads its slot files in place');
  }
}
