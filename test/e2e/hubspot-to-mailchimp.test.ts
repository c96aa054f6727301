/**
 * End to end: the bundled worker in Miniflare (real local queue with real retry delays, D1,
 * Durable Objects), HubSpot and Mailchimp answered by the fakes served as local HTTP servers,
 * and webhooks signed exactly as HubSpot signs them.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFakeHubSpot } from "../../src/sandbox/fake-hubspot";
import { createFakeMailchimp } from "../../src/sandbox/fake-mailchimp";
import type { FakeService } from "../../src/sandbox/fake-service";
import { startLocalWorker, type LocalWorker } from "../support/local-worker";
import { connectedVars, createContact, members, postHubSpot, until } from "../support/e2e";
import { itemWrites, type LoggedRequest } from "../support/requests";
import { mountFake, serveFetch, type ServedFetch } from "../support/serve-fetch";
import { subscriberHash } from "../../src/connectors/mailchimp";

const HUBSPOT_TOKEN = "pat-e2e-hubspot-token";
const CLIENT_SECRET = "e2e-hubspot-client-secret";
const MAILCHIMP_KEY = "abcdefabcdefabcdefabcdefabcdef12-us21";
const LIST_ID = "e2e-list";

let hubspot: FakeService<unknown>;
let mailchimp: FakeService<unknown>;
let servers: ServedFetch[] = [];
let worker: LocalWorker;

beforeAll(async () => {
  hubspot = createFakeHubSpot({ accessToken: HUBSPOT_TOKEN }) as FakeService<unknown>;
  mailchimp = createFakeMailchimp({ apiKey: MAILCHIMP_KEY, listIds: [LIST_ID] }) as FakeService<unknown>;
  servers = [await serveFetch(mountFake(hubspot)), await serveFetch(mountFake(mailchimp))];
  worker = await startLocalWorker({
    vars: connectedVars(servers[0]!.url, servers[1]!.url, {
      adminToken: "e2e-admin-token-0123456789",
      hubspotToken: HUBSPOT_TOKEN,
      hubspotClientSecret: CLIENT_SECRET,
      mailchimpKey: MAILCHIMP_KEY,
      mailchimpListId: LIST_ID,
      mailchimpUrlSecret: "e2e-mailchimp-url-secret",
    }),
  });
});

afterAll(async () => {
  await worker?.close();
  await Promise.all(servers.map((s) => s.close()));
});

beforeEach(async () => {
  for (const s of servers) await fetch(`${s.url}/_sandbox/reset`, { method: "POST" });
});

const createContactOf = (email: string, firstname: string, lastname: string) => createContact(servers[0]!.url, HUBSPOT_TOKEN, { email, firstname, lastname });

let eventId = 5_000_000;
const sendWebhook = (contactIds: string[]) =>
  postHubSpot(
    worker.url,
    CLIENT_SECRET,
    contactIds.map((objectId) => ({ eventId: eventId++, subscriptionId: 1, portalId: 62515, occurredAt: Date.now(), subscriptionType: "contact.creation", attemptNumber: 0, objectId: Number(objectId), changeSource: "CRM" })),
  );

async function mailchimpCalls(): Promise<LoggedRequest[]> {
  return ((await (await fetch(`${servers[1]!.url}/_sandbox/requests`)).json()) as { requests: LoggedRequest[] }).requests;
}

const audience = () => members(servers[1]!.url, LIST_ID);

describe("outside sandbox mode", () => {
  it("has no sandbox routes", async () => {
    const res = await fetch(`${worker.url}/sandbox/hubspot/crm/v3/objects/contacts`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  it("answers unknown_source for a webhook of an integration that is not configured", async () => {
    const res = await fetch(`${worker.url}/webhooks/shopify`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unknown_source");
  });

  it("reports its integrations on /health", async () => {
    const body = (await (await fetch(`${worker.url}/health`)).json()) as { status: string; sandbox: boolean; integrations: Record<string, string> };
    expect(body).toMatchObject({ status: "ok", sandbox: false, integrations: { hubspot: "enabled", mailchimp: "enabled" } });
    expect(body.integrations.shopify).toMatch(/^disabled: SHOPIFY_WEBHOOK_SECRET not set$/);
  });
});

describe("HubSpot contact -> Mailchimp member, end to end", () => {
  it("a signed webhook ends with the member subscribed in Mailchimp", async () => {
    const id = await createContactOf("Katherine.Johnson@Example.com", "Katherine", "Johnson");
    const res = await sendWebhook([id]);
    expect(res.status).toBe(202);
    await until(async () => (await audience()).length === 1, 15_000, "the member");
    expect((await audience())[0]).toMatchObject({
      email_address: "katherine.johnson@example.com",
      status: "subscribed",
      merge_fields: { FNAME: "Katherine", LNAME: "Johnson" },
    });
    const [event] = await worker.query<{ status: string }>("SELECT status FROM events");
    expect(event?.status).toBe("done");
  });

  it("with Mailchimp down for 10 s while 50 contacts arrive, all 50 are subscribed after it recovers, none twice", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push(await createContactOf(`outage${i}@example.com`, `First${i}`, `Last${i}`));
    await fetch(`${servers[1]!.url}/_sandbox/faults`, { method: "POST", body: JSON.stringify({ outageSeconds: 10 }), headers: { "content-type": "application/json" } });
    const outageEnds = Date.now() + 10_000;

    // Arriving over the outage, in HubSpot-style batches of up to 100 events, some alone.
    for (let i = 0; i < 50; i += 10) {
      expect((await sendWebhook(ids.slice(i, i + 10))).status).toBe(202);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    // Retries after 1 s and 5 s fall inside the outage; the 30 s retry (plus jitter) gets through.
    await until(async () => (await audience()).length === 50, 75_000, "all 50 members");
    // Member writes, one per member a call carried (PUTs alone, batch subscribes in bulk).
    const puts = itemWrites(await mailchimpCalls());
    const succeeded = puts.filter((c) => c.status === 200);
    const memberOf = (c: LoggedRequest) => (c.method === "PUT" ? c.path.split("/").pop()! : subscriberHash(String((c.body as { email_address: string }).email_address)));
    const perMember = new Map<string, number>();
    for (const c of succeeded) perMember.set(memberOf(c), (perMember.get(memberOf(c)) ?? 0) + 1);
    expect(perMember.size).toBe(50);
    expect([...perMember.values()].every((n) => n === 1)).toBe(true);
    expect(puts.some((c) => c.status === 503)).toBe(true);
    expect(Date.now()).toBeGreaterThan(outageEnds);
    for (const m of await audience()) expect(m.status).toBe("subscribed");
    const statuses = await worker.query<{ status: string; n: number }>("SELECT status, count(*) AS n FROM events GROUP BY status");
    expect(statuses).toEqual([{ status: "done", n: 51 }]);
  });
});
