/**
 * The routes outside /api in the OpenAPI document: the webhooks (public, each verified by its
 * provider's signature), GET /health, GET /openapi.json and GET /docs (public), GET /metrics (the
 * admin token). They are plain Hono routes that read raw bodies (a signature covers the bytes), so
 * their documentation is registered here beside them rather than generated from a validator.
 * The sandbox's fake vendor APIs (only in sandbox mode) are documented in the README.
 */
import { z, type OpenAPIHono } from "@hono/zod-openapi";
import { MAX_BODY_BYTES } from "../ingest/body";
import type { ErrorCode } from "../errors";
import type { AppEnv } from "./app-env";
import { COMMON_ERRORS, errorSpec, errorSpecOf } from "./admin/responses";

const Accepted = z
  .object({ eventIds: z.array(z.string()).openapi({ description: "The events put on the queue, in the order of the request (duplicates included: the consumer recognizes them)." }) })
  .openapi("WebhookAccepted", { example: { eventIds: ["evt_2f1c9b0e6a5d4c3b2a1f0e9d8c7b6a59"] } });

type Examples = Partial<Record<ErrorCode, string>>;
const NOT_JSON = "body is not valid JSON: Unexpected token 'o', \"not json\" is not valid JSON";

/**
 * What a webhook answers besides its 202, with the messages its receiver (src/ingest) writes:
 * `invalid` the 400s of its parser, `signature` the 401s of its check, one example per code.
 */
function webhookErrors(source: string, contentType: string, invalid: Examples, signature: Examples) {
  return {
    400: errorSpecOf("The body is not what the provider sends: not parseable, or a field missing.", invalid),
    401: errorSpecOf("Not verified as the provider's: the examples are the reasons this route checks.", signature),
    404: errorSpec("The source is not configured on this deployment (GET /health says why).", "unknown_source", `source ${source} is not configured`),
    413: errorSpec("The body is over 1 MiB.", "payload_too_large", `body exceeds ${MAX_BODY_BYTES} bytes`),
    415: errorSpec(`A content type the provider does not send (not ${contentType}).`, "unsupported_media_type", `expected ${contentType}, got text/plain`),
    503: errorSpec("The queue did not take the events, or the configuration is invalid: the provider retries.", "unavailable", "the event queue did not accept the events; retry later"),
  } as const;
}

// The secret is in the path: a request that reaches the documented path always has one.
const MAILCHIMP_ERRORS = webhookErrors("mailchimp", "application/x-www-form-urlencoded", { malformed_body: "body is not form data", invalid_payload: "fired_at: required" }, { invalid_signature: "the webhook URL secret does not match" });

const HEALTH_EXAMPLE = {
  status: "ok",
  sandbox: false,
  integrations: { hubspot: "enabled", mailchimp: "enabled", shopify: "enabled", salesforce: "disabled: SALESFORCE_LOGIN_URL, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET not set", postmark: "enabled", stripe: "enabled" },
  budgets: {
    hubspot: { windows: [{ limit: 100, windowSeconds: 10, remaining: 96 }, { limit: 250000, windowSeconds: 86400, remaining: 248112 }], pausedUntil: null, low: false },
    mailchimp: { maxConnections: 10, connectionsHeld: 2, pausedUntil: null },
  },
  lastSyncRun: null,
};

const accepted = { description: "Verified and on the queue: nothing is lost from here.", content: { "application/json": { schema: Accepted } } } as const;

