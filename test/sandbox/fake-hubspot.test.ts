import { describe, expect, it } from "vitest";
import { createFakeHubSpot, type FakeHubSpotState } from "../../src/sandbox/fake-hubspot";
import type { FakeService, RequestLogEntry } from "../../src/sandbox/fake-service";

const TOKEN = "pat-test-hubspot-token";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const T0 = Date.parse("2026-01-01T00:00:00.000Z");

interface Contact {
  id: string;
  properties: Record<string, string | null>;
  propertiesWithHistory?: Record<string, { value: string; timestamp: string }[]>;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
}
interface ListBody {
  results: Contact[];
  paging?: { next: { after: string; link: string } };
}
interface HubSpotErrorBody {
  status: string;
  message: string;
  correlationId: string;
  category?: string;
  errorType?: string;
}

type Fake = FakeService<FakeHubSpotState>;

function setup(state?: FakeHubSpotState, limits?: false) {
  const clock = { now: T0 };
  const fake = createFakeHubSpot({ accessToken: TOKEN, now: () => clock.now, ...(state ? { state } : {}), ...(limits === false ? { limits } : {}) });
  return { fake, clock };
}

async function call<T = unknown>(fake: Fake, method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (token !== null) headers.set("Authorization", `Bearer ${token}`);
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fake.handle(new Request(`https://api.hubapi.com${path}`, init), path);
  const text = await res.text();
  return { res, status: res.status, json: (text === "" ? null : JSON.parse(text)) as T };
}

const create = (fake: Fake, properties: Record<string, string>) =>
  call<Contact>(fake, "POST", "/crm/v3/objects/contacts", { properties });

function expectHubSpotError(json: unknown, category: string | undefined) {
  const body = json as HubSpotErrorBody;
  expect(body.status).toBe("error");
  expect(typeof body.message).toBe("string");
  expect(body.correlationId).toMatch(UUID);
  expect(body.category).toBe(category);
}

describe("fake HubSpot: authentication", () => {
  it.each([
    ["missing header", null],
    ["wrong token", "pat-wrong"],
  ])("answers 401 INVALID_AUTHENTICATION for a %s", async (_label, token) => {
    const { fake } = setup();
    const { status, json, res } = await call(fake, "GET", "/crm/v3/objects/contacts", undefined, token);
    expect(status).toBe(401);
    expect(res.headers.get("Content-Type")).toContain("application/json");
    expectHubSpotError(json, "INVALID_AUTHENTICATION");
  });

  it("rejects a non-Bearer scheme", async () => {
    const { fake } = setup();
    const req = new Request("https://api.hubapi.com/crm/v3/objects/contacts", { headers: { Authorization: `Basic ${btoa(`x:${TOKEN}`)}` } });
    expect((await fake.handle(req, "/crm/v3/objects/contacts")).status).toBe(401);
  });
});

