/**
 * gzip and gunzip on the calling thread, for the simulation: the archive catalog's bodies are
 * gzipped on libuv's thread pool, which answers when the machine lets it, and a run must replay
 * exactly from its seed. Imported before the engine, so that the catalog's module takes these.
 */
import zlib from 'node:zlib';

type Callback = (err: Error | null, result?: Buffer) => void;

function inline(run: (input: zlib.InputType) => Buffer) {
  return (input: zlib.InputType, callback: Callback): void => {
    let result: Buffer;
    try {
      result = run(input);
    } catch (err) {
      return callback(err as Error);
    }
    callback(null, result);
  };
}

Object.assign(zlib, { gzip: inline((input) => zlib.gzipSync(input)), gunzip: inline((input) => zlib.gunzipSync(input)) });
