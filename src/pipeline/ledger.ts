/**
 * The event table and the action ledger in D1.
 *
 * A queue batch whose messages finish together costs two D1 round trips, whatever its size:
 * one batch of statements claims every message's event and marks its due actions running
 * under a claim token and a lease, one settles them (settle.ts coalesces the outcomes). Round
 * trips, not rows, are what the consumer's throughput is made of (D1 runs one query at a time).
 *
 * The statements of this hot path are hand-written SQL over the tables of src/db/schema.ts
 * (every test runs them against the generated migrations). Building them with drizzle's query
 * builder took 44% of the consumer's CPU in a profile of the bench; binding constant SQL costs
 * almost nothing. drizzle stays for the schema, migrations and the cold paths.
 */
import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import { auditInserts, type AuditRecord } from "../audit/sink";
import { events, schema } from "../db/schema";
import { recordStatements, type EntityRecord } from "../entities/directory";
import type { EventMessage } from "./message";
import { payloadColumns } from "./payloads";

export type Db = DrizzleD1Database<typeof schema> & { $client: D1Database };
export type EventRow = typeof events.$inferSelect;
export type EventStatus = EventRow["status"];
export type ActionState = "pending" | "running" | "done" | "failed" | "dead";

export function database(d1: D1Database): Db {
  return drizzle(d1, { schema }) as Db;
}

/** Runs statements as one D1 batch (one round trip, one transaction). */
export async function runBatch(db: Db, statements: D1PreparedStatement[]): Promise<D1Result[]> {
  if (statements.length === 0) return [];
  return db.$client.batch(statements);
}

// A retry delivered a little early (queue delays are whole seconds) still counts as due.
const DUE_TOLERANCE_MS = 1_000;

/**
 * How long a claim owns a `running` row. The attempt's calls must finish LEASE_MARGIN_MS before
 * it ends (the HttpClient does not send a call that could not), which also covers the due
 * tolerance above and clock skew between consumer invocations: no call of a stale attempt is in
 * flight when another invocation claims the row again.
 */
export const LEASE_MS = 90_000;
export const LEASE_MARGIN_MS = 5_000;

/** The part of an event row the consumer needs. */
export interface ClaimedEvent {
  deliveryId: string;
  status: EventStatus;
  lastError: string | null;
}

/** The part of a ledger row the consumer needs. */
export interface LedgerRow {
  action: string;
  state: ActionState;
  attempts: number;
  /** pending / failed: due time; running: end of the lease. */
  nextAttemptAt: number | null;
}

export interface ClaimRequest {
  message: EventMessage;
  routed: { flow: string; action: string }[];
  /** Owns the rows this claim marks running; every settle of them must present it. */
  token: string;
}

export interface Claim {
  /** `duplicate`: another delivery owns this event (the provider sent it again). */
  kind: "owned" | "duplicate";
  event: ClaimedEvent;
  /** Every ledger row of the event, after this claim. */
  actions: LedgerRow[];
  /** The actions this claim marked running (their attempt already counted): run exactly these. */
  due: LedgerRow[];
  /** When the lease on `due` ends. */
  leaseUntil: number;
}

