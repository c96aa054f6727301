/**
 * What the operations API shows of the audit trail (CONTRACT 4.8 and 5, GET /api/audit): the
 * outbound calls newest first, a page at a time, filtered by event, connector, outcome and time.
 *
 * Cold path (a person looking), so drizzle builds the queries. Rows are shown as stored: they
 * are redacted and truncated before they are written (src/audit/redact.ts, sink.ts).
 */
import { and, desc, eq, gte, type SQL } from "drizzle-orm";
import { z } from "zod";
import { olderThan, pageOf, pageSize } from "../db/paging";
import { auditLog, events } from "../db/schema";
import { fail, type Failure } from "../errors";
import { auditOfEvent, type EventAuditRow } from "../pipeline/event-queries";
import type { Db } from "../pipeline/ledger";
import type { AuditOutcome } from "./sink";

/** Every connector that calls out and so writes audit rows (src/connectors), for the filter. */
export const AUDIT_CONNECTORS = ["hubspot", "mailchimp", "salesforce", "postmark", "stripe"] as const;
export type AuditConnector = (typeof AUDIT_CONNECTORS)[number];

/** Every outcome an audit row can have (src/db/schema.ts, the sink's AuditOutcome), for the filter. */
export const AUDIT_OUTCOMES = auditLog.outcome.enumValues satisfies readonly AuditOutcome[];

/**
 * One outbound call as the operations API shows it, times as ISO-8601: the same shape as the
 * audit rows of GET /api/events/:id. `id` is the row's integer id as a string.
 */
export type AuditItem = EventAuditRow;

export interface ListAuditQuery {
  /** Calls made for this event: the rows naming it, and the bulk calls that list it in `served`. */
  eventId?: string | undefined;
  connector?: AuditConnector | undefined;
  outcome?: AuditOutcome | undefined;
  /** ISO-8601 date-time, `Z` or an offset: only calls made at or after it. */
  since?: string | undefined;
  /** Page size; default 50, clamped to 1..200. */
  limit?: number | undefined;
  /** `nextCursor` of the previous page. */
  cursor?: string | null | undefined;
}

export type AuditPage = { ok: true; items: AuditItem[]; nextCursor: string | null };

// The route validates `since` with the same rule; this is for callers that skip the route.
const IsoDateTime = z.iso.datetime({ offset: true });

// A cursor of this list carries the row's integer id as decimal text (the shared cursor's id is
// a string); anything else is a cursor some other list issued, or none at all.
const ROW_ID = /^(0|[1-9]\d{0,15})$/;

function rowIdOf(id: string): number | null {
  if (!ROW_ID.test(id)) return null;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : null;
}

export function toAuditItem(row: typeof auditLog.$inferSelect): AuditItem {
  return {
    id: String(row.id),
    eventId: row.eventId,
    entityKey: row.entityKey,
    action: row.action,
    connector: row.connector,
    method: row.method,
    url: row.url,
    requestBody: row.requestBody,
    status: row.status,
    responseBody: row.responseBody,
    durationMs: row.durationMs,
    attempt: row.attempt,
    outcome: row.outcome,
    error: row.error,
    createdAt: new Date(row.createdAt).toISOString(),
    served: row.served === null ? null : (JSON.parse(row.served) as string[]),
  };
}

/**
 * The condition for "calls made for `eventId`". With the event's row at hand, the scan for the
 * bulk rows that served it starts at its receipt (auditOfEvent); an event already pruned (its
 * late calls can outlive it) or never stored is looked for in every bulk row.
 */
async function eventCondition(db: Db, eventId: string): Promise<SQL> {
  const event = await db.select({ receivedAt: events.receivedAt }).from(events).where(eq(events.id, eventId)).get();
  return auditOfEvent(db, eventId, event ? event.receivedAt : 0);
}

/**
 * Outbound calls newest first by (created_at, id), a page at a time. Keyset paging with the
 * shared cursor of src/db/paging.ts (the last row's time and id, the id compared as a number),
 * so a page costs the same however deep it is and calls made meanwhile never shift one.
 *
 * @example
 * const page = await listAudit(db, { connector: "mailchimp", outcome: "permanent", since: "2026-05-01T00:00:00Z", limit: 20 });
 * if (page.ok && page.nextCursor) await listAudit(db, { connector: "mailchimp", outcome: "permanent", since: "2026-05-01T00:00:00Z", limit: 20, cursor: page.nextCursor });
 */
export async function listAudit(db: Db, query: ListAuditQuery): Promise<AuditPage | Failure> {
  const limit = pageSize(query.limit);
  const conditions: SQL[] = [];
  if (query.connector !== undefined) {
    if (!(AUDIT_CONNECTORS as readonly string[]).includes(query.connector)) return fail("invalid_request", `connector: expected one of ${AUDIT_CONNECTORS.join(", ")}`);
    conditions.push(eq(auditLog.connector, query.connector));
  }
  if (query.outcome !== undefined) {
    if (!(AUDIT_OUTCOMES as readonly string[]).includes(query.outcome)) return fail("invalid_request", `outcome: expected one of ${AUDIT_OUTCOMES.join(", ")}`);
    conditions.push(eq(auditLog.outcome, query.outcome));
  }
  if (query.since !== undefined) {
    const since = IsoDateTime.safeParse(query.since).success ? Date.parse(query.since) : NaN;
    if (Number.isNaN(since)) return fail("invalid_request", "since: expected an ISO 8601 date-time, e.g. 2026-05-01T09:00:00Z");
    conditions.push(gte(auditLog.createdAt, since));
  }
  // Audit rows have integer ids: a cursor whose id is not one was not issued here.
  const after = olderThan(query.cursor, auditLog.createdAt, auditLog.id, rowIdOf);
  if (!after.ok) return after;
  if (query.eventId !== undefined) conditions.push(await eventCondition(db, query.eventId));
  // One row more than asked tells whether another page exists without a COUNT.
  const rows = await db
    .select()
    .from(auditLog)
    .where(and(...conditions, after.where))
    .orderBy(desc(auditLog.createdAt), desc(auditLog.id))
    .limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => ({ t: r.createdAt, id: String(r.id) }));
  return { ok: true, items: page.map(toAuditItem), nextCursor };
}
