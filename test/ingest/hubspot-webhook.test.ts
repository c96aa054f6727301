/**
 * POST /webhooks/hubspot through the worker's own fetch handler, with the real queue behind it.
 */
import { env, exports } from "cloudflare:workers";
import { createHmac } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { hubspotSignedUri } from "../../src/ingest/hubspot";
import { createCrmContact, mailchimpMember, resetSandbox, vendorRequests, waitFor } from "../support/sandbox";
import { HUBSPOT_SECRET, hubspotEvent, ORIGIN, signedHubSpot } from "../support/webhooks";

const send = (request: Request) => exports.default.fetch(request);
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

beforeEach(resetSandbox);

describe("HubSpot v3 signature", () => {
  it("accepts a valid signature and answers 202 with one event id per array element", async () => {
    const body = JSON.stringify([hubspotEvent(1), hubspotEvent(2), hubspotEvent(3)]);
    const res = await send(await signedHubSpot(body));
    expect(res.status).toBe(202);
    const { eventIds } = (await res.json()) as { eventIds: string[] };
    expect(eventIds).toHaveLength(3);
    expect(new Set(eventIds).size).toBe(3);
    for (const id of eventIds) expect(id).toMatch(/^evt_[0-9a-f]{32}$/);
  });

  it("rejects a tampered body", async () => {
    const request = await signedHubSpot(JSON.stringify([hubspotEvent(1)]));
    const tampered = new Request(request, { body: JSON.stringify([hubspotEvent(666)]) });
    const res = await send(tampered);
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("invalid_signature");
  });

  it("rejects a signature made with the wrong secret", async () => {
    const res = await send(await signedHubSpot(JSON.stringify([hubspotEvent(1)]), { secret: "not-the-secret" }));
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("invalid_signature");
  });

  it("rejects a signature for another URL", async () => {
    const body = JSON.stringify([hubspotEvent(1)]);
    const signed = await signedHubSpot(body, { url: `${ORIGIN}/webhooks/hubspot?x=1` });
    const res = await send(new Request(`${ORIGIN}/webhooks/hubspot`, { method: "POST", headers: signed.headers, body }));
    expect(await errorCode(res)).toBe("invalid_signature");
  });

  it.each(["x-hubspot-signature-v3", "x-hubspot-request-timestamp"])("answers missing_signature without %s", async (header) => {
    const res = await send(await signedHubSpot(JSON.stringify([hubspotEvent(1)]), { headers: { [header]: null } }));
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("missing_signature");
  });

  it("rejects a correctly signed request older than 5 minutes as stale", async () => {
    const res = await send(await signedHubSpot(JSON.stringify([hubspotEvent(1)]), { timestamp: Date.now() - 5 * 60 * 1000 - 1000 }));
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe("stale_timestamp");
  });

  it("accepts a timestamp just inside the window", async () => {
    const res = await send(await signedHubSpot(JSON.stringify([hubspotEvent(1)]), { timestamp: Date.now() - 4 * 60 * 1000 }));
    expect(res.status).toBe(202);
  });

  it("signs the URI with HubSpot's documented decodings only", () => {
    expect(hubspotSignedUri("https://h/webhooks/hubspot?a=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%25")).toBe(
      "https://h/webhooks/hubspot?a=:/?@!$'()*,;&b=%20%25",
    );
  });

  it("verifies against the URL as received, query string included", async () => {
    const url = `${ORIGIN}/webhooks/hubspot?portal=62515&tag=a%3Ab`;
    const res = await send(await signedHubSpot(JSON.stringify([hubspotEvent(1)]), { url }));
    expect(res.status).toBe(202);
  });
});

