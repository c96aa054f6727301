/**
 * The routes outside /api in the OpenAPI document: the webhooks (public, each verified by its
 * provider's signature), GET /health and GET /openapi.json (public), GET /metrics (the admin
 * token). They are plain Hono routes that read raw bodies (a signature covers the bytes), so
 * their documentation is registered here beside them rather than generated from a validator.
 * The sandbox's fake vendor APIs (only in sandbox mode) are documented in the README.
 */
import { z, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./app-env";
import { ErrorBody, errorSpec } from "./admin/responses";

const Accepted = z
  .object({ eventIds: z.array(z.string()).openapi({ description: "The events put on the queue, in the order of the request (duplicates included: the consumer recognizes them)." }) })
  .openapi("WebhookAccepted", { example: { eventIds: ["evt_2f1c9b0e6a5d4c3b2a1f0e9d8c7b6a59"] } });

const WEBHOOK_ERRORS = {
  400: errorSpec("The body is not what the provider sends (not JSON, a field missing).", "invalid_payload", "eventId: expected an integer id"),
  401: errorSpec("No signature, a wrong one, or a stale timestamp.", "invalid_signature", "the X-HubSpot-Signature-v3 does not match the body"),
  413: errorSpec("The body is over 1 MiB.", "payload_too_large", "the body is over 1048576 bytes"),
  415: errorSpec("A content type the provider does not send.", "unsupported_media_type", "send the body as application/json"),
  503: errorSpec("The queue did not take the events, or the configuration is invalid: the provider retries.", "unavailable", "the event queue did not accept the events; retry later"),
} as const;

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
    responses: { 202: accepted, ...WEBHOOK_ERRORS },
  });
  r.registerPath({
    method: "get",
    path: "/webhooks/mailchimp/{secret}",
    tags: ["webhooks"],
    summary: "Mailchimp's check of the webhook URL",
    description: "Mailchimp sends a GET before it saves a webhook URL and wants a 200; the secret in the path is MAILCHIMP_WEBHOOK_SECRET.",
    request: { params: z.object({ secret: z.string().openapi({ param: { name: "secret", in: "path" }, example: "s3cr3t" }) }) },
    responses: { 200: { description: "The URL is right.", content: { "application/json": { schema: z.object({ ok: z.literal(true) }) } } }, 401: WEBHOOK_ERRORS[401] },
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
    responses: { 202: accepted, ...WEBHOOK_ERRORS },
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
    responses: { 202: accepted, ...WEBHOOK_ERRORS },
  });
  r.registerPath({
    method: "get",
    path: "/health",
    tags: ["operations"],
    summary: "Health: integrations, vendor budgets, the last sync run",
    description: "Public. `degraded` (with `reasons`) only when something needs a person: no sync run succeeded in 26 hours, or D1 does not answer; 503 `misconfigured` names the invalid keys, never their values.",
    responses: {
      200: { description: "ok or degraded.", content: { "application/json": { schema: z.object({ status: z.enum(["ok", "degraded"]), integrations: z.record(z.string(), z.string()), lastSyncRun: z.unknown() }).passthrough() } } },
      503: { description: "The configuration is invalid.", content: { "application/json": { schema: z.object({ status: z.literal("misconfigured"), issues: z.array(z.unknown()) }).passthrough() } } },
    },
  });
  r.registerPath({
    method: "get",
    path: "/openapi.json",
    tags: ["operations"],
    summary: "This document",
    responses: { 200: { description: "OpenAPI 3.1.", content: { "application/json": { schema: z.record(z.string(), z.unknown()) } } } },
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
      401: { description: "No admin bearer token, or the wrong one.", content: { "application/json": { schema: ErrorBody } } },
    },
  });
}
