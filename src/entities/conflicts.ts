/**
 * Conflicts a person decides (the `escalate` policy, CONTRACT 4.6): listing them, and turning a
 * person's choice into an event for the pipeline. The pipeline applies the choice to both systems
 * through the entity's Durable Object; this module only records the decision and queues it.
 *
 * Cold path (a person clicking), so drizzle builds the queries.
 */
import { and, desc, eq, type SQL } from "drizzle-orm";
import { olderThan, pageOf, pageSize } from "../db/paging";
import { conflicts } from "../db/schema";
import type { Failure } from "../errors";
import { eventIdFor, type InboundEvent } from "../ingest/event";
import { enqueue, newDelivery } from "../pipeline/message";
import type { PayloadStore } from "../pipeline/payloads";
import type { Db } from "../pipeline/ledger";
import { log } from "../observability/log";

export type ConflictRow = typeof conflicts.$inferSelect;
export type ConflictStatus = ConflictRow["status"];
export type Side = "crm" | "email";

/** One system's side of a conflict: its value and when that system changed it. */
export interface ConflictSide {
  value: string | null;
  at: string | null;
}

/** A conflict as the operations API shows it; times are ISO-8601. */
export interface Conflict {
  id: string;
  entityKey: string;
  field: string;
  crm: ConflictSide | null;
  email: ConflictSide | null;
  status: ConflictStatus;
  resolution: Side | null;
  resolvedBy: string | null;
  resolvedAt: string | null;
  createdAt: string;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

// A side with neither a value nor a time is one the conflict knows nothing about; a side whose
// value is null but has a time is a system that cleared the field, which is worth showing.
const side = (value: string | null, at: number | null): ConflictSide | null =>
  value === null && at === null ? null : { value, at: iso(at) };

export function toConflict(row: ConflictRow): Conflict {
  return {
    id: row.id,
    entityKey: row.entityKey,
    field: row.field,
    crm: side(row.crmValue, row.crmAt),
    email: side(row.emailValue, row.emailAt),
    status: row.status,
    resolution: row.resolution ?? null,
    resolvedBy: row.resolvedBy ?? null,
    resolvedAt: iso(row.resolvedAt),
    createdAt: new Date(row.createdAt).toISOString(),
  };
}

export interface ListConflictsQuery {
  status?: ConflictStatus | undefined;
  /** Page size; default 50, clamped to 1..200. */
  limit?: number | undefined;
  /** `nextCursor` of the previous page. */
  cursor?: string | null | undefined;
}

export type ConflictPage = { ok: true; items: Conflict[]; nextCursor: string | null };

/**
 * Conflicts newest first by (created_at, id), a page at a time (keyset paging, so a page costs
 * the same however deep it is, and rows opened meanwhile never shift a page).
 *
 * @example
 * const page = await listConflicts(db, { status: "open", limit: 20 });
 * if (page.ok && page.nextCursor) await listConflicts(db, { status: "open", limit: 20, cursor: page.nextCursor });
 */
export async function listConflicts(db: Db, query: ListConflictsQuery): Promise<ConflictPage | Failure> {
  const limit = pageSize(query.limit);
  const conditions: SQL[] = [];
  if (query.status) conditions.push(eq(conflicts.status, query.status));
  const after = olderThan(query.cursor, conflicts.createdAt, conflicts.id);
  if (!after.ok) return after;
  // One row more than asked tells whether another page exists without a COUNT.
  const rows = await db
    .select()
    .from(conflicts)
    .where(and(...conditions, after.where))
    .orderBy(desc(conflicts.createdAt), desc(conflicts.id))
    .limit(limit + 1);
  const { page, nextCursor } = pageOf(rows, limit, (r) => ({ t: r.createdAt, id: r.id }));
  return { ok: true, items: page.map(toConflict), nextCursor };
}

export interface ResolveDeps {
  db: Db;
  /** The events queue. */
  queue: Queue;
  /** Where an event too large for a queue message goes (never for a resolve, but enqueue asks). */
  store: PayloadStore;
  now: () => number;
}

export type ResolveResult =
  | { ok: true; conflict: Conflict; eventId: string }
  | { ok: false; reason: "not_found" }
  | { ok: false; reason: "already_resolved"; resolution: Side | null; conflict: Conflict }
  /** The queue refused the event; nothing was recorded, so the same request can be repeated. */
  | { ok: false; reason: "queue_refused"; error: unknown };

/** The event a person's choice becomes; its id depends only on the conflict and the choice. */
export async function resolveEvent(row: Pick<ConflictRow, "id" | "entityKey" | "field">, choose: Side, by: string, now: number): Promise<InboundEvent> {
  const dedupeKey = `${row.id}:${choose}`;
  return {
    id: await eventIdFor("syncwire", dedupeKey),
    source: "syncwire",
    type: "conflict.resolve",
    dedupeKey,
    entityKey: row.entityKey,
    receivedAt: now,
    occurredAt: now,
    payload: { conflictId: row.id, field: row.field, choose, by },
  };
}

/**
 * Records a person's choice on an open conflict and queues it for the pipeline.
 *
 * The event is queued before the row is marked resolved: if the update then fails, the conflict
 * stays open and the same request can be repeated; the repeat makes the same event id, which the
 * consumer recognizes as a duplicate. The other order could mark a conflict resolved whose choice
 * is never applied.
 *
 * Two people resolving at once: both may queue their event, but only the first update matches
 * `status = 'open'`, so the recorded resolution never flips; the second answer is
 * `already_resolved` with the first one's choice.
 *
 * @example
 * const result = await resolveConflict({ db, queue: env.EVENTS, store, now: Date.now }, "cf_5d0c6a0e-3f9a-4c2b-9e1d-2a7b8c9d0e1f", "crm", "ada");
 * if (!result.ok && result.reason === "already_resolved") console.log(result.resolution);
 */
export async function resolveConflict(deps: ResolveDeps, id: string, choose: Side, by: string): Promise<ResolveResult> {
  const row = await deps.db.select().from(conflicts).where(eq(conflicts.id, id)).get();
  if (!row) return { ok: false, reason: "not_found" };
  if (row.status === "resolved") return { ok: false, reason: "already_resolved", resolution: row.resolution ?? null, conflict: toConflict(row) };

  const now = deps.now();
  const event = await resolveEvent(row, choose, by, now);
  try {
    await enqueue(deps.queue, deps.store, [newDelivery(event, now)]);
  } catch (error) {
    return { ok: false, reason: "queue_refused", error };
  }

  const updated = await deps.db
    .update(conflicts)
    .set({ status: "resolved", resolution: choose, resolvedBy: by, resolvedAt: now })
    .where(and(eq(conflicts.id, id), eq(conflicts.status, "open")))
    .returning()
    .get();
  if (updated) {
    log("conflict_resolved", { conflictId: id, entity: row.entityKey, field: row.field, choose, by, eventId: event.id });
    return { ok: true, conflict: toConflict(updated), eventId: event.id };
  }

  // Someone else resolved it between the read and the update: theirs stands.
  const winner = await deps.db.select().from(conflicts).where(eq(conflicts.id, id)).get();
  if (!winner) return { ok: false, reason: "not_found" };
  return { ok: false, reason: "already_resolved", resolution: winner.resolution ?? null, conflict: toConflict(winner) };
}