describe("fake HubSpot: contacts CRUD", () => {
  it("creates contacts with incrementing string ids and lower-cased email", async () => {
    const { fake } = setup();
    const first = await create(fake, { email: "Ada@Example.com", firstname: "Ada", lastname: "Lovelace" });
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({
      id: "101",
      archived: false,
      createdAt: "2026-01-01T00:00:00.000Z",
      updatedAt: "2026-01-01T00:00:00.000Z",
      properties: { email: "ada@example.com", firstname: "Ada", lastname: "Lovelace", hs_object_id: "101", createdate: "2026-01-01T00:00:00.000Z" },
    });
    expect((await create(fake, { email: "bob@example.com" })).json.id).toBe("102");
  });

  it("reads requested properties plus the always-returned ones", async () => {
    const { fake } = setup();
    await create(fake, { email: "ada@example.com", firstname: "Ada", lastname: "Lovelace" });
    const { status, json } = await call<Contact>(fake, "GET", "/crm/v3/objects/contacts/101?properties=email,firstname,phone,no_such_prop");
    expect(status).toBe(200);
    expect(json.properties).toEqual({
      email: "ada@example.com",
      firstname: "Ada",
      phone: null, // a known but unset property is null; an unknown one is left out
      hs_object_id: "101",
      createdate: "2026-01-01T00:00:00.000Z",
      lastmodifieddate: "2026-01-01T00:00:00.000Z",
    });
    const defaults = await call<Contact>(fake, "GET", "/crm/v3/objects/contacts/101");
    expect(Object.keys(defaults.json.properties).sort()).toEqual(["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"]);
  });

  it("looks contacts up by email with idProperty=email", async () => {
    const { fake } = setup();
    await create(fake, { email: "ada@example.com" });
    const { status, json } = await call<Contact>(fake, "GET", `/crm/v3/objects/contacts/${encodeURIComponent("ADA@example.com")}?idProperty=email`);
    expect(status).toBe(200);
    expect(json.id).toBe("101");
  });

  it("answers 404 OBJECT_NOT_FOUND for an unknown id", async () => {
    const { fake } = setup();
    const { status, json } = await call<HubSpotErrorBody>(fake, "GET", "/crm/v3/objects/contacts/999");
    expect(status).toBe(404);
    expectHubSpotError(json, "OBJECT_NOT_FOUND");
    expect(json.message).toBe("resource not found");
  });

  it("answers 409 CONFLICT for a duplicate email, case-insensitively", async () => {
    const { fake } = setup();
    await create(fake, { email: "ada@example.com" });
    const { status, json } = await create(fake, { email: "ADA@EXAMPLE.COM" });
    expect(status).toBe(409);
    expectHubSpotError(json, "CONFLICT");
    expect((json as unknown as HubSpotErrorBody).message).toBe("Contact already exists. Existing ID: 101");
  });

  it.each([
    ["no properties", {}],
    ["properties not an object", { properties: "x" }],
    ["invalid JSON", "{not json"],
    ["invalid email", { properties: { email: "not-an-email" } }],
    ["read-only property", { properties: { hs_object_id: "5" } }],
    ["non-scalar value", { properties: { firstname: { a: 1 } } }],
  ])("answers 400 VALIDATION_ERROR for %s", async (_label, body) => {
    const { fake } = setup();
    const { status, json } = await call(fake, "POST", "/crm/v3/objects/contacts", body);
    expect(status).toBe(400);
    expectHubSpotError(json, "VALIDATION_ERROR");
  });

  it("updates with PATCH, keeping per-property history and timestamps", async () => {
    const { fake, clock } = setup();
    await create(fake, { email: "ada@example.com", firstname: "Ada" });
    clock.now += 60_000;
    const patched = await call<Contact>(fake, "PATCH", "/crm/v3/objects/contacts/101", { properties: { firstname: "Augusta" } });
    expect(patched.status).toBe(200);
    expect(patched.json.updatedAt).toBe("2026-01-01T00:01:00.000Z");
    expect(patched.json.properties).toMatchObject({ firstname: "Augusta", email: "ada@example.com", lastmodifieddate: "2026-01-01T00:01:00.000Z" });

    const read = await call<Contact>(fake, "GET", "/crm/v3/objects/contacts/101?propertiesWithHistory=firstname,email");
    expect(read.json.propertiesWithHistory?.firstname).toEqual([
      { value: "Augusta", timestamp: "2026-01-01T00:01:00.000Z", sourceType: "API" },
      { value: "Ada", timestamp: "2026-01-01T00:00:00.000Z", sourceType: "API" },
    ]);
    expect(read.json.propertiesWithHistory?.email).toHaveLength(1);

    clock.now += 60_000; // an identical PATCH changes nothing, not even updatedAt
    const noop = await call<Contact>(fake, "PATCH", "/crm/v3/objects/contacts/101", { properties: { firstname: "Augusta" } });
    expect(noop.json.updatedAt).toBe("2026-01-01T00:01:00.000Z");
  });

  it("PATCH answers 404 for an unknown id and 409 when taking another contact's email", async () => {
    const { fake } = setup();
    await create(fake, { email: "ada@example.com" });
    await create(fake, { email: "bob@example.com" });
    const missing = await call(fake, "PATCH", "/crm/v3/objects/contacts/999", { properties: { firstname: "X" } });
    expect(missing.status).toBe(404);
    const clash = await call(fake, "PATCH", "/crm/v3/objects/contacts/102", { properties: { email: "Ada@example.com" } });
    expect(clash.status).toBe(409);
    const byEmail = await call<Contact>(fake, "PATCH", "/crm/v3/objects/contacts/bob%40example.com?idProperty=email", { properties: { firstname: "Bob" } });
    expect(byEmail.json).toMatchObject({ id: "102", properties: { firstname: "Bob" } });
  });

  it("DELETE archives (204) and archived contacts disappear from reads and conflicts", async () => {
    const { fake } = setup();
    await create(fake, { email: "ada@example.com" });
    const del = await call(fake, "DELETE", "/crm/v3/objects/contacts/101");
    expect(del.status).toBe(204);
    expect(del.json).toBeNull();
    expect((await call(fake, "GET", "/crm/v3/objects/contacts/101")).status).toBe(404);
    const archived = await call<Contact>(fake, "GET", "/crm/v3/objects/contacts/101?archived=true");
    expect(archived.json.archived).toBe(true);
    expect((await call<ListBody>(fake, "GET", "/crm/v3/objects/contacts")).json.results).toHaveLength(0);
    expect((await create(fake, { email: "ada@example.com" })).status).toBe(201);
    expect((await call(fake, "DELETE", "/crm/v3/objects/contacts/555")).status).toBe(204);
  });
});

