/** Printing for the CLI: human lines to stdout, JSON for scripts, progress bars on stderr. */
import { formatBytes } from '../format/units.js';

export function print(line = ''): void {
  process.stdout.write(line + '\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** One JSON object a line, for output that may go on (`sync --every --json`). */
export function printJsonLine(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/** Rows as aligned columns. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  print(line(header));
  for (const row of rows) print(line(row));
}

/**
 * A progress bar on stderr, redrawn at most ten times a second, shown only on a terminal (so
 * logs and pipes stay clean). `bytes` formats the counts as sizes.
 */
export function progressBar(label: string, options: { bytes?: boolean } = {}): { update(done: number, total: number): void; finish(): void } {
  const tty = process.stderr.isTTY === true;
  let lastDraw = 0;
  let drawn = false;
  const show = (n: number) => (options.bytes ? formatBytes(n) : String(n));
  return {
    update(done, total) {
      if (!tty) return;
      const now = Date.now();
      if (now - lastDraw < 100 && done < total) return;
      lastDraw = now;
      const width = 30;
      const fraction = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(fraction * width);
      process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${show(done)}/${show(total)}`);
      drawn = true;
    },
    finish() {
      if (drawn) process.stderr.write('\r\x1b[K');
    },
  };
}
