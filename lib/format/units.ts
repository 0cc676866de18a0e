/** Sizes for people (`1.50 KiB`) and as the CLI takes them back (`1536`, `64M`): binary units, K = 1024. */

/** Formats bytes for people: 1536 → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** Formats bytes as the CLI accepts them back: 1048576 → `1M`, 1536 → `1536`. */
export function formatSizeArgument(bytes: number): string {
  for (const [unit, size] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) {
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}
