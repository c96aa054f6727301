/** POST /webhooks/shopify: HMAC over the raw body, webhook-id dedupe, ids beyond 2^53. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { waitFor } from "../support/sandbox";
import { ORIGIN, signedShopify } from "../support/webhooks";

const send = (request: Request) => exports.default.fetch(request);
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

// Shopify's documented ids are 18 digits: beyond Number.MAX_SAFE_INTEGER.
const ORDER = `{"id":820982911946154508,"email":"jon@example.com","total_price":"199.65","customer":{"id":115310627314723954,"email":"jon@example.com","first_name":"Jon","last_name":"Snow"},"line_items":[]}`;

describe("Shopify HMAC", () => {
  it("accepts a valid signature", async () => {
    const res = await send(await signedShopify(ORDER));
    expect(res.status).toBe(202);
  });

  it("rejects a tampered body", async () => {
    const signed = await signedShopify(ORDER);
    const res = await send(new Request(signed, { body: ORDER.replace("199.65", "0.01") }));
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("invalid_signature");
  });

  it.each([
    ["the wrong secret", () => signedShopify(ORDER, { secret: "nope" }), 401, "invalid_signature"],
    ["no X-Shopify-Hmac-Sha256", () => signedShopify(ORDER, { headers: { "x-shopify-hmac-sha256": null } }), 401, "missing_signature"],
    ["text/plain", () => signedShopify(ORDER, { headers: { "content-type": "text/plain" } }), 415, "unsupported_media_type"],
    ["signed non-JSON", () => signedShopify("{{"), 400, "malformed_body"],
    ["no X-Shopify-Webhook-Id", () => signedShopify(ORDER, { headers: { "x-shopify-webhook-id": null } }), 400, "invalid_payload"],
    ["an order without an id", () => signedShopify(`{"email":"a@b.co"}`), 400, "invalid_payload"],
  ] as const)("rejects %s", async (_, request, status, code) => {
    const res = await send(await request());
    expect(res.status).toBe(status);
    expect(await errorCode(res)).toBe(code);
  });

  it("answers 413 over 1 MiB", async () => {
    const res = await send(new Request(`${ORIGIN}/webhooks/shopify`, { method: "POST", body: "x".repeat(1024 * 1024 + 1), headers: { "content-type": "application/json" } }));
    expect(res.status).toBe(413);
  });
});

describe("Shopify events", () => {
  it("keeps 18-digit ids exact, dedupes by webhook id, and records other topics as ignored", async () => {
    const webhookId = crypto.randomUUID();
    const first = (await (await send(await signedShopify(ORDER, { webhookId, topic: "orders/create" }))).json()) as { eventIds: string[] };
    const again = (await (await send(await signedShopify(ORDER, { webhookId, topic: "orders/create" }))).json()) as { eventIds: string[] };
    expect(again.eventIds).toEqual(first.eventIds);
    const row = await waitFor(
      () => env.DB.prepare("SELECT entity_key, payload, duplicates FROM events WHERE id = ?").bind(first.eventIds[0]).first<{ entity_key: string; payload: string; duplicates: number }>().then((r) => (r?.duplicates === 1 ? r : undefined)),
      10_000,
      "order event",
    );
    expect(row.entity_key).toBe("customer:115310627314723954");
    expect(row.payload).toContain(`"id":"820982911946154508"`);

    const other = (await (await send(await signedShopify(`{"id":1}`, { topic: "products/update" }))).json()) as { eventIds: string[] };
    const status = await waitFor(
      () => env.DB.prepare("SELECT status FROM events WHERE id = ?").bind(other.eventIds[0]).first<{ status: string }>().then((r) => r?.status),
      10_000,
      "ignored topic",
    );
    expect(status).toBe("ignored");
  });
});
