/**
 * Builds webhook requests signed the way each provider signs them.
 *
 * The signers here are deliberately independent of src/: they use node:crypto's createHmac
 * (workerd provides it under nodejs_compat) rather than the product's Web Crypto helpers, and
 * they re-implement HubSpot's URI rule from HubSpot's docs rather than importing it. A bug shared
 * by the product's signer and verifier would otherwise pass every signature test.
 * test/ingest/signature-vectors.test.ts pins both signers to vectors computed with openssl.
 */
import { createHmac } from "node:crypto";

export const ORIGIN = "https://syncwire.example.com";
export const HUBSPOT_SECRET = "test-hubspot-client-secret";
export const SHOPIFY_SECRET = "test-shopify-secret";
export const MAILCHIMP_SECRET = "test-mailchimp-url-secret";

/**
 * HubSpot v3 signs the request URI with exactly these percent-encodings decoded (the table in
 * https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests);
 * every other encoding (`%20`, `%25`, `%2B`, ...) stays as sent. None of the decoded values is
 * `%`, so the order of replacement cannot double-decode.
 */
const HUBSPOT_DOCUMENTED_DECODINGS: readonly (readonly [string, string])[] = [
  ["%3A", ":"], ["%2F", "/"], ["%3F", "?"], ["%40", "@"], ["%21", "!"], ["%24", "$"],
  ["%27", "'"], ["%28", "("], ["%29", ")"], ["%2A", "*"], ["%2C", ","], ["%3B", ";"],
];

function hubspotUriAsSigned(url: string): string {
  let uri = url;
  for (const [encoded, decoded] of HUBSPOT_DOCUMENTED_DECODINGS) uri = uri.split(encoded).join(decoded);
  return uri;
}

/** HubSpot v3: base64 HMAC-SHA256, keyed by the app's client secret, of method + URI + body + timestamp (UTF-8). */
export function hubspotV3Signature(secret: string, method: string, url: string, body: string, timestamp: string): string {
  return createHmac("sha256", secret).update(`${method}${hubspotUriAsSigned(url)}${body}${timestamp}`, "utf8").digest("base64");
}

/** Shopify: base64 HMAC-SHA256 of the raw body bytes, keyed by the app's secret. */
export function shopifyHmac(secret: string, body: string | Uint8Array): string {
  const hmac = createHmac("sha256", secret);
  if (typeof body === "string") hmac.update(body, "utf8");
  else hmac.update(body);
  return hmac.digest("base64");
}

let nextEventId = Math.floor(Math.random() * 1e9);

/** A HubSpot contact-subscription event; unique eventId unless given. */
export function hubspotEvent(objectId: string | number, overrides: Record<string, unknown> = {}) {
  return {
    eventId: nextEventId++,
    subscriptionId: 2456,
    portalId: 62515,
    appId: 54321,
    occurredAt: Date.now(),
    subscriptionType: "contact.creation",
    attemptNumber: 0,
    objectId,
    changeSource: "CRM",
    changeFlag: "NEW",
    ...overrides,
  };
}

export async function signedHubSpot(
  body: string,
  options: { secret?: string; timestamp?: number; url?: string; headers?: Record<string, string | null> } = {},
): Promise<Request> {
  const url = options.url ?? `${ORIGIN}/webhooks/hubspot`;
  const timestamp = String(options.timestamp ?? Date.now());
  const signature = hubspotV3Signature(options.secret ?? HUBSPOT_SECRET, "POST", url, body, timestamp);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-hubspot-signature-v3": signature,
    "x-hubspot-request-timestamp": timestamp,
  };
  for (const [k, v] of Object.entries(options.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  return new Request(url, { method: "POST", headers, body });
}

export async function signedShopify(
  body: string,
  options: { secret?: string; topic?: string; webhookId?: string; headers?: Record<string, string | null> } = {},
): Promise<Request> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-shopify-hmac-sha256": shopifyHmac(options.secret ?? SHOPIFY_SECRET, body),
    "x-shopify-topic": options.topic ?? "orders/create",
    "x-shopify-webhook-id": options.webhookId ?? crypto.randomUUID(),
    "x-shopify-shop-domain": "example.myshopify.com",
    "x-shopify-triggered-at": new Date().toISOString(),
  };
  for (const [k, v] of Object.entries(options.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  return new Request(`${ORIGIN}/webhooks/shopify`, { method: "POST", headers, body });
}

export function mailchimpForm(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

export function mailchimpRequest(body: string, secret: string = MAILCHIMP_SECRET, contentType = "application/x-www-form-urlencoded"): Request {
  return new Request(`${ORIGIN}/webhooks/mailchimp/${secret}`, { method: "POST", headers: { "content-type": contentType }, body });
}
