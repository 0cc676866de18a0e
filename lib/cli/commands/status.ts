import type { Command } from 'commander';
import { VolumeError, isVolumeError } from '../../errors.js';
import { formatBytes } from '../../format/units.js';
import { controlRequest, resolveControl } from '../../agent/control.js';
import { isSalvoMount, mountAtPath } from '../../fuse/mount-table.js';
import type { HistoryStatus } from '../../history/history.js';
import type { ArchiveView } from '../../history/archive-view.js';
import type { VolumeStatus } from '../../volume/volume.js';
import { synchPointTime } from '../../volume/synch-point.js';
import { retentionSummary, type RetentionStatus } from '../../history/retention.js';
import { whatToDo, type TroubleCause } from '../../archive/archive-trouble.js';
import { print, printJson } from '../output.js';
import type { ArchiveAccess } from './options.js';

/** What a running mount adds to the volume's status: where, the CPU of `--cpu` (null without), and how often it ships writes (`--rpo`). */
type MountedStatus = VolumeStatus & HistoryStatus & { mountpoint?: string; cpu?: number | null; retention?: RetentionStatus; discards?: { supported: boolean; why: string } };

type Status = { kind: 'volume'; status: MountedStatus } | { kind: 'archive'; status: ArchiveStatus };

/** Status from the running mount if there is one, else by opening the volume or the archive. */
async function readStatus(target: string, access: ArchiveAccess): Promise<Status> {
  const mount = target.startsWith('s3://') ? null : mountAtPath(target);
  if (mount && isSalvoMount(mount)) {
    if (access.encryptKeyFile !== undefined || access.s3Endpoint !== undefined) {
      throw VolumeError.badInput(`${target} is a salvo mount, whose volume names its archive and key`, 'leave out --encrypt-key-file and --s3-endpoint');
    }
    return askMount(target);
  }
  // heavy: loaded only when there is no mount to ask (see main.ts)
  const { classifyTarget } = await import('../target.js');
  if (classifyTarget(target, access) === 'archive') return { kind: 'archive', status: await archiveStatus(target, access) };
  try {
    return await askMount(target);
  } catch (err) {
    if (!isVolumeError(err, 'NOT_MOUNTED')) throw err;
  }
  const [{ openVolume }, { VolumeHistory }] = await Promise.all([import('../volume-access.js'), import('../../history/history.js')]);
  const opened = await openVolume(target, { onStall: () => undefined });
  try {
    return { kind: 'volume', status: { ...opened.volume.status(), ...new VolumeHistory(opened.volume).status() } };
  } finally {
    await opened.close();
  }
}

async function askMount(target: string): Promise<Status> {
  const { socket } = await resolveControl(target);
  const { status } = await controlRequest<{ status: MountedStatus | ArchiveStatus }>(socket, { cmd: 'status' }, 10_000);
  // A mount of an archive alone answers with the archive's status.
  return typeof status.archive === 'string' ? { kind: 'archive', status: status as ArchiveStatus } : { kind: 'volume', status: status as MountedStatus };
}

async function archiveStatus(location: string, access: ArchiveAccess): Promise<ArchiveStatus> {
  const { openArchive } = await import('../target.js');
  const view = await openArchive(location, access);
  try {
    return archiveViewStatus(view);
  } finally {
    await view.close();
  }
}

/** What status shows of an archive read on its own (by `salvo status <archive>`, or a mount of it). */
export function archiveViewStatus(view: ArchiveView): ArchiveStatus {
  const latest = view.catalog.latest;
  return {
    archive: view.store.location,
    volumeId: view.config.volumeId,
    sizeBytes: view.config.sizeBytes,
    encrypted: view.config.encryption !== undefined,
    segments: view.segments.length,
    segmentsInTailsOnly: view.source.tailKeys.size,
    synchPoints: view.catalog.all.length,
    recoveryPoint: latest ? synchPointTime(latest) : null,
    retention: retentionSummary(view.retention.state, view.retentionProblem),
    requests: { ...view.store.stats },
  };
}

export interface ArchiveStatus {
  archive: string;
  volumeId: string;
  sizeBytes: number;
  encrypted: boolean;
  segments: number;
  segmentsInTailsOnly: number;
  synchPoints: number;
  recoveryPoint: string | null;
  retention: Omit<RetentionStatus, 'lastRun'>;
  requests: Record<string, number>;
  /** A mount of the archive alone: where. */
  mountpoint?: string;
}

