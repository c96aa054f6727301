/** Builds webhook requests signed the way each provider signs them. */
import { hubspotSignature } from "../../src/ingest/hubspot";
import { shopifySignature } from "../../src/ingest/shopify";

export const ORIGIN = "https://syncwire.example.com";
export const HUBSPOT_SECRET = "test-hubspot-client-secret";
export const SHOPIFY_SECRET = "test-shopify-secret";
export const MAILCHIMP_SECRET = "test-mailchimp-url-secret";

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
  const signature = await hubspotSignature(options.secret ?? HUBSPOT_SECRET, "POST", url, body, timestamp);
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
    "x-shopify-hmac-sha256": await shopifySignature(options.secret ?? SHOPIFY_SECRET, body),
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
