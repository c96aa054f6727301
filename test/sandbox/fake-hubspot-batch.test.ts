/**
 * The fake HubSpot's contact batch endpoints (read, update, create): up to 100 inputs, 207 with
 * per-input errors where HubSpot gives them, the whole batch failing where it does, and the
 * webhooks a batch write fires.
 */
import { describe, expect, it } from "vitest";
import { createFakeHubSpot } from "../../src/sandbox/fake-hubspot";
import type { HubSpotWebhookEvent } from "../../src/sandbox/webhooks";

const TOKEN = "pat-test-hubspot-token";
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const ISO0 = "2026-01-01T00:00:00.000Z";
const BATCH = "/crm/v3/objects/contacts/batch";
const NOT_FOUND = "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.";

interface Contact {
  id: string;
  properties: Record<string, string | null>;
  propertiesWithHistory?: Record<string, { value: string }[]>;
  archived: boolean;
}
interface BatchBody {
  status: string;
  results: Contact[];
  numErrors?: number;
  errors?: { status: string; category: string; message: string; context: Record<string, string[]> }[];
  startedAt: string;
  completedAt: string;
  category?: string;
  message?: string;
}

function setup(webhooks = false) {
  const clock = { now: T0 };
  const sent: Request[] = [];
  const fake = createFakeHubSpot({
    accessToken: TOKEN,
    now: () => clock.now,
    ...(webhooks
      ? {
        dispatch: async (r: Request) => void sent.push(r),
        webhooks: {
          targetUrl: "https://syncwire.example.com/webhooks/hubspot",
          clientSecret: "secret",
          subscriptions: [
            { subscriptionType: "contact.creation" as const },
            { subscriptionType: "contact.propertyChange" as const, propertyName: "email" },
            { subscriptionType: "contact.propertyChange" as const, propertyName: "firstname" },
          ],
        },
      }
      : {}),
  });
  return { fake, clock, sent };
}
type Fake = ReturnType<typeof setup>["fake"];

async function call<T = BatchBody>(fake: Fake, method: string, path: string, body?: unknown) {
  const init: RequestInit = { method, headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" } };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fake.handle(new Request(`https://api.hubapi.com${path}`, init), path);
  const text = await res.text();
  return { status: res.status, json: (text === "" ? null : JSON.parse(text)) as T };
}
const create = (fake: Fake, properties: Record<string, string>) => call<Contact>(fake, "POST", "/crm/v3/objects/contacts", { properties });
const read = (fake: Fake, body: unknown, query = "") => call(fake, "POST", `${BATCH}/read${query}`, body);
const update = (fake: Fake, inputs: unknown[]) => call(fake, "POST", `${BATCH}/update`, { inputs });
const createBatch = (fake: Fake, inputs: unknown[]) => call(fake, "POST", `${BATCH}/create`, { inputs });
const get = async (fake: Fake, id: string) => (await call<Contact>(fake, "GET", `/crm/v3/objects/contacts/${id}?properties=email,firstname`)).json;
const events = async (sent: Request[]) => (await Promise.all(sent.map(async (r) => (await r.clone().json()) as HubSpotWebhookEvent[]))).flat();

async function seed(fake: Fake, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await create(fake, { email: `c${i}@example.com`, firstname: `C${i}` })).json.id);
  return ids;
}

