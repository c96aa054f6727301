/**
 * Dead letters: what will not be retried any more, kept in D1 with the reason, and replay.
 *
 * Replay hands an event back to the pipeline as a new delivery marked as a replay. Nothing in
 * D1 changes before the queue has accepted it: when the consumer first takes the replay, it
 * makes it the event's owner and puts the dead and failed actions back to pending (done ones
 * stay done unless `all`, so a replay never repeats a side effect by itself), and
 * RETRY_MAX_AGE counts again from the replay. A failed enqueue therefore leaves everything as
 * it was: the dead letters stay open and can be replayed again.
 */
import { and, asc, eq, gt, inArray, isNull, lte, notInArray, or } from "drizzle-orm";
import { deadLetters, events } from "../db/schema";
import { InboundEvent } from "../ingest/event";
import { log } from "../observability/log";
import { deadLetterInserts, runBatch, type Db, type EventRow } from "./ledger";
import { enqueue, EventMessage } from "./message";
import { payloadColumns, type PayloadStore } from "./payloads";

/**
 * Keeps a queue message that is not an event at all, with its raw body (there is no event row).
 * Dead letters of queue messages are named after the message, so the redelivery of one whose
 * ack was lost keeps one row.
 */
export async function recordUnreadable(db: Db, id: string, body: unknown, reason: string, now: number): Promise<void> {
  await runBatch(db, deadLetterInserts(db.$client, [{ id: `dl_${id}`, eventId: id, action: null, source: "unknown", reason, body: JSON.stringify(body ?? null) }], now));
  log("dead_lettered", { eventId: id, reason }, "warn");
}

/** Stores a message the events queue gave up on (its retries ran out). */
export async function recordPlatformDeadLetter(db: Db, id: string, body: unknown, now: number): Promise<void> {
  const reason = "the events queue ran out of delivery retries";
  const parsed = EventMessage.safeParse(body);
  if (!parsed.success) return recordUnreadable(db, `msg_${id}`, body, reason, now);
  return recordGaveUp(db, parsed.data, reason, now, `dl_msg_${id}`);
}

/** Marks an event dead with `reason` (creating its row if the consumer never got to it) and keeps a dead letter for it. */
export async function recordGaveUp(db: Db, message: EventMessage, reason: string, now: number, letterId: string): Promise<void> {
  const e = message.event;
  await db.batch([
    db
      .insert(events)
      .values({
        id: e.id, source: e.source, type: e.type, dedupeKey: e.dedupeKey, entityKey: e.entityKey,
        deliveryId: message.deliveryId, ...payloadColumns(e),
        status: "dead", lastError: reason, receivedAt: e.receivedAt, occurredAt: e.occurredAt, updatedAt: now,
      })
      // A finished event stays finished (a late copy meeting a pruned payload); the letter is kept.
      .onConflictDoUpdate({ target: events.id, set: { status: "dead", lastError: reason, updatedAt: now }, setWhere: notInArray(events.status, ["done", "ignored"]) }),
    db.insert(deadLetters).values({ id: letterId, eventId: e.id, action: null, source: e.source, reason, createdAt: now }).onConflictDoNothing(),
  ]);
  log("dead_lettered", { eventId: e.id, source: e.source, entity: e.entityKey, reason }, "warn");
}

/** The event a row holds, its payload still in the store when it was too large for a message. */
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
    ...(row.payloadRef ? { payloadRef: row.payloadRef } : {}),
  });
}

export interface ReplayResult {
  /** The events put back on the queue. */
  eventIds: string[];
  /** Requested ids that do not exist or cannot be replayed. */
  skipped: string[];
}

// D1 binds at most 100 parameters per statement, and a sendBatch takes 100 messages.
const REPLAY_CHUNK = 50;
/** What one `all` call replays at most: bounded D1 reads and queue sends for one invocation. */
const REPLAY_ALL_LIMIT = 1_000;

/**
 * Puts the given events back on the queue as replays of their failed or dead actions (of every
 * finished action with `all`). Throws when the queue refuses; what was sent before stays sent.
 */
