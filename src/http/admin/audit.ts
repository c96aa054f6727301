/**
 * GET /api/audit (CONTRACT 5): the outbound API calls, newest first. Parse, call
 * src/audit/queries.ts, map the result to an answer.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { AUDIT_CONNECTORS, AUDIT_OUTCOMES, listAudit } from "../../audit/queries";
import { database } from "../../pipeline/ledger";
import type { AppEnv } from "../app-env";
import { EventAuditRow } from "./events";
import { apiError, COMMON_ERRORS, errorSpec, PAGE_QUERY } from "./responses";

const EVENT_ID = "evt_5a5b5c5d5e5f60616263646566676869";

const AUDIT_EXAMPLE = {
  id: "4711",
  eventId: EVENT_ID,
  entityKey: "contact:150",
  action: "contact-sync.apply",
  connector: "mailchimp",
  method: "POST",
  url: "https://us21.api.mailchimp.com/3.0/lists/list0001",
  requestBody: '{"members":[{"email_address":"ada@example.com","status_if_new":"subscribed"}],"update_existing":true}',
  status: 503,
  responseBody: '{"title":"Service Unavailable"}',
  durationMs: 182,
  attempt: 2,
  outcome: "transient" as const,
  error: "transient: mailchimp POST answered 503",
  createdAt: "2026-05-01T09:00:01.000Z",
  served: [EVENT_ID, "evt_0f1e2d3c4b5a69788796a5b4c3d2e1f0"],
};

export const ListAuditQuery = z.object({
  eventId: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .openapi({ description: "Only the calls made for this event: those naming it, and the bulk calls that served it among others (`served`).", example: EVENT_ID }),
  connector: z.enum(AUDIT_CONNECTORS).optional().openapi({ description: "Only the calls to this system; all when absent.", example: "mailchimp" }),
  outcome: z.enum(AUDIT_OUTCOMES).optional().openapi({ description: "Only calls that ended so: `success`, `transient` (retried) or `permanent` (not retried); all when absent.", example: "transient" }),
  since: z.iso
    .datetime({ offset: true })
    .optional()
    .openapi({ description: "ISO 8601 date-time, in UTC (`Z`) or with an offset: only calls made at or after it.", example: "2026-05-01T09:00:00Z" }),
  ...PAGE_QUERY,
});

export const AuditPage = z
  .object({
    items: z.array(EventAuditRow),
    nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." }),
  })
  .openapi("AuditPage");
export type AuditPage = z.infer<typeof AuditPage>;

export const listAuditRoute = createRoute({
  method: "get",
  path: "/audit",
  tags: ["audit"],
  summary: "List outbound API calls, newest first",
  description: "Every call Syncwire made to another system, as recorded: bodies redacted (no secret is ever stored) and truncated (request 16 KiB, response 4 KiB).",
  security: [{ adminToken: [] }],
  request: { query: ListAuditQuery },
  responses: {
    200: {
      description: "A page of calls.",
      content: { "application/json": { schema: AuditPage, example: { items: [AUDIT_EXAMPLE], nextCursor: "eyJ0IjoxNzc3NjI2MDAxMDAwLCJpZCI6IjQ3MTEifQ" } } },
    },
    400: errorSpec("A bad `eventId`, `connector`, `outcome`, `since`, `limit` or `cursor`.", "invalid_request", "since: Invalid ISO datetime"),
    ...COMMON_ERRORS,
  },
});

/** Adds the audit route to the /api app. */
export function registerAudit(api: OpenAPIHono<AppEnv>) {
  return api.openapi(listAuditRoute, async (c) => {
    const page = await listAudit(database(c.env.DB), c.req.valid("query"));
    if (!page.ok) return apiError(c, page.code, page.message);
    return c.json({ items: page.items, nextCursor: page.nextCursor }, 200);
  });
}
