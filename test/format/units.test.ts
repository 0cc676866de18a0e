import t from 'tap';
import { formatBytes } from '../../lib/format/units.js';

t.test('units: bytes are formatted for people with binary units', async (t) => {
  t.same([0, 512, 1023, 1024, 1536, 64 * 2 ** 20, 20 * 2 ** 30, 2 ** 50].map(formatBytes), ['0 B', '512 B', '1023 B', '1.00 KiB', '1.50 KiB', '64.0 MiB', '20.0 GiB', '1024.0 TiB']);
});
