/**
 * Where the time goes in a `node --cpu-prof` profile: self time summed by function and by
 * source file, as tables. Used by `fuse-io --profile` on the mount process.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Table } from '../common.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function place(url: string): string {
  if (!url) return '';
  const clean = url.replace(/^file:\/\//, '');
  const at = clean.indexOf('/dist/');
  if (at >= 0) return clean.slice(at + 6);
  const nm = clean.indexOf('/node_modules/');
  if (nm >= 0) return clean.slice(nm + 14);
  return clean.startsWith('node:') ? clean : path.basename(clean);
}

/** Now on the clock V8 stamps profiles with (CLOCK_MONOTONIC, µs): `process.hrtime` reads the same clock. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Self time by function and by file, top `limit` of each, as shares of the wall time. With
 * `window` (µs on the monotonic clock, as `monotonicUs` gives), only samples inside it count.
 */
export function summarizeProfile(file: string, limit = 15, window?: { startUs: number; endUs: number }): Table[] {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const from = Math.max(window?.startUs ?? -Infinity, profile.startTime);
  const to = Math.min(window?.endUs ?? Infinity, profile.endTime);
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at >= from && at <= to) self.set(id, (self.get(id) ?? 0) + delta);
  });
  const total = to - from;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const where = place(url);
    const fn = `${functionName || '(anonymous)'}${where ? ` ${where}:${lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    const group = where || functionName;
    byFile.set(group, (byFile.get(group) ?? 0) + us);
  }
  const rows = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([k, us]) => [k, `${(us / 1000).toFixed(0)} ms`, `${((100 * us) / total).toFixed(1)}%`]);
  return [
    { title: `mount process: self time by function (of ${(total / 1e6).toFixed(1)} s of wall time)`, columns: ['function', 'self', 'share'], rows: rows(byFunction) },
    { title: 'mount process: self time by file', columns: ['file', 'self', 'share'], rows: rows(byFile) },
  ];
}
