/**
 * The volume's configuration (`volume.json` in the volume directory) and the policy rules
 * that `init` enforces. The same object, without the archive location, describes the volume
 * at the root of its archive, so the archive alone tells how to read itself.
 *
 * Policy: the working set (current + active segments) must hold every live block of the
 * volume with headroom, or copy-forward could cycle without freeing space. With `capacity`
 * the blocks one segment holds when every write is a single block (the worst case), the rule
 * is `(workingSetSegments - 1) × capacity ≥ 1.25 × volumeBlocks`.
 */
import { randomBytes } from 'node:crypto';
import { VolumeError } from '../errors.js';
import { formatBytes, formatSizeArgument } from './units.js';
import { BLOCK_CRC_SIZE, RECORD_HEADER_SIZE } from './record.js';
import { FORMAT_VERSION, SEGMENT_HEADER_SIZE, unsupportedVersion } from './segment-header.js';

export const CONFIG_FORMAT = 'salvo-volume';
export const HEADROOM = 1.25;
export const CHUNK_SIZE_BYTES = 1024 * 1024;
const SEGMENT_SIZE_BYTES_MAX = 1024 * 1024 * 1024;
/** The indexes name a block's slot, or its segment in a window of W + 1, with 20 bits (volume/block-map.ts). */
export const WORKING_SET_MAX = 2 ** 20 - 2;
/** Slot files a volume may have: each is a file on primary storage, opened when used (volume/open-files.ts), not all at once. */
export const SLOTS_MAX = 0x10000;
/** The most blocks a volume may have: block numbers are u32 (16 TiB of 4 KiB blocks). */
export const BLOCKS_MAX = 2 ** 32;
/** The default segment size for small volumes; larger volumes get larger ones (defaultSegmentSize). */
const SEGMENT_SIZE_DEFAULT = 64 * 1024 * 1024;
/** The default segment size doubles while twice the volume would take more segments than this. */
const DEFAULT_SEGMENTS_TARGET = 2048;
/** The segment sizes a hint may suggest: 1 MiB to the largest, doubling. */
const SEGMENT_SIZES = Array.from({ length: 11 }, (_, i) => 2 ** (20 + i));

export interface VolumeConfig {
  format: typeof CONFIG_FORMAT;
  version: number;
  volumeId: string;
  sizeBytes: number;
  blockSizeBytes: number;
  segmentSizeBytes: number;
  /** Working-set length: the current segment plus the active ones. */
  workingSetSegments: number;
  /** Slots beyond the working set, where inactive segments wait for the archive. */
  spareSegments: number;
  /** Raw bytes per independently compressed chunk in an archived object. */
  chunkSizeBytes: number;
  /** Ship the current segment's unarchived tail at least this often while writes arrive (0: only at synch points). */
  rpoSeconds: number;
  createdAt: string;
  /** Where segments are archived: a directory path or `s3://bucket/prefix`. Not stored in the archive's copy. */
  archive?: string;
  /** For an S3 archive: the endpoint of an S3-compatible server (never credentials). */
  s3Endpoint?: string;
  /** For an S3 archive with a custom endpoint: false for virtual-hosted-style addressing. */
  s3PathStyle?: boolean;
  /** Archived objects are sealed with a key; `keyCheck` tells the right key (object-cipher.ts). */
  encryption?: { algorithm: 'aes-256-gcm'; keyCheck: string };
  /** Where the key is on this machine. Not stored in the archive's copy. */
  encryptKeyFile?: string;
}

/** How to reach an S3-compatible archive, besides the AWS environment. */
export interface S3Settings {
  endpoint?: string;
  pathStyle?: boolean;
}

export interface PolicyInput {
  sizeBytes: number;
  blockSizeBytes: number;
  /** Default: defaultSegmentSize(sizeBytes). */
  segmentSizeBytes?: number;
  workingSetSegments?: number;
  spareSegments: number;
}

/** Blocks one segment holds in the worst case (every record a single block). */
export function segmentCapacityBlocks(segmentSizeBytes: number, blockSizeBytes: number): number {
  return Math.floor((segmentSizeBytes - SEGMENT_HEADER_SIZE) / (RECORD_HEADER_SIZE + BLOCK_CRC_SIZE + blockSizeBytes));
}

