/** `npm run bench -- --compare`: a fresh figure beside the saved one of the same table, row and column. */
import t from 'tap';
import { compareWithSaved } from '../../bench/compare.js';

const SAVED = `<!-- bench:x:start -->
## X (\`x\`)

### writes, 1 GiB

| operation | MB/s | IOPS |
|-----------|------|------|
| seq write | 700 (690–710) | – |
| rand write | 40 | 10k |
<!-- bench:x:end -->`;

t.test('compare: each cell shows the saved figure of its table, row and column when it differs', async (t) => {
  const result = compareWithSaved(
    {
      tables: [
        { title: 'writes, 1 GiB', columns: ['operation', 'IOPS', 'MB/s'], rows: [['seq write', '–', '757 (720–857)'], ['rand write', '10k', '41'], ['new row', '1', '2']] },
        { title: 'reads, 1 GiB', columns: ['operation', 'MB/s'], rows: [['seq read', '2000']] },
      ],
    },
    SAVED,
  );
  t.same(result.tables[0]!.rows, [
    ['seq write', '–', '757 (720–857) ← 700 (690–710)'],
    ['rand write', '10k', '41 ← 40'],
    ['new row', '1', '2'],
  ], 'matched by column name, unchanged cells as they are, a new row alone');
  t.match(result.tables[1]!.notes, ['no saved table of this title to compare with'], 'a table the saved run does not have says so');
  t.same(compareWithSaved({ tables: result.tables.slice(1) }, undefined).tables[0]!.rows, [['seq read', '2000']], 'no saved section: the figures alone');
});
