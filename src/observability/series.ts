/**
 * Metrics over time for the dashboard's charts: calls, errors and latency per bucket, read from
 * the same per-minute rollups as GET /api/metrics (metrics.ts). One grouped query reads at most
 * buckets x connectors rows, whatever the traffic.
 */
import type { Db } from "../pipeline/ledger";
import { BUCKET_COLUMNS, percentile } from "./metrics";

/** What a chart can span, and how many minutes each of its points sums. */
export const RANGES = { "1h": { minutes: 60, bucketMinutes: 1 }, "24h": { minutes: 1_440, bucketMinutes: 30 } } as const;
export type Range = keyof typeof RANGES;

export interface SeriesPoint {
  /** The bucket's first minute. */
  start: string;
  calls: number;
  errors: number;
  /** Upper bounds from the histogram, ms; null without calls. */
  p50Ms: number | null;
  p95Ms: number | null;
  /** Calls per connector in this bucket (only connectors with calls). */
  byConnector: Record<string, number>;
}

export interface Series {
  range: Range;
  bucketMinutes: number;
  connectors: string[];
  points: SeriesPoint[];
}

export async function readSeries(db: Db, now: number, range: Range): Promise<Series> {
  const { minutes, bucketMinutes } = RANGES[range];
  const count = minutes / bucketMinutes;
  // Buckets start on multiples of their size (:00 and :30 for half hours), so a point keeps its
  // place between reloads; the last one holds the current minute and fills as traffic arrives.
  const last = Math.floor(now / 60_000);
  const first = Math.floor(last / bucketMinutes) * bucketMinutes - (count - 1) * bucketMinutes;
  const sums = BUCKET_COLUMNS.map((c) => `sum(${c}) AS ${c}`).join(", ");
  const { results } = await db.$client
    .prepare(
      // D1 binds a JS number as REAL, so the division is cast back to a whole bucket number.
      `SELECT connector, CAST((minute - ?1) / ?2 AS INTEGER) AS bucket, sum(calls) AS calls, sum(errors) AS errors, ${sums}
       FROM metrics_minutes WHERE minute >= ?1 AND minute <= ?3 GROUP BY connector, bucket`,
    )
    .bind(first, bucketMinutes, last)
    .all<Record<string, number | string>>();
  const points = Array.from({ length: count }, (_, i) => ({
    start: new Date((first + i * bucketMinutes) * 60_000).toISOString(),
    calls: 0,
    errors: 0,
    histogram: BUCKET_COLUMNS.map(() => 0),
    byConnector: {} as Record<string, number>,
  }));
  const connectors = new Set<string>();
  for (const row of results) {
    const point = points[Number(row.bucket)];
    if (!point) continue;
    const connector = String(row.connector);
    connectors.add(connector);
    point.calls += Number(row.calls);
    point.errors += Number(row.errors);
    point.byConnector[connector] = (point.byConnector[connector] ?? 0) + Number(row.calls);
    BUCKET_COLUMNS.forEach((column, i) => (point.histogram[i]! += Number(row[column] ?? 0)));
  }
  return {
    range,
    bucketMinutes,
    connectors: [...connectors].sort(),
    points: points.map(({ histogram, ...p }) => ({ ...p, p50Ms: percentile(histogram, 0.5), p95Ms: percentile(histogram, 0.95) })),
  };
}