function printVolumeStatus(s: MountedStatus): void {
  const a = s.archive;
  const seg = s.segments;
  print(`volume        ${s.volume} (${s.volumeId})${s.mountpoint ? `, mounted on ${s.mountpoint}` : ', not mounted'}${typeof s.cpu === 'number' ? ` (serving on CPU ${s.cpu})` : ''}`);
  print(`size          ${formatBytes(s.sizeBytes)} in ${formatBytes(s.blockSizeBytes)} blocks; index ${formatBytes(s.indexBytes)} for ${s.indexedBlocks} blocks with data`);
  print(`segments      current 1 (#${seg.currentSequence}), active ${seg.active}, inactive ${seg.inactive}, recycle ${seg.recycle}; ${seg.archivedOnPrimary} on primary already archived`);
  print(`              working set ${s.workingSetSegments} × ${formatBytes(s.segmentSizeBytes)}, ${s.spareSegments} spare`);
  print(`primary       ${formatBytes(s.primary.allocatedBytes)} allocated, of up to ${formatBytes(s.primary.slotBytes)} once every slot has held a segment`);
  print(`written       ${formatBytes(s.bytesWritten)} since opened, ${formatBytes(s.bytesCopiedForward)} copied forward, ${formatBytes(s.bytesDiscarded)} discarded`);
  if (s.discards) print(`discards      ${s.discards.supported ? 'on' : 'OFF'}: ${s.discards.why}`);
  print(`archive       ${a.location}, ${s.encrypted ? 'encrypted (AES-256-GCM)' : 'not encrypted'}`);
  print(`  shipped     ${a.segmentsArchived} segments, ${a.tailsShipped} tails: ${formatBytes(a.rawBytesArchived)} → ${formatBytes(a.storedBytesArchived)} stored${a.compressionRatio ? ` (${a.compressionRatio.toFixed(1)}x)` : ''}`);
  print(`  waiting     ${formatBytes(a.bytesWaiting)}: ${a.pendingItems} pieces queued, ${formatBytes(a.bytesInCurrentSegment)} in the current segment${a.oldestUnarchivedWriteAgeMs !== null ? `; oldest unarchived write ${(a.oldestUnarchivedWriteAgeMs / 1000).toFixed(1)} s old` : ''}`);
  print(`  recovery    ${a.recoveryPoint ?? 'none yet'} (newest synch point the archive alone restores)`);
  print(`  rpo         ${s.rpoSeconds > 0 ? `writes shipped at least every ${s.rpoSeconds} s` : 'writes shipped at synch points'}`);
  print(`  requests    PUT ${a.requests.puts}, GET ${a.requests.gets}, HEAD ${a.requests.heads}, LIST ${a.requests.lists}, DELETE ${a.requests.deletes}`);
  if (a.lastError) {
    print(`  FAILING     since ${a.failingSince} (${a.failingCause}): ${a.lastError}; the points after the recovery point are on primary only`);
    if (a.failingCause) print(`              ${whatToDo(a.failingCause as TroubleCause)}`);
  }
  if (s.writesStalledSince) print(`STALLED       writes wait for a free slot since ${s.writesStalledSince}`);
  if (s.writeStalls.count > 0) print(`stalls        writes waited for a free slot ${s.writeStalls.count} times since opened, ${(s.writeStalls.totalMs / 1000).toFixed(1)} s in all`);
  print(`synch points  ${s.synchPoints}${s.latest ? `, latest ${s.latest}` : ''}`);
  if (s.retention) print(`retention     ${retentionLine(s.retention)}`);
  print(`snapshot I/O  ${s.snapshotReads.summariesFetched} summaries and ${s.snapshotReads.chunksFetched} chunks (${formatBytes(s.snapshotReads.bytesFetched)}) fetched from the archive; cache ${formatBytes(s.cacheBytes)} of ${formatBytes(s.cacheBytesMax)}`);
}

function retentionLine(r: Omit<RetentionStatus, 'lastRun'> & Partial<Pick<RetentionStatus, 'lastRun'>>): string {
  const run = r.lastRun ? `; last applied ${r.lastRun.at}: forgot ${r.lastRun.forgot}, pruned ${r.lastRun.prunedSegments} segments, compacted ${r.lastRun.compactedSegments}, freed ${formatBytes(r.lastRun.freedBytes)}` : '';
  return `${r.policy}; ${r.forgotten} points forgotten${run}${r.problem ? `; FAILING: ${r.problem}` : ''}`;
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('segment states, archive lag, recovery point, sizes')
    .argument('<path>', 'mountpoint, volume directory, archive directory or s3://bucket/prefix')
    .option('--json', 'print the status as JSON')
    .option('--s3-endpoint <url>', 'S3-compatible server of an s3:// archive (default: AWS_ENDPOINT_URL, else AWS)')
    .option('--encrypt-key-file <file>', 'the key of an encrypted archive')
    .addHelpText('after', '\nExamples:\n  salvo status /mnt/salvo\n  salvo status /backup/db --json')
    .action(async (target: string, options: { json?: boolean } & ArchiveAccess) => {
      const result = await readStatus(target, options);
      if (options.json) return printJson(result.status);
      if (result.kind === 'volume') return printVolumeStatus(result.status);
      const s = result.status;
      print(`archive       ${s.archive} (volume ${s.volumeId}, ${formatBytes(s.sizeBytes)}), ${s.encrypted ? 'encrypted (AES-256-GCM)' : 'not encrypted'}${s.mountpoint ? `, mounted on ${s.mountpoint}` : ''}`);
      print(`segments      ${s.segments} whole, ${s.segmentsInTailsOnly} in tail pieces only`);
      print(`synch points  ${s.synchPoints}; recovery point ${s.recoveryPoint ?? 'none'}`);
      print(`retention     ${retentionLine(s.retention)}`);
    });
}
