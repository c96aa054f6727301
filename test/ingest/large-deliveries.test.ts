/**
 * CONTRACT 3, Size: "Every delivery the route accepts (up to 1 MiB, any UTF-8 text) gets its
 * 202: an event too large for one queue message (128 KB) or a batch too large for one
 * sendBatch (256 KB, counted in UTF-8 bytes) is never refused for its size."
 *
 * Each test goes through the real route and the real queue (whose local broker refuses a
 * message over 128,000 bytes and a sendBatch over its byte limit, as the platform does), then
 * proves the consumer PROCESSED the events: the `events` rows exist with the right status, and
 * the payload the pipeline kept (the R2 object named by `payload_ref`, or the row's payload)
 * is exactly what was sent.
 *
 * Sizes are chosen so that measuring in UTF-16 units (`.length`) would be wrong: several
 * bodies are under 128,000 or 256,000 UTF-16 units but well over those limits in UTF-8 bytes.
 * Without the R2 offload the queue refuses the large messages (503); without a byte-based
 * split it refuses the batch (503).
 */
import { exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { createCrmContact, mailchimpMember, resetSandbox, sandboxFetch } from "../support/sandbox";
import { eventIdsOf, multiByteText, storedPayloadText, threeByteText, utf8Size, waitForEvents } from "../support/large";
import { hubspotEvent, mailchimpForm, mailchimpRequest, signedHubSpot, signedShopify } from "../support/webhooks";

const send = (request: Request) => exports.default.fetch(request);

const MESSAGE_LIMIT = 128_000; // Queues: bytes per message
const BATCH_LIMIT = 256_000; // Queues: bytes per sendBatch
const BODY_CAP = 1024 * 1024; // CONTRACT 3: 1 MiB per webhook body

/** What the HubSpot route keeps of an event: the event as sent, its integer ids as strings. */
function hubspotPayload(event: Record<string, unknown>): Record<string, unknown> {
  return { ...event, eventId: String(event.eventId), objectId: String(event.objectId) };
}

/** A 202 carrying one id per event; the body is read for the failure message otherwise. */
async function accepted(res: Response, count: number): Promise<string[]> {
  if (res.status !== 202) throw new Error(`expected 202, got ${res.status}: ${await res.text()}`);
  const ids = await eventIdsOf(res);
  expect(ids).toHaveLength(count);
  return ids;
}

beforeEach(resetSandbox);

describe("HubSpot deliveries over the queue's limits", () => {
  it("processes a contact.creation carrying a 300,000-character property next to two normal events, and subscribes the member", async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const bigEmail = `big.notes.${tag}@example.com`;
    const otherEmail = `other.${tag}@example.com`;
    const bigContact = Number(await createCrmContact({ email: bigEmail, firstname: "Big", lastname: "Notes" }));
    const otherContact = Number(await createCrmContact({ email: otherEmail, firstname: "Other", lastname: "Person" }));

    const big = hubspotEvent(bigContact, { notes: "n".repeat(300_000) });
    const created = hubspotEvent(otherContact);
    const changed = hubspotEvent(bigContact, { subscriptionType: "contact.propertyChange", propertyName: "jobtitle", propertyValue: "Big" });
    const body = JSON.stringify([big, created, changed]);
    expect(utf8Size(body)).toBeGreaterThan(2 * MESSAGE_LIMIT);

    const [bigId, createdId, changedId] = await accepted(await send(await signedHubSpot(body)), 3);
    const rows = await waitForEvents([bigId!, createdId!, changedId!], ["done", "ignored"]);

    const bigRow = rows.get(bigId!)!;
    expect(bigRow.status).toBe("done");
    expect(bigRow.payload_ref).toBe(`payloads/${bigId}.json`);
    expect(bigRow.payload).toBe("{}");
    const bigStored = await storedPayloadText(bigRow);
    expect(JSON.parse(bigStored)).toEqual(hubspotPayload(big));
    expect((JSON.parse(bigStored) as { notes: string }).notes).toHaveLength(300_000);

    expect(rows.get(createdId!)).toMatchObject({ status: "done", payload_ref: null });
    expect(JSON.parse(rows.get(createdId!)!.payload)).toEqual(hubspotPayload(created));
    expect(rows.get(changedId!)).toMatchObject({ status: "ignored", payload_ref: null });
    expect(JSON.parse(rows.get(changedId!)!.payload)).toEqual(hubspotPayload(changed));

    // The flow ran on the large event: its contact was read from the CRM and subscribed.
    expect(await mailchimpMember(bigEmail)).toMatchObject({ status: "subscribed", merge_fields: { FNAME: "Big", LNAME: "Notes" } });
    expect(await mailchimpMember(otherEmail)).toMatchObject({ status: "subscribed" });
  }, 30_000);

  it("processes a batch of 100 non-ASCII events: under 256,000 UTF-16 units, well over 256,000 UTF-8 bytes", async () => {
    const events = Array.from({ length: 100 }, (_, i) =>
      hubspotEvent(7_000_000 + i, { subscriptionType: "contact.propertyChange", propertyName: "notes", propertyValue: `${i}:${multiByteText(1_500)}` }),
    );
    const body = JSON.stringify(events);
    // Measured in UTF-16 units the whole batch would fit one sendBatch; in UTF-8 bytes it does not.
    expect(body.length).toBeLessThan(BATCH_LIMIT);
    expect(utf8Size(body)).toBeGreaterThan(1.4 * BATCH_LIMIT);
    expect(utf8Size(body)).toBeLessThan(BODY_CAP);
    // Every event on its own fits a message: this is about the batch split, not the offload.
    for (const e of events) expect(utf8Size(JSON.stringify(e))).toBeLessThan(MESSAGE_LIMIT / 16);

    const ids = await accepted(await send(await signedHubSpot(body)), 100);
    expect(new Set(ids).size).toBe(100);
    const rows = await waitForEvents(ids, ["ignored"], 20_000);
    for (const [i, id] of ids.entries()) {
      const row = rows.get(id)!;
      expect(JSON.parse(await storedPayloadText(row))).toEqual(hubspotPayload(events[i]!));
    }
  }, 30_000);

  it.each([
    // 180,000 bytes in 60,000 UTF-16 units: under 128,000 by `.length`, over it in bytes.
    ["~180 KB of 3-byte text (60,000 UTF-16 units)", threeByteText(60_000)],
    // Close to the body cap: ~950 KB.
    ["~950 KB of mixed 2/3/4-byte text", multiByteText(380_000)],
  ])("processes a single event carrying %s", async (_, text) => {
    const event = hubspotEvent(8_000_001, { subscriptionType: "contact.propertyChange", propertyName: "notes", propertyValue: text });
    const body = JSON.stringify([event]);
    expect(utf8Size(body)).toBeGreaterThan(MESSAGE_LIMIT);
    expect(utf8Size(body)).toBeLessThanOrEqual(BODY_CAP);

    const [id] = await accepted(await send(await signedHubSpot(body)), 1);
    const row = (await waitForEvents([id!], ["ignored"])).get(id!)!;
    expect(row.payload_ref).toBe(`payloads/${id}.json`);
    const stored = await storedPayloadText(row);
    expect(JSON.parse(stored)).toEqual(hubspotPayload(event));
    expect((JSON.parse(stored) as { propertyValue: string }).propertyValue).toBe(text);
  }, 30_000);
});

