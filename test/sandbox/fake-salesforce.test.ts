/** The fake Salesforce in-process: the client-credentials token endpoint and the Contact upsert by external id. */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createFakeSalesforce, type FakeSalesforceState } from "../../src/sandbox/fake-salesforce";
import type { FakeService } from "../../src/sandbox/fake-service";

const CLIENT_ID = "3MVG9sandbox-client-id";
const CLIENT_SECRET = "sandbox-client-secret-0123456789";
const MOUNT = "https://sandbox.invalid/salesforce";
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const CONTACT = "/services/data/v62.0/sobjects/Contact/Shopify_Customer_Id__c";

type Fake = FakeService<FakeSalesforceState>;

function setup(opts: { tokenLifetimeMs?: number; instanceUrl?: string } = {}) {
  const clock = { now: T0 };
  const fake = createFakeSalesforce({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, now: () => clock.now, ...opts });
  return { fake, clock };
}

async function call<T = unknown>(fake: Fake, method: string, path: string, init: { body?: string; token?: string; form?: boolean } = {}) {
  const headers = new Headers({ "Content-Type": init.form ? "application/x-www-form-urlencoded" : "application/json" });
  if (init.token !== undefined) headers.set("Authorization", `Bearer ${init.token}`);
  const request = new Request(`${MOUNT}${path}`, { method, headers, ...(init.body === undefined ? {} : { body: init.body }) });
  const res = await fake.handle(request, path);
  const text = await res.text();
  return { status: res.status, json: (text === "" ? null : JSON.parse(text)) as T, res };
}

const tokenForm = (overrides: Record<string, string> = {}) =>
  new URLSearchParams({ grant_type: "client_credentials", client_id: CLIENT_ID, client_secret: CLIENT_SECRET, ...overrides }).toString();

async function token(fake: Fake): Promise<string> {
  const { status, json } = await call<{ access_token: string }>(fake, "POST", "/services/oauth2/token", { body: tokenForm(), form: true });
  expect(status).toBe(200);
  return json.access_token;
}

const upsert = (fake: Fake, accessToken: string, id: string, fields: Record<string, unknown>, version = "v62.0") =>
  call<Record<string, unknown>>(fake, "PATCH", `/services/data/${version}/sobjects/Contact/Shopify_Customer_Id__c/${id}`, { token: accessToken, body: JSON.stringify(fields) });

describe("fake Salesforce: client-credentials token", () => {
  it("issues a bearer token whose instance_url is the fake's mount, signed as Salesforce documents", async () => {
    const { fake } = setup();
    const { status, json } = await call<Record<string, string>>(fake, "POST", "/services/oauth2/token", { body: tokenForm(), form: true });
    expect(status).toBe(200);
    expect(json).toMatchObject({ token_type: "Bearer", instance_url: MOUNT, issued_at: String(T0), scope: "api" });
    expect(json.access_token).toMatch(/^00D\w{12}!\S{40,}$/);
    expect(json).not.toHaveProperty("expires_in");
    expect(json).not.toHaveProperty("refresh_token");
    const expected = createHmac("sha256", CLIENT_SECRET).update(`${json.id}${json.issued_at}`).digest("base64");
    expect(json.signature).toBe(expected);
  });

  it("uses a configured instance_url", async () => {
    const { fake } = setup({ instanceUrl: "https://acme.my.salesforce.com" });
    const { json } = await call<Record<string, string>>(fake, "POST", "/services/oauth2/token", { body: tokenForm(), form: true });
    expect(json.instance_url).toBe("https://acme.my.salesforce.com");
  });

  it.each([
    [{ client_secret: "wrong" }, "invalid_client", "invalid client credentials"],
    [{ client_id: "someone-else" }, "invalid_client_id", "client identifier invalid"],
    [{ grant_type: "password" }, "unsupported_grant_type", "grant type not supported"],
  ])("answers 400 for %j", async (overrides, error, description) => {
    const { fake } = setup();
    const { status, json } = await call(fake, "POST", "/services/oauth2/token", { body: tokenForm(overrides), form: true });
    expect(status).toBe(400);
    expect(json).toEqual({ error, error_description: description });
  });

  it("counts token calls, expires every token on request and lets the lifetime be changed", async () => {
    const { fake, clock } = setup({ tokenLifetimeMs: 60_000 });
    const first = await token(fake);
    await call(fake, "POST", "/services/oauth2/token", { body: tokenForm({ client_secret: "wrong" }), form: true });
    expect((await call(fake, "GET", "/_sandbox/tokens")).json).toEqual({ requests: 2, issued: 1, active: 1, lifetimeMs: 60_000 });

    clock.now += 60_000; // the session timeout has passed
    expect((await upsert(fake, first, "1", { LastName: "A" })).json).toEqual([{ message: "Session expired or invalid", errorCode: "INVALID_SESSION_ID" }]);

    const second = await token(fake);
    expect((await upsert(fake, second, "1", { LastName: "A" })).status).toBe(201);
    expect((await call(fake, "POST", "/_sandbox/tokens/expire")).json).toEqual({ expired: 1 });
    expect((await upsert(fake, second, "1", { LastName: "A" })).status).toBe(401);

    expect((await call(fake, "POST", "/_sandbox/tokens", { body: JSON.stringify({ lifetimeMs: 0 }) })).status).toBe(200);
    expect((await upsert(fake, await token(fake), "1", { LastName: "A" })).status).toBe(401); // expired at issue
  });

  it("never shows a token in /_sandbox/state", async () => {
    const { fake } = setup();
    const issued = await token(fake);
    const { json } = await call(fake, "GET", "/_sandbox/state");
    expect(JSON.stringify(json)).not.toContain(issued);
    expect(json).toMatchObject({ tokens: { active: 1 }, tokensIssued: 1 });
  });
});

