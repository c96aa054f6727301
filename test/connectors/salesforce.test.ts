/**
 * The Salesforce connector against the fake, in-process: the shared, single-flight token, its
 * refresh on a 401, the upsert's created flag, failure classification and redaction. Each test
 * has its own client id, so the module-level token cache (keyed by login URL and client id)
 * starts empty for it.
 */
import pLimit from "p-limit";
import { describe, expect, it } from "vitest";
import { REDACTED, Redactor } from "../../src/audit/redact";
import { AuditBuffer } from "../../src/audit/sink";
import type { SalesforceConfig } from "../../src/config";
import { ActionFailure } from "../../src/connectors/errors";
import { HttpClient, type Transport } from "../../src/connectors/http-client";
import { SalesforceConnector } from "../../src/connectors/salesforce";
import { createFakeSalesforce, type FakeSalesforceState } from "../../src/sandbox/fake-salesforce";
import type { FakeService, RequestLogEntry } from "../../src/sandbox/fake-service";

const BASE = "https://sandbox.invalid/salesforce";
const SECRET = "sf-client-secret-0123456789abcdef";

function setup(opts: { apiVersion?: string; tokenLifetimeMs?: number; clientSecret?: string } = {}) {
  const clientId = `3MVG9-test-${crypto.randomUUID()}`;
  const fake = createFakeSalesforce({ clientId, clientSecret: SECRET, ...(opts.tokenLifetimeMs === undefined ? {} : { tokenLifetimeMs: opts.tokenLifetimeMs }) });
  // Stands in for the network: the login URL and instance_url are both the fake's mount.
  const transport: Transport = (request) => {
    const url = new URL(request.url);
    return fake.handle(request, url.pathname.slice("/salesforce".length) + url.search);
  };
  const config: SalesforceConfig = {
    loginUrl: BASE, clientId, clientSecret: opts.clientSecret ?? SECRET, apiVersion: opts.apiVersion ?? "v62.0", externalIdField: "Shopify_Customer_Id__c",
  };
  const redactor = new Redactor([config.clientSecret]);
  const audit = new AuditBuffer();
  const limit = pLimit(6); // one invocation's bound, shared by its actions
  /** The connector of one action: its own HttpClient, as the pipeline builds one per action. */
  const connector = (action = "salesforce", scope = limit) =>
    new SalesforceConnector(new HttpClient({ transport, audit, redactor, limit: scope, context: { eventId: "evt_1", entityKey: "customer:1", action, attempt: 1 } }), config, redactor);
  return { fake, connector, audit, config };
}

type Fake = FakeService<FakeSalesforceState>;

const log = (fake: Fake): RequestLogEntry[] => fake.state.requests;
const tokenCalls = (fake: Fake) => log(fake).filter((r) => r.path === "/services/oauth2/token");
const patches = (fake: Fake) => log(fake).filter((r) => r.method === "PATCH");
const control = (fake: Fake, path: string, body?: unknown) =>
  fake.handle(new Request(`${BASE}${path}`, { method: "POST", ...(body === undefined ? {} : { body: JSON.stringify(body) }) }), path);
const ada = { FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com" };

async function failure(promise: Promise<unknown>): Promise<ActionFailure> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(ActionFailure);
  return error as ActionFailure;
}

describe("Salesforce token", () => {
  it("is fetched once for ten concurrent upserts", async () => {
    const { fake, connector } = setup();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => connector(`a${i}`).upsertContact(String(1000 + i), ada)));
    expect(results.every((r) => r.created)).toBe(true);
    expect(tokenCalls(fake)).toHaveLength(1);
    expect(fake.state.data.tokensIssued).toBe(1);
    expect(patches(fake).map((r) => r.status)).toEqual(Array(10).fill(201));
  });

  it("in flight is waited on only by its own invocation: another makes its own call (workerd resolves no promise across requests)", async () => {
    const { fake, connector } = setup();
    const other = pLimit(6); // another consumer invocation's bound
    await Promise.all([connector("a").upsertContact("1", ada), connector("b").upsertContact("2", ada), connector("c", other).upsertContact("3", ada)]);
    expect(tokenCalls(fake)).toHaveLength(2);
    // Once issued, the token is plain data: a third invocation uses it without a call.
    await connector("d", pLimit(6)).upsertContact("4", ada);
    expect(tokenCalls(fake)).toHaveLength(2);
  });

  it("is kept for the next invocation's actions", async () => {
    const { fake, connector } = setup();
    await connector().upsertContact("1", ada);
    await connector().upsertContact("2", ada); // a new HttpClient and connector: another invocation
    expect(tokenCalls(fake)).toHaveLength(1);
  });

  it("is refreshed once when Salesforce rejects it (401), and the call is sent once more", async () => {
    const { fake, connector } = setup();
    await connector().upsertContact("1", ada);
    await control(fake, "/_sandbox/tokens/expire");
    const outcome = await connector().upsertContact("1", { ...ada, Email: "ada@lovelace.example" });
    expect(outcome).toEqual({ id: expect.any(String), created: false });
    expect(tokenCalls(fake)).toHaveLength(2);
    expect(patches(fake).map((r) => r.status)).toEqual([201, 401, 200]);
  });

  it("is refreshed once for ten concurrent actions that all met the expired token", async () => {
    const { fake, connector } = setup();
    await connector().upsertContact("0", ada);
    await control(fake, "/_sandbox/tokens/expire");
    await Promise.all(Array.from({ length: 10 }, (_, i) => connector(`a${i}`).upsertContact(String(i + 1), ada)));
    expect(tokenCalls(fake)).toHaveLength(2);
    expect(patches(fake).filter((r) => r.status === 401)).toHaveLength(10);
    expect(patches(fake).filter((r) => r.status === 201)).toHaveLength(11);
  });

  it("fails the action permanently when the new token is rejected too", async () => {
    const { fake, connector } = setup({ tokenLifetimeMs: 0 }); // every token is expired as it is issued
    const error = await failure(connector().upsertContact("1", ada));
    expect(error).toMatchObject({ kind: "permanent", details: { connector: "salesforce", status: 401 } });
    expect(error.message).toContain("INVALID_SESSION_ID");
    expect(tokenCalls(fake)).toHaveLength(2);
    expect(patches(fake).map((r) => r.status)).toEqual([401, 401]);
  });

  it("is not cached when its call failed: 503 is transient and the next action asks again", async () => {
    const { fake, connector } = setup();
    await control(fake, "/_sandbox/faults", { failNext: { count: 1, status: 503 } });
    expect(await failure(connector().upsertContact("1", ada))).toMatchObject({ kind: "transient", details: { status: 503 } });
    expect(patches(fake)).toHaveLength(0);
    expect((await connector().upsertContact("1", ada)).created).toBe(true);
    expect(tokenCalls(fake).map((r) => r.status)).toEqual([503, 200]);
  });

  it("is refused permanently for wrong client credentials (400 invalid_client)", async () => {
    const { connector } = setup({ clientSecret: "not-the-secret-0123456789" });
    const error = await failure(connector().upsertContact("1", ada));
    expect(error).toMatchObject({ kind: "permanent", details: { status: 400 } });
    expect(error.message).toContain("invalid client credentials");
  });
});

