/**
 * The fake HubSpot's webhooks: what fires for which change, and that every delivery passes the
 * product's own signature check and batch parser (and an independent signer, test/support).
 */
import { describe, expect, it } from "vitest";
import { verifyHubSpotSignature, parseHubSpotBatch } from "../../src/ingest/hubspot";
import { createFakeHubSpot, type FakeHubSpotState } from "../../src/sandbox/fake-hubspot";
import type { HubSpotWebhookInput } from "../../src/sandbox/hubspot-webhooks";
import type { HubSpotWebhookEvent, WebhookDispatcher } from "../../src/sandbox/webhooks";
import { hubspotV3Signature } from "../support/webhooks";

const TOKEN = "pat-test-hubspot-token";
const SECRET = "fake-hubspot-client-secret";
const TARGET = "https://syncwire.example.com/webhooks/hubspot";
const T0 = Date.parse("2026-01-01T00:00:00.000Z");

const SETTINGS: HubSpotWebhookInput = {
  targetUrl: TARGET,
  clientSecret: SECRET,
  portalId: 62515,
  appId: 54321,
  subscriptions: [
    { subscriptionType: "contact.creation" },
    { subscriptionType: "contact.deletion" },
    { subscriptionType: "contact.propertyChange", propertyName: "email" },
    { subscriptionType: "contact.propertyChange", propertyName: "firstname" },
  ],
};

function setup(opts: { webhooks?: HubSpotWebhookInput; state?: FakeHubSpotState; dispatch?: WebhookDispatcher } = {}) {
  const clock = { now: T0 };
  const sent: Request[] = [];
  const fake = createFakeHubSpot({
    accessToken: TOKEN,
    now: () => clock.now,
    dispatch: opts.dispatch ?? (async (r) => void sent.push(r)),
    ...(opts.webhooks === undefined ? {} : { webhooks: opts.webhooks }),
    ...(opts.state === undefined ? {} : { state: opts.state }),
  });
  return { fake, clock, sent };
}

type Fake = ReturnType<typeof setup>["fake"];

