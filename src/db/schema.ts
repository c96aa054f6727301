/**
 * The D1 schema. drizzle-kit generates `migrations/` from this file (`npm run db:generate`);
 * never edit a generated migration by hand.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Every inbound event the consumer has seen once. Written by the consumer, never by ingest. */
export const events = sqliteTable(
  "events",
  {
    id: text("id").primaryKey(),
    source: text("source").notNull(),
    type: text("type").notNull(),
    dedupeKey: text("dedupe_key").notNull(),
    entityKey: text("entity_key"),
    /** The queue delivery that owns this event; another delivery of the same event is a duplicate. */
    deliveryId: text("delivery_id").notNull(),
    /** The provider's event as JSON; `{}` when it was too large for a queue message and lives in R2 under `payloadRef`. */
    payload: text("payload").notNull(),
    payloadRef: text("payload_ref"),
    status: text("status", {
      enum: ["processing", "retrying", "done", "dead", "ignored", "invalid"],
    }).notNull(),
    duplicates: integer("duplicates").notNull().default(0),
    lastError: text("last_error"),
    /** When the replay that owns this event was requested; an older replay never takes it back. */
    replayedAt: integer("replayed_at"),
    receivedAt: integer("received_at").notNull(),
    occurredAt: integer("occurred_at"),
    updatedAt: integer("updated_at").notNull(),
  },
  // No unique index on (source, dedupe_key): the id is a hash of exactly those, so the primary
  // key already dedupes, and every index is one more row written per event.
  (t) => [
    index("events_received").on(t.receivedAt),
    index("events_status_received").on(t.status, t.receivedAt),
  ],
);

/** The action ledger: one row per event x action; a `done` row is never run again. */
export const actions = sqliteTable(
  "actions",
  {
    eventId: text("event_id").notNull(),
    action: text("action").notNull(),
    flow: text("flow").notNull(),
    entityKey: text("entity_key"),
    state: text("state", { enum: ["pending", "running", "done", "failed", "dead"] }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error"),
    lastStatus: integer("last_status"),
    /** What the attempt found, when it did nothing or not only what was asked: `stale`, `echo`, `conflict`, … */
    note: text("note"),
    /**
     * pending / failed: not to be attempted before this time. running: the end of the claim's
     * lease; until then only the holder of `claimToken` may run or settle the row, after it the
     * row may be claimed again (its holder died, or lost its lease).
     */
    nextAttemptAt: integer("next_attempt_at"),
    claimToken: text("claim_token"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  // The primary key serves every ledger query (they all name the event); an index on state
  // would cost a row written on every state change and tempt the planner away from the key.
  (t) => [primaryKey({ columns: [t.eventId, t.action] })],
);

/** Every outbound API call, secrets redacted before the row is built. */
export const auditLog = sqliteTable(
  "audit_log",
  {
    // A rowid alias without AUTOINCREMENT: no sqlite_sequence row to write per insert.
    id: integer("id").primaryKey(),
    eventId: text("event_id"),
    entityKey: text("entity_key"),
    action: text("action"),
    connector: text("connector").notNull(),
    method: text("method").notNull(),
    url: text("url").notNull(),
    requestBody: text("request_body"),
    status: integer("status"),
    responseBody: text("response_body"),
    durationMs: integer("duration_ms").notNull(),
    attempt: integer("attempt").notNull(),
    outcome: text("outcome", { enum: ["success", "transient", "permanent"] }).notNull(),
    error: text("error"),
    createdAt: integer("created_at").notNull(),
    /** A bulk call's row: the JSON list of every event it served (its `event_id` is the first). */
    served: text("served"),
  },
  (t) => [index("audit_created").on(t.createdAt), index("audit_event").on(t.eventId)],
);

/** Events (or single actions of them) that will not be retried any more, kept for replay. */
export const deadLetters = sqliteTable(
  "dead_letters",
  {
    id: text("id").primaryKey(),
    eventId: text("event_id").notNull(),
    action: text("action"),
    source: text("source").notNull(),
    reason: text("reason").notNull(),
    /** The raw queue message, kept only when it could not be read as an event (no event row). */
    body: text("body"),
    createdAt: integer("created_at").notNull(),
    replayedAt: integer("replayed_at"),
    replayCount: integer("replay_count").notNull().default(0),
  },
  (t) => [
    index("dead_letters_created").on(t.createdAt),
    index("dead_letters_event").on(t.eventId),
    // Replay of every open letter walks them oldest first without reading the closed ones.
    index("dead_letters_open").on(t.createdAt, t.id).where(sql`${t.replayedAt} IS NULL`),
  ],
);

/**
 * Which contact an email address belongs to: an email-platform event finds its contact here.
 * It follows email changes (an address stays mapped after the contact moved on, so a late
 * event for the old address still finds it); an address maps to one contact, the latest.
 */
export const contactEmails = sqliteTable(
  "contact_emails",
  {
    email: text("email").primaryKey(),
    contactKey: text("contact_key").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [index("contact_emails_contact").on(t.contactKey)],
);

/** A field both systems changed since the last sync, under the `escalate` policy, for a person to decide. */
export const conflicts = sqliteTable(
  "conflicts",
  {
    id: text("id").primaryKey(),
    entityKey: text("entity_key").notNull(),
    field: text("field").notNull(),
    crmValue: text("crm_value"),
    crmAt: integer("crm_at"),
    emailValue: text("email_value"),
    emailAt: integer("email_at"),
    status: text("status", { enum: ["open", "resolved"] }).notNull(),
    resolution: text("resolution", { enum: ["crm", "email"] }),
    resolvedBy: text("resolved_by"),
    resolvedAt: integer("resolved_at"),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("conflicts_status_created").on(t.status, t.createdAt, t.id)],
);

/**
 * Effects allowed once per entity ever (a welcome email): the first event of the entity whose
 * action claims the key owns it; the same action of any later event is done without a call.
 */
export const onceEffects = sqliteTable("once_effects", {
  /** The action name and the entity key. */
  key: text("key").primaryKey(),
  eventId: text("event_id").notNull(),
  createdAt: integer("created_at").notNull(),
  /** Set with the owner's action settling done: from then on nobody makes the effect again. */
  doneAt: integer("done_at"),
});

/** Ids Syncwire made in one system for an entity of another (a Stripe customer for a Shopify customer). */
export const links = sqliteTable(
  "links",
  {
    kind: text("kind").notNull(),
    key: text("key").notNull(),
    value: text("value").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.kind, t.key] })],
);

export const schema = { events, actions, auditLog, deadLetters, contactEmails, conflicts, onceEffects, links };
