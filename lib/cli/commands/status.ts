import type { Command } from 'commander';
import { isVolumeError } from '../../errors.js';
import { formatBytes } from '../../format/units.js';
import { controlRequest, resolveControl } from '../../agent/control.js';
import type { VolumeStatus } from '../../volume/volume.js';
import { synchPointTime } from '../../volume/synch-point.js';
import { print, printJson } from '../output.js';

/** What a running mount adds to the volume's status: where, and the CPU of `--cpu` (null without). */
type MountedStatus = VolumeStatus & { mountpoint?: string; cpu?: number | null };

/** Status from the running mount if there is one, else by opening the volume or the archive. */
async function readStatus(target: string): Promise<{ kind: 'volume'; status: MountedStatus } | { kind: 'archive'; status: ArchiveStatus }> {
  try {
    const { socket } = await resolveControl(target);
    const reply = await controlRequest<{ status: MountedStatus }>(socket, { cmd: 'status' }, 10_000);
    return { kind: 'volume', status: reply.status };
  } catch (err) {
    if (!isVolumeError(err, 'NOT_MOUNTED')) throw err;
  }
  // heavy: loaded only when there is no mount to ask (see main.ts)
  const [{ Volume }, { isVolumeDirectory, openArchive }] = await Promise.all([import('../../volume/volume.js'), import('../target.js')]);
  if (isVolumeDirectory(target)) {
    const volume = await Volume.open(target, { onStall: () => undefined });
    try {
      return { kind: 'volume', status: volume.status() };
    } finally {
      await volume.close();
    }
  }
  const view = await openArchive(target);
  try {
    const latest = view.catalog.latest;
    return {
      kind: 'archive',
      status: {
        archive: view.store.location,
        volumeId: view.config.volumeId,
        sizeBytes: view.config.sizeBytes,
        segments: view.segments.length,
        segmentsInTailsOnly: view.source.tailKeys.size,
        synchPoints: view.catalog.all.length,
        recoveryPoint: latest ? synchPointTime(latest) : null,
        requests: { ...view.store.stats },
      },
    };
  } finally {
    await view.close();
  }
}

interface ArchiveStatus {
  archive: string;
  volumeId: string;
  sizeBytes: number;
  segments: number;
  segmentsInTailsOnly: number;
  synchPoints: number;
  recoveryPoint: string | null;
  requests: Record<string, number>;
}

function printVolumeStatus(s: MountedStatus): void {
  const a = s.archive;
  const seg = s.segments;
  print(`volume        ${s.volume} (${s.volumeId})${s.mountpoint ? `, mounted on ${s.mountpoint}` : ', not mounted'}${typeof s.cpu === 'number' ? ` (serving on CPU ${s.cpu})` : ''}`);
  print(`size          ${formatBytes(s.sizeBytes)} in ${formatBytes(s.blockSizeBytes)} blocks; index ${formatBytes(s.indexBytes)} (${s.indexBytesPerBlock} B/block)`);
  print(`segments      current 1 (#${seg.currentSequence}), active ${seg.active}, inactive ${seg.inactive}, recycle ${seg.recycle}; ${seg.archivedOnPrimary} on primary already archived`);
  print(`              working set ${s.workingSetSegments} × ${formatBytes(s.segmentSizeBytes)}, ${s.spareSegments} spare`);
  print(`written       ${formatBytes(s.bytesWritten)} since opened, ${formatBytes(s.bytesCopiedForward)} copied forward`);
  print(`archive       ${a.location}`);
  print(`  shipped     ${a.segmentsArchived} segments, ${a.tailsShipped} tails: ${formatBytes(a.rawBytesArchived)} → ${formatBytes(a.storedBytesArchived)} stored${a.compressionRatio ? ` (${a.compressionRatio.toFixed(1)}x)` : ''}`);
  print(`  waiting     ${formatBytes(a.bytesWaiting)}: ${a.pendingItems} pieces queued, ${formatBytes(a.bytesInCurrentSegment)} in the current segment${a.oldestUnarchivedWriteAgeMs !== null ? `; oldest unarchived write ${(a.oldestUnarchivedWriteAgeMs / 1000).toFixed(1)} s old` : ''}`);
  print(`  recovery    ${a.recoveryPoint ?? 'none yet'} (newest synch point the archive alone restores)`);
  print(`  requests    PUT ${a.requests.puts}, GET ${a.requests.gets}, HEAD ${a.requests.heads}, LIST ${a.requests.lists}, DELETE ${a.requests.deletes}`);
  if (a.lastError) print(`  failing     since ${a.failingSince}: ${a.lastError}`);
  if (s.writesStalledSince) print(`STALLED       writes wait for a free slot since ${s.writesStalledSince}`);
  if (s.writeStalls.count > 0) print(`stalls        writes waited for a free slot ${s.writeStalls.count} times since opened, ${(s.writeStalls.totalMs / 1000).toFixed(1)} s in all`);
  print(`synch points  ${s.synchPoints}${s.latest ? `, latest ${s.latest}` : ''}`);
  print(`snapshot I/O  ${s.snapshotReads.summariesFetched} summaries and ${s.snapshotReads.chunksFetched} chunks (${formatBytes(s.snapshotReads.bytesFetched)}) fetched from the archive`);
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('segment states, archive lag, recovery point, sizes')
    .argument('<path>', 'mountpoint, volume directory, archive directory or s3://bucket/prefix')
    .option('--json', 'print the status as JSON')
    .addHelpText('after', '\nExamples:\n  salvo status /mnt/salvo\n  salvo status /backup/db --json')
    .action(async (target: string, options: { json?: boolean }) => {
      const result = await readStatus(target);
      if (options.json) return printJson(result.status);
      if (result.kind === 'volume') return printVolumeStatus(result.status);
      const s = result.status;
      print(`archive       ${s.archive} (volume ${s.volumeId}, ${formatBytes(s.sizeBytes)})`);
      print(`segments      ${s.segments} whole, ${s.segmentsInTailsOnly} in tail pieces only`);
      print(`synch points  ${s.synchPoints}; recovery point ${s.recoveryPoint ?? 'none'}`);
    });
}