/** Adds the documentation of the routes outside /api to `doc` (an OpenAPIHono whose document is generated). */
export function registerPublicDocs(doc: OpenAPIHono<AppEnv>): void {
  const r = doc.openAPIRegistry;
  r.registerPath({
    method: "post",
    path: "/webhooks/hubspot",
    tags: ["webhooks"],
    summary: "HubSpot webhook (a batch of up to 100 events)",
    description: "Verified by X-HubSpot-Signature-v3 (HMAC-SHA256 of method, URL, body and timestamp with the app's client secret, base64), timestamps older than 5 minutes refused.",
    request: {
      headers: z.object({ "x-hubspot-signature-v3": z.string().openapi({ example: "tBL0u3Ssf0KNEZwZ8yQz0R4l5p1ZlU2oG3cq6Jm8y2k=" }), "x-hubspot-request-timestamp": z.string().openapi({ example: "1777626000000" }) }),
      body: { content: { "application/json": { schema: z.array(z.record(z.string(), z.unknown())).openapi({ example: [{ eventId: 1001, subscriptionType: "contact.creation", objectId: 151, occurredAt: 1777626000000 }] }) } } },
    },
    responses: {
      202: accepted,
      ...webhookErrors(
        "hubspot",
        "application/json",
        { malformed_body: NOT_JSON, invalid_payload: "0.eventId: Invalid string: must match pattern /^\\d{1,40}$/" },
        {
          missing_signature: "X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required",
          invalid_signature: "signature does not match",
          stale_timestamp: "X-HubSpot-Request-Timestamp is more than 5 minutes from now",
        },
      ),
    },
  });
  r.registerPath({
    method: "get",
    path: "/webhooks/mailchimp/{secret}",
    tags: ["webhooks"],
    summary: "Mailchimp's check of the webhook URL",
    description: "Mailchimp sends a GET before it saves a webhook URL and wants a 200; the secret in the path is MAILCHIMP_WEBHOOK_SECRET.",
    request: { params: z.object({ secret: z.string().openapi({ param: { name: "secret", in: "path" }, example: "s3cr3t" }) }) },
    responses: {
      200: { description: "The URL is right.", content: { "application/json": { schema: z.object({ ok: z.literal(true) }), example: { ok: true } } } },
      401: MAILCHIMP_ERRORS[401],
      404: MAILCHIMP_ERRORS[404],
    },
  });
  r.registerPath({
    method: "post",
    path: "/webhooks/mailchimp/{secret}",
    tags: ["webhooks"],
    summary: "Mailchimp webhook (one event, form-encoded)",
    description: "Mailchimp does not sign its webhooks: the secret in the path (MAILCHIMP_WEBHOOK_SECRET) authenticates it, compared in constant time.",
    request: {
      params: z.object({ secret: z.string().openapi({ param: { name: "secret", in: "path" }, example: "s3cr3t" }) }),
      body: { content: { "application/x-www-form-urlencoded": { schema: z.object({ type: z.string(), fired_at: z.string() }).catchall(z.string()).openapi({ example: { type: "unsubscribe", fired_at: "2026-05-01 09:00:00", "data[email]": "ada@example.com", "data[list_id]": "a1b2c3" } }) } } },
    },
    responses: { 202: accepted, ...MAILCHIMP_ERRORS },
  });
  r.registerPath({
    method: "post",
    path: "/webhooks/shopify",
    tags: ["webhooks"],
    summary: "Shopify webhook (orders/create)",
    description: "Verified by X-Shopify-Hmac-Sha256 (HMAC-SHA256 of the body with SHOPIFY_WEBHOOK_SECRET, base64); deduplicated by X-Shopify-Webhook-Id; other topics are recorded as ignored.",
    request: {
      headers: z.object({ "x-shopify-hmac-sha256": z.string().openapi({ example: "Qk3Q8zQy1m0m7vR1W0m3o2Hc3bq3o1b0b2m9g3c7Yk8=" }), "x-shopify-topic": z.string().openapi({ example: "orders/create" }), "x-shopify-webhook-id": z.string().openapi({ example: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043" }) }),
      body: { content: { "application/json": { schema: z.record(z.string(), z.unknown()).openapi({ example: { id: 820982911946154508, email: "ada@example.com", currency: "USD", total_price: "44.98" } }) } } },
    },
    responses: {
      202: accepted,
      ...webhookErrors("shopify", "application/json", { malformed_body: NOT_JSON, invalid_payload: "X-Shopify-Webhook-Id is required" }, { missing_signature: "X-Shopify-Hmac-Sha256 is required", invalid_signature: "signature does not match" }),
    },
  });
  r.registerPath({
    method: "get",
    path: "/health",
    tags: ["operations"],
    summary: "Health: integrations, vendor budgets, the last sync run",
    description: "Public. `degraded` (with `reasons`) only when something needs a person: no sync run succeeded in 26 hours, or D1 does not answer; 503 `misconfigured` names the invalid keys, never their values.",
    responses: {
      200: { description: "ok or degraded.", content: { "application/json": { schema: z.object({ status: z.enum(["ok", "degraded"]), integrations: z.record(z.string(), z.string()), lastSyncRun: z.unknown() }).passthrough(), example: HEALTH_EXAMPLE } } },
      503: {
        description: "The configuration is invalid.",
        content: {
          "application/json": {
            schema: z.object({ status: z.literal("misconfigured"), issues: z.array(z.unknown()) }).passthrough(),
            example: { status: "misconfigured", issues: [{ key: "ADMIN_TOKEN", message: "required outside sandbox mode" }], lastSyncRun: null },
          },
        },
      },
    },
  });
  r.registerPath({
    method: "get",
    path: "/openapi.json",
    tags: ["operations"],
    summary: "This document",
    responses: {
      200: {
        description: "OpenAPI 3.1, generated from the schemas the routes validate with.",
        content: { "application/json": { schema: z.record(z.string(), z.unknown()), example: { openapi: "3.1.0", info: { title: "Syncwire API", version: "0.1.0" }, paths: { "/health": { get: { summary: "Health: integrations, vendor budgets, the last sync run" } } } } } },
      },
    },
  });
  r.registerPath({
    method: "get",
    path: "/docs",
    tags: ["operations"],
    summary: "This document as an interactive reference",
    description: "Public. Scalar's API reference over GET /openapi.json; its script is served by this worker (GET /docs/scalar.js, a static asset), and the page's Content-Security-Policy allows nothing from another origin, so it works with no internet.",
    responses: {
      200: { description: "The page.", content: { "text/html": { schema: z.string(), example: '<!DOCTYPE html>…<script id="api-reference" type="application/json" data-url="/openapi.json" …></script><script src="/docs/scalar.js"></script>…' } } },
    },
  });
  r.registerPath({
    method: "get",
    path: "/metrics",
    tags: ["metrics"],
    summary: "The metrics in Prometheus text format",
    description: "The same figures as GET /api/metrics: gauges with a `window` label, latency as a histogram in seconds.",
    security: [{ adminToken: [] }],
    responses: {
      200: { description: "Prometheus text exposition format 0.0.4.", content: { "text/plain": { schema: z.string().openapi({ example: '# HELP syncwire_connector_calls Outbound API calls in the window.\n# TYPE syncwire_connector_calls gauge\nsyncwire_connector_calls{connector="hubspot",window="5m"} 12\n' }) } } },
      401: COMMON_ERRORS[401],
      503: errorSpec("The admin token's own configuration is invalid (GET /health names the keys).", "unavailable", "Syncwire's configuration is invalid (GET /health names the keys); retry later"),
    },
  });
}
