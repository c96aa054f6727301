/**
 * Shopify webhooks: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body with
 * the app's secret; `X-Shopify-Webhook-Id` is stable across Shopify's retries.
 * https://shopify.dev/docs/apps/build/webhooks/subscribe/https
 */
import { z } from "zod";
import { describeIssues, fail, type Failure } from "../errors";
import { constantTimeEqual, hmacSha256, toBase64 } from "./crypto";
import { eventIdFor, type InboundEvent } from "./event";
import { idString, integerId, parseJsonLossless } from "./json";

export async function shopifySignature(secret: string, body: Uint8Array | string): Promise<string> {
  return toBase64(await hmacSha256(secret, body));
}

export async function verifyShopifySignature(body: Uint8Array, signature: string | null, secret: string): Promise<{ ok: true } | Failure> {
  if (!signature) return fail("missing_signature", "X-Shopify-Hmac-Sha256 is required");
  const expected = await shopifySignature(secret, body);
  if (!constantTimeEqual(expected, signature.trim())) return fail("invalid_signature", "signature does not match");
  return { ok: true };
}

// Shopify ids are JSON integers, 18 digits in its docs.
const ShopifyOrder = z.looseObject({
  id: integerId,
  customer: z.looseObject({ id: integerId }).nullish(),
});

export interface ShopifyHeaders {
  topic: string | null;
  webhookId: string | null;
  triggeredAt: string | null;
}

export async function parseShopifyWebhook(text: string, headers: ShopifyHeaders, receivedAt: number): Promise<{ ok: true; events: InboundEvent[] } | Failure> {
  const json = parseJsonLossless(text);
  if (!json.ok) return fail("malformed_body", `body is not valid JSON: ${json.message}`);
  if (!headers.webhookId) return fail("invalid_payload", "X-Shopify-Webhook-Id is required");
  if (!headers.topic) return fail("invalid_payload", "X-Shopify-Topic is required");
  if (typeof json.value !== "object" || json.value === null || Array.isArray(json.value)) {
    return fail("invalid_payload", "body: expected a JSON object");
  }
  const payload = json.value as Record<string, unknown>;
  let entityKey: string | null = null;
  // Only orders/create drives a flow; other topics are kept and recorded as ignored.
  if (headers.topic === "orders/create") {
    const order = ShopifyOrder.safeParse(payload);
    if (!order.success) return fail("invalid_payload", describeIssues(order.error));
    const customerId = order.data.customer ? idString(order.data.customer.id) : null;
    entityKey = customerId ? `customer:${customerId}` : `order:${idString(order.data.id)}`;
  }
  const triggered = headers.triggeredAt ? Date.parse(headers.triggeredAt) : NaN;
  return {
    ok: true,
    events: [
      {
        id: await eventIdFor("shopify", headers.webhookId),
        source: "shopify",
        type: headers.topic,
        dedupeKey: headers.webhookId,
        entityKey,
        receivedAt,
        occurredAt: Number.isFinite(triggered) ? triggered : null,
        payload,
      },
    ],
  };
}
