/**
 * What the operations API shows of inbound events (CONTRACT 5): a page of them newest first,
 * and one event with its payload, its ledger rows and the audit rows of the calls made for it.
 *
 * Cold path (a person looking), so drizzle builds the queries. Ids stay strings; audit rows are
 * shown as stored, and they are redacted before they are stored (src/audit/redact.ts).
 */
import { and, asc, desc, eq, gte, inArray, isNotNull, sql, type SQL } from "drizzle-orm";
import { unionAll } from "drizzle-orm/sqlite-core";
import type { AuditRecord } from "../audit/sink";
import { olderThan, pageOf, pageSize } from "../db/paging";
import { actions, auditLog, events } from "../db/schema";
import type { Failure } from "../errors";
import type { EventSource } from "../ingest/event";
import type { ActionState, Db, EventRow, EventStatus } from "./ledger";
import type { PayloadStore } from "./payloads";

/** Every status an event row can have (src/db/schema.ts), for the filter. */
export const EVENT_STATUSES = events.status.enumValues;

/** An event in a list: no payload (up to 1 MiB each); times are ISO-8601. */
export interface EventSummary {
  id: string;
  source: EventSource;
  type: string;
  entityKey: string | null;
  status: EventStatus;
  receivedAt: string;
  occurredAt: string | null;
  /** How many times the provider delivered it again (each one deduped). */
  duplicates: number;
  lastError: string | null;
}

/** One ledger row: an action of the event and where it stands. */
export interface EventAction {
  action: string;
  flow: string;
  state: ActionState;
  attempts: number;
  lastError: string | null;
  lastStatus: number | null;
  /** pending / failed: not before this time; running: when the attempt's lease ends. */
  nextAttemptAt: string | null;
  note: string | null;
  updatedAt: string;
}

/** One outbound call made for the event, alone or in a bulk call that served it: its audit row, times as ISO text. */
export type EventAuditRow = Omit<AuditRecord, "createdAt" | "served"> & {
  id: string;
  createdAt: string;
  /** A bulk call: every event it served; null for a call made for one event. */
  served: string[] | null;
};

export interface EventDetail extends EventSummary {
  dedupeKey: string;
  updatedAt: string;
  /** When the replay that owns the event was requested; null if it was never replayed. */
  replayedAt: string | null;
  /** The provider's event; null only when it lives in the payload store and the object is gone. */
  payload: Record<string, unknown> | null;
  /** The payload store key of a payload too large for a queue message, else null. */
  payloadRef: string | null;
  actions: EventAction[];
  /** Newest first, at most MAX_AUDIT_ROWS of them. */
  audit: EventAuditRow[];
  /** More audit rows exist than `audit` holds. */
  auditTruncated: boolean;
}

/** An event retried for days can have thousands of calls; the detail shows the latest ones. */
export const MAX_AUDIT_ROWS = 200;

/**
 * Clock skew allowed between the worker that received an event and the one that called out for
 * it: no call made for an event is older than its receipt by more than this.
 */
const CLOCK_SKEW_MS = 5 * 60_000;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function toEventSummary(row: EventRow): EventSummary {
  return {
    id: row.id,
    // A plain text column, written only from an InboundEvent, whose source zod has checked.
    source: row.source as EventSource,
    type: row.type,
    entityKey: row.entityKey,
    status: row.status,
    receivedAt: new Date(row.receivedAt).toISOString(),
    occurredAt: iso(row.occurredAt),
    duplicates: row.duplicates,
    lastError: row.lastError,
  };
}

export interface ListEventsQuery {
  source?: EventSource | undefined;
  status?: EventStatus | undefined;
  /** Page size; default 50, clamped to 1..200. */
  limit?: number | undefined;
  /** `nextCursor` of the previous page. */
  cursor?: string | null | undefined;
}

export type EventPage = { ok: true; items: EventSummary[]; nextCursor: string | null };

/**
 * Events newest first by (received_at, id), a page at a time. Keyset paging: a page costs the
 * same however deep it is, and events arriving meanwhile never shift one. The cursor is the
 * shared one of src/db/paging.ts (base64url of the last row's time and id), opaque to callers.
 *
 * @example
 * const page = await listEvents(db, { source: "shopify", status: "dead", limit: 20 });
 * if (page.ok && page.nextCursor) await listEvents(db, { source: "shopify", status: "dead", limit: 20, cursor: page.nextCursor });
 */
