/**
 * GET /api/sync-runs and POST /api/sync-runs (CONTRACT 5): parse, call src/reconcile, map the
 * result to an answer. A start while a run is running is a 409: one run at a time.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { getConfig } from "../../config";
import { log } from "../../observability/log";
import { database } from "../../pipeline/ledger";
import { listRuns, toSyncRun } from "../../reconcile/runs";
import { startSyncRun } from "../../reconcile/start";
import type { AppEnv } from "../app-env";
import { apiError, badBody, BODY_ERRORS, COMMON_ERRORS, errorSpec, PAGE_QUERY } from "./responses";

const RUN_EXAMPLE = {
  id: "run_0b6f3f1e-8d3c-4e0a-9f5b-3c2d1e0f9a8b",
  trigger: "cron" as const,
  status: "succeeded" as const,
  dryRun: false,
  startedAt: "2026-05-02T02:00:00.000Z",
  finishedAt: "2026-05-02T02:00:41.000Z",
  durationMs: 41_000,
  recordsCompared: { crm: 10_000, email: 9_990 },
  mismatches: { total: 100, byKind: { missing_in_email: 20, missing_in_crm: 20, email_differs: 20, names_differ: 20, subscription_differs: 20 } },
  repairsQueued: 100,
  error: null,
};

export const SyncRun = z
  .object({
    id: z.string(),
    trigger: z.enum(["cron", "manual"]),
    status: z.enum(["running", "succeeded", "failed"]),
    dryRun: z.boolean().openapi({ description: "A dry run reports what differs and repairs nothing." }),
    startedAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().nullable(),
    durationMs: z.number().int().nullable(),
    recordsCompared: z.object({ crm: z.number().int(), email: z.number().int() }).openapi({ description: "Contacts read from the CRM, members from the list." }),
    mismatches: z.object({ total: z.number().int(), byKind: z.record(z.string(), z.number().int()) }).openapi({
      description: "What differs, by kind: missing_in_email, missing_in_crm, email_differs, names_differ, subscription_differs.",
    }),
    repairsQueued: z.number().int().openapi({ description: "Change events queued to repair what differs (0 on a dry run)." }),
    error: z.string().nullable().openapi({ description: "Why a failed run failed." }),
  })
  .openapi("SyncRun", { example: RUN_EXAMPLE });

export const ListSyncRunsQuery = z.object({
  ...PAGE_QUERY,
});

export const SyncRunPage = z
  .object({ items: z.array(SyncRun), nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." }) })
  .openapi("SyncRunPage");

export const StartSyncRunBody = z.object({ dryRun: z.boolean().default(false).openapi({ description: "Report, repair nothing." }) }).openapi("StartSyncRunRequest");

const SECURITY = [{ adminToken: [] }];

export const listSyncRunsRoute = createRoute({
  method: "get",
  path: "/sync-runs",
  tags: ["sync runs"],
  summary: "List nightly check runs, newest first",
  security: SECURITY,
  request: { query: ListSyncRunsQuery },
  responses: {
    200: { description: "A page of runs.", content: { "application/json": { schema: SyncRunPage, example: { items: [RUN_EXAMPLE], nextCursor: null } } } },
    400: errorSpec("A bad `limit` or `cursor`.", "invalid_request", "cursor: not a cursor this API issued"),
    ...COMMON_ERRORS,
  },
});

export const startSyncRunRoute = createRoute({
  method: "post",
  path: "/sync-runs",
  tags: ["sync runs"],
  summary: "Start a nightly check run now",
  description: "Compares the CRM and the email list page by page on the sync queue; see GET /api/sync-runs for its progress.",
  security: SECURITY,
  request: { body: { required: false, content: { "application/json": { schema: StartSyncRunBody, example: { dryRun: true } } } } },
  responses: {
    202: { description: "The run started.", content: { "application/json": { schema: z.object({ id: z.string() }).openapi("SyncRunStarted"), example: { id: RUN_EXAMPLE.id } } } },
    400: badBody("The body is not JSON, or `dryRun` is not a boolean.", "dryRun: Invalid input: expected boolean, received string"),
    409: errorSpec("A run is in progress: one runs at a time.", "conflict", "sync run run_0b6f3f1e-8d3c-4e0a-9f5b-3c2d1e0f9a8b is in progress (2026-05-02T02:00:00.000Z)"),
    ...BODY_ERRORS,
    ...COMMON_ERRORS,
  },
});

/** Adds the sync-run routes to the /api app. */
export function registerSyncRuns(api: OpenAPIHono<AppEnv>) {
  return api
    .openapi(listSyncRunsRoute, async (c) => {
      const page = await listRuns(database(c.env.DB), c.req.valid("query"));
      if (!page.ok) return apiError(c, page.code, page.message);
      return c.json({ items: page.items, nextCursor: page.nextCursor }, 200);
    })
    .openapi(startSyncRunRoute, async (c) => {
      // No body at all starts a normal run.
      const body = c.req.valid("json") ?? { dryRun: false };
      const deps = { db: database(c.env.DB), config: getConfig(c.env), queue: c.env.SYNC, now: Date.now };
      const started = await startSyncRun(deps, { trigger: "manual", dryRun: body.dryRun ?? false });
      if (started.ok) {
        log("nightly_check", { outcome: "started", runId: started.run.id, trigger: "manual", dryRun: started.run.dryRun });
        return c.json({ id: started.run.id }, 202);
      }
      switch (started.reason) {
        case "run_in_progress":
          return apiError(c, "conflict", started.running ? `sync run ${started.running.id} is in progress (${toSyncRun(started.running).startedAt})` : "a sync run is in progress");
        case "not_configured":
          return apiError(c, "unavailable", started.message);
        case "queue_refused":
          return apiError(c, "unavailable", "the sync queue did not accept the run; retry later");
      }
    });
}
