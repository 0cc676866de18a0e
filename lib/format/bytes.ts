/**
 * Little-endian 64-bit fields as JS numbers. Sequences and times fit in 53 bits for
 * millions of years of log, so the codecs read them as numbers and reject anything larger
 * (which can only be corruption) instead of paying for a BigInt on every record.
 */

export function writeU64(target: Buffer, offset: number, value: number): void {
  target.writeUInt32LE(value % 0x1_0000_0000, offset);
  target.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

/** Reads a u64, or returns -1 when it does not fit in a safe integer. */
export function readU64(source: Buffer, offset: number): number {
  const high = source.readUInt32LE(offset + 4);
  if (high >= 0x20_0000) return -1;
  return high * 0x1_0000_0000 + source.readUInt32LE(offset);
}

/** Bytes of a volume id: 16 random bytes, shown as 32 hex digits. */
export function volumeIdBytes(volumeId: string): Buffer {
  const bytes = Buffer.from(volumeId, 'hex');
  if (bytes.length !== 16 || bytes.toString('hex') !== volumeId) throw new RangeError(`bad volume id ${volumeId}`);
  return bytes;
}