describe("fake Salesforce: Contact upsert by external id", () => {
  it("answers 401 INVALID_SESSION_ID without a token or with an unknown one", async () => {
    const { fake } = setup();
    for (const t of [undefined, "00Dnot-a-token"]) {
      const { status, json } = await call(fake, "PATCH", `${CONTACT}/1`, { body: JSON.stringify({ LastName: "A" }), ...(t ? { token: t } : {}) });
      expect(status).toBe(401);
      expect(json).toEqual([{ message: "Session expired or invalid", errorCode: "INVALID_SESSION_ID" }]);
    }
  });

  it("creates (201, created: true), then updates (200, created: false) the same record", async () => {
    const { fake, clock } = setup();
    const t = await token(fake);
    const created = await upsert(fake, t, "820982911946154508", { FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com" });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ id: expect.stringMatching(/^003\w{15}$/), success: true, errors: [], created: true });
    clock.now += 1000;
    const updated = await upsert(fake, t, "820982911946154508", { Email: "ada@lovelace.example" });
    expect(updated.status).toBe(200);
    expect(updated.json).toEqual({ id: created.json.id, success: true, errors: [], created: false });

    const read = await call<Record<string, unknown>>(fake, "GET", `${CONTACT}/820982911946154508`, { token: t });
    expect(read.json).toMatchObject({
      attributes: { type: "Contact", url: `/services/data/v62.0/sobjects/Contact/${String(created.json.id)}` },
      Id: created.json.id,
      FirstName: "Ada",
      LastName: "Lovelace",
      Email: "ada@lovelace.example",
      Shopify_Customer_Id__c: "820982911946154508",
      CreatedDate: "2026-01-01T00:00:00.000+0000",
      LastModifiedDate: "2026-01-01T00:00:01.000+0000",
    });
    expect((await call(fake, "GET", `/services/data/v62.0/sobjects/Contact/${String(created.json.id)}`, { token: t })).json).toMatchObject({ Email: "ada@lovelace.example" });
  });

  it("answers as versions before v46.0 did: 201 without `created`, 204 for an update", async () => {
    const { fake } = setup();
    const t = await token(fake);
    const created = await upsert(fake, t, "7", { LastName: "Hopper" }, "v45.0");
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ id: expect.any(String), success: true, errors: [] });
    const updated = await upsert(fake, t, "7", { FirstName: "Grace" }, "v45.0");
    expect(updated.status).toBe(204);
    expect(updated.json).toBeNull();
  });

  it("requires LastName to create a Contact, not to update one", async () => {
    const { fake } = setup();
    const t = await token(fake);
    const missing = await upsert(fake, t, "9", { FirstName: "No", Email: "no@example.com" });
    expect(missing.status).toBe(400);
    expect(missing.json).toEqual([{ message: "Required fields are missing: [LastName]", errorCode: "REQUIRED_FIELD_MISSING", fields: ["LastName"] }]);
    expect((await upsert(fake, t, "9", { LastName: "Yes" })).status).toBe(201);
    expect((await upsert(fake, t, "9", { FirstName: "Now" })).status).toBe(200);
    expect((await upsert(fake, t, "9", { LastName: null })).status).toBe(400); // blanking it is refused too
  });

  it("answers 404 NOT_FOUND for an unknown sObject, external id field or record", async () => {
    const { fake } = setup();
    const t = await token(fake);
    const notFound = [{ message: "The requested resource does not exist", errorCode: "NOT_FOUND" }];
    for (const path of ["/services/data/v62.0/sobjects/Lead/Shopify_Customer_Id__c/1", "/services/data/v62.0/sobjects/Contact/Other_Id__c/1"]) {
      const { status, json } = await call(fake, "PATCH", path, { token: t, body: JSON.stringify({ LastName: "A" }) });
      expect([status, json]).toEqual([404, notFound]);
    }
    expect((await call(fake, "GET", `${CONTACT}/404`, { token: t })).status).toBe(404);
  });

  it("refuses the external id or Id in the body, unknown fields, non-strings and a bad email", async () => {
    const { fake } = setup();
    const t = await token(fake);
    const cases: [Record<string, unknown>, string][] = [
      [{ LastName: "A", Shopify_Customer_Id__c: "5" }, "INVALID_FIELD"],
      [{ LastName: "A", Id: "003" }, "INVALID_FIELD"],
      [{ LastName: "A", Shoe_Size__c: "9" }, "INVALID_FIELD"],
      [{ LastName: 42 }, "JSON_PARSER_ERROR"],
      [{ LastName: "A", Email: "not-an-email" }, "INVALID_EMAIL_ADDRESS"],
    ];
    for (const [body, errorCode] of cases) {
      const { status, json } = await upsert(fake, t, "5", body);
      expect(status).toBe(400);
      expect((json as unknown as { errorCode: string }[])[0]?.errorCode).toBe(errorCode);
    }
    expect((await call(fake, "GET", "/_sandbox/state")).json).toMatchObject({ contacts: {} });
  });

  it("injects faults in the REST error shape and logs every call", async () => {
    const { fake } = setup();
    const t = await token(fake);
    await call(fake, "POST", "/_sandbox/faults", { body: JSON.stringify({ failNext: { count: 1, status: 503 } }) });
    const failed = await upsert(fake, t, "3", { LastName: "A" });
    expect(failed.status).toBe(503);
    expect(failed.json).toEqual([{ message: expect.any(String), errorCode: "SERVER_UNAVAILABLE" }]);
    expect((await upsert(fake, t, "3", { LastName: "A" })).status).toBe(201);
    const log = (await call<{ requests: { method: string; path: string; status: number; body: unknown }[] }>(fake, "GET", "/_sandbox/requests")).json.requests;
    expect(log.map((r) => [r.method, r.status])).toEqual([["POST", 200], ["PATCH", 503], ["PATCH", 201]]);
    expect(log[0]?.body).toBeNull(); // the form with the client secret is not kept
  });

  it("keeps record ids across a reset, and forgets its tokens", async () => {
    const { fake } = setup();
    const t = await token(fake);
    const first = await upsert(fake, t, "1", { LastName: "A" });
    await call(fake, "POST", "/_sandbox/reset");
    expect((await upsert(fake, t, "1", { LastName: "A" })).status).toBe(401);
    const again = await upsert(fake, await token(fake), "1", { LastName: "A" });
    expect(again.status).toBe(201);
    expect(again.json.id).not.toBe(first.json.id);
  });
});
