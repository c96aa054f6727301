/**
 * Reading what the nightly check recorded, for the operations API and the dashboard: a run's
 * mismatches and the alerts raised. Newest first with the shared keyset paging (db/paging.ts).
 */
import { and, desc, eq } from "drizzle-orm";
import { olderThan, pageOf, pageSize } from "../db/paging";
import { alerts, syncMismatches } from "../db/schema";
import type { Failure } from "../errors";
import type { Db } from "../pipeline/ledger";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export interface Mismatch {
  id: string;
  runId: string;
  entityKey: string;
  kind: string;
  field: string | null;
  crmValue: string | null;
  emailValue: string | null;
  /** The change event queued to repair it (GET /api/events/:id); null on a dry run. */
  repairEventId: string | null;
  createdAt: string;
}

export interface Alert {
  id: string;
  kind: string;
  runId: string | null;
  text: string;
  createdAt: string;
  /** When ALERT_WEBHOOK_URL took it; null while undelivered (or when no URL is set). */
  deliveredAt: string | null;
  attempts: number;
  lastError: string | null;
}

type Page<T> = { ok: true; items: T[]; nextCursor: string | null };

export async function listMismatches(db: Db, runId: string, query: { kind?: string; limit?: number; cursor?: string }): Promise<Page<Mismatch> | Failure> {
  const limit = pageSize(query.limit);
  const after = olderThan(query.cursor, syncMismatches.createdAt, syncMismatches.id);
  if (!after.ok) return after;
  const rows = await db
    .select()
    .from(syncMismatches)
    .where(and(eq(syncMismatches.runId, runId), query.kind ? eq(syncMismatches.kind, query.kind) : undefined, after.where))
    .orderBy(desc(syncMismatches.createdAt), desc(syncMismatches.id))
    .limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => ({ t: r.createdAt, id: r.id }));
  return { ok: true, items: page.map((r) => ({ ...r, createdAt: iso(r.createdAt)! })), nextCursor };
}

export async function listAlerts(db: Db, query: { limit?: number; cursor?: string }): Promise<Page<Alert> | Failure> {
  const limit = pageSize(query.limit);
  const after = olderThan(query.cursor, alerts.createdAt, alerts.id);
  if (!after.ok) return after;
  const rows = await db.select().from(alerts).where(after.where).orderBy(desc(alerts.createdAt), desc(alerts.id)).limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => ({ t: r.createdAt, id: r.id }));
  return {
    ok: true,
    items: page.map((r) => ({ id: r.id, kind: r.kind, runId: r.runId, text: r.text, createdAt: iso(r.createdAt)!, deliveredAt: iso(r.deliveredAt), attempts: r.attempts, lastError: r.lastError })),
    nextCursor,
  };
}
