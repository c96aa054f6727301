/** The shared outbound client against the fakes: timeouts and classification, with audit rows. */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import pLimit from "p-limit";
import { z } from "zod";
import { Redactor } from "../../src/audit/redact";
import { AuditBuffer } from "../../src/audit/sink";
import type { BudgetApi } from "../../src/budgets/apis";
import { BudgetGate } from "../../src/budgets/gate";
import { getConfig } from "../../src/config";
import { ActionFailure, classifyStatus, parseRetryAfter } from "../../src/connectors/errors";
import { HttpClient } from "../../src/connectors/http-client";
import { createTransport } from "../../src/connectors/transport";
import { SANDBOX_ORIGIN } from "../../src/sandbox/credentials";
import { HUBSPOT_TOKEN, resetSandbox, setFaults, vendorRequests } from "../support/sandbox";

beforeEach(resetSandbox);

function client(timeoutMs?: number) {
  const audit = new AuditBuffer();
  const http = new HttpClient({
    transport: createTransport(env, getConfig(env)),
    audit,
    redactor: new Redactor([HUBSPOT_TOKEN]),
    context: { eventId: "evt_test", entityKey: "contact:1", action: "test", attempt: 1 },
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  return { http, audit };
}

const getContacts = (http: HttpClient) =>
  http.call({
    connector: "hubspot",
    method: "GET",
    url: `${SANDBOX_ORIGIN}/hubspot/crm/v3/objects/contacts?limit=1`,
    headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` },
    schema: z.object({ results: z.array(z.unknown()) }),
  });

describe("HttpClient", () => {
  it("times out a slow answer as a transient failure and audits it without a status", async () => {
    await setFaults("hubspot", { latencyMs: 500 });
    const { http, audit } = client(50);
    const error = await getContacts(http).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActionFailure);
    expect((error as ActionFailure).kind).toBe("transient");
    expect((error as ActionFailure).message).toMatch(/timed out after 50 ms/);
    expect(audit.drain()).toMatchObject([{ connector: "hubspot", status: null, outcome: "transient", error: expect.stringMatching(/timed out/) }]);
  });

  it("classifies an auth failure (401) as permanent", async () => {
    const { http } = client();
    const error = await http
      .call({ connector: "hubspot", method: "GET", url: `${SANDBOX_ORIGIN}/hubspot/crm/v3/objects/contacts/1`, headers: { authorization: "Bearer wrong" }, schema: z.unknown() })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: "permanent", details: { status: 401 } });
  });

  it("treats a 2xx with an unexpected body as permanent", async () => {
    const { http, audit } = client();
    const error = await http
      .call({
        connector: "hubspot",
        method: "GET",
        url: `${SANDBOX_ORIGIN}/hubspot/crm/v3/objects/contacts?limit=1`,
        headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` },
        schema: z.object({ id: z.string() }),
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: "permanent" });
    expect(audit.drain()[0]).toMatchObject({ status: 200, outcome: "permanent" });
  });

  it("parses the body of a success with its schema", async () => {
    const { http } = client();
    expect((await getContacts(http)).data).toEqual({ results: [] });
  });
});

describe("classification", () => {
  it.each([
    [200, "success"], [204, "success"], [408, "transient"], [425, "transient"], [429, "transient"],
    [500, "transient"], [503, "transient"], [400, "permanent"], [401, "permanent"], [404, "permanent"], [409, "permanent"], [422, "permanent"],
  ] as const)("%i is %s", (status, kind) => {
    expect(classifyStatus(status)).toBe(kind);
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    expect(parseRetryAfter("120", 0)).toBe(120_000);
    expect(parseRetryAfter(new Date(90_000).toUTCString(), 30_000)).toBe(60_000);
    expect(parseRetryAfter("soon", 0)).toBeNull();
    expect(parseRetryAfter(null, 0)).toBeNull();
  });
});

describe("HttpClient with the vendor budgets", () => {
  /**
   * Two calls under a budget of one connection: the second is granted while the first holds the
   * connection (its budget request overlaps the call in flight) and then waits about 300 ms for
   * the connection. Whether that grant is still good depends on the window's arrival slack.
   */
  async function twoCallsOneConnection(windowMs: number) {
    await setFaults("hubspot", { latencyMs: 300 });
    const config = getConfig(env);
    const windows = [{ limit: 100, windowMs }];
    const budget = env.BUDGET.getByName(`hubspot:test-${crypto.randomUUID()}`) as unknown as BudgetApi;
    const http = new HttpClient({
      transport: createTransport(env, config),
      audit: new AuditBuffer(),
      redactor: new Redactor([HUBSPOT_TOKEN]),
      context: { eventId: "evt_test", entityKey: "contact:1", action: "test", attempt: 1 },
      limit: pLimit(1),
      gate: new BudgetGate({ hubspot: budget }, { ...config.budgets, hubspot: windows }),
    });
    const answers = await Promise.all([getContacts(http), getContacts(http)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    const { remaining } = await budget.status(windows, Date.now());
    return { counted: 100 - remaining[0]! };
  }

  it("asks again for a grant that waited for its connection longer than the budget's arrival slack allows", async () => {
    // A 1 s window has a 100 ms slack: the second call's grant is stale after 50 ms, so it is
    // counted again before it is sent (the first grant is spent unused, erring on the safe side).
    expect((await twoCallsOneConnection(1_000)).counted).toBe(3);
  });

  it("keeps a grant that is sent within the slack: one count per call", async () => {
    // A 10 s window has a 1 s slack: 300 ms for the connection is well within it.
    expect((await twoCallsOneConnection(10_000)).counted).toBe(2);
  });
});

describe("HttpClient's order of calls", () => {
  it("sends an action's next call before other actions' first ones, so work that has begun finishes first", async () => {
    await setFaults("hubspot", { latencyMs: 100 });
    const config = getConfig(env);
    const limit = pLimit(1); // one connection: the order in which calls are sent is the order they wait in
    const clientFor = (action: string) =>
      new HttpClient({ transport: createTransport(env, config), audit: new AuditBuffer(), redactor: new Redactor([HUBSPOT_TOKEN]), context: { eventId: `evt_${action}`, entityKey: null, action, attempt: 1 }, limit });
    const get = (http: HttpClient, mark: string) =>
      http.call({ connector: "hubspot", method: "GET", url: `${SANDBOX_ORIGIN}/hubspot/crm/v3/objects/contacts?limit=1&mark=${mark}`, headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` }, schema: z.unknown() });
    const a = clientFor("a");
    const chain = get(a, "a1").then(() => get(a, "a2"));
    // Three other actions' first calls, queued while a1 is in flight.
    const others = ["b1", "c1", "d1"].map((mark) => get(clientFor(mark), mark));
    await Promise.all([chain, ...others]);
    const sent = (await vendorRequests("hubspot")).map((r) => /mark=(\w+)/.exec(r.path)?.[1]).filter(Boolean);
    // b1 and c1 were admitted while a1 was in flight (calls in flight and as many again); a2 then goes before d1.
    expect(sent).toEqual(["a1", "b1", "c1", "a2", "d1"]);
  });
});
