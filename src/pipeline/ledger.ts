/**
 * The event table and the action ledger in D1.
 *
 * A queue batch costs two D1 round trips, whatever its size: one batch of statements claims
 * every message's event and marks its due actions running, one settles them all. Round trips,
 * not rows, are what the consumer's throughput is made of (D1 runs one query at a time).
 */
import { and, eq, inArray, lte, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import { auditInserts, type AuditRecord } from "../audit/sink";
import { actions, deadLetters, events, schema } from "../db/schema";
import type { EventMessage } from "./message";

export type Db = DrizzleD1Database<typeof schema>;
export type EventRow = typeof events.$inferSelect;
export type ActionRow = typeof actions.$inferSelect;
export type EventStatus = EventRow["status"];
export type ActionState = ActionRow["state"];
type Statement = BatchItem<"sqlite">;

export function database(d1: D1Database): Db {
  return drizzle(d1, { schema });
}

/** Runs statements as one D1 batch (one round trip, one transaction). */
export async function runBatch(db: Db, statements: Statement[]): Promise<unknown[]> {
  if (statements.length === 0) return [];
  return db.batch(statements as [Statement, ...Statement[]]);
}

// A retry delivered a little early (queue delays are whole seconds) still counts as due.
export const DUE_TOLERANCE_MS = 1_000;

export interface ClaimRequest {
  message: EventMessage;
  routed: { flow: string; action: string }[];
}

export interface Claim {
  /** `duplicate`: another delivery owns this event (the provider sent it again). */
  kind: "owned" | "duplicate";
  event: EventRow;
  /** Every ledger row of the event, after this claim. */
  actions: ActionRow[];
  /** The actions this claim marked running (their attempt already counted): run exactly these. */
  due: ActionRow[];
}

/**
 * The statements that claim one message: record the event (first sight wins) and its ledger
 * rows, mark the due actions running (only for the delivery that owns the event, and counting
 * the attempt before any call, so a crash mid-call still counts), and read the ledger back.
 */
function claimStatements(db: Db, { message, routed }: ClaimRequest, now: number): Statement[] {
  const e = message.event;
  const statements: Statement[] = [
    db
      .insert(events)
      .values({
        id: e.id,
        source: e.source,
        type: e.type,
        dedupeKey: e.dedupeKey,
        entityKey: e.entityKey,
        deliveryId: message.deliveryId,
        payload: JSON.stringify(e.payload),
        status: routed.length > 0 ? "processing" : "ignored",
        receivedAt: e.receivedAt,
        occurredAt: e.occurredAt,
        updatedAt: now,
      })
      // First sight wins; a later delivery only touches updated_at. RETURNING gives the row
      // either way, which saves a SELECT per message.
      .onConflictDoUpdate({ target: events.id, set: { updatedAt: now } })
      .returning(),
  ];
  if (routed.length > 0) {
    statements.push(
      db
        .insert(actions)
        .values(routed.map((r) => ({ eventId: e.id, action: r.action, flow: r.flow, entityKey: e.entityKey, state: "pending" as const, createdAt: now, updatedAt: now })))
        .onConflictDoNothing(),
      db
        .update(actions)
        .set({ state: "running", attempts: sql`${actions.attempts} + 1`, updatedAt: now })
        .where(
          and(
            eq(actions.eventId, e.id),
            inArray(actions.state, ["pending", "failed", "running"]),
            lte(sql`coalesce(${actions.nextAttemptAt}, 0)`, now + DUE_TOLERANCE_MS),
            sql`exists (select 1 from ${events} where ${events.id} = ${e.id} and ${events.deliveryId} = ${message.deliveryId})`,
          ),
        )
        .returning({ action: actions.action }),
    );
  }
  statements.push(db.select().from(actions).where(eq(actions.eventId, e.id)));
  return statements;
}

/**
 * Claims every request in one round trip. A request whose statements cannot even be built
 * (a payload that does not serialize) yields its Error instead of failing the others.
 */
export async function claimEvents(db: Db, requests: ClaimRequest[], now: number): Promise<(Claim | Error)[]> {
  const built = requests.map((request) => {
    try {
      return claimStatements(db, request, now);
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  });
  const results = await runBatch(db, built.flatMap((b) => (b instanceof Error ? [] : b)));
  let offset = 0;
  return built.map((b, i) => {
    if (b instanceof Error) return b;
    const mine = results.slice(offset, offset + b.length);
    offset += b.length;
    const eventRows = mine[0] as EventRow[];
    const actionRows = mine[mine.length - 1] as ActionRow[];
    const marked = requests[i]!.routed.length > 0 ? new Set((mine[2] as { action: string }[]).map((r) => r.action)) : new Set<string>();
    const row = eventRows[0]!;
    return {
      kind: row.deliveryId === requests[i]!.message.deliveryId ? "owned" : "duplicate",
      event: row,
      actions: actionRows,
      due: actionRows.filter((a) => marked.has(a.action)),
    };
  });
}

export interface ActionUpdate {
  action: string;
  state: ActionState;
  lastError: string | null;
  lastStatus: number | null;
  nextAttemptAt: number | null;
}

export interface DeadLetterRecord {
  eventId: string;
  action: string | null;
  source: string;
  reason: string;
  /** The raw message, only when it could not be read as an event. */
  body?: string | null;
}

export interface Settlement {
  eventId: string;
  /** The event's new status; null leaves it as it is. */
  status: EventStatus | null;
  lastError?: string | null;
  /** A provider's redelivery of this event was seen. */
  duplicate?: boolean;
  updates: ActionUpdate[];
  audit: AuditRecord[];
  deadLetters: DeadLetterRecord[];
}

/** The statements that write one message's outcome: action states, event status, dead letters (audit rows: see below). */
function settleStatements(db: Db, s: Settlement, now: number): Statement[] {
  const statements: Statement[] = [];
  if (s.duplicate) statements.push(db.update(events).set({ duplicates: sql`${events.duplicates} + 1`, updatedAt: now }).where(eq(events.id, s.eventId)));
  if (s.status !== null) {
    statements.push(db.update(events).set({ status: s.status, lastError: s.lastError ?? null, updatedAt: now }).where(eq(events.id, s.eventId)));
  }
  for (const u of s.updates) {
    statements.push(
      db
        .update(actions)
        .set({ state: u.state, lastError: u.lastError, lastStatus: u.lastStatus, nextAttemptAt: u.nextAttemptAt, updatedAt: now })
        .where(and(eq(actions.eventId, s.eventId), eq(actions.action, u.action))),
    );
  }
  statements.push(...deadLetterInserts(db, s.deadLetters, now));
  return statements;
}

/** Everything a batch settles: each message's statements, then all its audit rows in as few inserts as D1 allows. */
export function settleBatchStatements(db: Db, settlements: Settlement[], now: number): Statement[] {
  return [...settlements.flatMap((s) => settleStatements(db, s, now)), ...auditInserts(db, settlements.flatMap((s) => s.audit))];
}

export function deadLetterInserts(db: Db, rows: DeadLetterRecord[], now: number): Statement[] {
  if (rows.length === 0) return [];
  return [db.insert(deadLetters).values(rows.map((r) => ({ id: `dl_${crypto.randomUUID()}`, ...r, createdAt: now })))];
}

/** The event's status, derived from its actions' states. */
export function eventStatusOf(states: ActionState[], invalid: boolean): EventStatus {
  if (states.length === 0) return "ignored";
  if (states.some((s) => s === "failed" || s === "pending" || s === "running")) return "retrying";
  if (invalid) return "invalid";
  if (states.some((s) => s === "dead")) return "dead";
  return "done";
}
