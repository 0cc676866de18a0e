/** The figures a fault test prints at its end (cases tried, faults injected, data lost). */
interface Tap {
  comment(...message: unknown[]): void;
}

export function figures(t: Tap, suite: string, values: Record<string, number>): void {
  const width = Math.max(...Object.keys(values).map((k) => k.length));
  t.comment(`${suite} figures:`);
  for (const [name, value] of Object.entries(values)) t.comment(`  ${name.padEnd(width)}  ${value}`);
}
