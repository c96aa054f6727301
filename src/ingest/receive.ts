/**
 * From a webhook request to inbound events, per source: size, media type, signature, parse.
 * The order matters and is the contract's: size before anything is read into memory,
 * media type and signature before the body is parsed. No database, no Durable Object.
 */
import type { HubSpotConfig, MailchimpConfig, ShopifyConfig } from "../config";
import { fail, type Failure } from "../errors";
import { mediaType, readBody } from "./body";
import type { InboundEvent } from "./event";
import { parseHubSpotBatch, verifyHubSpotSignature } from "./hubspot";
import { parseMailchimpForm, verifyMailchimpSecret } from "./mailchimp";
import { parseShopifyWebhook, verifyShopifySignature } from "./shopify";

export type Received = { ok: true; events: InboundEvent[] } | Failure;

function acceptsMediaType(request: Request, allowed: string): Failure | null {
  const type = mediaType(request);
  // A missing Content-Type is tolerated; a wrong one is a sender that is not the provider.
  if (type !== null && type !== allowed) return fail("unsupported_media_type", `expected ${allowed}, got ${type}`);
  return null;
}

export async function receiveHubSpot(request: Request, config: HubSpotConfig, now: number): Promise<Received> {
  const body = await readBody(request);
  if (!body.ok) return body;
  const badType = acceptsMediaType(request, "application/json");
  if (badType) return badType;
  const verified = await verifyHubSpotSignature({
    method: request.method,
    url: request.url,
    body: body.bytes,
    signature: request.headers.get("x-hubspot-signature-v3"),
    timestamp: request.headers.get("x-hubspot-request-timestamp"),
    clientSecret: config.clientSecret,
    now,
  });
  if (!verified.ok) return verified;
  return parseHubSpotBatch(body.text, now);
}

export async function receiveMailchimp(request: Request, secret: string | undefined, config: MailchimpConfig, now: number): Promise<Received> {
  const body = await readBody(request);
  if (!body.ok) return body;
  const badType = acceptsMediaType(request, "application/x-www-form-urlencoded");
  if (badType) return badType;
  const verified = verifyMailchimpSecret(secret, config.webhookSecret);
  if (!verified.ok) return verified;
  return parseMailchimpForm(body.text, now);
}

export async function receiveShopify(request: Request, config: ShopifyConfig, now: number): Promise<Received> {
  const body = await readBody(request);
  if (!body.ok) return body;
  const badType = acceptsMediaType(request, "application/json");
  if (badType) return badType;
  const verified = await verifyShopifySignature(body.bytes, request.headers.get("x-shopify-hmac-sha256"), config.webhookSecret);
  if (!verified.ok) return verified;
  return parseShopifyWebhook(
    body.text,
    {
      topic: request.headers.get("x-shopify-topic"),
      webhookId: request.headers.get("x-shopify-webhook-id"),
      triggeredAt: request.headers.get("x-shopify-triggered-at"),
    },
    now,
  );
}