/** The shortest working set that holds the whole volume with headroom (the policy rule above). */
export function minimumWorkingSet(sizeBytes: number, segmentSizeBytes: number, blockSizeBytes: number): number {
  const capacity = segmentCapacityBlocks(segmentSizeBytes, blockSizeBytes);
  return Math.max(3, Math.ceil((HEADROOM * sizeBytes) / blockSizeBytes / capacity) + 1);
}

/**
 * 64 MiB, doubled up to 1 GiB while twice the volume would take more than 2048 segments: a
 * big volume keeps a few thousand slot files, and opening a point scans as many summaries.
 * 64 MiB up to a 64 GiB volume, 1 GiB from 512 GiB on.
 */
export function defaultSegmentSize(sizeBytes: number): number {
  let size = SEGMENT_SIZE_DEFAULT;
  while (size < SEGMENT_SIZE_BYTES_MAX && (2 * sizeBytes) / size > DEFAULT_SEGMENTS_TARGET) size *= 2;
  return size;
}

/**
 * Checks a policy and fills in what is not given: the segment size (defaultSegmentSize) and
 * the working-set length (64, or twice the volume if that is more). Throws BAD_INPUT or
 * BAD_POLICY with a line that says what would work.
 */
export function resolvePolicy(input: PolicyInput): Required<PolicyInput> {
  const { sizeBytes, blockSizeBytes, spareSegments } = input;
  const segmentSizeBytes = input.segmentSizeBytes ?? defaultSegmentSize(sizeBytes);
  if (!Number.isInteger(Math.log2(blockSizeBytes)) || blockSizeBytes < 512 || blockSizeBytes > 65536) {
    throw VolumeError.badInput(`block size ${blockSizeBytes} is not a power of two from 512 to 65536`, 'use --block-size 4096');
  }
  if (!(sizeBytes >= blockSizeBytes)) throw VolumeError.badInput(`size ${sizeBytes} is smaller than one block`, 'give the volume a size such as 1G');
  if (sizeBytes % blockSizeBytes !== 0) {
    throw VolumeError.badInput(`size ${sizeBytes} is not a multiple of the block size ${blockSizeBytes}`);
  }
  if (sizeBytes / blockSizeBytes > BLOCKS_MAX) {
    throw VolumeError.badInput(`size ${formatBytes(sizeBytes)} is more than 2^32 blocks of ${formatBytes(blockSizeBytes)}`, `use a larger --block-size, or a size of at most ${formatBytes(BLOCKS_MAX * blockSizeBytes)}`);
  }
  if (segmentSizeBytes % 4096 !== 0 || segmentSizeBytes > SEGMENT_SIZE_BYTES_MAX || segmentCapacityBlocks(segmentSizeBytes, blockSizeBytes) < 16) {
    throw VolumeError.badInput(
      `segment size ${formatBytes(segmentSizeBytes)} must be a multiple of 4 KiB, hold at least 16 blocks, and be at most 1 GiB`,
      'use --segment-size 64M',
    );
  }
  if (!Number.isInteger(spareSegments) || spareSegments < 1) {
    throw VolumeError.badInput(`--spare ${spareSegments}: at least one spare slot is needed for the next current segment`);
  }
  if (spareSegments >= SLOTS_MAX) throw VolumeError.badInput(`--spare ${spareSegments} is more slots than a volume may have (${SLOTS_MAX})`, 'use --spare 8');
  const needed = minimumWorkingSet(sizeBytes, segmentSizeBytes, blockSizeBytes);
  const room = Math.min(WORKING_SET_MAX, SLOTS_MAX - spareSegments);
  // Twice the volume where the slots allow it, else as many as they allow.
  const byDefault = Math.max(64, needed, Math.min(room, Math.ceil((2 * sizeBytes) / segmentSizeBytes) + 1));
  const workingSetSegments = input.workingSetSegments ?? byDefault;
  if (workingSetSegments > room) {
    const ways = needed <= room ? [`--segments ${Math.min(room, byDefault)}`] : [];
    const larger = SEGMENT_SIZES.find((size) => size > segmentSizeBytes && minimumWorkingSet(sizeBytes, size, blockSizeBytes) <= room);
    if (larger && input.workingSetSegments === undefined) ways.push(`--segment-size ${formatSizeArgument(larger)}`);
    throw new VolumeError('BAD_POLICY', `a working set of ${workingSetSegments} segments is more than a volume with ${spareSegments} spare slots may have (${room})`, {
      hint: ways.length > 0 ? `use ${ways.join(', or ')}` : 'no segment size salvo supports holds this volume',
    });
  }
  if (!Number.isInteger(workingSetSegments) || workingSetSegments < needed) {
    let largerSegment = segmentSizeBytes;
    while (largerSegment < SEGMENT_SIZE_BYTES_MAX && minimumWorkingSet(sizeBytes, largerSegment, blockSizeBytes) > workingSetSegments) {
      largerSegment *= 2;
    }
    const alternative =
      largerSegment < SEGMENT_SIZE_BYTES_MAX ? ` or --segment-size ${formatSizeArgument(largerSegment)} with --segments ${workingSetSegments}` : '';
    throw new VolumeError(
      'BAD_POLICY',
      `a working set of ${workingSetSegments} × ${formatBytes(segmentSizeBytes)} segments cannot hold a ${formatBytes(sizeBytes)} volume with room for copy-forward`,
      { hint: `use --segments ${needed} (or more) with --segment-size ${formatSizeArgument(segmentSizeBytes)}${alternative}` },
    );
  }
  return { sizeBytes, blockSizeBytes, segmentSizeBytes, workingSetSegments, spareSegments };
}

