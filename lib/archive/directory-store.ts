/**
 * An archive in a local directory (or a mounted network filesystem): one file per object.
 * A put writes a temporary file, fsyncs it, drops its pages from the cache, and links it to its
 * final name — link() fails if the name exists, which gives "never overwrite" atomically — then
 * fsyncs the directory.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import createDebug from 'debug';
import { VolumeError, errnoCode } from '../errors.js';
import { checkPageCacheAddon, dropCache } from '../util/page-cache.js';
import { ArchiveKeys, emptyStats, type ArchiveStore, type ByteRange } from './archive-store.js';

const debug = createDebug('salvo:archive');

export class DirectoryStore implements ArchiveStore {
  readonly stats = emptyStats();

  constructor(readonly location: string) {
    checkPageCacheAddon();
  }

  private pathOf(key: string): string {
    return path.join(this.location, ...key.split('/'));
  }

  async put(key: string, parts: readonly Buffer[]): Promise<void> {
    this.stats.puts++;
    const target = this.pathOf(key);
    const temporary = `${target}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      // Only the descriptor, put by init, makes the archive's directory: were it gone (its disk
      // not mounted), segments must wait on primary, not land on whatever disk is under the path.
      if (key !== ArchiveKeys.descriptor && !(await exists(this.location))) {
        throw VolumeError.archiveUnavailable(`archive directory ${this.location} is missing (is its disk mounted?)`);
      }
      // A folder made now (segments/, tails/, catalog/ at the first object) is named in its parent, durably.
      const made = await fs.mkdir(path.dirname(target), { recursive: true });
      if (made !== undefined) await syncDirectory(path.dirname(made));
      const handle = await fs.open(temporary, 'wx', 0o644);
      try {
        // writev may write less than asked without an error (a disk filling up): the rest is
        // written until done, or until a write fails (ENOSPC); an object is never stored short.
        const total = parts.reduce((n, p) => n + p.length, 0);
        let written = (await handle.writev(parts as Buffer[])).bytesWritten;
        if (written < total) {
          const whole = Buffer.concat(parts);
          while (written < total) written += (await handle.write(whole, written, total - written, written)).bytesWritten;
        }
        await handle.sync();
        // Durable now, and rarely read again: its pages go back for the next writes (util/page-cache.ts).
        await dropCache(handle.fd).catch((err: unknown) => debug('dropping the cached pages of %s failed: %s', key, (err as Error).message));
      } finally {
        await handle.close();
      }
      try {
        await fs.link(temporary, target);
      } catch (err) {
        if (errnoCode(err) === 'EEXIST') {
          throw new VolumeError('ARCHIVE_CONFLICT', `archive object ${key} already exists in ${this.location}`, {
            hint: 'another volume may be archiving to the same place; give each volume its own archive',
          });
        }
        throw err;
      }
      await syncDirectory(path.dirname(target));
      this.stats.bytesPut += parts.reduce((n, p) => n + p.length, 0);
    } catch (err) {
      throw this.classify(err, `put ${key}`);
    } finally {
      await fs.rm(temporary, { force: true }).catch(() => undefined);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    this.stats.gets++;
    try {
      const handle = await fs.open(this.pathOf(key), 'r');
      try {
        const size = (await handle.stat()).size;
        const offset = range ? Math.min(range.offset, size) : 0;
        const length = range ? Math.max(0, Math.min(range.length, size - offset)) : size;
        const bytes = Buffer.allocUnsafe(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(bytes, done, length - done, offset + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        this.stats.bytesGot += done;
        return bytes.subarray(0, done);
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw this.classify(err, `get ${key}`);
    }
  }

  async head(key: string): Promise<number | null> {
    this.stats.heads++;
    try {
      return (await fs.stat(this.pathOf(key))).size;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw this.classify(err, `head ${key}`);
    }
  }

  async list(prefix: string, startAfter = ''): Promise<string[]> {
    this.stats.lists++;
    const keys: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
        throw err;
      }
      for (const entry of entries) {
        const key = keyPrefix + entry.name;
        if (entry.isDirectory()) {
          if ((key + '/').startsWith(prefix) || prefix.startsWith(key + '/')) await walk(path.join(dir, entry.name), key + '/');
        } else if (!entry.name.includes('.tmp-') && key.startsWith(prefix) && key > startAfter) keys.push(key);
      }
    };
    // Only the folders on the prefix's way are read: the rest of the archive is not walked.
    const folder = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    try {
      await walk(path.join(this.location, folder), folder);
    } catch (err) {
      throw this.classify(err, `list ${prefix}`);
    }
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    this.stats.deletes++;
    try {
      await fs.rm(this.pathOf(key), { force: true });
    } catch (err) {
      throw this.classify(err, `delete ${key}`);
    }
  }

  async close(): Promise<void> {}

  private classify(err: unknown, what: string): VolumeError {
    if (err instanceof VolumeError) return err;
    const code = errnoCode(err);
    if (code === 'ENOENT' && what.startsWith('get')) {
      return new VolumeError('NOT_FOUND', `${what}: no such object in ${this.location}`, { cause: err });
    }
    return VolumeError.archiveUnavailable(`${what} in ${this.location} failed: ${(err as Error).message}`, err);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(dir: string): Promise<boolean> {
  try {
    await fs.stat(dir);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}
