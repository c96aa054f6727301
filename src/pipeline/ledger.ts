/**
 * The event table and the action ledger in D1. Each function is one D1 round trip (a batch),
 * because the consumer's cost per event is mostly round trips.
 */
import { and, eq, inArray, ne, sql } from "drizzle-orm";
import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import { auditInserts, type AuditRecord } from "../audit/sink";
import { actions, deadLetters, events, schema } from "../db/schema";
import type { EventMessage } from "./message";

export type Db = DrizzleD1Database<typeof schema>;
export type EventRow = typeof events.$inferSelect;
export type ActionRow = typeof actions.$inferSelect;
export type EventStatus = EventRow["status"];
export type ActionState = ActionRow["state"];

export function database(d1: D1Database): Db {
  return drizzle(d1, { schema });
}

export interface Claim {
  /** `duplicate`: another delivery owns this event (the provider sent it again). */
  kind: "owned" | "duplicate";
  event: EventRow;
  actions: ActionRow[];
}

/**
 * Records the event (first sight wins) and its ledger rows, and reads both back.
 * Idempotent: a redelivered message finds its rows and continues where it stopped.
 */
export async function claimEvent(db: Db, message: EventMessage, routed: { flow: string; action: string }[], now: number): Promise<Claim> {
  const e = message.event;
  const insertEvent = db
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
    .onConflictDoNothing();
  const readEvent = db.select().from(events).where(eq(events.id, e.id));
  const readActions = db.select().from(actions).where(eq(actions.eventId, e.id));
  let event: EventRow[];
  let rows: ActionRow[];
  if (routed.length > 0) {
    const insertActions = db
      .insert(actions)
      .values(routed.map((r) => ({ eventId: e.id, action: r.action, flow: r.flow, entityKey: e.entityKey, state: "pending" as const, createdAt: now, updatedAt: now })))
      .onConflictDoNothing();
    [, , event, rows] = await db.batch([insertEvent, insertActions, readEvent, readActions]);
  } else {
    [, event, rows] = await db.batch([insertEvent, readEvent, readActions]);
  }
  const row = event[0]!;
  return { kind: row.deliveryId === message.deliveryId ? "owned" : "duplicate", event: row, actions: rows };
}

export async function countDuplicate(db: Db, eventId: string, now: number): Promise<void> {
  await db.update(events).set({ duplicates: sql`${events.duplicates} + 1`, updatedAt: now }).where(eq(events.id, eventId));
}

/** Marks the actions running and counts the attempt before any call is made, so a crash mid-call still counts. */
export async function markRunning(db: Db, eventId: string, names: string[], now: number): Promise<void> {
  if (names.length === 0) return;
  await db
    .update(actions)
    .set({ state: "running", attempts: sql`${actions.attempts} + 1`, updatedAt: now })
    .where(and(eq(actions.eventId, eventId), inArray(actions.action, names), ne(actions.state, "done")));
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
  status: EventStatus;
  lastError: string | null;
  updates: ActionUpdate[];
  audit: AuditRecord[];
  deadLetters: DeadLetterRecord[];
}

/** Writes the outcome of one processing pass: action states, event status, audit rows, dead letters. */
export async function settle(db: Db, s: Settlement, now: number): Promise<void> {
  const statements = [
    db.update(events).set({ status: s.status, lastError: s.lastError, updatedAt: now }).where(eq(events.id, s.eventId)),
    ...s.updates.map((u) =>
      db
        .update(actions)
        .set({ state: u.state, lastError: u.lastError, lastStatus: u.lastStatus, nextAttemptAt: u.nextAttemptAt, updatedAt: now })
        .where(and(eq(actions.eventId, s.eventId), eq(actions.action, u.action))),
    ),
    ...auditInserts(db, s.audit),
    ...deadLetterInserts(db, s.deadLetters, now),
  ] as const;
  await db.batch(statements as unknown as Parameters<Db["batch"]>[0]);
}

export function deadLetterInserts(db: Db, rows: DeadLetterRecord[], now: number) {
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
