/**
 * The HTTP surface: route modules joined under their prefixes, and the one place that turns
 * an error into a response.
 */
import { Hono } from "hono";
import { ConfigError } from "../config";
import { errorResponse } from "../errors";
import { log } from "../observability/log";
import { readMetrics } from "../observability/metrics";
import { prometheusText } from "../observability/prometheus";
import { database } from "../pipeline/ledger";
import { api, openApiDocument } from "./admin";
import { dashboard } from "./dashboard";
import { docs } from "./docs";
import { requireAdmin } from "./admin/auth";
import type { AppEnv } from "./app-env";
import { health } from "./health";
import { sandbox } from "./sandbox";
import { webhooks } from "./webhooks";

// Generated once per isolate from the routes' own zod schemas; public, as CONTRACT 5 says.
let openApi: ReturnType<typeof openApiDocument> | null = null;

export const app = new Hono<AppEnv>()
  .route("/health", health)
  .get("/openapi.json", (c) => c.json((openApi ??= openApiDocument())))
  .route("/docs", docs)
  // Prometheus scrapes this with the admin token (`authorization` in its scrape config).
  .get("/metrics", requireAdmin, async (c) => c.body(prometheusText(await readMetrics(database(c.env.DB), Date.now())), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }))
  .route("/webhooks", webhooks)
  .route("/sandbox", sandbox)
  .route("/api", api)
  .route("/dashboard", dashboard)
  .notFound(() => errorResponse("not_found", "no such route"))
  .onError((error) => {
    if (error instanceof ConfigError) {
      // A 503, so a provider retries its webhook until the configuration is fixed; the keys
      // (never the values) are on GET /health.
      log("config_error", { keys: error.issues.map((i) => i.key) }, "error");
      return errorResponse("unavailable", "Syncwire's configuration is invalid (GET /health names the keys); retry later");
    }
    log("unhandled_error", { error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, "error");
    return errorResponse("internal", "internal error");
  });
