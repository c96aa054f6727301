/**
 * Issue 5's cases end to end: the bundled worker in Miniflare (real local queue, D1, R2),
 * vendors answered by the fakes as local HTTP servers, webhooks signed independently of the
 * product (test/support/e2e.ts), and the worker's own log lines captured.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFakeHubSpot } from "../../src/sandbox/fake-hubspot";
import { createFakeMailchimp } from "../../src/sandbox/fake-mailchimp";
import type { FakeService } from "../../src/sandbox/fake-service";
import { startLocalWorker, type LocalWorker } from "../support/local-worker";
import { connectedVars, createContact, members, postHubSpot, until } from "../support/e2e";
import { mountFake, serveFetch, type ServedFetch } from "../support/serve-fetch";

const HUBSPOT_TOKEN = "pat-e2e-hardening-hubspot-token";
const CLIENT_SECRET = "e2e-hardening-hubspot-client-secret";
const MAILCHIMP_KEY = "fedcbafedcbafedcbafedcbafedcba98-us21";
const ADMIN_TOKEN = "e2e-hardening-admin-token-0123";
const LIST_ID = "hardening-list";

let hubspot: FakeService<unknown>;
let servers: ServedFetch[] = [];
let worker: LocalWorker;
const logs: string[] = [];
/** When set, the Mailchimp server answers every call 401 quoting the credentials it was sent, as a careless vendor might. */
let echoCredentials = false;

beforeAll(async () => {
  hubspot = createFakeHubSpot({ accessToken: HUBSPOT_TOKEN }) as FakeService<unknown>;
  const mailchimp = createFakeMailchimp({ apiKey: MAILCHIMP_KEY, listIds: [LIST_ID] }) as FakeService<unknown>;
  const mailchimpHandler = mountFake(mailchimp);
  servers = [
    await serveFetch(mountFake(hubspot)),
    await serveFetch(async (request) => {
      if (!echoCredentials || request.url.includes("/_sandbox/")) return mailchimpHandler(request);
      const authorization = request.headers.get("authorization") ?? "";
      const key = atob(authorization.replace(/^Basic /, "")).split(":")[1] ?? "";
      return Response.json({ title: "API Key Invalid", status: 401, detail: `Your API key ${key} (sent as ${authorization}) may be invalid` }, { status: 401 });
    }),
  ];
  worker = await startLocalWorker({
    logs,
    vars: connectedVars(servers[0]!.url, servers[1]!.url, {
      adminToken: ADMIN_TOKEN,
      hubspotToken: HUBSPOT_TOKEN,
      hubspotClientSecret: CLIENT_SECRET,
      mailchimpKey: MAILCHIMP_KEY,
      mailchimpListId: LIST_ID,
      mailchimpUrlSecret: "e2e-hardening-mailchimp-url-secret",
    }),
  });
});

afterAll(async () => {
  await worker?.close();
  await Promise.all(servers.map((s) => s.close()));
});

const createZoe = (email: string) => createContact(servers[0]!.url, HUBSPOT_TOKEN, { email, firstname: "Zoë", lastname: "Ångström" });
const sendHubSpot = (events: Record<string, unknown>[], base = worker.url) => postHubSpot(base, CLIENT_SECRET, events);

let eventId = 7_000_000;
const created = (objectId: string, extra: Record<string, unknown> = {}) => ({
  eventId: eventId++, subscriptionId: 1, portalId: 62515, occurredAt: Date.now(), subscriptionType: "contact.creation", attemptNumber: 0, objectId: Number(objectId), changeSource: "CRM", ...extra,
});