export function newVolumeConfig(
  policy: Required<PolicyInput>,
  archive: string,
  rpoSeconds: number,
  now: Date,
  s3: S3Settings = {},
  encryption?: { keyCheck: string; keyFile: string },
): VolumeConfig {
  return {
    ...(encryption ? { encryption: { algorithm: 'aes-256-gcm' as const, keyCheck: encryption.keyCheck }, encryptKeyFile: encryption.keyFile } : {}),
    ...(s3.endpoint === undefined ? {} : { s3Endpoint: s3.endpoint }),
    ...(s3.pathStyle === undefined ? {} : { s3PathStyle: s3.pathStyle }),
    format: CONFIG_FORMAT,
    version: FORMAT_VERSION,
    volumeId: randomBytes(16).toString('hex'),
    ...policy,
    chunkSizeBytes: CHUNK_SIZE_BYTES,
    rpoSeconds,
    createdAt: now.toISOString(),
    archive,
  };
}

/** Parses and checks `volume.json` (or the archive's copy); CORRUPT_CONFIG when it is not a salvo volume. */
export function decodeVolumeConfig(text: string, where: string): VolumeConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new VolumeError('CORRUPT_CONFIG', `${where} is not valid JSON`);
  }
  const c = value as Partial<VolumeConfig>;
  if (typeof c !== 'object' || c === null || c.format !== CONFIG_FORMAT) {
    throw new VolumeError('CORRUPT_CONFIG', `${where} is not a salvo volume configuration`);
  }
  const unsupported = unsupportedVersion(c.version);
  if (unsupported !== null) throw new VolumeError('CORRUPT_CONFIG', `${where}: ${unsupported}`);
  const whole = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  const fieldsOk =
    typeof c.volumeId === 'string' &&
    /^[0-9a-f]{32}$/.test(c.volumeId) &&
    whole(c.sizeBytes) &&
    whole(c.blockSizeBytes) &&
    whole(c.segmentSizeBytes) &&
    whole(c.workingSetSegments) &&
    whole(c.spareSegments) &&
    whole(c.chunkSizeBytes) &&
    c.chunkSizeBytes > 0 &&
    whole(c.rpoSeconds) &&
    typeof c.createdAt === 'string' &&
    (c.archive === undefined || typeof c.archive === 'string') &&
    (c.s3Endpoint === undefined || typeof c.s3Endpoint === 'string') &&
    (c.s3PathStyle === undefined || typeof c.s3PathStyle === 'boolean') &&
    (c.encryption === undefined || (c.encryption.algorithm === 'aes-256-gcm' && typeof c.encryption.keyCheck === 'string')) &&
    (c.encryptKeyFile === undefined || typeof c.encryptKeyFile === 'string');
  if (!fieldsOk) throw new VolumeError('CORRUPT_CONFIG', `${where} has missing or malformed fields`);
  try {
    resolvePolicy(c as VolumeConfig);
  } catch (err) {
    throw new VolumeError('CORRUPT_CONFIG', `${where} holds a policy salvo cannot run: ${(err as Error).message}`);
  }
  return c as VolumeConfig;
}

export function encodeVolumeConfig(config: VolumeConfig): string {
  return JSON.stringify(config, null, 2) + '\n';
}
