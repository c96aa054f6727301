/**
 * CONTRACT 3, dedupe keys, through the real route:
 * - HubSpot: each element's portalId + subscriptionId + eventId; an element without an integer
 *   eventId is invalid_payload; ids beyond 2^53 are kept exact.
 * - Mailchimp: a hash of type, fired_at and the data fields; no field value can imitate a
 *   separator, and the order of the fields does not matter.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { eventIdsOf, waitForEvents } from "../support/large";
import { hubspotEvent, mailchimpRequest, signedHubSpot } from "../support/webhooks";

const send = (request: Request) => exports.default.fetch(request);
const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;

/** A change of a property the sync does not carry (no flow runs for it, so nothing calls the fake vendors). */
const change = (overrides: Record<string, unknown>) => hubspotEvent(5_000_001, { subscriptionType: "contact.propertyChange", propertyName: "jobtitle", propertyValue: "Ada", ...overrides });

async function hubspotIds(body: string): Promise<string[]> {
  const res = await send(await signedHubSpot(body));
  if (res.status !== 202) throw new Error(`expected 202, got ${res.status}: ${await res.text()}`);
  return eventIdsOf(res);
}

async function mailchimpId(body: string): Promise<string> {
  const res = await send(mailchimpRequest(body));
  if (res.status !== 202) throw new Error(`expected 202, got ${res.status}: ${await res.text()}`);
  const [id] = await eventIdsOf(res);
  return id!;
}

describe("HubSpot eventId", () => {
  const withoutEventId = () => {
    const { eventId: _, ...rest } = change({});
    return rest;
  };

  it.each([
    ["an empty string", JSON.stringify([change({ eventId: "" })])],
    ["missing", JSON.stringify([withoutEventId()])],
    ["1.5", JSON.stringify([change({ eventId: 1.5 })])],
    ['"abc"', JSON.stringify([change({ eventId: "abc" })])],
    ["null", JSON.stringify([change({ eventId: null })])],
    ['"-1" (not digits)', JSON.stringify([change({ eventId: "-1" })])],
    ["a decimal beyond 2^53", JSON.stringify([change({ eventId: 0 })]).replace('"eventId":0', '"eventId":12345678901234567890.5')],
  ])("answers 400 invalid_payload when it is %s", async (_, body) => {
    const res = await send(await signedHubSpot(body));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("invalid_payload");
  });

  it("refuses the whole batch when one element lacks an integer eventId", async () => {
    const res = await send(await signedHubSpot(JSON.stringify([change({}), change({ eventId: "abc" })])));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("invalid_payload");
  });

  it("accepts a JSON integer beyond 2^53 and keeps it exact", async () => {
    // 9007199254740993 = 2^53 + 1: as a double it would become ...992 and collide with it.
    const template = JSON.stringify([change({ eventId: 0 })]);
    const [a] = await hubspotIds(template.replace('"eventId":0', '"eventId":9007199254740993'));
    const [b] = await hubspotIds(template.replace('"eventId":0', '"eventId":9007199254740992'));
    const [c] = await hubspotIds(template.replace('"eventId":0', '"eventId":123456789012345678901234567890'));
    expect(new Set([a, b, c]).size).toBe(3);

    const rows = await waitForEvents([a!, c!], ["ignored"]);
    expect(JSON.parse(rows.get(a!)!.payload)).toMatchObject({ eventId: "9007199254740993" });
    expect(JSON.parse(rows.get(c!)!.payload)).toMatchObject({ eventId: "123456789012345678901234567890" });
  });

  it("accepts a digits-only string beyond 2^53, the same event as the JSON integer", async () => {
    const template = JSON.stringify([change({ eventId: 0 })]);
    const [asNumber] = await hubspotIds(template.replace('"eventId":0', '"eventId":98765432109876543210'));
    const [asString] = await hubspotIds(JSON.stringify([change({ eventId: "98765432109876543210" })]));
    expect(asString).toBe(asNumber);
  });
});

describe("HubSpot dedupe key: portalId + subscriptionId + eventId", () => {
  it("gives the same eventId under another subscription or portal a different event id, and the same triple the same id", async () => {
    const eventId = 700_000_000 + Math.floor(Math.random() * 1e6);
    const base = { eventId, portalId: 62515, subscriptionId: 2456 };
    const [original] = await hubspotIds(JSON.stringify([change(base)]));
    const [otherSubscription] = await hubspotIds(JSON.stringify([change({ ...base, subscriptionId: 2457 })]));
    const [otherPortal] = await hubspotIds(JSON.stringify([change({ ...base, portalId: 62516 })]));
    // A redelivery: same triple, other attempt number, timestamp and even other content.
    const [again] = await hubspotIds(JSON.stringify([change({ ...base, attemptNumber: 3, occurredAt: Date.now() + 1, propertyValue: "Grace" })]));
    // The triple with the ids written as digit strings is still the same triple.
    const [asStrings] = await hubspotIds(JSON.stringify([change({ eventId: String(eventId), portalId: "62515", subscriptionId: "2456" })]));

    expect(new Set([original, otherSubscription, otherPortal]).size).toBe(3);
    expect(again).toBe(original);
    expect(asStrings).toBe(original);
  });

  it("keeps the events of one batch apart when only the subscription differs", async () => {
    const eventId = 710_000_000 + Math.floor(Math.random() * 1e6);
    const ids = await hubspotIds(JSON.stringify([change({ eventId, subscriptionId: 1 }), change({ eventId, subscriptionId: 2 }), change({ eventId, subscriptionId: 1 })]));
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids[2]).toBe(ids[0]);
  });
});

