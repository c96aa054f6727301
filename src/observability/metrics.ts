/**
 * Metrics (CONTRACT 5, issue 10): per connector, calls, error rate and p50/p95/p99 latency over
 * 5 minutes, an hour and a day; the backlog; dead letters; open conflicts; the last sync run.
 *
 * Calls are rolled up per connector and minute (`metrics_minutes`) in the same D1 batch that
 * writes their audit rows (audit/sink.ts), so a metrics request reads at most a day of minutes
 * per connector and a few bounded counts, the same at 10 events as at 10 million. Latency is a
 * histogram of fixed bounds; a percentile is the bound of the bucket it falls in (an upper bound).
 */
import type { AuditRecord } from "../audit/sink";
import type { Db } from "../pipeline/ledger";
import { latestRun, toSyncRun, type SyncRun } from "../reconcile/runs";

/** Latency bucket bounds, ms; a last bucket takes everything slower. */
export const LATENCY_BOUNDS_MS = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000] as const;
export const BUCKET_COLUMNS = [...LATENCY_BOUNDS_MS.map((b) => `le_${b}`), "le_inf"];

export const WINDOWS = { "5m": 5, "1h": 60, "24h": 1_440 } as const;
export type Window = keyof typeof WINDOWS;

/** Counts above this are reported as this, `capped`: a count never reads an unbounded number of rows. */
export const COUNT_CAP = 10_000;

/** The rollup upserts for audit rows: one per connector and minute they fall in. */
export function rollupStatements(d1: D1Database, rows: readonly AuditRecord[]): D1PreparedStatement[] {
  const groups = new Map<string, { connector: string; minute: number; calls: number; errors: number; sumMs: number; buckets: number[] }>();
  for (const row of rows) {
    const minute = Math.floor(row.createdAt / 60_000);
    const key = `${row.connector}\u0000${minute}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { connector: row.connector, minute, calls: 0, errors: 0, sumMs: 0, buckets: BUCKET_COLUMNS.map(() => 0) }));
    g.calls++;
    if (row.outcome !== "success") g.errors++;
    g.sumMs += Math.max(0, Math.round(row.durationMs));
    // Cumulative, as Prometheus histograms are: a call counts in every bucket at or above its duration.
    LATENCY_BOUNDS_MS.forEach((bound, i) => {
      if (row.durationMs <= bound) g!.buckets[i]!++;
    });
    g.buckets[BUCKET_COLUMNS.length - 1]!++;
  }
  const columns = ["calls", "errors", "sum_ms", ...BUCKET_COLUMNS];
  const sql = `INSERT INTO metrics_minutes (connector, minute, ${columns.join(", ")}) VALUES (?, ?, ${columns.map(() => "?").join(", ")})
    ON CONFLICT (connector, minute) DO UPDATE SET ${columns.map((c) => `${c} = ${c} + excluded.${c}`).join(", ")}`;
  return [...groups.values()].map((g) => d1.prepare(sql).bind(g.connector, g.minute, g.calls, g.errors, g.sumMs, ...g.buckets));
}

export interface ConnectorWindow {
  calls: number;
  errors: number;
  /** errors / calls; 0 without calls. */
  errorRate: number;
  /** Upper bounds from the histogram, ms; null without calls (and for calls over the last bound). */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  /** For Prometheus: the cumulative bucket counts (same order as LATENCY_BOUNDS_MS, then +Inf) and the sum. */
  buckets: number[];
  sumMs: number;
}

export interface Metrics {
  at: string;
  connectors: Record<string, Record<Window, ConnectorWindow>>;
  backlog: { events: number; capped: boolean; oldestReceivedAt: string | null; oldestAgeSeconds: number | null };
  deadLetters: { open: number; capped: boolean };
  conflicts: { open: number; capped: boolean };
  lastSyncRun: SyncRun | null;
}

/** The percentile `q` of a cumulative histogram: the bound of the first bucket holding it. */
export function percentile(buckets: number[], q: number): number | null {
  const total = buckets[buckets.length - 1] ?? 0;
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  const i = buckets.findIndex((count) => count >= rank);
  return i >= 0 && i < LATENCY_BOUNDS_MS.length ? LATENCY_BOUNDS_MS[i]! : null;
}

const capped = async (d1: D1Database, sql: string, ...params: unknown[]) => {
  const row = await d1.prepare(`SELECT count(*) AS n FROM (${sql} LIMIT ${COUNT_CAP + 1})`).bind(...params).first<{ n: number }>();
  const n = row?.n ?? 0;
  return { n: Math.min(n, COUNT_CAP), capped: n > COUNT_CAP };
};

export async function readMetrics(db: Db, now: number): Promise<Metrics> {
  const d1 = db.$client;
  const minute = Math.floor(now / 60_000);
  const sums = BUCKET_COLUMNS.map((c) => `sum(${c}) AS ${c}`).join(", ");
  const windowQueries = (Object.entries(WINDOWS) as [Window, number][]).map(([name, minutes]) =>
    d1
      .prepare(`SELECT connector, sum(calls) AS calls, sum(errors) AS errors, sum(sum_ms) AS sum_ms, ${sums} FROM metrics_minutes WHERE minute > ? GROUP BY connector`)
      .bind(minute - minutes)
      .all<Record<string, number | string>>()
      .then((r) => [name, r.results] as const),
  );
  const [windows, backlog, oldest, letters, conflicts, last] = await Promise.all([
    Promise.all(windowQueries),
    capped(d1, `SELECT 1 FROM events WHERE status IN ('processing', 'retrying')`),
    d1.prepare(`SELECT min(received_at) AS at FROM events WHERE status IN ('processing', 'retrying')`).first<{ at: number | null }>(),
    capped(d1, `SELECT 1 FROM dead_letters WHERE replayed_at IS NULL`),
    capped(d1, `SELECT 1 FROM conflicts WHERE status = 'open'`),
    latestRun(db),
  ]);
  const connectors: Metrics["connectors"] = {};
  for (const [name, rows] of windows) {
    for (const row of rows) {
      const connector = String(row.connector);
      const buckets = BUCKET_COLUMNS.map((c) => Number(row[c] ?? 0));
      const calls = Number(row.calls ?? 0);
      const errors = Number(row.errors ?? 0);
      (connectors[connector] ??= {} as Record<Window, ConnectorWindow>)[name] = {
        calls,
        errors,
        errorRate: calls === 0 ? 0 : errors / calls,
        p50Ms: percentile(buckets, 0.5),
        p95Ms: percentile(buckets, 0.95),
        p99Ms: percentile(buckets, 0.99),
        buckets,
        sumMs: Number(row.sum_ms ?? 0),
      };
    }
  }
  const empty = (): ConnectorWindow => ({ calls: 0, errors: 0, errorRate: 0, p50Ms: null, p95Ms: null, p99Ms: null, buckets: BUCKET_COLUMNS.map(() => 0), sumMs: 0 });
  for (const byWindow of Object.values(connectors)) for (const name of Object.keys(WINDOWS) as Window[]) byWindow[name] ??= empty();
  const oldestAt = oldest?.at ?? null;
  return {
    at: new Date(now).toISOString(),
    connectors,
    backlog: { events: backlog.n, capped: backlog.capped, oldestReceivedAt: oldestAt === null ? null : new Date(oldestAt).toISOString(), oldestAgeSeconds: oldestAt === null ? null : Math.max(0, Math.round((now - oldestAt) / 1000)) },
    deadLetters: { open: letters.n, capped: letters.capped },
    conflicts: { open: conflicts.n, capped: conflicts.capped },
    lastSyncRun: last ? toSyncRun(last) : null,
  };
}
