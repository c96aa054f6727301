/**
 * The HTTP surface: route modules joined under their prefixes, and the one place that turns
 * an error into a response.
 */
import { Hono } from "hono";
import { ConfigError } from "../config";
import { errorResponse } from "../errors";
import { log } from "../observability/log";
import { api, openApiDocument } from "./admin";
import type { AppEnv } from "./app-env";
import { health } from "./health";
import { sandbox } from "./sandbox";
import { webhooks } from "./webhooks";

// Generated once per isolate from the routes' own zod schemas; public, as CONTRACT 5 says.
let openApi: ReturnType<typeof openApiDocument> | null = null;

export const app = new Hono<AppEnv>()
  .route("/health", health)
  .get("/openapi.json", (c) => c.json((openApi ??= openApiDocument())))
  .route("/webhooks", webhooks)
  .route("/sandbox", sandbox)
  .route("/api", api)
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
