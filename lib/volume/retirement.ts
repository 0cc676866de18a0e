/**
 * Retirement and copy-forward (FORMAT.md §4, rule 4): before the oldest active segment leaves
 * the working set, each of its live block entries (those the index still points to) is copied
 * forward into the current segment, so every block's newest entry stays in the working set.
 * A segment holding only superseded, zero and synch entries retires without copying.
 *
 * Copy-forward of one segment always fits a fresh current segment: a live run becomes one
 * record as long as the run, so the copy never takes more record headers than the segment had.
 */
import assert from 'node:assert';
import createDebug from 'debug';
import type { Log } from './log.js';
import type { SegmentSlot } from './segment-slot.js';

const debug = createDebug('salvo:volume');

/** Retirement lets the event loop turn after copying this much (each run's copy is synchronous). */
const RETIRE_YIELD_BYTES = 4 * 1024 * 1024;

/** Live entries of a segment: `count` consecutive blocks from `block`, their entries back to back at raw `offset`. */
interface LiveRun {
  block: number;
  count: number;
  offset: number;
}

export class Retirement {
  /** Segment sequence through which copyAhead left nothing live: an old entry never becomes live again. */
  private drainedThrough = 0;

  constructor(private readonly log: Log) {}

  /** Retires the oldest active segments until the working set is back to its length. */
  async retireExcess(): Promise<void> {
    const { log } = this;
    while (log.roster.workingSetLength() > log.config.workingSetSegments) {
      const oldest = log.workingSet()[0]!;
      assert(oldest !== log.current);
      await this.retire(oldest);
    }
  }

  /** Copies the segment's live entries forward, then makes it inactive. */
  private async retire(slot: SegmentSlot): Promise<void> {
    // Retirement runs inside a write or a roll, under the engine's mutex: no write can
    // supersede a run while it is copied. Only the live runs are read: after random writes they
    // are a few percent of the segment, and a segment of superseded, zero and synch entries
    // reads nothing.
    let copied = 0;
    let sinceYield = 0;
    for (const run of this.liveRuns(slot)) {
      this.log.copyRecord(slot, run.block, run.count, run.offset);
      copied += run.count;
      sinceYield += run.count * this.log.entrySize;
      // Reads of the live volume need no mutex: let them in between runs of a dense segment.
      if (sinceYield >= RETIRE_YIELD_BYTES) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    slot.state = 'inactive';
    this.log.counters.segmentsRetired++;
    debug('retired %s: %d live blocks copied forward', slot.name, copied);
    if (slot.archived) await this.log.recycle(slot);
  }

  /** The segment's entries the index still points to, as runs of consecutive blocks with contiguous entries. */
  private liveRuns(slot: SegmentSlot): LiveRun[] {
    const runs: LiveRun[] = [];
    for (let e = 0; e < slot.summary!.extentCount; e++) runs.push(...this.liveRunsOfExtent(slot, e));
    return runs;
  }

  private liveRunsOfExtent(slot: SegmentSlot, e: number): LiveRun[] {
    const summary = slot.summary!;
    if (summary.extentIsZero(e)) return [];
    const { entrySize, index } = this.log;
    const runs: LiveRun[] = [];
    const block = summary.extentBlock(e);
    const blocks = summary.extentBlocks(e);
    const first = summary.extentOffset(e);
    let runStart = -1;
    for (let i = 0; i <= blocks; i++) {
      const live = i < blocks && index.points(block + i, slot.index, first + i * entrySize);
      if (live && runStart < 0) runStart = i;
      if (!live && runStart >= 0) {
        runs.push({ block: block + runStart, count: i - runStart, offset: first + runStart * entrySize });
        runStart = -1;
      }
    }
    return runs;
  }

  /**
   * Copy-forward ahead of time. With the working set full, each roll must retire the oldest
   * active segment and copy its live blocks first, under the engine's mutex: writes stall for as
   * long as that copy takes. Called while the volume is idle (copy-ahead.ts), this makes up to
   * `budgetBytes` of the copies that the next `horizon` rolls would make, so those rolls retire
   * without copying. They are the records retirement would write (rule 4): each follows every
   * record before it, and a block superseded meanwhile is simply no longer live. When the
   * current segment fills it rolls, as a write would, but only onto a blank slot at hand: a roll
   * that must wait for the archive is left to the writes. Returns true when more is left.
   */
  async copyAhead(budgetBytes: number, horizon: number): Promise<boolean> {
    const { log } = this;
    assert(horizon >= 1 && horizon <= log.copyAheadHorizonMax);
    // A retirement left unfinished (its copy failed: a full disk) is the next write's to finish,
    // in the room its roll left: copies made now would take that room, and a roll now would leave
    // two segments outside the working set, one more than recovery scans.
    if (log.roster.workingSetLength() > log.config.workingSetSegments) return false;
    const workingSet = log.workingSet();
    // The next `horizon` rolls retire this many of the oldest (fewer while the working set fills).
    const due = Math.min(workingSet.length + horizon - log.config.workingSetSegments, workingSet.length - 1);
    // Each call walks the segments not yet drained from the oldest: what earlier calls copied is no longer
    // live, so it is skipped (an index lookup a block, far less than the copy of one batch).
    let copied = 0;
    for (const slot of workingSet.slice(0, Math.max(0, due))) {
      if (slot.sequence <= this.drainedThrough) continue;
      for (const run of this.liveRuns(slot)) {
        for (let done = 0; done < run.count; ) {
          if (copied >= budgetBytes) return true;
          const fit = Math.min(run.count - done, log.blocksThatFit());
          if (fit <= 0) {
            if (!log.roster.hasBlankSlot()) return false;
            await log.roll();
            return true;
          }
          log.copyRecord(slot, run.block + done, fit, run.offset + done * log.entrySize);
          log.counters.bytesCopiedAhead += fit * log.config.blockSizeBytes;
          done += fit;
          copied += fit * log.entrySize;
        }
      }
      this.drainedThrough = slot.sequence;
    }
    return false;
  }
}