const SQL = {
  // First sight wins; a later delivery only touches updated_at. RETURNING gives the row either way.
  upsertEvent: `INSERT INTO events (id, source, type, dedupe_key, entity_key, delivery_id, payload, payload_ref, status, received_at, occurred_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING delivery_id, status, last_error`,
  // A replay puts finished actions back to pending (failed and dead ones; done ones too with
  // `all`), once: only while its request is newer than the replay that owns the event. Rows
  // running under a live lease are left to the attempt that holds them.
  replayReset: `UPDATE actions SET state = 'pending', next_attempt_at = NULL, claim_token = NULL, updated_at = ?1
    WHERE event_id = ?2 AND (state IN ('dead', 'failed') OR (?3 = 1 AND state = 'done'))
      AND EXISTS (SELECT 1 FROM events WHERE id = ?2 AND coalesce(replayed_at, 0) < ?4)`,
  replayOwn: `UPDATE events SET delivery_id = ?1, replayed_at = ?2, status = 'processing', last_error = NULL, updated_at = ?3
    WHERE id = ?4 AND coalesce(replayed_at, 0) < ?2 RETURNING delivery_id, status, last_error`,
  insertAction: `INSERT INTO actions (event_id, action, flow, entity_key, state, attempts, created_at, updated_at)
    VALUES (?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT DO NOTHING`,
  // Only the delivery that owns the event may run its actions. A pending or failed row is due
  // at its time; a running row only once its lease has ended (its holder died or overran), or
  // when this very claim marked it already (a claim whose commit landed but whose answer was
  // lost, tried again). The attempt is counted before any call is made, so a crash mid-call
  // still counts.
  markDue: `UPDATE actions SET state = 'running', attempts = attempts + 1, claim_token = ?1, next_attempt_at = ?2, updated_at = ?3
    WHERE event_id = ?4 AND state IN ('pending', 'failed', 'running') AND (coalesce(next_attempt_at, 0) <= ?5 OR claim_token = ?1)
      AND EXISTS (SELECT 1 FROM events WHERE id = ?4 AND delivery_id = ?6)
    RETURNING action`,
  readLedger: `SELECT action, state, attempts, next_attempt_at FROM actions WHERE event_id = ?`,
  countDuplicate: `UPDATE events SET duplicates = duplicates + 1, updated_at = ? WHERE id = ?`,
  // Writes only where the claim still owns the row, once: a stale attempt cannot overwrite a
  // newer outcome. The token stays on the settled row: it names the claim that wrote it.
  // An attempt that could not start (its entity was busy elsewhere) gives its count back.
  setActionState: `UPDATE actions SET state = ?, last_error = ?, last_status = ?, next_attempt_at = ?, note = ?, attempts = attempts - ?, updated_at = ?
    WHERE event_id = ? AND action = ? AND claim_token = ? AND state = 'running'`,
  // After its setActionState: only if that claim's outcome is what the row now holds. The id is
  // fixed when the attempt ends, so writing the same outcome twice keeps one dead letter.
  insertDeadLetterIfSettled: `INSERT INTO dead_letters (id, event_id, action, source, reason, created_at)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM actions WHERE event_id = ?2 AND action = ?3 AND claim_token = ?7 AND state = 'dead')
    ON CONFLICT (id) DO NOTHING`,
  // The event's status follows from its ledger rows as they are after this settle's own updates
  // (same batch). A settle under a claim (?5) writes only while a row still bears that claim,
  // so one that lost its claim cannot leave its error text or its "invalid" behind. A repair
  // without a claim (a claim that found nothing due) only recomputes the status from the rows,
  // keeping the "invalid" and the error text that the settles wrote.
  setEventStatus: `UPDATE events SET status = CASE
      WHEN NOT EXISTS (SELECT 1 FROM actions WHERE event_id = ?1) THEN 'ignored'
      WHEN EXISTS (SELECT 1 FROM actions WHERE event_id = ?1 AND state IN ('pending', 'running', 'failed')) THEN 'retrying'
      WHEN ?2 = 1 OR (?5 IS NULL AND status = 'invalid') THEN 'invalid'
      WHEN EXISTS (SELECT 1 FROM actions WHERE event_id = ?1 AND state = 'dead') THEN 'dead'
      ELSE 'done' END,
    last_error = CASE WHEN ?5 IS NULL THEN last_error ELSE ?3 END, updated_at = ?4
    WHERE id = ?1 AND (?5 IS NULL OR EXISTS (SELECT 1 FROM actions WHERE event_id = ?1 AND claim_token = ?5 AND state <> 'running'))`,
  // The effect happened: no replay of its owner (not even ?all=true) makes it again.
  onceDone: `UPDATE once_effects SET done_at = ? WHERE key = ? AND event_id = ? AND done_at IS NULL`,
  insertDeadLetter: `INSERT INTO dead_letters (id, event_id, action, source, reason, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
} as const;

/** The statements that claim one message: record the event and its ledger rows, mark the due actions running, read the ledger back. */
function claimStatements(d1: D1Database, { message, routed, token }: ClaimRequest, now: number): D1PreparedStatement[] {
  const e = message.event;
  const { payload, payloadRef } = payloadColumns(e);
  const statements = [
    d1
      .prepare(SQL.upsertEvent)
      .bind(e.id, e.source, e.type, e.dedupeKey, e.entityKey, message.deliveryId, payload, payloadRef, routed.length > 0 ? "processing" : "ignored", e.receivedAt, e.occurredAt, now),
  ];
  if (message.replay) {
    const { all, at } = message.replay;
    statements.push(d1.prepare(SQL.replayReset).bind(now, e.id, all ? 1 : 0, at), d1.prepare(SQL.replayOwn).bind(message.deliveryId, at, now, e.id));
  }
  for (const r of routed) statements.push(d1.prepare(SQL.insertAction).bind(e.id, r.action, r.flow, e.entityKey, now, now));
  // Even with nothing routed: rows left by a flow a deploy removed are claimed and settled dead.
  statements.push(d1.prepare(SQL.markDue).bind(token, now + LEASE_MS, now, e.id, now + DUE_TOLERANCE_MS, message.deliveryId));
  statements.push(d1.prepare(SQL.readLedger).bind(e.id));
  return statements;
}

type EventResult = { delivery_id: string; status: EventStatus; last_error: string | null };

/**
 * Claims every request in one round trip, with `extra` read statements in the same one (the
 * email index lookup). A request whose statements cannot even be built (a payload that does
 * not serialize) yields its Error instead of failing the others.
 */
export async function claimEventsWith(db: Db, requests: ClaimRequest[], now: number, extra: D1PreparedStatement[]): Promise<{ claims: (Claim | Error)[]; extra: D1Result[] }> {
  const built = requests.map((request) => {
    try {
      return claimStatements(db.$client, request, now);
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  });
  const results = await runBatch(db, [...built.flatMap((b) => (b instanceof Error ? [] : b)), ...extra]);
  let offset = 0;
  const claims = built.map((b, i): Claim | Error => {
    if (b instanceof Error) return b;
    const mine = results.slice(offset, offset + b.length);
    offset += b.length;
    const request = requests[i]!;
    // A replay that took the event over answers with the row as it now is.
    const taken = request.message.replay ? (mine[2]!.results[0] as EventResult | undefined) : undefined;
    const event = taken ?? (mine[0]!.results[0] as EventResult);
    const ledger = (mine[mine.length - 1]!.results as { action: string; state: ActionState; attempts: number; next_attempt_at: number | null }[]).map(
      (r): LedgerRow => ({ action: r.action, state: r.state, attempts: r.attempts, nextAttemptAt: r.next_attempt_at }),
    );
    const marked = new Set((mine[mine.length - 2]!.results as { action: string }[]).map((r) => r.action));
    return {
      kind: event.delivery_id === request.message.deliveryId ? "owned" : "duplicate",
      event: { deliveryId: event.delivery_id, status: event.status, lastError: event.last_error },
      actions: ledger,
      due: ledger.filter((a) => marked.has(a.action)),
      leaseUntil: now + LEASE_MS,
    };
  });
  return { claims, extra: results.slice(offset) };
}

export interface ActionUpdate {
  action: string;
  state: ActionState;
  lastError: string | null;
  lastStatus: number | null;
  nextAttemptAt: number | null;
  /** What the attempt found (`stale`, `echo`, …), when worth keeping. */
  note?: string | null;
  /** The attempt never started (its entity was busy): its count is given back. */
  uncount?: boolean;
  /** A once-ever effect this attempt made (its once_effects key): marked done with the action. */
  onceDone?: string;
}

export interface DeadLetterRecord {
  /** Fixed when the record is made, so writing it twice (a retried settle) keeps one row. */
  id: string;
  eventId: string;
  action: string | null;
  source: string;
  reason: string;
  /** The raw message, only when it could not be read as an event. */
  body?: string | null;
}

export interface Settlement {
  eventId: string;
  /** The claim token the updates are written under. */
  token: string | null;
  /** Recompute the event's status from its ledger rows (with whether this attempt found it invalid). */
  status: { invalid: boolean; lastError: string | null } | null;
  /** A provider's redelivery of this event was seen. */
  duplicate?: boolean;
  updates: ActionUpdate[];
  audit: AuditRecord[];
  deadLetters: DeadLetterRecord[];
  /** What an entity group learned about its contact (email index, conflicts), carried by one of its messages. */
  entity?: EntityRecord | null;
}

/** The statements that write one message's outcome: action states, event status, dead letters (audit rows: see below). */
function settleStatements(d1: D1Database, s: Settlement, now: number): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  if (s.duplicate) statements.push(d1.prepare(SQL.countDuplicate).bind(now, s.eventId));
  for (const u of s.updates) {
    statements.push(d1.prepare(SQL.setActionState).bind(u.state, u.lastError, u.lastStatus, u.nextAttemptAt, u.note ?? null, u.uncount ? 1 : 0, now, s.eventId, u.action, s.token));
    const letter = s.deadLetters.find((d) => d.action === u.action);
    if (letter) statements.push(d1.prepare(SQL.insertDeadLetterIfSettled).bind(letter.id, letter.eventId, letter.action, letter.source, letter.reason, now, s.token));
    if (u.onceDone && u.state === "done") statements.push(d1.prepare(SQL.onceDone).bind(now, u.onceDone, s.eventId));
  }
  if (s.status !== null) statements.push(d1.prepare(SQL.setEventStatus).bind(s.eventId, s.status.invalid ? 1 : 0, s.status.lastError, now, s.token));
  if (s.entity) statements.push(...recordStatements(d1, s.entity, now));
  return statements;
}

/** Everything some settlements write: each one's statements, then all their audit rows in as few inserts as D1 allows. */
export function settleBatchStatements(db: Db, settlements: Settlement[], now: number): D1PreparedStatement[] {
  return [...settlements.flatMap((s) => settleStatements(db.$client, s, now)), ...auditInserts(db.$client, settlements.flatMap((s) => s.audit))];
}

export function deadLetterInserts(d1: D1Database, rows: DeadLetterRecord[], now: number): D1PreparedStatement[] {
  return rows.map((r) => d1.prepare(SQL.insertDeadLetter).bind(r.id, r.eventId, r.action, r.source, r.reason, r.body ?? null, now));
}

/** The event's status, derived from its actions' states. */
export function eventStatusOf(states: ActionState[], invalid: boolean): EventStatus {
  if (states.length === 0) return "ignored";
  if (states.some((s) => s === "failed" || s === "pending" || s === "running")) return "retrying";
  if (invalid) return "invalid";
  if (states.some((s) => s === "dead")) return "dead";
  return "done";
}
