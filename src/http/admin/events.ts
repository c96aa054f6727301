/**
 * GET /api/events, GET /api/events/:id and POST /api/events/:id/replay: parse, call
 * src/pipeline/event-queries.ts or event-replay.ts, map the result to an answer.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { redactorFor } from "../../connectors";
import { actions } from "../../db/schema";
import { EVENT_SOURCES } from "../../ingest/event";
import { log } from "../../observability/log";
import { EVENT_STATUSES, eventDetail, listEvents, MAX_AUDIT_ROWS } from "../../pipeline/event-queries";
import { replayEvent, type SkippedAction } from "../../pipeline/event-replay";
import { database } from "../../pipeline/ledger";
import { r2PayloadStore } from "../../pipeline/payloads";
import type { AppEnv } from "../app-env";
import { operatorConfig } from "./auth";
import { apiError, BODY_ERRORS, COMMON_ERRORS, errorSpec, PAGE_QUERY } from "./responses";

const ActionState = z.enum(actions.state.enumValues);
const EVENT_ID = "evt_0f1e2d3c4b5a69788796a5b4c3d2e1f0";

const EVENT_EXAMPLE = {
  id: EVENT_ID,
  source: "hubspot" as const,
  type: "contact.creation",
  entityKey: "contact:151",
  status: "dead" as const,
  receivedAt: "2026-05-01T09:00:00.000Z",
  occurredAt: "2026-05-01T08:59:58.000Z",
  duplicates: 1,
  lastError: "permanent: mailchimp answered 400 Invalid Resource",
};

export const EventSummary = z
  .object({
    id: z.string(),
    source: z.enum(EVENT_SOURCES),
    type: z.string().openapi({ description: "The provider's event type, e.g. `contact.creation`, `subscribe`, `orders/create`." }),
    entityKey: z.string().nullable().openapi({ description: "The entity the event is about, e.g. `contact:<crm id>`." }),
    status: z.enum(EVENT_STATUSES),
    receivedAt: z.iso.datetime(),
    occurredAt: z.iso.datetime().nullable().openapi({ description: "The provider's time of the change; null when it sends none." }),
    duplicates: z.number().int().openapi({ description: "How many times the provider delivered it again (each one deduped)." }),
    lastError: z.string().nullable(),
  })
  .openapi("Event", { example: EVENT_EXAMPLE });

export const ListEventsQuery = z.object({
  source: z.enum(EVENT_SOURCES).optional().openapi({ description: "Only events from this source; all when absent.", example: "hubspot" }),
  status: z.enum(EVENT_STATUSES).optional().openapi({ description: "Only events in this state; all when absent.", example: "dead" }),
  ...PAGE_QUERY,
});

export const EventPage = z
  .object({
    items: z.array(EventSummary),
    nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." }),
  })
  .openapi("EventPage");
export type EventPage = z.infer<typeof EventPage>;

const ACTIONS_EXAMPLE = [
  { action: "crm.read", flow: "contact-sync", state: "done" as const, attempts: 1, lastError: null, lastStatus: null, nextAttemptAt: null, note: null, updatedAt: "2026-05-01T09:00:01.000Z" },
  { action: "email.upsert", flow: "contact-sync", state: "dead" as const, attempts: 1, lastError: EVENT_EXAMPLE.lastError, lastStatus: 400, nextAttemptAt: null, note: null, updatedAt: "2026-05-01T09:00:01.000Z" },
];

export const EventAction = z
  .object({
    action: z.string(),
    flow: z.string(),
    state: ActionState,
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    lastStatus: z.number().int().nullable().openapi({ description: "The HTTP status of the last failed call." }),
    nextAttemptAt: z.iso.datetime().nullable().openapi({ description: "pending / failed: not before this time; running: when the attempt's lease ends." }),
    note: z.string().nullable().openapi({ description: "What the attempt found besides doing what was asked: `stale`, `echo`, `conflict`, …" }),
    updatedAt: z.iso.datetime(),
  })
  .openapi("EventAction");

export const EventAuditRow = z
  .object({
    id: z.string(),
    eventId: z.string().nullable(),
    entityKey: z.string().nullable(),
    action: z.string().nullable(),
    connector: z.string(),
    method: z.string(),
    url: z.string(),
    requestBody: z.string().nullable().openapi({ description: "Redacted, at most 16 KiB." }),
    status: z.number().int().nullable(),
    responseBody: z.string().nullable().openapi({ description: "Redacted, at most 4 KiB." }),
    durationMs: z.number().int(),
    attempt: z.number().int(),
    outcome: z.enum(["success", "transient", "permanent"]),
    error: z.string().nullable(),
    createdAt: z.iso.datetime(),
    served: z.array(z.string()).nullable().openapi({ description: "A bulk call: every event it served; null for a call made for one event." }),
  })
  .openapi("EventAuditRow");

const AUDIT_EXAMPLE = {
  id: "4711", eventId: "evt_5a5b5c5d5e5f60616263646566676869", entityKey: "contact:150", action: "email.upsert", connector: "mailchimp", method: "POST",
  url: "https://us21.api.mailchimp.com/3.0/lists/list0001", requestBody: '{"members":[…],"update_existing":true}', status: 400,
  responseBody: '{"title":"Invalid Resource"}', durationMs: 182, attempt: 1, outcome: "permanent" as const,
  error: EVENT_EXAMPLE.lastError, createdAt: "2026-05-01T09:00:01.000Z", served: ["evt_5a5b5c5d5e5f60616263646566676869", EVENT_ID],
};

export const EventDetail = EventSummary.extend({
  dedupeKey: z.string(),
  updatedAt: z.iso.datetime(),
  replayedAt: z.iso.datetime().nullable().openapi({ description: "When the replay that owns the event was requested." }),
  payload: z.record(z.string(), z.unknown()).nullable().openapi({ description: "The provider's event, ids as strings; null only when it was kept in the payload store and the object is gone." }),
  payloadRef: z.string().nullable().openapi({ description: "The payload store (R2) key of a payload too large for a queue message." }),
  actions: z.array(EventAction),
  audit: z.array(EventAuditRow).openapi({ description: `The calls made for the event, bulk calls that served it included; newest first, at most ${MAX_AUDIT_ROWS}.` }),
  auditTruncated: z.boolean().openapi({ description: "More calls were made than `audit` holds." }),
}).openapi("EventDetail");
export type EventDetail = z.infer<typeof EventDetail>;

export const ReplayQuery = z.object({
  all: z.enum(["true", "false"]).optional().openapi({ description: "`true`: run every finished action again, done ones too; default: only failed and dead ones.", example: "true" }),
});

const ReplayedAction = z.object({ action: z.string(), state: ActionState });
const SkippedActionSchema = ReplayedAction.extend({ reason: z.string() });

export const EventReplayAccepted = z
  .object({
    eventId: z.string(),
    all: z.boolean(),
    replayed: z.array(ReplayedAction).openapi({ description: "The actions the replay runs again, in the state they were in." }),
    skipped: z.array(SkippedActionSchema).openapi({ description: "The actions it leaves alone, and why." }),
    rerouted: z.boolean().openapi({ description: "The event died before its actions were recorded; the replay routes it to its flows afresh." }),
  })
  .openapi("EventReplayAccepted");
export type EventReplayAccepted = z.infer<typeof EventReplayAccepted>;

const SECURITY = [{ adminToken: [] }];
const idParam = z.object({ id: z.string().min(1).max(200).openapi({ param: { name: "id", in: "path" }, example: EVENT_ID }) });

export const listEventsRoute = createRoute({
  method: "get",
  path: "/events",
  tags: ["events"],
  summary: "List inbound events, newest first",
  security: SECURITY,
  request: { query: ListEventsQuery },
  responses: {
    200: {
      description: "A page of events, without their payloads.",
      content: { "application/json": { schema: EventPage, example: { items: [EVENT_EXAMPLE], nextCursor: "eyJ0IjoxNzc3NjI2MDAwMDAwLCJpZCI6ImV2dF8wZjFlIn0" } } },
    },
    400: errorSpec("A bad `source`, `status`, `limit` or `cursor`.", "invalid_request", "limit: Too big: expected number to be <=200"),
    ...COMMON_ERRORS,
  },
});

export const getEventRoute = createRoute({
  method: "get",
  path: "/events/{id}",
  tags: ["events"],
  summary: "One event: its payload, its actions and the calls made for it",
  security: SECURITY,
  request: { params: idParam },
  responses: {
    200: {
      description: "The event.",
      content: {
        "application/json": {
          schema: EventDetail,
          example: { ...EVENT_EXAMPLE, dedupeKey: "1001-contact.creation-151", updatedAt: "2026-05-01T09:00:01.000Z", replayedAt: null, payload: { eventId: "1001", objectId: "151" }, payloadRef: null, actions: ACTIONS_EXAMPLE, audit: [AUDIT_EXAMPLE], auditTruncated: false },
        },
      },
    },
    404: errorSpec("No event has this id.", "not_found", `no event ${EVENT_ID}`),
    ...COMMON_ERRORS,
  },
});

export const replayEventRoute = createRoute({
  method: "post",
  path: "/events/{id}/replay",
  tags: ["events"],
  summary: "Replay an event's failed and dead actions",
  description: "Queues one replay delivery; the pipeline puts the actions back to pending and runs them. With `?all=true` done actions run again too (targets that dedupe still see one effect).",
  security: SECURITY,
  request: { params: idParam, query: ReplayQuery },
  responses: {
    202: {
      description: "The replay is on the queue.",
      content: {
        "application/json": {
          schema: EventReplayAccepted,
          example: { eventId: EVENT_ID, all: false, replayed: [{ action: "email.upsert", state: "dead" }], skipped: [{ action: "crm.read", state: "done", reason: "done; ?all=true runs it again" }], rerouted: false },
        },
      },
    },
    400: errorSpec("A bad `all`.", "invalid_request", 'all: Invalid option: expected one of "true"|"false"'),
    404: errorSpec("No event has this id.", "not_found", `no event ${EVENT_ID}`),
    409: errorSpec("Nothing to replay: no action failed or died (with `all`: none finished). Nothing was queued.", "conflict", `event ${EVENT_ID} has nothing to replay: crm.read is done; ?all=true runs it again`),
    // The route takes no body, but the /api body limit answers one over 64 KiB before it.
    413: BODY_ERRORS[413],
    ...COMMON_ERRORS,
  },
});

function nothingToReplay(id: string, status: string, skipped: SkippedAction[]): string {
  const why = skipped.length === 0 ? `it has no actions (status ${status})` : skipped.map((s) => `${s.action} is ${s.reason}`).join(", ");
  return `event ${id} has nothing to replay: ${why}`;
}

/** Adds the event routes to the /api app. */
export function registerEvents(api: OpenAPIHono<AppEnv>) {
  return api
    .openapi(listEventsRoute, async (c) => {
      const page = await listEvents(database(c.env.DB), c.req.valid("query"));
      if (!page.ok) return apiError(c, page.code, page.message);
      return c.json({ items: page.items, nextCursor: page.nextCursor }, 200);
    })
    .openapi(getEventRoute, async (c) => {
      const { id } = c.req.valid("param");
      const found = await eventDetail(database(c.env.DB), r2PayloadStore(c.env.PAYLOADS), id);
      if (!found.ok) return apiError(c, "not_found", `no event ${id}`);
      return c.json(found.event, 200);
    })
    .openapi(replayEventRoute, async (c) => {
      const { id } = c.req.valid("param");
      const all = c.req.valid("query").all === "true";
      const deps = { db: database(c.env.DB), queue: c.env.EVENTS, store: r2PayloadStore(c.env.PAYLOADS), now: Date.now };
      const result = await replayEvent(deps, id, { all });
      if (result.ok) return c.json({ eventId: result.eventId, all: result.all, replayed: result.replayed, skipped: result.skipped, rerouted: result.rerouted }, 202);
      switch (result.reason) {
        case "not_found":
          return apiError(c, "not_found", `no event ${id}`);
        case "nothing_to_replay":
          return apiError(c, "conflict", nothingToReplay(id, result.status, result.skipped));
        case "queue_refused":
          // Nothing changed: the actions stay as they were and the same request can be repeated.
          log("enqueue_failed", { source: "syncwire", eventId: id, error: redactorFor(operatorConfig(c.env)).redact(String(result.error)) }, "error");
          return apiError(c, "unavailable", "the event queue did not accept the replay; retry later");
      }
    });
}
