/**
 * The nightly check's runs in D1 (CONTRACT 4.9, section 5): starting one (never two at once),
 * reading them newest first, and the shape the API answers. A run's progress (pages scanned,
 * records compared, mismatches) is written by its queue messages (reconcile/scan.ts), each in
 * the D1 batch that does its work, so the counts are exact whatever crashes and redeliveries.
 */
import { desc, eq } from "drizzle-orm";
import { olderThan, pageOf, pageSize } from "../db/paging";
import { syncRuns } from "../db/schema";
import type { Failure } from "../errors";
import type { Db } from "../pipeline/ledger";

export type SyncRunRow = typeof syncRuns.$inferSelect;
export type Trigger = SyncRunRow["trigger"];

/** A run as GET /api/sync-runs answers it (CONTRACT section 5). */
export interface SyncRun {
  id: string;
  trigger: Trigger;
  status: SyncRunRow["status"];
  dryRun: boolean;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  recordsCompared: { crm: number; email: number };
  mismatches: { total: number; byKind: Record<string, number> };
  repairsQueued: number;
  error: string | null;
}

export function toSyncRun(row: SyncRunRow): SyncRun {
  return {
    id: row.id,
    trigger: row.trigger,
    status: row.status,
    dryRun: row.dryRun,
    startedAt: new Date(row.startedAt).toISOString(),
    finishedAt: row.finishedAt === null ? null : new Date(row.finishedAt).toISOString(),
    durationMs: row.finishedAt === null ? null : row.finishedAt - row.startedAt,
    recordsCompared: { crm: row.crmRecords, email: row.emailRecords },
    mismatches: { total: row.mismatches, byKind: JSON.parse(row.mismatchesByKind) as Record<string, number> },
    repairsQueued: row.repairsQueued,
    error: row.error,
  };
}

export type StartResult = { ok: true; run: SyncRunRow } | { ok: false; reason: "run_in_progress"; running: SyncRunRow | null };

/**
 * Records a new run as running, unless one already is: the partial unique index on running
 * runs refuses a second one, so two starts at the same moment (the cron and a person, or two
 * people) cannot both begin.
 */
export async function insertRun(db: Db, input: { id: string; trigger: Trigger; dryRun: boolean; now: number }): Promise<StartResult> {
  const row: SyncRunRow = {
    id: input.id,
    trigger: input.trigger,
    status: "running",
    dryRun: input.dryRun,
    phase: "scan",
    startedAt: input.now,
    finishedAt: null,
    crmRecords: 0,
    emailRecords: 0,
    crmScanned: false,
    emailScanned: false,
    mismatches: 0,
    mismatchesByKind: "{}",
    repairsQueued: 0,
    error: null,
    updatedAt: input.now,
  };
  try {
    await db.insert(syncRuns).values(row);
    return { ok: true, run: row };
  } catch (error) {
    if (!isOneRunningRefusal(error)) throw error;
    return { ok: false, reason: "run_in_progress", running: (await runningRun(db)) ?? null };
  }
}

/** D1's refusal of a second running run (drizzle wraps it: the message is in a cause). */
function isOneRunningRefusal(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) if (/UNIQUE constraint failed: sync_runs\.status/.test(e.message)) return true;
  return false;
}

export async function runningRun(db: Db): Promise<SyncRunRow | undefined> {
  return db.select().from(syncRuns).where(eq(syncRuns.status, "running")).get();
}

export async function getRun(db: Db, id: string): Promise<SyncRunRow | undefined> {
  return db.select().from(syncRuns).where(eq(syncRuns.id, id)).get();
}

/** The newest run, for GET /health (and the missed-run check: the newest that succeeded). */
export async function latestRun(db: Db, status?: SyncRunRow["status"]): Promise<SyncRunRow | undefined> {
  return db
    .select()
    .from(syncRuns)
    .where(status ? eq(syncRuns.status, status) : undefined)
    .orderBy(desc(syncRuns.startedAt), desc(syncRuns.id))
    .limit(1)
    .get();
}

export type RunPage = { ok: true; items: SyncRun[]; nextCursor: string | null } | Failure;

/** Runs newest first, with the same cursor paging as every list of the API. */
export async function listRuns(db: Db, query: { limit?: number; cursor?: string }): Promise<RunPage> {
  const limit = pageSize(query.limit);
  const after = olderThan(query.cursor, syncRuns.startedAt, syncRuns.id);
  if (!after.ok) return after;
  const rows = await db
    .select()
    .from(syncRuns)
    .where(after.where)
    .orderBy(desc(syncRuns.startedAt), desc(syncRuns.id))
    .limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => ({ t: r.startedAt, id: r.id }));
  return { ok: true, items: page.map(toSyncRun), nextCursor };
}
