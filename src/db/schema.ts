/**
 * The D1 schema. drizzle-kit generates `migrations/` from this file (`npm run db:generate`);
 * never edit a generated migration by hand.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

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

/**
 * The nightly check's runs (CONTRACT 4.9, section 5). At most one runs at a time: a second row
 * with status `running` is refused by the partial unique index, so two starts at the same
 * moment (the cron and a person) cannot both begin one.
 */
export const syncRuns = sqliteTable(
  "sync_runs",
  {
    id: text("id").primaryKey(),
    trigger: text("trigger", { enum: ["cron", "manual"] }).notNull(),
    status: text("status", { enum: ["running", "succeeded", "failed"] }).notNull(),
    dryRun: integer("dry_run", { mode: "boolean" }).notNull(),
    /** scan (both sides page into sync_records), compare, done. */
    phase: text("phase", { enum: ["scan", "compare", "done"] }).notNull(),
    startedAt: integer("started_at").notNull(),
    finishedAt: integer("finished_at"),
    crmRecords: integer("crm_records").notNull().default(0),
    emailRecords: integer("email_records").notNull().default(0),
    crmScanned: integer("crm_scanned", { mode: "boolean" }).notNull().default(false),
    emailScanned: integer("email_scanned", { mode: "boolean" }).notNull().default(false),
    mismatches: integer("mismatches").notNull().default(0),
    /** JSON object: mismatches by kind. */
    mismatchesByKind: text("mismatches_by_kind").notNull().default("{}"),
    repairsQueued: integer("repairs_queued").notNull().default(0),
    error: text("error"),
    /** The last time a message of the run made progress (a run that stalls is noticed by the cron). */
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("sync_runs_one_running").on(t.status).where(sql`status = 'running'`),
    index("sync_runs_started").on(t.startedAt, t.id),
  ],
);

/**
 * The pages of a run done so far, each written once in the D1 batch that stores its records and
 * adds them to the run's counts: a page delivered twice (a crash after its write, a redelivery)
 * is never counted twice.
 */
export const syncRunPages = sqliteTable(
  "sync_run_pages",
  {
    runId: text("run_id").notNull(),
    /** crm, email, or compare (a compare chunk). */
    side: text("side").notNull(),
    /** The page's cursor (HubSpot `after`, Mailchimp offset, the chunk's first key). */
    page: text("page").notNull(),
    records: integer("records").notNull(),
    /** The next page's cursor (null: this was the last), so a redelivery sends it without reading the page again. */
    next: text("next"),
    /** Set once the next page's message (or the next phase's) is on the queue: a redelivery after that does nothing. */
    successorSent: integer("successor_sent", { mode: "boolean" }).notNull().default(false),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.side, t.page] })],
);

/** What a run read from each side, kept until the run ends: the comparison joins them in D1, page by page. */
export const syncRecords = sqliteTable(
  "sync_records",
  {
    runId: text("run_id").notNull(),
    side: text("side", { enum: ["crm", "email"] }).notNull(),
    /** The CRM id, or the member's lowercased email. */
    key: text("key").notNull(),
    /** The address the two sides are matched by: the member's; for a CRM contact, the one it was last synced with (the email index), else its own. */
    email: text("email").notNull(),
    /** JSON: the fields compared, with their change times. */
    data: text("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.side, t.key] }), index("sync_records_email").on(t.runId, t.side, t.email)],
);

/** Every mismatch a run found: which entity, what differs, both values, and the repair it queued. */
export const syncMismatches = sqliteTable(
  "sync_mismatches",
  {
    id: text("id").primaryKey(),
    runId: text("run_id").notNull(),
    entityKey: text("entity_key").notNull(),
    kind: text("kind").notNull(),
    field: text("field"),
    crmValue: text("crm_value"),
    emailValue: text("email_value"),
    /** The change event queued to repair it; null on a dry run. */
    repairEventId: text("repair_event_id"),
    createdAt: integer("created_at").notNull(),
  },
  // By id for the run's own steps; by (created_at, id) for the API's and the dashboard's pages,
  // which would otherwise sort the whole run for every page.
  (t) => [index("sync_mismatches_run").on(t.runId, t.id), index("sync_mismatches_run_created").on(t.runId, t.createdAt, t.id)],
);

/** Alerts raised (CONTRACT 4.9), each at most once per run and kind (`dedupe`), delivered to ALERT_WEBHOOK_URL when one is set. */
export const alerts = sqliteTable(
  "alerts",
  {
    id: text("id").primaryKey(),
    /** run:<id>:<kind>, or missed:<day> for a missed run: the same alert is raised once. */
    dedupe: text("dedupe").notNull().unique(),
    kind: text("kind").notNull(),
    runId: text("run_id"),
    text: text("text").notNull(),
    createdAt: integer("created_at").notNull(),
    deliveredAt: integer("delivered_at"),
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error"),
  },
  (t) => [index("alerts_created").on(t.createdAt, t.id)],
);

/**
 * Outbound calls rolled up per connector and minute (observability/metrics.ts), written in the
 * D1 batch that writes their audit rows: a metrics request reads at most a day of minutes per
 * connector, whatever the traffic. Latency is a histogram: the calls at or under each bound (ms).
 */
export const metricsMinutes = sqliteTable(
  "metrics_minutes",
  {
    connector: text("connector").notNull(),
    /** Epoch minute (ms / 60,000, floored). */
    minute: integer("minute").notNull(),
    calls: integer("calls").notNull(),
    errors: integer("errors").notNull(),
    sumMs: integer("sum_ms").notNull(),
    le10: integer("le_10").notNull(),
    le25: integer("le_25").notNull(),
    le50: integer("le_50").notNull(),
    le100: integer("le_100").notNull(),
    le250: integer("le_250").notNull(),
    le500: integer("le_500").notNull(),
    le1000: integer("le_1000").notNull(),
    le2500: integer("le_2500").notNull(),
    le5000: integer("le_5000").notNull(),
    le10000: integer("le_10000").notNull(),
    leInf: integer("le_inf").notNull(),
  },
  (t) => [primaryKey({ columns: [t.connector, t.minute] }), index("metrics_minutes_minute").on(t.minute)],
);

/**
 * The state of each alert condition (observability/alerting.ts): since when it holds, and when
 * it last alerted, so an incident alerts once, says once that it recovered, and a condition that
 * flaps within the cooldown does not alert again.
 */
export const alertStates = sqliteTable("alert_states", {
  /** The condition: `errors:<connector>`, `backlog`, `dead_letters`, `conflicts`. */
  key: text("key").primaryKey(),
  /** Since when the condition holds; null while it does not. */
  activeSince: integer("active_since"),
  /** When this incident alerted; null when it was kept quiet (within the cooldown of the last one). */
  alertedAt: integer("alerted_at"),
  /** When the condition last alerted, whatever the incident: the cooldown counts from it. */
  lastAlertAt: integer("last_alert_at"),
  updatedAt: integer("updated_at").notNull(),
});

/** A few facts about this deployment (when the worker first started: a fresh install is not degraded). */
export const workerState = sqliteTable("worker_state", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

export const schema = { events, actions, auditLog, deadLetters, contactEmails, conflicts, onceEffects, links, syncRuns, syncRunPages, syncRecords, syncMismatches, alerts, workerState, metricsMinutes, alertStates };
