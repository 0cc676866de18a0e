/**
 * The archiver's scratch (shared memory for a segment's raw bytes and its compressed chunks)
 * does not pile up across bursts of writes: its pages go back to the OS whenever the queue
 * empties. A dropped scratch stays resident while any idle compression worker still holds it,
 * which grew a mount by ~0.3 GiB a burst.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DirectoryStore } from '../../lib/archive/directory-store.js';
import { createTempVolume, tempDir } from '../helpers/temp-volume.js';

const MiB = 1 << 20;

function residentAnonBytes(): number {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('RssAnon:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

t.test('the archive scratch memory is given back after each burst of writes, not kept or piled up', async (t) => {
  const segmentSizeBytes = 16 * MiB;
  // A directory archive: a memory store would hold the (incompressible) archived bytes itself.
  const store = new DirectoryStore(path.join(tempDir(t), 'archive'));
  const { volume } = await createTempVolume(t, { sizeBytes: 32 * MiB, segmentSizeBytes, workingSetSegments: 8, spareSegments: 2, store }, { store });
  const data = randomBytes(2 * segmentSizeBytes);
  const resident: number[] = [];
  for (let burst = 0; burst < 6; burst++) {
    // Two segments sealed a burst, each archived through the scratch (raw + compressed: 32 MiB).
    for (let at = 0; at < data.length; at += MiB) await volume.write(data.subarray(at, at + MiB), at);
    await volume.idle();
    resident.push(residentAnonBytes());
  }
  t.ok(volume.status().archive.segmentsArchived >= 10, `segments went through the archive (${volume.status().archive.segmentsArchived})`);
  const growth = resident[resident.length - 1]! - resident[0]!;
  // Five more bursts would keep 5 × 32 MiB were each scratch dropped and left to the workers' collectors.
  t.ok(growth < 48 * MiB, `resident memory after the first burst and after the sixth: +${(growth / MiB).toFixed(1)} MiB (${resident.map((r) => (r / MiB).toFixed(0)).join(', ')} MiB)`);
});