describe("deliveries near the platform's limits", () => {
  it("a HubSpot batch of 100 non-ASCII events over 256 KB of UTF-8, one of them over a queue message's 128 KB, is accepted and every event processed", async () => {
    const id = await createZoe("zoe.big@example.com");
    // ~3,600 UTF-8 bytes each in ~1,300 UTF-16 units: 100 of them pass 256 KB only when counted in bytes.
    const text = "Grüße aus Köln, 東京 🎉 ".repeat(60);
    const events = Array.from({ length: 99 }, (_, i) => created(String(900_000 + i), { subscriptionType: "contact.propertyChange", propertyName: "notes", propertyValue: text }));
    events.push(created(id, { notes: "€".repeat(60_000) }));
    const body = JSON.stringify(events);
    expect(new TextEncoder().encode(body).byteLength).toBeGreaterThan(256_000);
    expect(new TextEncoder().encode(body).byteLength).toBeLessThan(1024 * 1024);

    const res = await sendHubSpot(events);
    expect(res.status).toBe(202);
    const { eventIds } = (await res.json()) as { eventIds: string[] };
    expect(eventIds).toHaveLength(100);
    await until(async () => {
      const rows = await worker.query<{ n: number }>("SELECT count(*) AS n FROM events WHERE status IN ('done', 'ignored') AND id IN (SELECT value FROM json_each(?))", JSON.stringify(eventIds));
      return rows[0]?.n === 100;
    }, 20_000, "all 100 events processed");
    const [big] = await worker.query<{ status: string; payload_ref: string | null }>("SELECT status, payload_ref FROM events WHERE id = ?", eventIds[99]);
    expect(big).toMatchObject({ status: "done", payload_ref: `payloads/${eventIds[99]}.json` });
    expect((await members(servers[1]!.url, LIST_ID)).map((m) => m.email_address)).toContain("zoe.big@example.com");
  });
});

describe("a vendor that quotes the credentials back", () => {
  it("leaves no secret in any D1 row or in the worker's log lines", async () => {
    const id = await createZoe("echo@example.com");
    echoCredentials = true;
    try {
      const res = await sendHubSpot([created(id)]);
      expect(res.status).toBe(202);
      const [eventIdOf] = ((await res.json()) as { eventIds: string[] }).eventIds;
      await until(async () => (await worker.query<{ status: string }>("SELECT status FROM events WHERE id = ?", eventIdOf))[0]?.status === "dead", 15_000, "the event dead-lettered");
    } finally {
      echoCredentials = false;
    }
    const basic = `Basic ${Buffer.from(`syncwire:${MAILCHIMP_KEY}`).toString("base64")}`;
    const secrets = [MAILCHIMP_KEY, basic, basic.slice(6), HUBSPOT_TOKEN, CLIENT_SECRET, ADMIN_TOKEN];
    const tables: Record<string, unknown[]> = {};
    for (const table of ["events", "actions", "dead_letters", "audit_log"]) tables[table] = await worker.query(`SELECT * FROM ${table}`);
    const stored = JSON.stringify(tables);
    // The failure is still legible: what the vendor said, with the secret cut out.
    expect(stored).toContain("Your API key [REDACTED]");
    await until(async () => logs.join("").includes('"step":"dead_lettered"'), 5_000, "the dead_lettered log line");
    const printed = logs.join("");
    for (const secret of secrets) {
      expect(stored).not.toContain(secret);
      expect(printed).not.toContain(secret);
    }
  });
});

describe("a configuration that cannot run", () => {
  let broken: LocalWorker;
  const brokenLogs: string[] = [];
  beforeAll(async () => {
    broken = await startLocalWorker({
      logs: brokenLogs,
      vars: {
        SANDBOX: "false",
        ADMIN_TOKEN: "short",
        HUBSPOT_BASE_URL: servers[0]!.url,
        HUBSPOT_ACCESS_TOKEN: HUBSPOT_TOKEN,
        HUBSPOT_CLIENT_SECRET: CLIENT_SECRET,
        RETRY_SCHEDULE: "soon",
      },
    });
  });
  afterAll(async () => broken?.close());

  it("/health answers 503 misconfigured naming the keys, never the values; webhooks are queued and wait for the fix", async () => {
    const res = await fetch(`${broken.url}/health`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; issues: { key: string }[] };
    expect(body.status).toBe("misconfigured");
    expect(body.issues.map((i) => i.key).sort()).toEqual(["ADMIN_TOKEN", "RETRY_SCHEDULE"]);
    expect(JSON.stringify(body)).not.toMatch(/short|soon/);
    // HubSpot's own keys are fine: the provider gets its 202, and the event waits on the queue.
    const webhook = await sendHubSpot([created("1")], broken.url);
    expect(webhook.status).toBe(202);
    // The consumer has had it, and could not run: it says so, records nothing, and retries later.
    await until(async () => brokenLogs.join("").includes('"step":"config_error","queue":"syncwire-events"'), 15_000, "the consumer's config_error line");
    expect(await broken.query("SELECT id FROM events")).toEqual([]);
    expect(await broken.query("SELECT id FROM dead_letters")).toEqual([]);
  });
});
