/**
 * The operations API under /api (CONTRACT 5): every route behind the admin token, defined with
 * zod schemas through @hono/zod-openapi so the OpenAPI document is generated from the same
 * schemas that validate the requests.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { errorResponse } from "../../errors";
import type { AppEnv } from "../app-env";
import { requireAdmin } from "./auth";
import { registerAudit } from "./audit";
import { registerConflicts } from "./conflicts";
import { registerDeadLetters } from "./dead-letters";
import { registerEvents } from "./events";
import { registerFindings } from "./findings";
import { registerMetrics } from "./metrics";
import { registerSyncRuns } from "./sync-runs";
import { invalidRequestHook } from "./responses";
import { registerPublicDocs } from "../public-docs";
import { registerDashboardDocs } from "../dashboard/docs";

// The admin bodies are a few small fields; 64 KiB leaves room and stops a large body before it is read.
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

const base = new OpenAPIHono<AppEnv>({ defaultHook: invalidRequestHook });

base.openAPIRegistry.registerComponent("securitySchemes", "adminToken", {
  type: "http",
  scheme: "bearer",
  description: "The ADMIN_TOKEN configured for the deployment.",
});

// Authentication first: without the token a caller learns nothing, not even which paths exist.
base.use("*", requireAdmin, bodyLimit({ maxSize: MAX_ADMIN_BODY_BYTES, onError: () => errorResponse("payload_too_large", `the body is over ${MAX_ADMIN_BODY_BYTES} bytes`) }));

// The validators throw HTTPExceptions for what never reaches zod (a body that is not JSON, a
// content type the route does not take); everything else goes on to app.onError.
base.onError((error) => {
  if (error instanceof HTTPException) {
    if (error.status === 400) return errorResponse("malformed_body", "the body is not valid JSON");
    if (error.status === 413) return errorResponse("payload_too_large", `the body is over ${MAX_ADMIN_BODY_BYTES} bytes`);
    if (error.status === 415) return errorResponse("unsupported_media_type", "send the body as application/json");
  }
  throw error;
});

export const api = registerFindings(registerMetrics(registerAudit(registerDeadLetters(registerSyncRuns(registerEvents(registerConflicts(base)))))));

/**
 * The OpenAPI 3.1 document of the /api routes, paths as served (`/api/conflicts`).
 *
 * @example
 * const doc = openApiDocument();
 * doc.paths?.["/api/conflicts"]?.get?.summary; // "List conflicts, newest first"
 */
export function openApiDocument() {
  // Mounting into a fresh OpenAPIHono copies the route definitions with the /api prefix;
  // app.ts mounts the same routes for serving. The routes outside /api are described beside them.
  const doc = new OpenAPIHono<AppEnv>().route("/api", api);
  registerPublicDocs(doc);
  registerDashboardDocs(doc);
  return doc.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "Syncwire API",
      version: "0.1.0",
      description: "The webhooks (each verified by its provider's signature), `/health` and this document are public; `/api/*`, `/metrics` and `/dashboard` need `Authorization: Bearer <ADMIN_TOKEN>` (the dashboard also takes it from its sign-in form's session cookie). The interactive reference is at `/docs`.",
    },
    tags: [
      { name: "webhooks", description: "What the providers send: verified, then on the queue before the answer" },
      { name: "operations", description: "Health and this document" },
      { name: "events", description: "Inbound events, their actions, the calls made for them, and replay" },
      { name: "conflicts", description: "Fields both systems changed, under the escalate policy" },
      { name: "sync runs", description: "The nightly check of CRM against email list: its runs, and starting one" },
      { name: "dead letters", description: "What will not be retried any more, and replaying it" },
      { name: "audit", description: "Every outbound API call, with its request and answer (redacted, truncated)" },
      { name: "dashboard", description: "Pages for a person, behind the admin token" },
      { name: "metrics", description: "Calls, errors and latency per connector; backlog, dead letters, conflicts, the last sync run" },
    ],
  });
}
