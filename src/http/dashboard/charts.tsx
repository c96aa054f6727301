/**
 * Inline SVG charts, drawn on the server: no script, no library, nothing fetched. A chart is a
 * few polylines over fixed-width buckets, the y axis from 0 to a round maximum.
 */
import type { FC } from "hono/jsx";

export interface Line {
  name: string;
  /** One value per bucket; null draws a gap (no calls, so no latency). */
  values: (number | null)[];
}

const WIDTH = 560;
const HEIGHT = 150;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };
// Distinct in colour and when printed grey; the connectors always get the same one.
const PALETTE = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];

export const colourOf = (index: number): string => PALETTE[index % PALETTE.length]!;

/** The smallest 1, 2 or 5 x 10^n at or above `value`, so the axis reads in round numbers. */
export function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return ([1, 2, 5, 10].map((m) => m * power).find((m) => m >= value) ?? 10 * power);
}

/** Polyline points, split where a value is missing. */
function segments(values: (number | null)[], x: (i: number) => number, y: (v: number) => number): string[] {
  const out: string[] = [];
  let current: string[] = [];
  values.forEach((v, i) => {
    if (v === null) {
      if (current.length) out.push(current.join(" "));
      current = [];
    } else current.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  });
  if (current.length) out.push(current.join(" "));
  return out;
}

export const LineChart: FC<{ title: string; unit: string; from: string; to: string; lines: Line[]; testId: string }> = ({ title, unit, from, to, lines, testId }) => {
  const n = Math.max(1, ...lines.map((l) => l.values.length));
  const max = niceMax(Math.max(0, ...lines.flatMap((l) => l.values.filter((v): v is number => v !== null))));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (n === 1 ? plotW / 2 : (i / (n - 1)) * plotW);
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const total = lines.reduce((sum, l) => sum + l.values.reduce<number>((s, v) => s + (v ?? 0), 0), 0);
  return (
    <figure class="chart" data-testid={testId}>
      <figcaption>
        {title}
        <span class="muted unit">{unit}</span>
        <span class="legend">
          {lines.map((l, i) => (
            <span>
              <i style={`background:${colourOf(i)}`}></i>
              {l.name}
            </span>
          ))}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={`${title}: ${lines.map((l) => l.name).join(", ") || "no data"}`}>
        {[0, 0.5, 1].map((f) => (
          <g>
            <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(max * f)} y2={y(max * f)} class="grid" />
            <text x={PAD.left - 4} y={y(max * f) + 4} text-anchor="end">
              {formatNumber(max * f)}
            </text>
          </g>
        ))}
        <text x={PAD.left} y={HEIGHT - 4}>{from}</text>
        <text x={WIDTH - PAD.right} y={HEIGHT - 4} text-anchor="end">{to}</text>
        {lines.map((l, i) =>
          segments(l.values, x, y).map((points) =>
            points.includes(" ") ? <polyline points={points} fill="none" stroke={colourOf(i)} stroke-width="1.8" /> : <circle cx={points.split(",")[0]} cy={points.split(",")[1]} r="2" fill={colourOf(i)} />,
          ),
        )}
        {total === 0 && lines.every((l) => l.values.every((v) => v === null || v === 0)) ? (
          <text x={WIDTH / 2} y={HEIGHT / 2} text-anchor="middle" class="empty">no calls in this range</text>
        ) : null}
      </svg>
    </figure>
  );
};

/** 1234 -> "1.2k"; small numbers as they are. */
export function formatNumber(value: number): string {
  if (value >= 1_000_000) return `${+(value / 1_000_000).toFixed(1)}M`;
  if (value >= 1_000) return `${+(value / 1_000).toFixed(1)}k`;
  return String(+value.toFixed(2));
}
