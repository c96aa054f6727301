/**
 * Dead letters: what will not be retried any more, kept in D1 with the reason, and replay.
 *
 * Replay hands an event back to the pipeline as a new delivery: its dead and failed actions
 * go back to pending (done ones stay done, so a replay never repeats a side effect), the
 * event's owning delivery id changes so the consumer does not take the replay for a duplicate,
 * and RETRY_MAX_AGE counts again from the replay.
 */
import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import { actions, deadLetters, events } from "../db/schema";
import { InboundEvent } from "../ingest/event";
import { log } from "../observability/log";
import { deadLetterInserts, runBatch, type Db, type EventRow } from "./ledger";
import { enqueue, EventMessage } from "./message";

/** Keeps a queue message that is not an event at all, with its raw body (there is no event row). */
export async function recordUnreadable(db: Db, id: string, body: unknown, reason: string, now: number): Promise<void> {
  await runBatch(db, deadLetterInserts(db.$client, [{ eventId: id, action: null, source: "unknown", reason, body: JSON.stringify(body ?? null) }], now));
  log("dead_lettered", { eventId: id, reason }, "warn");
}

/** Stores a message the events queue gave up on (its retries ran out). */
export async function recordPlatformDeadLetter(db: Db, id: string, body: unknown, now: number): Promise<void> {
  const parsed = EventMessage.safeParse(body);
  const reason = "the events queue ran out of delivery retries";
  if (!parsed.success) return recordUnreadable(db, `msg_${id}`, body, reason, now);
  const e = parsed.data.event;
  await db.batch([
    db
      .insert(events)
      .values({
        id: e.id, source: e.source, type: e.type, dedupeKey: e.dedupeKey, entityKey: e.entityKey,
        deliveryId: parsed.data.deliveryId, payload: JSON.stringify(e.payload), status: "dead",
        receivedAt: e.receivedAt, occurredAt: e.occurredAt, updatedAt: now,
      })
      .onConflictDoUpdate({ target: events.id, set: { status: "dead", lastError: reason, updatedAt: now } }),
    db.insert(deadLetters).values({ id: `dl_${crypto.randomUUID()}`, eventId: e.id, action: null, source: e.source, reason, createdAt: now }),
  ]);
  log("dead_lettered", { eventId: e.id, source: e.source, entity: e.entityKey, reason }, "warn");
}

export function eventFromRow(row: EventRow): InboundEvent {
  return InboundEvent.parse({
    id: row.id,
    source: row.source,
    type: row.type,
    dedupeKey: row.dedupeKey,
    entityKey: row.entityKey,
    receivedAt: row.receivedAt,
    occurredAt: row.occurredAt,
    payload: JSON.parse(row.payload),
  });
}

export interface ReplayResult {
  eventIds: string[];
  /** Requested ids that do not exist or cannot be replayed. */
  skipped: string[];
}

/**
 * Re-runs the failed or dead actions of the given events (all actions with `all`), as new
 * deliveries on the queue. Returns the events that were sent.
 */
export async function replayEvents(db: Db, queue: Queue, eventIds: string[], now: number, options: { all?: boolean } = {}): Promise<ReplayResult> {
  const result: ReplayResult = { eventIds: [], skipped: [] };
  // D1 binds at most 100 parameters per statement: replay in chunks.
  for (let i = 0; i < eventIds.length; i += REPLAY_CHUNK) {
    const chunk = await replayChunk(db, queue, eventIds.slice(i, i + REPLAY_CHUNK), now, options);
    result.eventIds.push(...chunk.eventIds);
    result.skipped.push(...chunk.skipped);
  }
  return result;
}

const REPLAY_CHUNK = 50;

async function replayChunk(db: Db, queue: Queue, eventIds: string[], now: number, options: { all?: boolean }): Promise<ReplayResult> {
  const rows = await db.select().from(events).where(inArray(events.id, eventIds));
  const messages: EventMessage[] = [];
  const statements = [];
  for (const row of rows) {
    const deliveryId = crypto.randomUUID();
    const resettable = options.all ? undefined : inArray(actions.state, ["dead", "failed"]);
    statements.push(
      db.update(events).set({ status: "processing", deliveryId, lastError: null, updatedAt: now }).where(eq(events.id, row.id)),
      db
        .update(actions)
        .set({ state: "pending", nextAttemptAt: null, updatedAt: now })
        .where(and(eq(actions.eventId, row.id), resettable)),
      db
        .update(deadLetters)
        .set({ replayedAt: now, replayCount: sql`${deadLetters.replayCount} + 1` })
        .where(and(eq(deadLetters.eventId, row.id), isNull(deadLetters.replayedAt))),
    );
    messages.push({ event: eventFromRow(row), deliveryId, retryFrom: now });
  }
  // The ledger is reset before the messages exist, so a consumer never sees a new delivery id
  // with stale states; if enqueueing then fails, the caller gets the error and can replay again.
  if (statements.length > 0) await db.batch(statements as [(typeof statements)[number], ...typeof statements]);
  await enqueue(queue, messages);
  for (const m of messages) log("replayed", { eventId: m.event.id, source: m.event.source, entity: m.event.entityKey });
  const sent = new Set(rows.map((r) => r.id));
  return { eventIds: [...sent], skipped: eventIds.filter((id) => !sent.has(id)) };
}

/** Replays the events behind the given dead letters, or behind every unreplayed one. */
export async function replayDeadLetters(db: Db, queue: Queue, selection: { ids: string[] } | { all: true }, now: number): Promise<ReplayResult> {
  const open = isNull(deadLetters.replayedAt);
  const select = () => db.select({ id: deadLetters.id, eventId: deadLetters.eventId }).from(deadLetters);
  const letters =
    "all" in selection
      ? await select().where(open)
      : (await Promise.all(chunks(selection.ids, REPLAY_CHUNK).map((ids) => select().where(and(open, inArray(deadLetters.id, ids)))))).flat();
  const result = await replayEvents(db, queue, [...new Set(letters.map((l) => l.eventId))], now);
  const found = new Set(letters.map((l) => l.id));
  const skipped = "all" in selection ? [] : selection.ids.filter((id) => !found.has(id));
  return { eventIds: result.eventIds, skipped: [...skipped, ...result.skipped] };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