export async function listEvents(db: Db, query: ListEventsQuery): Promise<EventPage | Failure> {
  const limit = pageSize(query.limit);
  const conditions: SQL[] = [];
  if (query.source) conditions.push(eq(events.source, query.source));
  if (query.status) conditions.push(eq(events.status, query.status));
  // Ranges over events_received / events_status_received.
  const after = olderThan(query.cursor, events.receivedAt, events.id);
  if (!after.ok) return after;
  // One row more than asked tells whether another page exists without a COUNT.
  const rows = await db
    .select()
    .from(events)
    .where(and(...conditions, after.where))
    .orderBy(desc(events.receivedAt), desc(events.id))
    .limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => ({ t: r.receivedAt, id: r.id }));
  return { ok: true, items: page.map(toEventSummary), nextCursor };
}

export type EventDetailResult = { ok: true; event: EventDetail } | { ok: false; reason: "not_found" };

/**
 * One event with its payload (from the row, or from the payload store when the row holds a
 * reference), its ledger rows and the audit rows of its calls.
 *
 * @example
 * const found = await eventDetail(db, r2PayloadStore(env.PAYLOADS), "evt_0f1e2d3c4b5a69788796a5b4c3d2e1f0");
 * if (found.ok) found.event.actions.filter((a) => a.state === "dead");
 */
export async function eventDetail(db: Db, store: PayloadStore, id: string): Promise<EventDetailResult> {
  const row = await db.select().from(events).where(eq(events.id, id)).get();
  if (!row) return { ok: false, reason: "not_found" };
  const [ledger, audit, payload] = await Promise.all([
    db.select().from(actions).where(eq(actions.eventId, id)).orderBy(asc(actions.createdAt), asc(actions.action)),
    auditRowsOf(db, id, row.receivedAt, MAX_AUDIT_ROWS + 1),
    row.payloadRef ? store.get(row.payloadRef) : Promise.resolve(row.payload),
  ]);
  return {
    ok: true,
    event: {
      ...toEventSummary(row),
      dedupeKey: row.dedupeKey,
      updatedAt: new Date(row.updatedAt).toISOString(),
      replayedAt: iso(row.replayedAt),
      payload: payload === null ? null : (JSON.parse(payload) as Record<string, unknown>),
      payloadRef: row.payloadRef,
      actions: ledger.map((a) => ({
        action: a.action,
        flow: a.flow,
        state: a.state,
        attempts: a.attempts,
        lastError: a.lastError,
        lastStatus: a.lastStatus,
        nextAttemptAt: iso(a.nextAttemptAt),
        note: a.note,
        updatedAt: new Date(a.updatedAt).toISOString(),
      })),
      audit: audit.slice(0, MAX_AUDIT_ROWS),
      auditTruncated: audit.length > MAX_AUDIT_ROWS,
    },
  };
}

/**
 * The audit rows of every call made for an event: the rows that name it as their event, and
 * the bulk rows that list it in `served` (a bulk call's `event_id` is only the first event it
 * served). The second half has no index of its own; bounding it by the event's receipt lets
 * SQLite read it from audit_created, so it reads only rows written since the event arrived
 * rather than the whole retention window. Written as `id IN (… UNION ALL …)` because, with the
 * ORDER BY of a page, SQLite plans the plain OR as one walk of audit_created over every row.
 */
export function auditOfEvent(db: Db, eventId: string, receivedAt: number): SQL {
  const own = db.select({ id: auditLog.id }).from(auditLog).where(eq(auditLog.eventId, eventId));
  const served = db
    .select({ id: auditLog.id })
    .from(auditLog)
    .where(and(gte(auditLog.createdAt, receivedAt - CLOCK_SKEW_MS), isNotNull(auditLog.served), sql`EXISTS (SELECT 1 FROM json_each(${auditLog.served}) WHERE value = ${eventId})`));
  return inArray(auditLog.id, unionAll(own, served));
}

async function auditRowsOf(db: Db, eventId: string, receivedAt: number, limit: number): Promise<EventAuditRow[]> {
  const rows = await db
    .select()
    .from(auditLog)
    .where(auditOfEvent(db, eventId, receivedAt))
    .orderBy(desc(auditLog.createdAt), desc(auditLog.id))
    .limit(limit);
  return rows.map((r) => ({
    id: String(r.id),
    eventId: r.eventId,
    entityKey: r.entityKey,
    action: r.action,
    connector: r.connector,
    method: r.method,
    url: r.url,
    requestBody: r.requestBody,
    status: r.status,
    responseBody: r.responseBody,
    durationMs: r.durationMs,
    attempt: r.attempt,
    outcome: r.outcome,
    error: r.error,
    createdAt: new Date(r.createdAt).toISOString(),
    served: r.served === null ? null : (JSON.parse(r.served) as string[]),
  }));
}
