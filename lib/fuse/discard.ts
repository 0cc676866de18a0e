/**
 * Discards through FUSE: the loop driver sends fstrim's, blkdiscard's and `mount -o discard`'s
 * as fallocate on the live image, which only fuse-native built with salvo's patch passes on
 * (scripts/build-fuse-native).
 */
import Fuse from 'fuse-native';

/** fallocate modes that are discards: PUNCH_HOLE|KEEP_SIZE, and ZERO_RANGE with or without KEEP_SIZE (linux/falloc.h). */
const DISCARD_MODES = new Set([0x02 | 0x01, 0x10, 0x10 | 0x01]);

export function isDiscard(mode: number): boolean {
  return DISCARD_MODES.has(mode);
}

/** Whether the loaded fuse-native binds fallocate: its prebuilt binary does not, and then discards never reach the volume. */
export function discardSupport(): { supported: boolean; why: string } {
  return Fuse.FALLOCATE === true
    ? { supported: true, why: 'fuse-native built with the fallocate op: fstrim, blkdiscard and mount -o discard free blocks' }
    : { supported: false, why: 'the loaded fuse-native has no fallocate op (its prebuilt binary): discards are refused; run `npm ci` or scripts/build-fuse-native to build it' };
}
