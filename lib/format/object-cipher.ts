/**
 * Encryption of archived objects (optional, `init --encrypt-key-file`): compress, then
 * authenticate and encrypt with AES-256-GCM. Each part that a reader fetches on its own —
 * the summary and every chunk — is sealed on its own (12-byte random nonce, ciphertext,
 * 16-byte tag), so range reads still work; the associated data binds each part to its volume,
 * segment, raw range and place, so a tampered, moved or foreign part is refused before it is
 * decompressed. The key never leaves the machine: the archive holds only a key check.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { VolumeError } from '../errors.js';
import { volumeIdBytes, writeU64 } from './bytes.js';
import type { VolumeConfig } from './volume-config.js';

export const CIPHER_ALGORITHM = 'aes-256-gcm';
const NONCE_SIZE = 12;
const TAG_SIZE = 16;
/** Bytes a sealed part takes beyond its plaintext. */
export const SEAL_OVERHEAD = NONCE_SIZE + TAG_SIZE;

/** What a part is, bound into its authentication: `summary`, chunk `n`, an archive catalog's body or a retention record's. */
export interface PartContext {
  volumeId: string;
  sequence: number;
  rawStart: number;
  rawEnd: number;
  part: 'summary' | 'catalog' | 'retention' | number;
}

/** The parts that are not chunks, marked by numbers no chunk reaches. */
const PART_MARKS = { summary: 0xffff_ffff, catalog: 0xffff_fffe, retention: 0xffff_fffd } as const;

function associatedData(context: PartContext): Buffer {
  const bytes = Buffer.alloc(16 + 8 + 4 + 4 + 4);
  volumeIdBytes(context.volumeId).copy(bytes, 0);
  writeU64(bytes, 16, context.sequence);
  bytes.writeUInt32LE(context.rawStart, 24);
  bytes.writeUInt32LE(context.rawEnd, 28);
  bytes.writeUInt32LE(typeof context.part === 'number' ? context.part : PART_MARKS[context.part], 32);
  return bytes;
}

export class ObjectCipher {
  private constructor(private readonly key: Buffer) {}

  /** A key is 32 random bytes, raw or as 64 hex digits (`head -c 32 /dev/urandom > key`); `where` names it in messages. */
  static fromKey(bytes: Buffer, where: string): ObjectCipher {
    const text = bytes.toString('latin1').trim();
    const key = bytes.length === 32 ? bytes : /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : null;
    if (!key) {
      throw VolumeError.badInput(`${where} does not hold a 32-byte key`, 'make one with: head -c 32 /dev/urandom > keyfile && chmod 600 keyfile');
    }
    return new ObjectCipher(key);
  }

  /** Tells whether a key is the volume's without revealing it: HMAC of a fixed text. */
  get keyCheck(): string {
    return createHmac('sha256', this.key).update('salvo archive key check v1').digest('hex').slice(0, 32);
  }

  seal(plain: Buffer, context: PartContext): Buffer {
    const nonce = randomBytes(NONCE_SIZE);
    const cipher = createCipheriv(CIPHER_ALGORITHM, this.key, nonce);
    cipher.setAAD(associatedData(context));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([nonce, body, cipher.getAuthTag()]);
  }

  /** Opens a sealed part; CORRUPT_ARCHIVE when it was altered, moved, or sealed with another key. */
  open(sealed: Buffer, context: PartContext, where: string): Buffer {
    if (sealed.length < SEAL_OVERHEAD) throw VolumeError.corruptArchive(where, 'encrypted part too short');
    const decipher = createDecipheriv(CIPHER_ALGORITHM, this.key, sealed.subarray(0, NONCE_SIZE));
    decipher.setAAD(associatedData(context));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    try {
      return Buffer.concat([decipher.update(sealed.subarray(NONCE_SIZE, sealed.length - TAG_SIZE)), decipher.final()]);
    } catch {
      throw VolumeError.corruptArchive(where, `${typeof context.part === 'number' ? `chunk ${context.part}` : context.part} fails authentication (altered, or not this volume's key)`);
    }
  }
}

/** The cipher of an encrypted volume or archive, checked against its key check; null when not encrypted. */
export function cipherFor(config: VolumeConfig, given: ObjectCipher | null | undefined, where: string): ObjectCipher | null {
  if (!config.encryption) {
    if (given) throw VolumeError.badInput(`${where} is not encrypted`, 'leave out --encrypt-key-file');
    return null;
  }
  if (!given) throw VolumeError.badInput(`${where} is encrypted`, 'give its key with --encrypt-key-file');
  if (given.keyCheck !== config.encryption.keyCheck) throw VolumeError.badInput(`that key is not the key of ${where}`, 'give the key file `salvo init --encrypt-key-file` named');
  return given;
}