describe("fake HubSpot: listing", () => {
  it("pages by id with limit (default 10) and after", async () => {
    const { fake } = setup();
    for (let i = 0; i < 12; i++) await create(fake, { email: `c${i}@example.com` });
    const first = await call<ListBody>(fake, "GET", "/crm/v3/objects/contacts?properties=email");
    expect(first.json.results.map((c) => c.id)).toEqual(["101", "102", "103", "104", "105", "106", "107", "108", "109", "110"]);
    expect(first.json.results[0]?.properties.email).toBe("c0@example.com");
    expect(first.json.paging?.next.after).toBe("111");
    expect(first.json.paging?.next.link).toContain("after=111");

    const second = await call<ListBody>(fake, "GET", `/crm/v3/objects/contacts?limit=10&after=${first.json.paging?.next.after}`);
    expect(second.json.results.map((c) => c.id)).toEqual(["111", "112"]);
    expect(second.json.paging).toBeUndefined();

    const small = await call<ListBody>(fake, "GET", "/crm/v3/objects/contacts?limit=5");
    expect(small.json.results).toHaveLength(5);
  });

  it("caps limit at 100 and rejects a malformed limit", async () => {
    const { fake } = setup(undefined, false); // 105 creates in one instant: over HubSpot's 100 per 10 s
    for (let i = 0; i < 105; i++) await create(fake, { email: `c${i}@example.com` });
    const big = await call<ListBody>(fake, "GET", "/crm/v3/objects/contacts?limit=500");
    expect(big.json.results).toHaveLength(100);
    expect((await call(fake, "GET", "/crm/v3/objects/contacts?limit=abc")).status).toBe(400);
    expect((await call(fake, "GET", "/crm/v3/objects/contacts?limit=0")).status).toBe(400);
  });

  it("answers 404 for unknown paths and 405 for unsupported methods", async () => {
    const { fake } = setup();
    const unknown = await call(fake, "GET", "/crm/v3/objects/widgets");
    expect(unknown.status).toBe(404);
    expectHubSpotError(unknown.json, "OBJECT_NOT_FOUND");
    expect((await call(fake, "PUT", "/crm/v3/objects/contacts/101", { properties: {} })).status).toBe(405);
    expect((await call(fake, "DELETE", "/crm/v3/objects/contacts")).status).toBe(405);
  });
});