describe("HubSpot body checks", () => {
  it("answers 413 for a body over 1 MiB, before looking at the signature", async () => {
    const big = "x".repeat(1024 * 1024 + 1);
    const res = await send(new Request(`${ORIGIN}/webhooks/hubspot`, { method: "POST", headers: { "content-type": "application/json" }, body: big }));
    expect(res.status).toBe(413);
    expect(await errorCode(res)).toBe("payload_too_large");
  });

  it("answers 413 for a chunked body that grows past 1 MiB without a Content-Length", async () => {
    const chunk = new Uint8Array(256 * 1024).fill(32);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 5) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await send(new Request(`${ORIGIN}/webhooks/hubspot`, { method: "POST", body: stream, headers: { "content-type": "application/json" } }));
    expect(res.status).toBe(413);
  });

  it("answers malformed_body for a correctly signed non-JSON body", async () => {
    const res = await send(await signedHubSpot("[{not json"));
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("malformed_body");
  });

  it.each([
    ["an object instead of an array", JSON.stringify(hubspotEvent(1))],
    ["an empty array", "[]"],
    ["an event without objectId", JSON.stringify([{ eventId: 1, subscriptionType: "contact.creation" }])],
    ["more than 100 events", JSON.stringify(Array.from({ length: 101 }, (_, i) => hubspotEvent(i)))],
  ])("answers invalid_payload for %s", async (_, body) => {
    const res = await send(await signedHubSpot(body));
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("invalid_payload");
  });

  it("answers 415 for a content type HubSpot never sends", async () => {
    const res = await send(await signedHubSpot(JSON.stringify([hubspotEvent(1)]), { headers: { "content-type": "text/plain" } }));
    expect(res.status).toBe(415);
    expect(await errorCode(res)).toBe("unsupported_media_type");
  });

  it("answers unknown_source for a source that does not exist", async () => {
    const res = await send(new Request(`${ORIGIN}/webhooks/salesforce`, { method: "POST", body: "{}" }));
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("unknown_source");
  });
});

describe("queue limits", () => {
  it("splits a batch over the 256 KB sendBatch limit into several sends and loses no event", async () => {
    const events = Array.from({ length: 100 }, (_, i) =>
      hubspotEvent(900_000 + i, { subscriptionType: "contact.propertyChange", propertyName: "notes", propertyValue: "n".repeat(3_000) }),
    );
    const res = await send(await signedHubSpot(JSON.stringify(events)));
    expect(res.status).toBe(202);
    const { eventIds } = (await res.json()) as { eventIds: string[] };
    expect(eventIds).toHaveLength(100);
    await waitFor(async () => {
      const row = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE id IN (SELECT value FROM json_each(?))").bind(JSON.stringify(eventIds)).first<{ n: number }>();
      return row?.n === 100;
    }, 15_000, "all 100 events consumed");
  });
});

describe("HubSpot delivery end to end inside the worker", () => {
  it("a contact.creation ends with the contact subscribed in the fake Mailchimp", async () => {
    const id = await createCrmContact({ email: "Ada.Lovelace@Example.com", firstname: "Ada", lastname: "Lovelace" });
    const res = await send(await signedHubSpot(JSON.stringify([hubspotEvent(id)])));
    expect(res.status).toBe(202);
    const member = await waitFor(() => mailchimpMember("ada.lovelace@example.com").then((m) => m ?? undefined), 10_000, "member");
    expect(member.status).toBe("subscribed");
    expect(member.merge_fields).toMatchObject({ FNAME: "Ada", LNAME: "Lovelace" });
  });

  it("a replayed delivery (same eventId) reports the same id and has one effect", async () => {
    const id = await createCrmContact({ email: "replay@example.com", firstname: "Re", lastname: "Play" });
    const body = JSON.stringify([hubspotEvent(id)]);
    const first = (await (await send(await signedHubSpot(body))).json()) as { eventIds: string[] };
    const second = (await (await send(await signedHubSpot(body))).json()) as { eventIds: string[] };
    expect(second.eventIds).toEqual(first.eventIds);
    const eventId = first.eventIds[0]!;
    await waitFor(async () => {
      const row = await env.DB.prepare("SELECT status, duplicates FROM events WHERE id = ?").bind(eventId).first<{ status: string; duplicates: number }>();
      return row?.status === "done" && row.duplicates === 1;
    }, 10_000, "event done with one duplicate");
    const puts = (await vendorRequests("mailchimp")).filter((r) => r.method === "PUT" && r.status === 200);
    expect(puts).toHaveLength(1);
  });
});

describe("the signature covers the bytes as received", () => {
  it("accepts a body that starts with a UTF-8 byte order mark, signed over its raw bytes", async () => {
    const url = `${ORIGIN}/webhooks/hubspot`;
    const json = new TextEncoder().encode(JSON.stringify([hubspotEvent(1, { subscriptionType: "contact.propertyChange" })]));
    const body = new Uint8Array([0xef, 0xbb, 0xbf, ...json]);
    const timestamp = String(Date.now());
    // Signed outside the product: method + URL + raw body bytes + timestamp.
    const signature = createHmac("sha256", HUBSPOT_SECRET).update(`POST${url}`).update(body).update(timestamp).digest("base64");
    const res = await send(new Request(url, { method: "POST", headers: { "content-type": "application/json", "x-hubspot-request-timestamp": timestamp, "x-hubspot-signature-v3": signature }, body }));
    expect(res.status).toBe(202);
  });
});
