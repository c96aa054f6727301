/**
 * The dashboard's pages in the OpenAPI document: HTML for a person, behind the admin token (a
 * bearer header, or the session cookie its sign-in form sets). Registered beside the pages, as
 * public-docs.ts does for the other routes outside /api.
 */
import { z, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import type { ErrorCode } from "../../errors";
import { ErrorBody, errorSpec } from "../admin/responses";
import { RANGES } from "../../observability/series";

const html = (description: string) => ({ description, content: { "text/html": { schema: z.string().openapi({ example: "<!DOCTYPE html><html lang=\"en\">…</html>" }) } } });

/** The error shape with its example, for a response that is JSON or HTML by the caller's Accept. */
const errorJson = (code: ErrorCode, message: string) => ({ schema: ErrorBody, example: { error: { code, message } } });

const UNAUTHORIZED = {
  description:
    "No admin token (neither `Authorization: Bearer` nor the dashboard's session cookie), or the wrong one. A browser (`Accept: text/html`) gets the sign-in form; any other client the error shape.",
  content: {
    "application/json": errorJson("unauthorized", "send Authorization: Bearer <ADMIN_TOKEN>"),
    "text/html": { schema: z.string().openapi({ example: "<!DOCTYPE html>…<form class=\"login\" id=\"login\">…</form>…" }) },
  },
} as const;

const UNAVAILABLE = {
  description: "The configuration is invalid or D1 did not answer: a browser gets a page saying so, any other client the error shape. GET /health says which.",
  content: {
    "application/json": errorJson("unavailable", "Syncwire's configuration is invalid (GET /health names the keys); retry later"),
    "text/html": { schema: z.string().openapi({ example: "<!DOCTYPE html>…The dashboard could not read Syncwire's state…" }) },
  },
} as const;

const id = (example: string) => z.object({ id: z.string().openapi({ param: { name: "id", in: "path" }, example }) });

export function registerDashboardDocs(doc: OpenAPIHono<AppEnv>): void {
  const r = doc.openAPIRegistry;
  r.registerPath({
    method: "post",
    path: "/dashboard/session",
    tags: ["dashboard"],
    summary: "Sign in to the dashboard",
    description:
      "The sign-in form posts the admin token here (in the body, so never in a URL). Right: a session cookie scoped to `/dashboard` and a 303 to the page. The admin API never takes that cookie.",
    request: { body: { required: true, content: { "application/x-www-form-urlencoded": { schema: z.object({ token: z.string() }).openapi({ example: { token: "sandbox-admin-token" } }) } } } },
    responses: {
      303: {
        description: "Signed in: `Set-Cookie: syncwire_admin=…; Path=/dashboard; SameSite=Strict; Secure`, `Location: /dashboard`.",
        headers: { Location: { schema: { type: "string", example: "/dashboard" } }, "Set-Cookie": { schema: { type: "string", example: "syncwire_admin=…; Path=/dashboard; SameSite=Strict; Secure" } } },
      },
      401: UNAUTHORIZED,
      413: errorSpec("The body is over 4 KiB.", "payload_too_large", "the body is over 4096 bytes"),
      503: UNAVAILABLE,
    },
  });
  const common = { tags: ["dashboard"], security: [{ adminToken: [] }] };
  r.registerPath({
    ...common,
    method: "get",
    path: "/dashboard",
    summary: "The dashboard",
    description:
      "Health of each integration, calls, errors and latency over time (inline SVG), backlog, open dead letters with replay, open conflicts with keep-CRM / keep-email, sync runs, recent events and alerts. Its buttons call the admin API.",
    request: { query: z.object({ range: z.enum(Object.keys(RANGES) as [string, ...string[]]).optional().openapi({ description: "The charts' span; default 1h (also for a value it does not know).", example: "24h" }) }) },
    responses: { 200: html("The page."), 401: UNAUTHORIZED, 503: UNAVAILABLE },
  });
  r.registerPath({
    ...common,
    method: "get",
    path: "/dashboard/events/{id}",
    summary: "One event's story",
    description: "The webhook's payload, its actions and their states, and every outbound call made for it, with replay buttons.",
    request: { params: id("evt_5a5b5c5d5e5f60616263646566676869") },
    responses: { 200: html("The page."), 401: UNAUTHORIZED, 404: html("No event has this id."), 503: UNAVAILABLE },
  });
  r.registerPath({
    ...common,
    method: "get",
    path: "/dashboard/sync-runs/{id}",
    summary: "One sync run and its mismatches",
    request: {
      params: id("run_0f1e2d3c4b5a"),
      query: z.object({ cursor: z.string().optional().openapi({ description: "The next page of mismatches (the page's own link).", example: "eyJ0IjoxNzc3NjI2MDA2MDAwLCJpZCI6Im1tXzEifQ" }) }),
    },
    responses: { 200: html("The page."), 400: html("A `cursor` the page did not issue."), 401: UNAUTHORIZED, 404: html("No sync run has this id."), 503: UNAVAILABLE },
  });
}
