/**
 * CONTRACT section 3: no input, however malformed, produces a 5xx (other than the queue's 503)
 * or an uncaught exception. Odd bodies, encodings and methods against every webhook route.
 */
import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";
import { MAILCHIMP_SECRET, ORIGIN, signedHubSpot, signedShopify } from "../support/webhooks";

const invalidUtf8 = new Uint8Array([0x5b, 0xff, 0xfe, 0xc3, 0x28, 0x5d]);

const cases: [string, () => Promise<Request> | Request][] = [
  ["HubSpot, empty body", () => signedHubSpot("")],
  ["HubSpot, invalid UTF-8", () => new Request(`${ORIGIN}/webhooks/hubspot`, { method: "POST", body: invalidUtf8, headers: { "content-type": "application/json", "x-hubspot-signature-v3": "x", "x-hubspot-request-timestamp": "1" } })],
  ["HubSpot, signed JSON null", () => signedHubSpot("null")],
  ["HubSpot, signed array of nulls", () => signedHubSpot("[null, 1, \"x\"]")],
  ["HubSpot, signed deeply nested JSON", () => signedHubSpot(`[${"[".repeat(5000)}${"]".repeat(5000)}]`)],
  ["HubSpot, signed event with an object id", () => signedHubSpot(JSON.stringify([{ eventId: 1, subscriptionType: "contact.creation", objectId: { a: 1 } }]))],
  ["HubSpot, timestamp not a number", () => signedHubSpot("[]", { timestamp: Number.NaN })],
  ["HubSpot, GET", () => new Request(`${ORIGIN}/webhooks/hubspot`)],
  ["Shopify, signed JSON array", () => signedShopify("[1,2]")],
  ["Shopify, signed string", () => signedShopify('"order"')],
  ["Shopify, invalid UTF-8", () => new Request(`${ORIGIN}/webhooks/shopify`, { method: "POST", body: invalidUtf8, headers: { "content-type": "application/json", "x-shopify-hmac-sha256": "x" } })],
  ["Mailchimp, broken percent-encoding", () => new Request(`${ORIGIN}/webhooks/mailchimp/${MAILCHIMP_SECRET}`, { method: "POST", body: "type=%E0%A4%A&fired_at=%", headers: { "content-type": "application/x-www-form-urlencoded" } })],
  ["Mailchimp, data as a plain value", () => new Request(`${ORIGIN}/webhooks/mailchimp/${MAILCHIMP_SECRET}`, { method: "POST", body: "type=subscribe&fired_at=now&data=x", headers: { "content-type": "application/x-www-form-urlencoded" } })],
  ["Mailchimp, secret with encoded slash", () => new Request(`${ORIGIN}/webhooks/mailchimp/a%2Fb`, { method: "POST", body: "type=x", headers: { "content-type": "application/x-www-form-urlencoded" } })],
  ["no source", () => new Request(`${ORIGIN}/webhooks/`, { method: "POST", body: "{}" })],
];

it.each(cases)("%s: a 4xx with the error shape", async (_, build) => {
  const res = await exports.default.fetch(await build());
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toMatch(/^[a-z_]+$/);
  expect(typeof body.error.message).toBe("string");
});
