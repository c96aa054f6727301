/**
 * The text table and the number formats every section of the bench's output uses (report.ts and
 * each phase's *-report.ts), so that the sections line up and round alike.
 */

export const num = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
export const cores = (c: number | null) => (c === null ? "n/a" : c.toFixed(2));
/** A goal's measured value: rounded to 2 decimals, and still a number in bench/results.json. */
export const fixed = (n: number) => Math.round(n * 100) / 100;

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => "  " + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