describe("Shopify and Mailchimp deliveries over a message's size", () => {
  it("processes an orders/create with 400 line items, keeping every 18-digit id exact", async () => {
    const id18 = (base: bigint, i: number) => String(base + BigInt(i));
    const money = (amount: string) => ({ shop_money: { amount, currency_code: "EUR" }, presentment_money: { amount, currency_code: "EUR" } });
    const lineItems = Array.from({ length: 400 }, (_, i) => ({
      id: id18(466157049123456000n, i),
      admin_graphql_api_id: `gid://shopify/LineItem/${id18(466157049123456000n, i)}`,
      fulfillable_quantity: 1 + (i % 3),
      fulfillment_service: "manual",
      fulfillment_status: null,
      gift_card: false,
      grams: 200 + i,
      name: `Café crème mug ${i} - Blue / L`,
      price: "19.99",
      price_set: money("19.99"),
      product_exists: true,
      product_id: id18(632910392000000000n, i),
      properties: [],
      quantity: 1 + (i % 3),
      requires_shipping: true,
      sku: `MUG-BLU-L-${String(i).padStart(4, "0")}`,
      taxable: true,
      title: `Café crème mug ${i}`,
      total_discount: "0.00",
      total_discount_set: money("0.00"),
      variant_id: id18(808950810000000000n, i),
      variant_inventory_management: "shopify",
      variant_title: "Blue / L",
      vendor: "Müller & Söhne",
      tax_lines: [{ channel_liable: false, price: "3.80", price_set: money("3.80"), rate: 0.19, title: "MwSt" }],
      duties: [],
      discount_allocations: [],
    }));
    const order = {
      id: "820982911946154508",
      admin_graphql_api_id: "gid://shopify/Order/820982911946154508",
      email: "jon@example.com",
      created_at: "2026-11-20T10:00:00+01:00",
      currency: "EUR",
      total_price: "9596.00",
      customer: { id: "115310627314723954", email: "jon@example.com", first_name: "Jon", last_name: "Snow" },
      line_items: lineItems,
    };
    // Shopify sends ids as JSON integers: unquote every 18-digit id (the route keeps them as strings).
    const body = JSON.stringify(order).replace(/"(id|product_id|variant_id)":"(\d{18})"/g, '"$1":$2');
    expect(body).toContain('"id":820982911946154508,');
    expect(body).not.toMatch(/"(id|product_id|variant_id)":"\d{18}"/);
    expect(utf8Size(body)).toBeGreaterThan(MESSAGE_LIMIT);
    expect(utf8Size(body)).toBeLessThan(BODY_CAP);

    const [id] = await accepted(await send(await signedShopify(body)), 1);
    const row = (await waitForEvents([id!], ["done", "ignored", "retrying", "dead", "invalid"])).get(id!)!;
    // The fan-out ran on it: the customer's 18-digit id reached Salesforce exactly.
    expect(row.status).toBe("done");
    const salesforce = (await (await sandboxFetch("/salesforce/_sandbox/requests")).json()) as { requests: { method: string; path: string }[] };
    expect(salesforce.requests.some((r) => r.method === "PATCH" && r.path.endsWith("/sobjects/Contact/Shopify_Customer_Id__c/115310627314723954"))).toBe(true);
    expect(row.payload_ref).toBe(`payloads/${id}.json`);
    const stored = await storedPayloadText(row);
    expect(JSON.parse(stored)).toEqual(order);
    expect(stored).toContain('"id":"820982911946154508"');
    expect(stored).toContain('"variant_id":"808950810000000399"');
  }, 30_000);

  it("processes a Mailchimp profile update with a ~200 KB non-ASCII merge field", async () => {
    const notes = multiByteText(80_000);
    const email = `profile.${crypto.randomUUID().slice(0, 8)}@example.com`;
    const body = mailchimpForm({
      type: "profile",
      fired_at: "2026-11-20 10:00:00",
      "data[id]": "8a25ff1d98",
      "data[list_id]": "list0001",
      "data[email]": email,
      "data[email_type]": "html",
      "data[ip_opt]": "10.20.10.30",
      "data[web_id]": "3375995",
      "data[merges][EMAIL]": email,
      "data[merges][FNAME]": "Zoë",
      "data[merges][LNAME]": "Ångström",
      "data[merges][NOTES]": notes,
    });
    expect(utf8Size(notes)).toBeGreaterThan(190_000);
    expect(notes.length).toBeLessThan(MESSAGE_LIMIT); // under a message by `.length`, not in bytes
    expect(utf8Size(body)).toBeLessThan(BODY_CAP);

    const [id] = await accepted(await send(mailchimpRequest(body)), 1);
    const row = (await waitForEvents([id!], ["done", "ignored", "retrying", "dead", "invalid"])).get(id!)!;
    // Read back from R2 and handled by the contact sync (no CRM contact has this address).
    expect(row.status).toBe("done");
    expect(row.payload_ref).toBe(`payloads/${id}.json`);
    expect(JSON.parse(await storedPayloadText(row))).toEqual({
      type: "profile",
      fired_at: "2026-11-20 10:00:00",
      data: {
        id: "8a25ff1d98",
        list_id: "list0001",
        email,
        email_type: "html",
        ip_opt: "10.20.10.30",
        web_id: "3375995",
        merges: { EMAIL: email, FNAME: "Zoë", LNAME: "Ångström", NOTES: notes },
      },
    });
  }, 30_000);
});

