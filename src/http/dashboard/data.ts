/**
 * What the dashboard's pages show, read through the same query modules the admin API serves
 * from, all at once. Every read is bounded (a page of each list, the per-minute rollups), so the
 * page costs the same at 10 events as at 10 million.
 */
import { listConflicts, type Conflict } from "../../entities/conflicts";
import { healthReport, type HealthReport } from "../../observability/health";
import { readMetrics, type Metrics } from "../../observability/metrics";
import { readSeries, type Range, type Series } from "../../observability/series";
import { listDeadLetters, type DeadLetter } from "../../pipeline/dead-letter-queries";
import { eventDetail, listEvents, type EventDetail, type EventSummary } from "../../pipeline/event-queries";
import { database } from "../../pipeline/ledger";
import { r2PayloadStore } from "../../pipeline/payloads";
import { listAlerts, listMismatches, type Alert, type Mismatch } from "../../reconcile/queries";
import { getRun, listRuns, toSyncRun, type SyncRun } from "../../reconcile/runs";

/** How many rows of each list the overview shows; the rest are a link (or an API call) away. */
export const SHOWN = { deadLetters: 20, conflicts: 20, runs: 10, events: 15, alerts: 10, mismatches: 100 } as const;

export interface Overview {
  now: number;
  health: HealthReport;
  metrics: Metrics;
  series: Series;
  deadLetters: { items: DeadLetter[]; more: boolean };
  conflicts: { items: Conflict[]; more: boolean };
  runs: SyncRun[];
  events: EventSummary[];
  alerts: Alert[];
}

/** A list's page, or nothing when the query failed (a bad cursor cannot happen here: none is passed). */
const itemsOf = <T>(page: { ok: true; items: T[]; nextCursor: string | null } | { ok: false }) => (page.ok ? { items: page.items, more: page.nextCursor !== null } : { items: [] as T[], more: false });

export async function readOverview(env: Env, now: number, range: Range): Promise<Overview> {
  const db = database(env.DB);
  const [health, metrics, series, deadLetters, conflicts, runs, events, alerts] = await Promise.all([
    healthReport(env, now),
    readMetrics(db, now),
    readSeries(db, now, range),
    listDeadLetters(db, { status: "open", limit: SHOWN.deadLetters }),
    listConflicts(db, { status: "open", limit: SHOWN.conflicts }),
    listRuns(db, { limit: SHOWN.runs }),
    listEvents(db, { limit: SHOWN.events }),
    listAlerts(db, { limit: SHOWN.alerts }),
  ]);
  return {
    now,
    health,
    metrics,
    series,
    deadLetters: itemsOf(deadLetters),
    conflicts: itemsOf(conflicts),
    runs: itemsOf(runs).items,
    events: itemsOf(events).items,
    alerts: itemsOf(alerts).items,
  };
}

export async function readEvent(env: Env, id: string): Promise<EventDetail | null> {
  const result = await eventDetail(database(env.DB), r2PayloadStore(env.PAYLOADS), id);
  return result.ok ? result.event : null;
}

/** A run and a page of its mismatches; null when there is no such run, "bad_cursor" for a cursor this page did not issue. */
export async function readRun(env: Env, id: string, cursor: string | undefined): Promise<{ run: SyncRun; mismatches: Mismatch[]; nextCursor: string | null } | null | "bad_cursor"> {
  const db = database(env.DB);
  const [row, page] = await Promise.all([getRun(db, id), listMismatches(db, id, { limit: SHOWN.mismatches, ...(cursor ? { cursor } : {}) })]);
  if (!row) return null;
  if (!page.ok) return "bad_cursor";
  return { run: toSyncRun(row), mismatches: page.items, nextCursor: page.nextCursor };
}