async function call(fake: Fake, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit = { method, headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json", ...headers } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fake.handle(new Request(`https://api.hubapi.com${path}`, init), path);
  const text = await res.text();
  return { status: res.status, json: (text === "" ? null : JSON.parse(text)) as Record<string, unknown> };
}

const control = async (fake: Fake, method: string, body?: unknown) => {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fake.handle(new Request("http://fake/_sandbox/webhooks", init), "/_sandbox/webhooks");
  return { status: res.status, json: (await res.json()) as Record<string, unknown> | null };
};

/** Checks a delivery as the product would receive it, and returns its events. */
async function received(request: Request, secret = SECRET): Promise<HubSpotWebhookEvent[]> {
  expect(request.method).toBe("POST");
  expect(request.url).toBe(TARGET);
  expect(request.headers.get("content-type")).toBe("application/json");
  const body = await request.text();
  const timestamp = request.headers.get("x-hubspot-request-timestamp");
  const signature = request.headers.get("x-hubspot-signature-v3");
  expect(timestamp).toBe(String(T0));
  expect(signature).toBe(hubspotV3Signature(secret, "POST", TARGET, body, timestamp!));
  expect(await verifyHubSpotSignature({ method: "POST", url: request.url, body, signature, timestamp, clientSecret: secret, now: T0 })).toEqual({ ok: true });
  const parsed = await parseHubSpotBatch(body, T0);
  expect(parsed.ok).toBe(true);
  return JSON.parse(body) as HubSpotWebhookEvent[];
}

describe("fake HubSpot webhooks: settings", () => {
  it("sets, shows without the secret, and clears the webhook settings", async () => {
    const { fake, sent } = setup();
    expect((await control(fake, "GET")).json).toBeNull();
    const set = await control(fake, "POST", SETTINGS);
    expect(set.status).toBe(200);
    expect(set.json).toEqual({
      targetUrl: TARGET,
      portalId: 62515,
      appId: 54321,
      subscriptions: [
        { id: 1, subscriptionType: "contact.creation" },
        { id: 2, subscriptionType: "contact.deletion" },
        { id: 3, subscriptionType: "contact.propertyChange", propertyName: "email" },
        { id: 4, subscriptionType: "contact.propertyChange", propertyName: "firstname" },
      ],
    });
    expect((await control(fake, "GET")).json).toEqual(set.json);
    const state = await fake.handle(new Request("http://fake/_sandbox/state"), "/_sandbox/state");
    expect(await state.text()).not.toContain(SECRET);

    expect((await control(fake, "DELETE")).json).toBeNull();
    await call(fake, "POST", "/crm/v3/objects/contacts", { properties: { email: "ada@example.com" } });
    expect(sent).toHaveLength(0);
  });

  it("rejects settings HubSpot would not take", async () => {
    const { fake } = setup();
    const bad = [
      { ...SETTINGS, targetUrl: "not a url" },
      { ...SETTINGS, clientSecret: "" },
      { ...SETTINGS, portalId: -1 },
      { ...SETTINGS, subscriptions: [{ subscriptionType: "deal.creation" }] },
      { ...SETTINGS, subscriptions: [{ subscriptionType: "contact.propertyChange" }] },
      { ...SETTINGS, subscriptions: [{ subscriptionType: "contact.creation", propertyName: "email" }] },
    ];
    for (const body of bad) expect((await control(fake, "POST", body)).status).toBe(400);
    expect((await control(fake, "PUT", SETTINGS)).status).toBe(405);
  });

  it("starts with the given default settings and gets them back on reset", async () => {
    const { fake } = setup({ webhooks: SETTINGS });
    expect((await control(fake, "GET")).json).toMatchObject({ targetUrl: TARGET, appId: 54321 });
    await control(fake, "DELETE");
    await fake.handle(new Request("http://fake/_sandbox/reset", { method: "POST" }), "/_sandbox/reset");
    expect((await control(fake, "GET")).json).toMatchObject({ targetUrl: TARGET });
  });
});

describe("fake HubSpot webhooks: deliveries", () => {
  it("fires creation plus one propertyChange per subscribed property set, in one signed POST", async () => {
    const { fake, sent } = setup({ webhooks: SETTINGS });
    const created = await call(fake, "POST", "/crm/v3/objects/contacts", { properties: { email: "ada@example.com", firstname: "Ada", lastname: "Lovelace" } });
    expect(created.status).toBe(201);
    expect(sent).toHaveLength(1);
    const events = await received(sent[0]!);
    expect(events).toEqual([
      { eventId: 1000, subscriptionId: 1, portalId: 62515, appId: 54321, occurredAt: T0, subscriptionType: "contact.creation", attemptNumber: 0, objectId: 101, changeSource: "API" },
      expect.objectContaining({ eventId: 1001, subscriptionId: 3, subscriptionType: "contact.propertyChange", objectId: 101, propertyName: "email", propertyValue: "ada@example.com" }),
      expect.objectContaining({ eventId: 1002, subscriptionId: 4, propertyName: "firstname", propertyValue: "Ada" }),
    ]);
  });

  it("fires only for subscribed properties that changed, and nothing for a PATCH that changes nothing", async () => {
    const { fake, sent, clock } = setup({ webhooks: SETTINGS });
    await call(fake, "POST", "/crm/v3/objects/contacts", { properties: { email: "ada@example.com", firstname: "Ada" } });
    sent.length = 0;
    clock.now += 1000;
    await call(fake, "PATCH", "/crm/v3/objects/contacts/101", { properties: { firstname: "Augusta", lastname: "King" } });
    expect(sent).toHaveLength(1);
    const body = JSON.parse(await sent[0]!.clone().text()) as HubSpotWebhookEvent[];
    expect(body).toEqual([expect.objectContaining({ subscriptionType: "contact.propertyChange", propertyName: "firstname", propertyValue: "Augusta", occurredAt: T0 + 1000 })]);
    expect(body[0]!.eventId).toBeGreaterThan(1002);

    sent.length = 0;
    await call(fake, "PATCH", "/crm/v3/objects/contacts/101", { properties: { firstname: "Augusta" } });
    await call(fake, "PATCH", "/crm/v3/objects/contacts/101", { properties: { lastname: "Byron" } });
    expect(sent).toHaveLength(0);
  });

  it("fires contact.deletion once on archive", async () => {
    const { fake, sent } = setup({ webhooks: SETTINGS });
    await call(fake, "POST", "/crm/v3/objects/contacts", { properties: { lastname: "Lovelace" } });
    sent.length = 0;
    expect((await call(fake, "DELETE", "/crm/v3/objects/contacts/101")).status).toBe(204);
    expect((await call(fake, "DELETE", "/crm/v3/objects/contacts/101")).status).toBe(204);
    expect(sent).toHaveLength(1);
    expect(await received(sent[0]!)).toEqual([expect.objectContaining({ subscriptionType: "contact.deletion", subscriptionId: 2, objectId: 101 })]);
  });

  it("reports a person in the UI as CRM_UI, in the webhook and in the property history", async () => {
    const { fake, sent } = setup({ webhooks: SETTINGS });
    await call(fake, "POST", "/crm/v3/objects/contacts", { properties: { email: "ada@example.com" } });
    sent.length = 0;
    await call(fake, "PATCH", "/crm/v3/objects/contacts/101", { properties: { firstname: "Ada" } }, { "X-Sandbox-Actor": "user" });
    expect(await received(sent[0]!)).toEqual([expect.objectContaining({ changeSource: "CRM_UI", sourceId: "userId:1", propertyName: "firstname" })]);
    const read = await call(fake, "GET", "/crm/v3/objects/contacts/101?propertiesWithHistory=firstname,email");
    expect(read.json.propertiesWithHistory).toMatchObject({ firstname: [{ sourceType: "CRM_UI" }], email: [{ sourceType: "API" }] });
    expect((await call(fake, "PATCH", "/crm/v3/objects/contacts/101", { properties: {} }, { "X-Sandbox-Actor": "robot" })).status).toBe(400);
  });

  it("batches up to 100 events per POST", async () => {
    const names = Array.from({ length: 150 }, (_, i) => `custom_${i}`);
    const { fake, sent } = setup({
      webhooks: { ...SETTINGS, subscriptions: names.map((propertyName) => ({ subscriptionType: "contact.propertyChange" as const, propertyName })) },
    });
    await call(fake, "POST", "/crm/v3/objects/contacts", { properties: Object.fromEntries(names.map((n) => [n, "x"])) });
    expect(sent).toHaveLength(2);
    const [first, second] = [await received(sent[0]!), await received(sent[1]!)];
    expect([first.length, second.length]).toEqual([100, 50]);
    const ids = [...first, ...second].map((e) => e.eventId);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it("sends nothing for faulted calls, and a failing dispatcher never fails the vendor answer", async () => {
    const { fake, sent } = setup({ webhooks: SETTINGS });
    await fake.handle(new Request("http://fake/_sandbox/faults", { method: "POST", body: JSON.stringify({ failNext: { count: 1, status: 503 } }) }), "/_sandbox/faults");
    expect((await call(fake, "POST", "/crm/v3/objects/contacts", { properties: { email: "a@example.com" } })).status).toBe(503);
    expect(sent).toHaveLength(0);

    for (const dispatch of [() => Promise.reject(new Error("down")), () => { throw new Error("sync"); }] as WebhookDispatcher[]) {
      const broken = setup({ webhooks: SETTINGS, dispatch });
      expect((await call(broken.fake, "POST", "/crm/v3/objects/contacts", { properties: { email: "b@example.com" } })).status).toBe(201);
    }
  });

  it("keeps eventIds increasing across a restart from persisted state", async () => {
    const a = setup({ webhooks: SETTINGS });
    await call(a.fake, "POST", "/crm/v3/objects/contacts", { properties: { email: "ada@example.com" } });
    const b = setup({ state: JSON.parse(JSON.stringify(a.fake.state)) as FakeHubSpotState });
    await call(b.fake, "PATCH", "/crm/v3/objects/contacts/101", { properties: { firstname: "Ada" } });
    expect((await received(b.sent[0]!))[0]!.eventId).toBe(1002);
  });
});
