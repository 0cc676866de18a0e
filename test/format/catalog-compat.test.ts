/**
 * Archive catalog compatibility: the committed fixtures of catalog format 1
 * (test/fixtures/catalog-v1/, written by generate-catalog.ts) read as pinned here, and their
 * damaged variants are refused as damage, naming the object, never as something else.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { decodeCatalogBody, decodeCatalogObject } from '../../lib/format/archive-catalog.js';
import { CATALOG_FIXTURE, CATALOG_FIXTURE_KEY, CATALOG_FIXTURE_VOLUME } from '../fixtures/generate-catalog.js';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'catalog-v1');
const read = (name: string) => fs.readFileSync(path.join(DIR, name));
const decode = (bytes: Buffer) => decodeCatalogBody(zlib.gunzipSync(decodeCatalogObject(bytes, CATALOG_FIXTURE_KEY, CATALOG_FIXTURE_VOLUME, CATALOG_FIXTURE.to, null)), CATALOG_FIXTURE_KEY, CATALOG_FIXTURE);

t.test('catalog-v1/valid.cat reads as pinned', async (t) => {
  const content = decode(read('valid.cat'));
  t.same(content.segments, [...Array.from({ length: 40 }, (_, i) => i + 1), 42]);
  t.same([...content.tails], [[41, ['tails/0000000000000029-00000040-00100000.tail']]]);
  t.same(content.points, [
    { sequence: 7, offset: 1_048_640, recordSequence: 91_234, timeMs: 1_795_311_000_123, label: 'before-upgrade', info: { host: 'db1' } },
    { sequence: 41, offset: 4096, recordSequence: 95_000, timeMs: 1_795_311_060_000, label: null, info: {} },
  ]);
});

t.test('catalog-v1 damaged fixtures are refused as damage of that object', async (t) => {
  for (const [name, message] of [
    ['body-checksum-mismatch.cat', /catalog body checksum mismatch/],
    ['truncated.cat', /truncated/],
    ['unsupported-version.cat', /catalog format version 2 is not supported \(this salvo reads 1\)/],
  ] as const) {
    t.throws(() => decode(read(name)), { code: 'CORRUPT_ARCHIVE', message: new RegExp(`archive object ${CATALOG_FIXTURE_KEY.replace(/\./g, '\\.')}: .*${message.source}`) }, name);
  }
});
