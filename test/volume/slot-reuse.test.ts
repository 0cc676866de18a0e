/**
 * Slots reused in place (format 2): a recycled slot keeps the previous segment's bytes behind
 * a zeroed header, so what stops a stale entry from passing for data is its CRC seed, the
 * segment sequence. The case that needs it: a record header that reached the disk over the
 * previous segment's entries for the same offsets, its own entries lost in a crash.
 * Format 1 volumes keep truncating their slots.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { MemoryStore } from '../../lib/archive/memory-store.js';
import { firstBadEntry } from '../../lib/format/checksum.js';
import { RECORD_HEADER_SIZE, RecordType, encodeRecordHeader, entrySeed } from '../../lib/format/record.js';
import { decodeSegmentHeader } from '../../lib/format/segment-header.js';
import { scanSegment } from '../../lib/volume/segment-scan.js';
import { Volume } from '../../lib/volume/volume.js';
import { readVolumeConfig } from '../../lib/volume/config-file.js';
import { createTempVolume, SMALL_POLICY, tempDir } from '../helpers/temp-volume.js';

/** The newest segment of a closed volume: its slot file, bytes, sequence and where its records end. */
function currentSegment(dir: string) {
  const config = readVolumeConfig(dir);
  const slots = fs.readdirSync(path.join(dir, 'slots')).filter((n) => n.endsWith('.slot'));
  let newest: { file: string; bytes: Buffer; sequence: number; firstRecordSequence: number; version: number } | null = null;
  for (const name of slots) {
    const file = path.join(dir, 'slots', name);
    const bytes = fs.readFileSync(file);
    const header = decodeSegmentHeader(bytes, name);
    if (header && (!newest || header.sequence > newest.sequence)) newest = { file, bytes, ...header };
  }
  if (!newest) throw new Error('no segment');
  const scan = scanSegment(newest.bytes.subarray(64), {
    sequence: newest.sequence,
    firstRecordSequence: newest.firstRecordSequence,
    rawStart: 64,
    blockSizeBytes: config.blockSizeBytes,
    entrySeed: entrySeed(newest.version, newest.sequence),
    where: newest.file,
    badBlock: 'stop',
  });
  return { ...newest, rawEnd: scan.summary.rawEnd, nextRecordSequence: scan.summary.nextRecordSequence, blockSizeBytes: config.blockSizeBytes };
}

/** Block `b` as written in `pass`: every byte says which. */
const content = (b: number, pass: number) => Buffer.alloc(4096, (b * 7 + pass) % 251 || 1);

t.test('slot reuse: a record header over the previous segment’s entries is cut at recovery, and the older data served', async (t) => {
  const { dir, volume, reopen } = await createTempVolume(t);
  const blocks = SMALL_POLICY.sizeBytes / 4096;
  const model = new Map<number, number>();
  // One-block writes over the whole volume, pass after pass: a record a block, 31 to a 128 KiB
  // segment whatever the pass, so every segment has the same layout and behind the current
  // segment's tail lie the previous occupant's records at the same offsets. Eight slots are
  // reused many times over in 12 passes, and a few more writes leave room behind the tail.
  for (let pass = 1; pass <= 13; pass++) {
    for (let b = 0; b < (pass === 13 ? 4 : blocks); b++) {
      await volume.write(content(b, pass), b * 4096);
      model.set(b, pass);
    }
  }
  await volume.close();
  const warnings: string[] = [];
  const onWarning = (m: string) => warnings.push(m);
  await (await reopen({ onWarning })).close();
  t.same(warnings, [], 'a clean close leaves nothing for recovery to cut, stale bytes behind the tail or not');

  // Which older segment last held the slot depends on when the archive freed slots: try them all.
  // If the archive lagged at the last roll, the current slot may be one never used before: then
  // one more segment's worth of writes moves on to a used one.
  const staleBehindTail = () => {
    const current = currentSegment(dir);
    const stale = current.bytes.subarray(current.rawEnd + RECORD_HEADER_SIZE, current.rawEnd + RECORD_HEADER_SIZE + 4 + current.blockSizeBytes);
    const olderSeed = Array.from({ length: current.sequence - 1 }, (_, i) => current.sequence - 1 - i).find((seq) => firstBadEntry(stale, current.blockSizeBytes, seq) === -1);
    return { current, stale, olderSeed };
  };
  let { current, stale, olderSeed } = staleBehindTail();
  for (let more = 0; more < 3 && olderSeed === undefined; more++) {
    const again = await reopen();
    for (let i = 0; i < 31; i++) {
      await again.write(content(i % 4, 14 + more), (i % 4) * 4096);
      model.set(i % 4, 14 + more);
    }
    await again.close();
    ({ current, stale, olderSeed } = staleBehindTail());
  }
  t.equal(current.version, 2, 'a new volume is format 2');
  const entrySize = 4 + current.blockSizeBytes;
  t.ok(current.bytes.subarray(current.rawEnd, current.rawEnd + RECORD_HEADER_SIZE).every((b) => b === 0), 'the records end at a blank record header');
  t.not(olderSeed, undefined, `behind it lies an entry valid for an older segment (${olderSeed}), where the next record's would go`);
  t.notOk(stale.subarray(4).equals(content(0, model.get(0)!)), 'and it holds other data than block 0 now has');

  // The crash: the next record's header (block 0) reached the disk, its entry did not.
  const torn = Buffer.from(current.bytes);
  encodeRecordHeader(torn, current.rawEnd, { type: RecordType.Write, flags: 0, sequence: current.nextRecordSequence, block: 0, count: 1, bodyLength: entrySize });
  fs.writeFileSync(current.file, torn);

  const after = await reopen({ onWarning });
  t.teardown(() => after.close());
  const wrong: string[] = [];
  for (let b = 0; b < blocks; b++) {
    const expected = content(b, model.get(b)!);
    if (!after.read(b * 4096, 4096).equals(expected)) wrong.push(`block ${b} reads ${after.read(b * 4096, 1)[0]}, expected ${expected[0]}`);
  }
  t.same(wrong, [], 'every block reads as last acknowledged: the stale entries were not taken for the torn record’s');
  t.match(warnings.join('\n'), /block 0 failed its checksum/, 'recovery says it cut the torn record');
});

t.test('slot reuse: a format 1 volume still truncates its recycled slots', async (t) => {
  const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'format-v1', 'volume');
  const dir = path.join(tempDir(t), 'volume');
  fs.cpSync(fixture, dir, { recursive: true });
  const store = new MemoryStore();
  const volume = await Volume.open(dir, { store, onStall: () => undefined });
  t.teardown(() => volume.close().catch(() => undefined));
  // 32 blocks of 512 bytes in 12 KiB segments, four slots: 20 passes go round the slots many times.
  for (let pass = 1; pass <= 20; pass++) {
    for (let b = 0; b < 32; b += 4) await volume.write(Buffer.alloc(4 * 512, pass), b * 512);
  }
  await volume.close();
  const current = currentSegment(dir);
  t.equal(current.version, 1, 'the volume keeps format 1');
  t.ok(current.sequence > 8, `segment ${current.sequence}: the slots were reused`);
  t.ok(current.bytes.subarray(current.rawEnd).every((b) => b === 0), 'behind the current segment’s tail the slot is a hole, as format 1 recovery expects');
  const again = await Volume.open(dir, { store, onStall: () => undefined });
  t.teardown(() => again.close());
  t.same(again.read(0, 32 * 512), Buffer.alloc(32 * 512, 20), 'and it reopens with every block');
});