export async function replayEvents(db: Db, queue: Queue, store: PayloadStore, eventIds: string[], now: number, options: { all?: boolean } = {}): Promise<ReplayResult> {
  const result: ReplayResult = { eventIds: [], skipped: [] };
  for (let i = 0; i < eventIds.length; i += REPLAY_CHUNK) {
    const chunk = eventIds.slice(i, i + REPLAY_CHUNK);
    const rows = await db.select().from(events).where(inArray(events.id, chunk));
    const sent = rows.map((r) => r.id);
    // The letters this replay answers, taken before it is sent: one the replay itself causes
    // (its action dies again) must stay open.
    const letters = sent.length === 0 ? [] : await db.select({ id: deadLetters.id }).from(deadLetters).where(and(inArray(deadLetters.eventId, sent), isNull(deadLetters.replayedAt)));
    const messages: EventMessage[] = rows.map((row) => ({
      event: eventFromRow(row),
      deliveryId: crypto.randomUUID(),
      retryFrom: now,
      replay: { all: options.all === true, at: now },
    }));
    await enqueue(queue, store, messages);
    // Only now that the queue has them: closing the letters is bookkeeping, and if it fails
    // they are merely offered for replay again (a second replay of a recovered event finds
    // nothing dead or failed and does nothing).
    if (letters.length > 0) {
      await db.$client
        .prepare("UPDATE dead_letters SET replayed_at = ?, replay_count = replay_count + 1 WHERE id IN (SELECT value FROM json_each(?))")
        .bind(now, JSON.stringify(letters.map((l) => l.id)))
        .run();
    }
    for (const m of messages) log("replayed", { eventId: m.event.id, source: m.event.source, entity: m.event.entityKey, all: options.all === true });
    result.eventIds.push(...sent);
    const found = new Set(sent);
    result.skipped.push(...chunk.filter((id) => !found.has(id)));
  }
  return result;
}

export interface DeadLetterReplayResult extends ReplayResult {
  /** How many events were put back on the queue. */
  queued: number;
  /** `all` only: open dead letters older than this call remain past its limit; call again. */
  more: boolean;
}

type OpenLetter = { id: string; eventId: string; createdAt: number };

/**
 * Replays the events behind the given dead letters, or behind every dead letter open when the
 * call starts (`all`): oldest first, page by page, at most `limit` events per call. Letters
 * that appear while it runs (an event failing again) wait for the next call, so a call always
 * ends and a client calling again while `more` is true reaches the end.
 */
export async function replayDeadLetters(
  db: Db,
  queue: Queue,
  store: PayloadStore,
  selection: { ids: string[] } | { all: true },
  now: number,
  limit = REPLAY_ALL_LIMIT,
): Promise<DeadLetterReplayResult> {
  if ("ids" in selection) {
    const letters = [];
    for (let i = 0; i < selection.ids.length; i += REPLAY_CHUNK) {
      const ids = selection.ids.slice(i, i + REPLAY_CHUNK);
      letters.push(...(await db.select({ id: deadLetters.id, eventId: deadLetters.eventId }).from(deadLetters).where(and(isNull(deadLetters.replayedAt), inArray(deadLetters.id, ids)))));
    }
    const result = await replayEvents(db, queue, store, [...new Set(letters.map((l) => l.eventId))], now);
    const found = new Set(letters.map((l) => l.id));
    return { ...result, queued: result.eventIds.length, more: false, skipped: [...selection.ids.filter((id) => !found.has(id)), ...result.skipped] };
  }

  const total: DeadLetterReplayResult = { eventIds: [], skipped: [], queued: 0, more: false };
  const replayed = new Set<string>();
  let after: OpenLetter | null = null;
  for (;;) {
    const page: OpenLetter[] = await openLetters(db, now, after, REPLAY_CHUNK);
    if (page.length === 0) return total;
    // Take the page's events in order up to the limit; the cursor stops at the last letter taken.
    const fresh: string[] = [];
    for (const letter of page) {
      if (!replayed.has(letter.eventId) && !fresh.includes(letter.eventId)) {
        if (total.queued + fresh.length >= limit) {
          total.more = true;
          break;
        }
        fresh.push(letter.eventId);
      }
      after = letter;
    }
    const result = await replayEvents(db, queue, store, fresh, now);
    for (const id of fresh) replayed.add(id);
    total.eventIds.push(...result.eventIds);
    total.queued += result.eventIds.length;
    if (total.more) return total;
  }
}

/** Open dead letters of events that exist (an unreadable message has none to replay), created by `before`, after the cursor, oldest first. */
function openLetters(db: Db, before: number, after: OpenLetter | null, count: number): Promise<OpenLetter[]> {
  const cursor = after
    ? or(gt(deadLetters.createdAt, after.createdAt), and(eq(deadLetters.createdAt, after.createdAt), gt(deadLetters.id, after.id)))
    : undefined;
  return db
    .select({ id: deadLetters.id, eventId: deadLetters.eventId, createdAt: deadLetters.createdAt })
    .from(deadLetters)
    .innerJoin(events, eq(events.id, deadLetters.eventId))
    .where(and(isNull(deadLetters.replayedAt), lte(deadLetters.createdAt, before), cursor))
    .orderBy(asc(deadLetters.createdAt), asc(deadLetters.id))
    .limit(count);
}