describe("the 1 MiB body cap", () => {
  /** A signed-able HubSpot body of exactly `bytes` UTF-8 bytes, mostly multi-byte text. */
  function hubspotBodyOf(bytes: number) {
    const event = hubspotEvent(8_100_001, { subscriptionType: "contact.propertyChange", propertyName: "notes", propertyValue: "" });
    const text = multiByteText(400_000); // 1,000,000 bytes
    const frame = utf8Size(JSON.stringify([{ ...event, propertyValue: text }]));
    const padded = { ...event, propertyValue: text + "n".repeat(bytes - frame) };
    const body = JSON.stringify([padded]);
    expect(utf8Size(body)).toBe(bytes);
    return { event: padded, body };
  }

  it("accepts and processes a valid body of exactly 1 MiB", async () => {
    const { event, body } = hubspotBodyOf(BODY_CAP);
    expect(body.length).toBeLessThan(BODY_CAP / 2); // bytes, not UTF-16 units, reach the cap
    const [id] = await accepted(await send(await signedHubSpot(body)), 1);
    const row = (await waitForEvents([id!], ["ignored"])).get(id!)!;
    expect(row.payload_ref).toBe(`payloads/${id}.json`);
    expect(JSON.parse(await storedPayloadText(row))).toEqual(hubspotPayload(event));
  }, 30_000);

  it("still refuses one byte more with 413, even correctly signed and valid JSON", async () => {
    const { body } = hubspotBodyOf(BODY_CAP);
    const res = await send(await signedHubSpot(`${body} `));
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
  });
});
