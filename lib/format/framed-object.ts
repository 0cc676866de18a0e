/**
 * The frame around the archive's own small objects — catalog objects (FORMAT.md §3.14) and
 * retention records (§3.15): a 48-byte header that names the kind, its version and the volume,
 * and checksums over the header and the body (the compressed body, sealed in an encrypted
 * archive). One frame for both, so that both are refused alike when damaged or foreign.
 */
import { VolumeError } from '../errors.js';
import { crc32c } from './checksum.js';
import { volumeIdBytes } from './bytes.js';
import type { ObjectCipher, PartContext } from './object-cipher.js';

export const FRAME_HEADER_SIZE = 48;
const FLAG_SEALED = 1;

export interface FrameKind {
  /** 8 ASCII bytes. */
  magic: Buffer;
  version: number;
  /** What messages call it: `catalog`, `retention record`. */
  noun: string;
}

/** Where the body's seal binds it: the volume, a place, and which kind of part it is. */
export type FrameSeal = Pick<PartContext, 'sequence' | 'rawStart' | 'part'>;

function sealContext(volumeId: string, seal: FrameSeal): PartContext {
  return { volumeId, ...seal, rawEnd: 0 };
}

/** Header and body (the compressed body bytes, sealed when the archive is encrypted). */
export function encodeFramed(kind: FrameKind, volumeId: string, seal: FrameSeal, compressedBody: Buffer, cipher: ObjectCipher | null): Buffer {
  const body = cipher ? cipher.seal(compressedBody, sealContext(volumeId, seal)) : compressedBody;
  const header = Buffer.alloc(FRAME_HEADER_SIZE);
  kind.magic.copy(header, 0);
  header.writeUInt16LE(kind.version, 8);
  header.writeUInt16LE(FRAME_HEADER_SIZE, 10);
  header.writeUInt32LE(cipher ? FLAG_SEALED : 0, 12);
  volumeIdBytes(volumeId).copy(header, 16);
  header.writeUInt32LE(body.length, 32);
  header.writeUInt32LE(crc32c(body), 36);
  header.writeUInt32LE(crc32c(header.subarray(0, 44)), 44);
  return Buffer.concat([header, body]);
}

/** The compressed body of the object named `key`, checked (and opened); CORRUPT_ARCHIVE when it is not this volume's, whole. */
export function decodeFramed(kind: FrameKind, bytes: Buffer, key: string, volumeId: string, seal: FrameSeal, cipher: ObjectCipher | null): Buffer {
  const bad = (what: string) => VolumeError.corruptArchive(key, what);
  const noun = kind.noun;
  if (bytes.length < FRAME_HEADER_SIZE || !bytes.subarray(0, 8).equals(kind.magic)) throw bad(`is not a salvo ${noun} object (bad magic)`);
  if (bytes.readUInt32LE(44) !== crc32c(bytes.subarray(0, 44))) throw bad(`${noun} header checksum mismatch`);
  const version = bytes.readUInt16LE(8);
  if (version !== kind.version) throw bad(`${noun} format version ${version} is not supported (this salvo reads ${kind.version})`);
  if (bytes.readUInt16LE(10) !== FRAME_HEADER_SIZE) throw bad(`${noun} header size is not ${FRAME_HEADER_SIZE}`);
  if (!bytes.subarray(16, 32).equals(volumeIdBytes(volumeId))) throw bad(`is the ${noun} of volume ${bytes.subarray(16, 32).toString('hex')}, not of ${volumeId}`);
  const length = bytes.readUInt32LE(32);
  if (bytes.length !== FRAME_HEADER_SIZE + length) throw bad(`${noun} body is ${bytes.length - FRAME_HEADER_SIZE} bytes, its header says ${length} (truncated?)`);
  const body = bytes.subarray(FRAME_HEADER_SIZE);
  if (crc32c(body) !== bytes.readUInt32LE(36)) throw bad(`${noun} body checksum mismatch`);
  const sealed = (bytes.readUInt32LE(12) & FLAG_SEALED) !== 0;
  if (sealed !== (cipher !== null)) throw bad(sealed ? `${noun} is encrypted, and no key was given` : `${noun} is not encrypted, in an encrypted archive`);
  return cipher ? cipher.open(body, sealContext(volumeId, seal), key) : body;
}
