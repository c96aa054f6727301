/** Seeding the event tables with the real schema, and the answers of the /api/events routes as tests read them. */
import { env } from "cloudflare:workers";
import { auditInserts, type AuditRecord } from "../../src/audit/sink";
import { events } from "../../src/db/schema";
import type { EventDetail, EventSummary } from "../../src/pipeline/event-queries";
import type { SkippedAction } from "../../src/pipeline/event-replay";
import { database, runBatch } from "../../src/pipeline/ledger";

export type EventPageAnswer = { items: EventSummary[]; nextCursor: string | null };
export type ReplayAnswer = { eventId: string; all: boolean; replayed: { action: string; state: string }[]; skipped: SkippedAction[]; rerouted: boolean };
export type { EventDetail };

/** Storage is shared by the tests of a file: each starts from empty event tables. */
export async function clearEventTables(): Promise<void> {
  await env.DB.batch(["events", "actions", "audit_log", "dead_letters"].map((t) => env.DB.prepare(`DELETE FROM ${t}`)));
}

export interface SeedEvent {
  id: string;
  receivedAt: number;
  source?: "hubspot" | "mailchimp" | "shopify" | "syncwire";
  status?: (typeof events.status.enumValues)[number];
  payload?: string;
  payloadRef?: string | null;
}

/** Event rows as the consumer writes them, through the schema's own table definition (one insert each: D1 binds 100 parameters a statement). */
export async function seedEvents(rows: SeedEvent[]): Promise<void> {
  const db = database(env.DB);
  const inserts = rows.map((r) =>
    db.insert(events).values({
      id: r.id,
      source: r.source ?? "hubspot",
      type: "contact.creation",
      dedupeKey: `dk-${r.id}`,
      entityKey: `contact:${r.id}`,
      deliveryId: `delivery-${r.id}`,
      payload: r.payload ?? `{"objectId":"${r.id}"}`,
      payloadRef: r.payloadRef ?? null,
      status: r.status ?? "done",
      receivedAt: r.receivedAt,
      occurredAt: r.receivedAt - 1000,
      updatedAt: r.receivedAt + 1000,
    }),
  );
  const [first, ...rest] = inserts;
  if (first) await db.batch([first, ...rest]);
}

/** Audit rows written the way the consumer writes them (src/audit/sink.ts). */
export async function seedAudit(rows: Partial<AuditRecord>[]): Promise<void> {
  const full = rows.map(
    (r): AuditRecord => ({
      eventId: null, entityKey: null, action: "contact-sync.apply", connector: "hubspot", method: "POST", url: "https://api.hubapi.com/crm/v3/objects/contacts/batch/read",
      requestBody: null, status: 200, responseBody: null, durationMs: 12, attempt: 1, outcome: "success", error: null, createdAt: Date.now(), ...r,
    }),
  );
  await runBatch(database(env.DB), auditInserts(env.DB, full));
}

/** A ledger row another flow's action left done, next to the event's own (the fan-out shape). */
export async function addDoneAction(eventId: string, action: string): Promise<void> {
  await env.DB.prepare("INSERT INTO actions (event_id, action, flow, state, attempts, created_at, updated_at) VALUES (?, ?, ?, 'done', 1, ?, ?)")
    .bind(eventId, action, action.split(".")[0]!, Date.now(), Date.now())
    .run();
}