describe("fake HubSpot batch read", () => {
  it("reads the asked properties of many contacts in one call", async () => {
    const { fake } = setup();
    const ids = await seed(fake, 3);
    const { status, json } = await read(fake, { properties: ["email", "firstname"], inputs: ids.map((id) => ({ id })) });
    expect(status).toBe(200);
    expect(json).toEqual({ status: "COMPLETE", results: expect.any(Array), startedAt: ISO0, completedAt: ISO0 });
    expect(json.results.map((c) => [c.id, c.properties.email, c.properties.firstname])).toEqual([
      ["101", "c0@example.com", "C0"], ["102", "c1@example.com", "C1"], ["103", "c2@example.com", "C2"],
    ]);
    expect(json.results[0]?.properties).toMatchObject({ hs_object_id: "101", createdate: ISO0, lastmodifieddate: ISO0 });
  });

  it("answers 207 with what it found and one OBJECT_NOT_FOUND error naming the missing ids", async () => {
    const { fake } = setup();
    const [a, b] = await seed(fake, 2);
    await call(fake, "DELETE", `/crm/v3/objects/contacts/${b}`);
    const { status, json } = await read(fake, { properties: ["email"], inputs: [{ id: a }, { id: "999" }, { id: b }] });
    expect(status).toBe(207);
    expect(json.results.map((c) => c.id)).toEqual([a]);
    expect(json.numErrors).toBe(1);
    expect(json.errors).toEqual([{ status: "error", category: "OBJECT_NOT_FOUND", message: NOT_FOUND, context: { ids: ["999", b] } }]);
  });

  it("reads by email with idProperty, with property histories, and a repeated id once", async () => {
    const { fake } = setup();
    await seed(fake, 2);
    await call(fake, "PATCH", "/crm/v3/objects/contacts/101", { properties: { firstname: "Ada" } });
    const { json } = await read(fake, {
      idProperty: "email",
      properties: ["firstname"],
      propertiesWithHistory: ["firstname"],
      inputs: [{ id: "C0@example.com" }, { id: "c0@example.com" }, { id: "nobody@example.com" }],
    });
    expect(json.results).toHaveLength(1);
    expect(json.results[0]?.propertiesWithHistory?.firstname?.map((v) => v.value)).toEqual(["Ada", "C0"]);
    expect(json.errors?.[0]?.context.ids).toEqual(["nobody@example.com"]);
    expect((await read(fake, { idProperty: "phone", inputs: [{ id: "1" }] })).status).toBe(400);
  });

  it("takes at most 100 inputs, and 50 with property histories", async () => {
    const { fake } = setup();
    const inputs = (n: number) => Array.from({ length: n }, (_, i) => ({ id: String(101 + i) }));
    expect((await read(fake, { inputs: inputs(100) })).status).toBe(207); // none exists: all missing
    const over = await read(fake, { inputs: inputs(101) });
    expect(over.status).toBe(400);
    expect(over.json).toMatchObject({ status: "error", category: "VALIDATION_ERROR" });
    expect(over.json.message).toContain("100");
    const history = await read(fake, { propertiesWithHistory: ["email"], inputs: inputs(51) });
    expect(history.status).toBe(400);
    expect(history.json.message).toBe("The maximum number of inputs supported in a batch request for property histories is 50. Please reduce the number of items and try again");
    for (const bad of [{}, { inputs: "101" }, { inputs: [{}] }, { inputs: [{ id: "101" }], properties: "email" }, "{nope"]) {
      expect((await read(fake, bad)).json).toMatchObject({ status: "error", category: "VALIDATION_ERROR" });
    }
  });

  it("is one request in the log and answers 405 to other methods", async () => {
    const { fake } = setup();
    await read(fake, { inputs: [{ id: "1" }] });
    expect(fake.state.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([`POST ${BATCH}/read 207`]);
    expect((await call(fake, "GET", `${BATCH}/read`)).status).toBe(405);
    expect((await call(fake, "POST", `${BATCH}/upsert`, { inputs: [] })).status).toBe(404);
  });
});

describe("fake HubSpot batch update", () => {
  it("updates many contacts in one call, with one webhook delivery for all their changes", async () => {
    const { fake, sent, clock } = setup(true);
    const ids = await seed(fake, 3);
    sent.length = 0;
    clock.now += 1_000;
    const { status, json } = await update(fake, ids.map((id, i) => ({ id, properties: { firstname: `New${i}`, lastname: "Same" } })));
    expect(status).toBe(200);
    expect(json.status).toBe("COMPLETE");
    expect(json.results.map((c) => c.properties.firstname)).toEqual(["New0", "New1", "New2"]);
    expect((await get(fake, ids[1]!)).properties.firstname).toBe("New1");
    expect(sent).toHaveLength(1);
    expect((await events(sent)).map((e) => [e.subscriptionType, e.objectId, e.propertyName, e.propertyValue])).toEqual([
      ["contact.propertyChange", 101, "firstname", "New0"],
      ["contact.propertyChange", 102, "firstname", "New1"],
      ["contact.propertyChange", 103, "firstname", "New2"],
    ]);
  });

  it("updates what exists and answers 207 for ids that do not, a trace id echoed", async () => {
    const { fake } = setup();
    const [a] = await seed(fake, 1);
    const { status, json } = await update(fake, [
      { id: a, properties: { firstname: "Ada" } },
      { id: "998", properties: { firstname: "X" } },
      { id: "999", properties: { firstname: "Y" }, objectWriteTraceId: "action-9" },
    ]);
    expect(status).toBe(207);
    expect(json.results.map((c) => c.id)).toEqual([a]);
    expect(json.errors).toEqual([
      { status: "error", category: "OBJECT_NOT_FOUND", message: NOT_FOUND, context: { ids: ["998"] } },
      { status: "error", category: "OBJECT_NOT_FOUND", message: NOT_FOUND, context: { ids: ["999"], objectWriteTraceId: ["action-9"] } },
    ]);
    expect(json.numErrors).toBe(2);
  });

  it("fails as a whole on one invalid input, trace ids or not: nothing is written", async () => {
    const { fake, sent } = setup(true);
    const [a, b] = await seed(fake, 2);
    sent.length = 0;
    const { status, json } = await update(fake, [
      { id: a, properties: { firstname: "Ada" }, objectWriteTraceId: "1" },
      { id: b, properties: { email: "not-an-email" }, objectWriteTraceId: "2" },
    ]);
    expect(status).toBe(400);
    expect(json).toMatchObject({ status: "error", category: "VALIDATION_ERROR" });
    expect(json.message).toContain("INVALID_EMAIL");
    expect((await get(fake, a!)).properties.firstname).toBe("C0");
    expect(sent).toHaveLength(0);
  });

  it("rejects duplicate ids, an email another contact has, another idProperty and more than 100 inputs", async () => {
    const { fake } = setup();
    const [a, b] = await seed(fake, 2);
    const dup = await update(fake, [{ id: a, properties: { firstname: "A" } }, { id: a, properties: { firstname: "B" } }]);
    expect(dup.status).toBe(400);
    expect(dup.json.message).toBe(`Duplicate IDs found in batch input: [${a}]. IDs must be unique`);
    const taken = await update(fake, [{ id: a, properties: { firstname: "A" } }, { id: b, properties: { email: "C0@example.com" } }]);
    expect(taken.status).toBe(409);
    expect(taken.json).toMatchObject({ category: "CONFLICT", message: `Contact already exists. Existing ID: ${a}` });
    expect((await get(fake, a!)).properties.firstname).toBe("C0");
    expect((await update(fake, [{ id: "c0@example.com", idProperty: "email", properties: {} }])).status).toBe(400);
    const many = Array.from({ length: 101 }, (_, i) => ({ id: String(101 + i), properties: {} }));
    expect((await update(fake, many)).json).toMatchObject({ category: "VALIDATION_ERROR" });
  });
});

describe("fake HubSpot batch create", () => {
  it("creates many contacts in one call (201), with their creation and property webhooks", async () => {
    const { fake, sent } = setup(true);
    const { status, json } = await createBatch(fake, [
      { properties: { email: "Ada@Example.com", firstname: "Ada" } },
      { properties: { email: "bob@example.com" } },
    ]);
    expect(status).toBe(201);
    expect(json.status).toBe("COMPLETE");
    expect(json.results.map((c) => [c.id, c.properties.email])).toEqual([["101", "ada@example.com"], ["102", "bob@example.com"]]);
    expect(sent).toHaveLength(1);
    expect((await events(sent)).map((e) => [e.subscriptionType, e.objectId, e.propertyName ?? ""])).toEqual([
      ["contact.creation", 101, ""], ["contact.propertyChange", 101, "email"], ["contact.propertyChange", 101, "firstname"],
      ["contact.creation", 102, ""], ["contact.propertyChange", 102, "email"],
    ]);
  });

  it("without a trace id on every input, fails as a whole on one invalid input or a taken email", async () => {
    const { fake } = setup();
    await seed(fake, 1);
    const invalid = await createBatch(fake, [{ properties: { email: "ok@example.com" } }, { properties: { email: "nope" } }]);
    expect(invalid.status).toBe(400);
    expect(invalid.json.category).toBe("VALIDATION_ERROR");
    const taken = await createBatch(fake, [{ properties: { email: "ok@example.com" } }, { properties: { email: "c0@example.com" } }, { properties: {} }]);
    expect(taken.status).toBe(409);
    expect(taken.json.message).toBe("Contact already exists. Existing ID: 101");
    const twice = await createBatch(fake, [{ properties: { email: "x@example.com" } }, { properties: { email: "X@example.com" } }]);
    expect(twice.status).toBe(400);
    expect(Object.keys(fake.state.data.contacts)).toEqual(["101"]);
    expect((await create(fake, { email: "next@example.com" })).json.id).toBe("102"); // no id was used up
  });

  it("with a trace id on every input, answers 207: the valid ones created, each failure named", async () => {
    const { fake } = setup();
    await seed(fake, 1);
    const { status, json } = await createBatch(fake, [
      { objectWriteTraceId: "a", properties: { email: "ok@example.com" } },
      { objectWriteTraceId: "b", properties: { email: "nope" } },
      { objectWriteTraceId: "c", properties: { email: "c0@example.com" } },
      { objectWriteTraceId: "d", properties: { email: "OK@example.com" } },
    ]);
    expect(status).toBe(207);
    expect(json.results.map((c) => c.properties.email)).toEqual(["ok@example.com"]);
    expect(json.numErrors).toBe(3);
    expect(json.errors?.map((e) => [e.status, e.category, e.context.objectWriteTraceId])).toEqual([
      ["error", "VALIDATION_ERROR", ["b"]], ["error", "CONFLICT", ["c"]], ["error", "VALIDATION_ERROR", ["d"]],
    ]);
    expect(json.errors?.[1]?.message).toBe("Contact already exists. Existing ID: 101");
  });

  it("takes at most 100 inputs", async () => {
    const { fake } = setup();
    const inputs = (n: number) => Array.from({ length: n }, (_, i) => ({ properties: { email: `n${i}@example.com` } }));
    expect((await createBatch(fake, inputs(101))).status).toBe(400);
    expect(Object.keys(fake.state.data.contacts)).toHaveLength(0);
    expect((await createBatch(fake, inputs(100))).json.results).toHaveLength(100);
  });
});