describe("Salesforce Contact upsert", () => {
  it("reports created on 201 and not created on 200, for the same record", async () => {
    const { fake, connector } = setup();
    const created = await connector().upsertContact("820982911946154508", ada);
    const updated = await connector().upsertContact("820982911946154508", { ...ada, FirstName: "Augusta Ada" });
    expect(created).toEqual({ id: expect.stringMatching(/^003/), created: true });
    expect(updated).toEqual({ id: created.id, created: false });
    const record = fake.state.data.contacts[created.id ?? ""];
    expect(record).toMatchObject({ externalId: "820982911946154508", fields: { FirstName: "Augusta Ada", LastName: "Lovelace", Email: "ada@example.com" } });
    // The external id is in the URL, exactly as given (an 18-digit id beyond 2^53), never in the body.
    expect(patches(fake)[0]).toMatchObject({ path: "/services/data/v62.0/sobjects/Contact/Shopify_Customer_Id__c/820982911946154508", body: ada });
  });

  it("handles the 204 of versions before v46.0 as an update without an id", async () => {
    const { connector } = setup({ apiVersion: "v45.0" });
    expect((await connector().upsertContact("5", ada)).created).toBe(true);
    expect(await connector().upsertContact("5", ada)).toEqual({ id: null, created: false });
  });

  it("fails permanently, without a retry, when LastName is missing on create (400 REQUIRED_FIELD_MISSING)", async () => {
    const { fake, connector } = setup();
    const error = await failure(connector().upsertContact("7", { FirstName: "No", LastName: "" }));
    expect(error).toMatchObject({ kind: "permanent", details: { status: 400 } });
    expect(error.message).toContain("REQUIRED_FIELD_MISSING");
    expect(patches(fake)).toHaveLength(1);
  });

  it("fails transiently on a 5xx of the upsert", async () => {
    const { fake, connector } = setup();
    await connector().upsertContact("1", ada); // token first
    await control(fake, "/_sandbox/faults", { failNext: { count: 1, status: 500 } });
    expect(await failure(connector().upsertContact("2", ada))).toMatchObject({ kind: "transient", details: { status: 500 } });
  });
});

describe("Salesforce secrets", () => {
  it("never puts the access token or the client secret in an audit row", async () => {
    const { fake, connector, audit } = setup();
    await connector().upsertContact("1", ada);
    const issued = Object.keys(fake.state.data.tokens);
    await control(fake, "/_sandbox/tokens/expire");
    await connector().upsertContact("1", ada);
    issued.push(...Object.keys(fake.state.data.tokens));
    const rows = audit.drain();
    expect(rows.map((r) => `${r.method} ${r.status}`)).toEqual(["POST 200", "PATCH 201", "PATCH 401", "POST 200", "PATCH 200"]);

    expect(issued).toHaveLength(2);
    const text = JSON.stringify(rows);
    for (const secret of [...issued, SECRET]) expect(text).not.toContain(secret);
    expect(issuedTokens(rows)).toEqual([]);
    // The redactor did the work: the token call's rows show where the secret and the token were.
    expect(rows[0]?.requestBody).toContain(`client_secret=${REDACTED}`);
    expect(rows[0]?.responseBody).toContain(`"access_token":"${REDACTED}"`);
    expect(rows[3]?.responseBody).toContain(`"access_token":"${REDACTED}"`);
  });
});

/** Any access token (Salesforce's `<org id>!<secret>` form) an audit row still shows. */
function issuedTokens(rows: { requestBody: string | null; responseBody: string | null; url: string; error: string | null }[]): string[] {
  return rows.flatMap((r) => [r.requestBody, r.responseBody, r.url, r.error].flatMap((t) => t?.match(/00D\w{12}![\w.]+/g) ?? []));
}