describe("fake HubSpot: sandbox controls", () => {
  const control = (fake: Fake, method: string, path: string, body?: unknown) => call(fake, method, path, body, null);

  it("answers 503 during an outage and recovers when the clock passes outageUntil", async () => {
    const { fake, clock } = setup();
    const set = await control(fake, "POST", "/_sandbox/faults", { outageSeconds: 30 });
    expect(set.json).toMatchObject({ outageUntil: T0 + 30_000, errorRate: 0, latencyMs: 0, failNext: null });
    const down = await call(fake, "GET", "/crm/v3/objects/contacts");
    expect(down.status).toBe(503);
    expectHubSpotError(down.json, undefined);
    expect((await control(fake, "GET", "/_sandbox/requests")).status).toBe(200); // controls are never faulted
    clock.now += 31_000;
    expect((await call(fake, "GET", "/crm/v3/objects/contacts")).status).toBe(200);
    expect(fake.state.faults.outageUntil).toBeNull();
  });

  it("fails the next N calls with the given status and Retry-After", async () => {
    const { fake } = setup();
    await control(fake, "POST", "/_sandbox/faults", { failNext: { count: 2, status: 429, retryAfterSeconds: 7 } });
    for (let i = 0; i < 2; i++) {
      const { status, res, json } = await call<HubSpotErrorBody>(fake, "GET", "/crm/v3/objects/contacts");
      expect(status).toBe(429);
      expect(res.headers.get("Retry-After")).toBe("7");
      expect(json.errorType).toBe("RATE_LIMIT");
    }
    const ok = await call(fake, "GET", "/crm/v3/objects/contacts");
    expect(ok.status).toBe(200);
    expect(ok.res.headers.get("Retry-After")).toBeNull();
  });

  it("injects errors at errorRate deterministically from the stored seed", async () => {
    const run = async () => {
      const { fake } = setup();
      await control(fake, "POST", "/_sandbox/faults", { errorRate: 0.5 });
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) statuses.push((await call(fake, "GET", "/crm/v3/objects/contacts")).status);
      return statuses;
    };
    const a = await run();
    expect(await run()).toEqual(a);
    expect(a).toContain(503);
    expect(a).toContain(200);
    const { fake } = setup();
    await control(fake, "POST", "/_sandbox/faults", { errorRate: 1 });
    expect((await call(fake, "GET", "/crm/v3/objects/contacts")).status).toBe(503);
  });

  it("delays answers by latencyMs", async () => {
    const { fake } = setup();
    await control(fake, "POST", "/_sandbox/faults", { latencyMs: 60 });
    const started = Date.now();
    await call(fake, "GET", "/crm/v3/objects/contacts");
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
  });

  it("rejects invalid fault settings", async () => {
    const { fake } = setup();
    expect((await control(fake, "POST", "/_sandbox/faults", { errorRate: 2 })).status).toBe(400);
    expect((await control(fake, "POST", "/_sandbox/faults", { outage: 5 })).status).toBe(400);
    expect((await control(fake, "POST", "/_sandbox/faults", { failNext: { count: 1, status: 200 } })).status).toBe(400);
    expect((await control(fake, "GET", "/_sandbox/nope")).status).toBe(404);
  });

  it("logs vendor calls without credentials, capped at the last 5000", async () => {
    const { fake } = setup();
    await create(fake, { email: "ada@example.com" });
    await call(fake, "GET", "/crm/v3/objects/contacts/101?properties=email");
    const log = await control(fake, "GET", "/_sandbox/requests");
    const { requests } = log.json as { requests: RequestLogEntry[] };
    expect(requests).toEqual([
      { at: T0, method: "POST", path: "/crm/v3/objects/contacts", status: 201, body: { properties: { email: "ada@example.com" } } },
      { at: T0, method: "GET", path: "/crm/v3/objects/contacts/101?properties=email", status: 200, body: null },
    ]);
    expect(JSON.stringify(fake.state)).not.toContain(TOKEN);

    for (let i = 0; i < 5005; i++) await call(fake, "GET", `/crm/v3/objects/contacts/${i}`, undefined, null);
    const capped = (await control(fake, "GET", "/_sandbox/requests")).json as { requests: RequestLogEntry[] };
    expect(capped.requests).toHaveLength(5000);
    expect(capped.requests.at(-1)?.path).toBe("/crm/v3/objects/contacts/5004");
  });

  it("resets data, faults and the log", async () => {
    const { fake } = setup();
    await create(fake, { email: "ada@example.com" });
    await control(fake, "POST", "/_sandbox/faults", { latencyMs: 1, errorRate: 0.1 });
    expect((await control(fake, "POST", "/_sandbox/reset")).status).toBe(200);
    expect((await control(fake, "GET", "/_sandbox/faults")).json).toMatchObject({ errorRate: 0, latencyMs: 0 });
    expect(((await control(fake, "GET", "/_sandbox/requests")).json as { requests: unknown[] }).requests).toEqual([]);
    // Ids are never reused, as HubSpot's never are.
    expect((await control(fake, "GET", "/_sandbox/state")).json).toMatchObject({ contacts: {}, nextId: 102 });
    expect((await create(fake, { email: "ada@example.com" })).json.id).toBe("102");
  });

  it("round-trips state through JSON into a new fake without aliasing it", async () => {
    const { fake: a } = setup();
    await create(a, { email: "ada@example.com", firstname: "Ada" });
    await control(a, "POST", "/_sandbox/faults", { failNext: { count: 1, status: 500 } });
    const { fake: b } = setup(JSON.parse(JSON.stringify(a.state)) as FakeHubSpotState);
    expect((await call(b, "GET", "/crm/v3/objects/contacts/101")).status).toBe(500); // faults persist too
    expect((await call<Contact>(b, "GET", "/crm/v3/objects/contacts/101")).json.properties.firstname).toBe("Ada");
    expect((await create(b, { email: "bob@example.com" })).json.id).toBe("102");

    const { fake: c } = setup(a.state);
    await create(c, { email: "carol@example.com" });
    expect(Object.keys(a.state.data.contacts)).toEqual(["101"]);
  });
});
