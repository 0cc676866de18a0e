/**
 * `npm run bench -- --compare`: each figure of a fresh run beside the one BENCHMARKS.md holds for
 * the same table, row and column, so a change can be read against the last saved run. Tables are
 * matched by title; a table the saved section does not have is shown as it is, and says so.
 */
import type { BenchResult, Table } from './common.js';

interface SavedTable {
  columns: string[];
  rows: Map<string, string[]>;
}

/** The tables of a saved section: each `### title` with the markdown table under it. */
export function savedTables(section: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  const lines = section.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const title = /^###\s+(.*)$/.exec(lines[i]!)?.[1];
    if (title === undefined) continue;
    let j = i + 1;
    while (j < lines.length && !lines[j]!.startsWith('|')) j++;
    const cells = (line: string) => line.slice(1, line.lastIndexOf('|')).split('|').map((c) => c.trim());
    const header = lines[j] === undefined ? [] : cells(lines[j]!);
    const rows = new Map<string, string[]>();
    for (j += 2; j < lines.length && lines[j]!.startsWith('|'); j++) {
      const row = cells(lines[j]!);
      rows.set(row[0]!, row);
    }
    tables.set(title.trim(), { columns: header, rows });
  }
  return tables;
}

/** `result` with each cell followed by the saved cell of the same table, row and column (when they differ). */
export function compareWithSaved(result: BenchResult, section: string | undefined): BenchResult {
  const saved = savedTables(section ?? '');
  const compared = (table: Table): Table => {
    const old = saved.get(table.title.trim());
    if (!old) return { ...table, notes: [...(table.notes ?? []), 'no saved table of this title to compare with'] };
    const rows = table.rows.map((row) => {
      const before = old.rows.get(row[0]!);
      return row.map((cell, c) => {
        if (c === 0 || !before) return cell;
        const column = old.columns.indexOf(table.columns[c]!);
        const was = column >= 0 ? before[column] : undefined;
        return was === undefined || was === cell ? cell : `${cell} ← ${was}`;
      });
    });
    return { ...table, rows, notes: [...(table.notes ?? []), 'a ← b: b is the saved figure of BENCHMARKS.md'] };
  };
  return { ...result, tables: result.tables.map(compared) };
}
