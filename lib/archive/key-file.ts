/** The key of an encrypted archive, read from its key file (`init --encrypt-key-file`). */
import fs from 'node:fs';
import { VolumeError, errnoCode } from '../errors.js';
import { ObjectCipher } from '../format/object-cipher.js';

export function readKeyFile(file: string): ObjectCipher {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw VolumeError.badInput(`cannot read key file ${file}: ${errnoCode(err) ?? (err as Error).message}`, 'give a file holding a 32-byte key');
  }
  return ObjectCipher.fromKey(bytes, `key file ${file}`);
}
