/**
 * GET /api/dead-letters and POST /api/dead-letters/replay (CONTRACT 5): parse, call
 * src/pipeline (dead-letter-queries.ts, dead-letters.ts), map the result to an answer.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { redactorFor } from "../../connectors";
import { log } from "../../observability/log";
import { listDeadLetters } from "../../pipeline/dead-letter-queries";
import { replayDeadLetters } from "../../pipeline/dead-letters";
import { database } from "../../pipeline/ledger";
import { r2PayloadStore } from "../../pipeline/payloads";
import type { AppEnv } from "../app-env";
import { operatorConfig } from "./auth";
import { apiError, badBody, BODY_ERRORS, COMMON_ERRORS, errorSpec, PAGE_QUERY } from "./responses";

/** The most dead letters one replay request may name. */
export const MAX_REPLAY_IDS = 100;

const LETTER_EXAMPLE = {
  id: "dl_7c9e6679-7425-40de-944b-e07fc1f90ae7",
  eventId: "evt_2f1c9b0e6a5d4c3b2a1f0e9d8c7b6a59",
  action: "stripe.invoice",
  source: "shopify",
  reason: "permanent: stripe POST answered 400: No such customer: 'cus_missing'",
  body: null,
  createdAt: "2026-05-01T09:00:03.000Z",
  replayedAt: null,
  replayCount: 0,
};

export const DeadLetter = z
  .object({
    id: z.string(),
    eventId: z.string().openapi({ description: "The event; see GET /api/events/:id for its actions and calls." }),
    action: z.string().nullable().openapi({ description: "The action that died; null for a queue message that could not be read as an event." }),
    source: z.string(),
    reason: z.string().openapi({ description: "Why it will not be retried any more (redacted)." }),
    body: z.string().nullable().openapi({ description: "The raw queue message, kept only when it could not be read as an event." }),
    createdAt: z.iso.datetime(),
    replayedAt: z.iso.datetime().nullable().openapi({ description: "When it was last replayed; null while it is open." }),
    replayCount: z.number().int(),
  })
  .openapi("DeadLetter", { example: LETTER_EXAMPLE });

export const ListDeadLettersQuery = z.object({
  status: z.enum(["open", "replayed"]).optional().openapi({ description: "`open`: not replayed yet; all when absent.", example: "open" }),
  source: z.enum(["hubspot", "mailchimp", "shopify", "syncwire", "unknown"]).optional().openapi({ description: "The event's source (`unknown`: a queue message that could not be read as an event).", example: "shopify" }),
  action: z.string().min(1).max(200).optional().openapi({ description: "The action that died, e.g. `stripe.invoice`.", example: LETTER_EXAMPLE.action }),
  eventId: z.string().min(1).max(200).optional().openapi({ description: "Only the letters of this event.", example: LETTER_EXAMPLE.eventId }),
  ...PAGE_QUERY,
});

export const DeadLetterPage = z
  .object({ items: z.array(DeadLetter), nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." }) })
  .openapi("DeadLetterPage");

export const ReplayDeadLettersBody = z
  .union([
    z.object({ ids: z.array(z.string().min(1).max(200)).min(1).max(MAX_REPLAY_IDS).openapi({ description: `Dead letter ids, 1 to ${MAX_REPLAY_IDS}.` }) }).strict(),
    z.object({ all: z.literal(true).openapi({ description: "Every open dead letter, oldest first, at most 1,000 events per call (`more` says when to call again)." }) }).strict(),
  ])
  .openapi("ReplayDeadLettersRequest");

export const ReplayDeadLettersAccepted = z
  .object({
    queued: z.number().int().openapi({ description: "Events put back on the queue (one replay per event, whatever its number of letters)." }),
    eventIds: z.array(z.string()),
    skipped: z.array(z.string()).openapi({ description: "Ids that are not open dead letters, or whose event does not exist." }),
    more: z.boolean().openapi({ description: "`all`: open letters remain past this call's limit; call again." }),
  })
  .openapi("ReplayDeadLettersAccepted");

const SECURITY = [{ adminToken: [] }];

export const listDeadLettersRoute = createRoute({
  method: "get",
  path: "/dead-letters",
  tags: ["dead letters"],
  summary: "List dead letters, newest first",
  security: SECURITY,
  request: { query: ListDeadLettersQuery },
  responses: {
    200: { description: "A page of dead letters.", content: { "application/json": { schema: DeadLetterPage, example: { items: [LETTER_EXAMPLE], nextCursor: null } } } },
    400: errorSpec("A bad filter, `limit` or `cursor`.", "invalid_request", 'status: Invalid option: expected one of "open"|"replayed"'),
    ...COMMON_ERRORS,
  },
});

export const replayDeadLettersRoute = createRoute({
  method: "post",
  path: "/dead-letters/replay",
  tags: ["dead letters"],
  summary: "Replay dead letters",
  description: "Puts the events behind the named dead letters (or every open one) back on the queue as replays of their failed and dead actions; the letters close once the queue has them.",
  security: SECURITY,
  request: { body: { required: true, content: { "application/json": { schema: ReplayDeadLettersBody, example: { ids: [LETTER_EXAMPLE.id] } } } } },
  responses: {
    202: {
      description: "The replays are on the queue.",
      content: { "application/json": { schema: ReplayDeadLettersAccepted, example: { queued: 1, eventIds: [LETTER_EXAMPLE.eventId], skipped: [], more: false } } },
    },
    400: badBody("The body is not JSON, or neither `ids` (1 to 100) nor `all: true`.", "ids: Too big: expected array to have <=100 items"),
    ...BODY_ERRORS,
    ...COMMON_ERRORS,
  },
});

/** Adds the dead-letter routes to the /api app. */
export function registerDeadLetters(api: OpenAPIHono<AppEnv>) {
  return api
    .openapi(listDeadLettersRoute, async (c) => {
      const page = await listDeadLetters(database(c.env.DB), c.req.valid("query"));
      if (!page.ok) return apiError(c, page.code, page.message);
      return c.json({ items: page.items, nextCursor: page.nextCursor }, 200);
    })
    .openapi(replayDeadLettersRoute, async (c) => {
      const body = c.req.valid("json");
      const selection = "ids" in body ? { ids: body.ids } : { all: true as const };
      try {
        const result = await replayDeadLetters(database(c.env.DB), c.env.EVENTS, r2PayloadStore(c.env.PAYLOADS), selection, Date.now());
        return c.json({ queued: result.queued, eventIds: result.eventIds, skipped: result.skipped, more: result.more }, 202);
      } catch (error) {
        // What was queued before the refusal stays queued (its letters closed); the rest can be replayed again.
        log("enqueue_failed", { source: "syncwire", error: redactorFor(operatorConfig(c.env)).redact(String(error)) }, "error");
        return apiError(c, "unavailable", "the event queue did not accept the replay; retry later");
      }
    });
}
