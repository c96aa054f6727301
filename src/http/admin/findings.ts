/**
 * What the nightly check and the alert conditions found, for a script as for the dashboard:
 * GET /api/sync-runs/:id, GET /api/sync-runs/:id/mismatches and GET /api/alerts. Parse, call
 * src/reconcile, map.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { database } from "../../pipeline/ledger";
import { listAlerts, listMismatches } from "../../reconcile/queries";
import { getRun, toSyncRun } from "../../reconcile/runs";
import type { AppEnv } from "../app-env";
import { apiError, COMMON_ERRORS, errorSpec, PAGE_QUERY } from "./responses";
import { SyncRun } from "./sync-runs";

const SECURITY = [{ adminToken: [] }];
const RUN_ID = "run_0b6f3f1e-8d3c-4e0a-9f5b-3c2d1e0f9a8b";
const nextCursor = z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." });
const RunParams = z.object({ id: z.string().min(1).max(200).openapi({ param: { name: "id", in: "path" }, example: RUN_ID }) });

const MISMATCH_EXAMPLE = {
  id: "mm_7c1d",
  runId: RUN_ID,
  entityKey: "contact:151",
  kind: "names_differ",
  field: "firstname",
  crmValue: "Ada",
  emailValue: "Augusta",
  repairEventId: "evt_0f1e2d3c4b5a69788796a5b4c3d2e1f0",
  createdAt: "2026-05-02T02:00:30.000Z",
};

export const Mismatch = z
  .object({
    id: z.string(),
    runId: z.string(),
    entityKey: z.string().openapi({ description: "`contact:<crm id>`, or `email:<address>` for a member no contact matches." }),
    kind: z.string().openapi({ description: "missing_in_email, missing_in_crm, email_differs, names_differ or subscription_differs." }),
    field: z.string().nullable(),
    crmValue: z.string().nullable(),
    emailValue: z.string().nullable(),
    repairEventId: z.string().nullable().openapi({ description: "The event queued to repair it (GET /api/events/:id); null on a dry run." }),
    createdAt: z.iso.datetime(),
  })
  .openapi("Mismatch", { example: MISMATCH_EXAMPLE });

const ALERT_EXAMPLE = {
  id: "al_3e2d",
  kind: "connector_errors",
  runId: null,
  text: "Syncwire: mailchimp failed 34% of its calls in the last 5 minutes (17 of 50)",
  createdAt: "2026-05-02T09:14:00.000Z",
  deliveredAt: "2026-05-02T09:14:01.000Z",
  attempts: 1,
  lastError: null,
};

export const Alert = z
  .object({
    id: z.string(),
    kind: z.string().openapi({ description: "run_failed, too_many_mismatches, slow_run, missed_run, connector_errors, backlog, dead_letters, old_conflict or recovered." }),
    runId: z.string().nullable(),
    text: z.string(),
    createdAt: z.iso.datetime(),
    deliveredAt: z.iso.datetime().nullable().openapi({ description: "When ALERT_WEBHOOK_URL took it; null while undelivered or without a URL." }),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
  })
  .openapi("Alert", { example: ALERT_EXAMPLE });

export const getSyncRunRoute = createRoute({
  method: "get",
  path: "/sync-runs/{id}",
  tags: ["sync runs"],
  summary: "One nightly check run",
  security: SECURITY,
  request: { params: RunParams },
  responses: {
    200: { description: "The run.", content: { "application/json": { schema: SyncRun } } },
    404: errorSpec("No run has this id.", "not_found", `no sync run ${RUN_ID}`),
    ...COMMON_ERRORS,
  },
});

export const listMismatchesRoute = createRoute({
  method: "get",
  path: "/sync-runs/{id}/mismatches",
  tags: ["sync runs"],
  summary: "What a run found to differ, newest first",
  security: SECURITY,
  request: {
    params: RunParams,
    query: z.object({
      kind: z.enum(["missing_in_email", "missing_in_crm", "email_differs", "names_differ", "subscription_differs"]).optional().openapi({ description: "Only this kind.", example: "names_differ" }),
      ...PAGE_QUERY,
    }),
  },
  responses: {
    200: {
      description: "A page of mismatches.",
      content: { "application/json": { schema: z.object({ items: z.array(Mismatch), nextCursor }).openapi("MismatchPage"), example: { items: [MISMATCH_EXAMPLE], nextCursor: null } } },
    },
    400: errorSpec("A bad `kind`, `limit` or `cursor`.", "invalid_request", "cursor: not a cursor this API issued"),
    404: errorSpec("No run has this id.", "not_found", `no sync run ${RUN_ID}`),
    ...COMMON_ERRORS,
  },
});

export const listAlertsRoute = createRoute({
  method: "get",
  path: "/alerts",
  tags: ["metrics"],
  summary: "Alerts raised, newest first",
  description: "Every alert recorded, whether or not ALERT_WEBHOOK_URL is set, with its delivery.",
  security: SECURITY,
  request: { query: z.object(PAGE_QUERY) },
  responses: {
    200: {
      description: "A page of alerts.",
      content: { "application/json": { schema: z.object({ items: z.array(Alert), nextCursor }).openapi("AlertPage"), example: { items: [ALERT_EXAMPLE], nextCursor: null } } },
    },
    400: errorSpec("A bad `limit` or `cursor`.", "invalid_request", "limit: Too big: expected number to be <=200"),
    ...COMMON_ERRORS,
  },
});

/** Adds one run, its mismatches and the alerts to the /api app. */
export function registerFindings(api: OpenAPIHono<AppEnv>) {
  return api
    .openapi(getSyncRunRoute, async (c) => {
      const { id } = c.req.valid("param");
      const row = await getRun(database(c.env.DB), id);
      return row ? c.json(toSyncRun(row), 200) : apiError(c, "not_found", `no sync run ${id}`);
    })
    .openapi(listMismatchesRoute, async (c) => {
      const { id } = c.req.valid("param");
      const db = database(c.env.DB);
      const [row, page] = await Promise.all([getRun(db, id), listMismatches(db, id, c.req.valid("query"))]);
      if (!row) return apiError(c, "not_found", `no sync run ${id}`);
      if (!page.ok) return apiError(c, page.code, page.message);
      return c.json({ items: page.items, nextCursor: page.nextCursor }, 200);
    })
    .openapi(listAlertsRoute, async (c) => {
      const page = await listAlerts(database(c.env.DB), c.req.valid("query"));
      if (!page.ok) return apiError(c, page.code, page.message);
      return c.json({ items: page.items, nextCursor: page.nextCursor }, 200);
    });
}