describe("Mailchimp dedupe key", () => {
  const params = (fields: [string, string][]) => new URLSearchParams(fields).toString();
  const head = (email: string): [string, string][] => [
    ["type", "profile"],
    ["fired_at", "2026-11-20 10:00:00"],
    ["data[email]", email],
  ];

  /** The key before commit 3260556: sorted `k=v` lines joined with "\n". */
  const oldKeyInput = (fields: [string, string][]) => {
    const type = fields.find(([k]) => k === "type")![1];
    const firedAt = fields.find(([k]) => k === "fired_at")![1];
    const data = fields.filter(([k]) => k.startsWith("data[")).map(([k, v]) => `${k}=${v}`).sort();
    return [type, firedAt, ...data].join("\n");
  };

  it("tells apart two forms the old newline-joined key collided on", async () => {
    const email = `collide.${crypto.randomUUID().slice(0, 8)}@example.com`;
    // One field whose value imitates a second field, against that real second field.
    const forged: [string, string][] = [...head(email), ["data[merges][FNAME]", "Ann\ndata[merges][LNAME]=Lee"]];
    const real: [string, string][] = [...head(email), ["data[merges][FNAME]", "Ann"], ["data[merges][LNAME]", "Lee"]];
    expect(oldKeyInput(forged)).toBe(oldKeyInput(real)); // the collision this guards against

    const forgedId = await mailchimpId(params(forged));
    const realId = await mailchimpId(params(real));
    expect(forgedId).not.toBe(realId);

    // The same with "=" inside a field name against the same text split at another "=".
    const nameSplit: [string, string][] = [...head(email), ["data[merges][A]", "b=c"]];
    const valueSplit: [string, string][] = [...head(email), ["data[merges][A]=b", "c"]];
    const nameSplitOld = oldKeyInput(nameSplit);
    expect(nameSplitOld.split("\n").pop()).toBe("data[merges][A]=b=c");
    expect(oldKeyInput(valueSplit).split("\n").pop()).toBe("data[merges][A]=b=c");
    expect(await mailchimpId(params(nameSplit))).not.toBe(await mailchimpId(params(valueSplit)));
  });

  it("gives the same fields in another order the same event id", async () => {
    const email = `order.${crypto.randomUUID().slice(0, 8)}@example.com`;
    const fields: [string, string][] = [
      ["data[id]", "8a25ff1d98"],
      ["data[list_id]", "list0001"],
      ["data[merges][FNAME]", "Ann"],
      ["data[merges][LNAME]", "Lee"],
      ["data[merges][INTERESTS]", "Group1,Group2"],
    ];
    const forward = await mailchimpId(params([...head(email), ...fields]));
    const reversed = await mailchimpId(params([...fields].reverse().concat(head(email).reverse())));
    const shuffled = await mailchimpId(params([fields[2]!, ...head(email).slice(2), fields[0]!, ["fired_at", "2026-11-20 10:00:00"], fields[4]!, fields[1]!, ["type", "profile"], fields[3]!]));
    expect(reversed).toBe(forward);
    expect(shuffled).toBe(forward);

    // Any change in type, fired_at or a data value is another event.
    const otherType = await mailchimpId(params([["type", "subscribe"], ...head(email).slice(1), ...fields]));
    const otherTime = await mailchimpId(params([head(email)[0]!, ["fired_at", "2026-11-20 10:00:01"], head(email)[2]!, ...fields]));
    const otherValue = await mailchimpId(params([...head(email), ...fields.slice(0, 4), ["data[merges][INTERESTS]", "Group1"]]));
    expect(new Set([forward, otherType, otherTime, otherValue]).size).toBe(4);
  });
});

describe("fields that travel outside the payload", () => {
  // An event's id, type and entity key stay in its queue message when its payload is stored
  // aside; unbounded, a huge one would make the message too large for the queue every time
  // (a 503 forever). They are bounded at parse time instead: a clear 400.
  it.each([
    ["a HubSpot subscriptionType of 200,000 characters", async () => signedHubSpot(JSON.stringify([hubspotEvent(1, { subscriptionType: "x".repeat(200_000) })]))],
    ["a HubSpot objectId of 200,000 digits", async () => signedHubSpot(JSON.stringify([hubspotEvent("9".repeat(200_000), { subscriptionType: "contact.propertyChange" })]))],
    ["a Mailchimp data[email] of 150 KB", async () => mailchimpRequest(new URLSearchParams({ type: "subscribe", fired_at: "2026-11-20 10:00:00", "data[email]": `${"a".repeat(150_000)}@example.com` }).toString())],
    ["a Mailchimp type of 100 KB", async () => mailchimpRequest(new URLSearchParams({ type: "t".repeat(100_000), fired_at: "2026-11-20 10:00:00", "data[email]": "a@example.com" }).toString())],
  ])("refuses %s as invalid_payload", async (_, request) => {
    const res = await send(await request());
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("invalid_payload");
  });
});
