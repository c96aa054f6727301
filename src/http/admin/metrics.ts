/** GET /api/metrics (CONTRACT 5): the metrics as JSON (observability/metrics.ts); `/metrics` serves them for Prometheus. */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { database } from "../../pipeline/ledger";
import { readMetrics } from "../../observability/metrics";
import type { AppEnv } from "../app-env";
import { COMMON_ERRORS } from "./responses";
import { SyncRun } from "./sync-runs";

const Window = z
  .object({
    calls: z.number().int(),
    errors: z.number().int(),
    errorRate: z.number().openapi({ description: "errors / calls; 0 without calls." }),
    p50Ms: z.number().nullable().openapi({ description: "Latency percentiles, ms: the upper bound of the histogram bucket they fall in; null without calls." }),
    p95Ms: z.number().nullable(),
    p99Ms: z.number().nullable(),
    buckets: z.array(z.number().int()).openapi({ description: "Cumulative calls at or under 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 ms, then all." }),
    sumMs: z.number().int(),
  })
  .openapi("MetricsWindow");

export const MetricsBody = z
  .object({
    at: z.iso.datetime(),
    connectors: z.record(z.string(), z.object({ "5m": Window, "1h": Window, "24h": Window })).openapi({ description: "Per connector that made calls in the last day." }),
    backlog: z.object({
      events: z.number().int().openapi({ description: "Events received and not finished (processing or retrying), at most 10,000 (`capped`)." }),
      capped: z.boolean(),
      oldestReceivedAt: z.iso.datetime().nullable(),
      oldestAgeSeconds: z.number().int().nullable(),
    }),
    deadLetters: z.object({ open: z.number().int(), capped: z.boolean() }),
    conflicts: z.object({ open: z.number().int(), capped: z.boolean() }),
    lastSyncRun: SyncRun.nullable(),
  })
  .openapi("Metrics");

const example = { calls: 120, errors: 3, errorRate: 0.025, p50Ms: 100, p95Ms: 250, p99Ms: 500, buckets: [0, 4, 30, 80, 115, 118, 120, 120, 120, 120, 120], sumMs: 9_800 };

export const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["metrics"],
  summary: "Calls, errors and latency per connector; backlog, dead letters, conflicts, the last sync run",
  description: "Read from per-minute rollups and bounded counts: the same cost at 10 events as at 10 million. `GET /metrics` serves the same in Prometheus text format.",
  security: [{ adminToken: [] }],
  responses: {
    200: {
      description: "The metrics now.",
      content: {
        "application/json": {
          schema: MetricsBody,
          example: {
            at: "2026-05-01T09:00:00.000Z",
            connectors: { hubspot: { "5m": example, "1h": example, "24h": example } },
            backlog: { events: 2, capped: false, oldestReceivedAt: "2026-05-01T08:59:58.000Z", oldestAgeSeconds: 2 },
            deadLetters: { open: 1, capped: false },
            conflicts: { open: 0, capped: false },
            lastSyncRun: null,
          },
        },
      },
    },
    ...COMMON_ERRORS,
  },
});

/** Adds GET /api/metrics to the /api app. */
export function registerMetrics(api: OpenAPIHono<AppEnv>) {
  return api.openapi(metricsRoute, async (c) => c.json(await readMetrics(database(c.env.DB), Date.now()), 200));
}
