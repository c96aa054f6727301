/**
 * The two-way contact sync end to end, with both vendors echoing everything: the bundled worker
 * in Miniflare, the HubSpot and Mailchimp fakes as local HTTP servers that POST their signed
 * webhooks to the worker for every change (Syncwire's own writes included), and a person's
 * changes made in the fakes (`X-Sandbox-Actor: user`). One story in order: each step checks the
 * end state in both systems and the exact calls Syncwire made for it, after the system is quiet.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFakeHubSpot } from "../../src/sandbox/fake-hubspot";
import { createFakeMailchimp, subscriberHash } from "../../src/sandbox/fake-mailchimp";
import type { FakeService } from "../../src/sandbox/fake-service";
import { startLocalWorker, type LocalWorker } from "../support/local-worker";
import { callName, connectedVars, crmContacts, members, trackingDispatcher, until, VendorLog, waitQuiet, type LoggedCall, type WebhookTracker } from "../support/e2e";
import { mountFake, serveFetch, type ServedFetch } from "../support/serve-fetch";

const HUBSPOT_TOKEN = "pat-e2e-two-way-hubspot-token";
const CLIENT_SECRET = "e2e-two-way-hubspot-client-secret";
const MAILCHIMP_KEY = "0a1b2c3d4e5f0a1b2c3d4e5f0a1b2c3d-us21";
const LIST_ID = "two-way-list";
const URL_SECRET = "e2e-two-way-mailchimp-url-secret";
const MEMBERS = `/3.0/lists/${LIST_ID}/members`;
const CONTACTS = "/crm/v3/objects/contacts";

const dispatchers: WebhookTracker[] = [trackingDispatcher(), trackingDispatcher()];
let servers: ServedFetch[] = [];
let worker: LocalWorker;
let crm: VendorLog;
let mail: VendorLog;

beforeAll(async () => {
  const hubspot = createFakeHubSpot({ accessToken: HUBSPOT_TOKEN, dispatch: dispatchers[0] }) as FakeService<unknown>;
  const mailchimp = createFakeMailchimp({ apiKey: MAILCHIMP_KEY, listIds: [LIST_ID], dispatch: dispatchers[1] }) as FakeService<unknown>;
  servers = [await serveFetch(mountFake(hubspot)), await serveFetch(mountFake(mailchimp))];
  worker = await startLocalWorker({
    vars: {
      ...connectedVars(servers[0]!.url, servers[1]!.url, {
        adminToken: "e2e-two-way-admin-token-0123",
        hubspotToken: HUBSPOT_TOKEN,
        hubspotClientSecret: CLIENT_SECRET,
        mailchimpKey: MAILCHIMP_KEY,
        mailchimpListId: LIST_ID,
        mailchimpUrlSecret: URL_SECRET,
      }),
      CRM_LOST_PROPERTY: "hs_lead_status",
      CRM_LOST_VALUE: "UNQUALIFIED",
      CRM_SUBSCRIPTION_PROPERTY: "syncwire_subscription",
      CONFLICT_POLICY: "latest-wins",
    },
  });
  crm = new VendorLog(servers[0]!.url, `Bearer ${HUBSPOT_TOKEN}`);
  mail = new VendorLog(servers[1]!.url, `Basic ${Buffer.from(`anystring:${MAILCHIMP_KEY}`).toString("base64")}`);
  // HubSpot keeps webhook settings in the app's configuration (the sandbox's control route);
  // Mailchimp has an API for them.
  const hooks = await fetch(`${servers[0]!.url}/_sandbox/webhooks`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      targetUrl: `${worker.url}/webhooks/hubspot`,
      clientSecret: CLIENT_SECRET,
      subscriptions: [
        { subscriptionType: "contact.creation" },
        { subscriptionType: "contact.deletion" },
        ...["email", "firstname", "lastname", "hs_lead_status", "syncwire_subscription"].map((propertyName) => ({ subscriptionType: "contact.propertyChange", propertyName })),
      ],
    }),
  });
  expect(hooks.status).toBe(200);
  const all = { subscribe: true, unsubscribe: true, profile: true, cleaned: true, upemail: true, campaign: true };
  await mail.user("POST", `/3.0/lists/${LIST_ID}/webhooks`, { url: `${worker.url}/webhooks/mailchimp/${URL_SECRET}`, events: all, sources: { user: true, admin: true, api: true } });
});

afterAll(async () => {
  await worker?.close();
  await Promise.all(servers.map((s) => s.close()));
});

const finished = async (ids: string[]) =>
  (await worker.query<{ n: number }>("SELECT count(*) AS n FROM events WHERE status IN ('done', 'ignored', 'invalid', 'dead') AND id IN (SELECT value FROM json_each(?))", JSON.stringify(ids)))[0]?.n ?? 0;
const quiet = (capMs = 20_000) => waitQuiet({ logs: [crm, mail], dispatchers, finished, capMs });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a step: the person's change, then waits for `done` and for quiet; Syncwire's calls meanwhile. */
async function step(change: () => Promise<unknown>, done: () => Promise<boolean>, what: string) {
  // A change within WRITE_SKEW_MS (2 s) of Syncwire's own write to that field may have been
  // overwritten by it, so Syncwire would send it once more to be sure: people are slower.
  const lastCall = Math.max(0, ...[...(await crm.since(0)), ...(await mail.since(0))].map((c) => c.at));
  await sleep(lastCall + 2_500 - Date.now());
  const marks = { crm: await crm.mark(), mail: await mail.mark() };
  const seen = new Set(dispatchers.flatMap((d) => [...d.accepted]));
  await change();
  await until(async () => await done(), 20_000, what);
  await quiet();
  const calls = { crm: await crm.since(marks.crm), mail: await mail.since(marks.mail) };
  const ids = dispatchers.flatMap((d) => [...d.accepted]).filter((id) => !seen.has(id));
  const rows = await worker.query<{ source: string; type: string; status: string }>("SELECT source, type, status FROM events WHERE id IN (SELECT value FROM json_each(?)) ORDER BY received_at", JSON.stringify(ids));
  // Every webhook of the step (the person's change and each echo) was processed to the end.
  expect(rows.filter((r) => r.status !== "done")).toEqual([]);
  const events = rows.map((r) => `${r.source} ${r.type}`).sort();
  if (process.env.E2E_VERBOSE) console.log(`[two-way] ${what}\n  hubspot:   ${show(calls.crm)}\n  mailchimp: ${show(calls.mail)}\n  events: ${events.join(", ")}`);
  return { ...calls, events };
}
const show = (calls: LoggedCall[]) => calls.map((c) => `${callName(c)} ${c.status} ${JSON.stringify(c.body)}`).join("\n             ") || "(none)";
const names = (calls: LoggedCall[]) => calls.map(callName);
const hs = (type: string) => `hubspot contact.${type}`;

const uid = randomUUID().slice(0, 8);
const addr = (name: string) => `${name}.${uid}@example.com`;
const contact = async (id: string) => (await crmContacts(servers[0]!.url)).find((c) => c.id === id)!.properties;
const contactByEmail = async (email: string) => (await crmContacts(servers[0]!.url)).find((c) => c.properties.email === email);
const member = async (email: string) => (await members(servers[1]!.url, LIST_ID)).find((m) => m.email_address === email);
const crmCreate = async (properties: Record<string, string>) => ((await crm.user("POST", CONTACTS, { properties })) as { id: string }).id;
const crmPatch = (id: string, properties: Record<string, string>) => crm.user("PATCH", `${CONTACTS}/${id}`, { properties });
const memberPatch = (email: string, body: Record<string, unknown>) => mail.user("PATCH", `${MEMBERS}/${subscriberHash(email)}`, body);

describe("two-way sync, both vendors echoing every change", () => {
  const ada = { id: "", email: addr("ada") };
  const grace = { id: "", email: addr("grace") };
  const walkIn = { id: "", email: addr("walkin") };

  it("1. a contact created in the CRM is subscribed in the list, with names", async () => {
    const calls = await step(async () => (ada.id = await crmCreate({ email: ada.email, firstname: "Ada", lastname: "Lovelace" })), async () => (await member(ada.email)) !== undefined, "1. CRM creation");
    expect(names(calls.crm)).toEqual([`GET ${CONTACTS}/${ada.id}`]);
    expect(names(calls.mail)).toEqual([`PUT ${MEMBERS}/${subscriberHash(ada.email)}`]);
    expect(calls.mail[0]!.body).toMatchObject({ email_address: ada.email, status_if_new: "subscribed", merge_fields: { FNAME: "Ada", LNAME: "Lovelace" } });
    // The creation with its three properties, and Mailchimp's subscribe webhook coming back.
    expect(calls.events).toEqual([hs("creation"), ...Array(3).fill(hs("propertyChange")), "mailchimp subscribe"]);
    expect(await member(ada.email)).toMatchObject({ status: "subscribed", merge_fields: { FNAME: "Ada", LNAME: "Lovelace" } });
  });

  it("2. an email change in the CRM moves the same member", async () => {
    const next = addr("ada.moved");
    const calls = await step(() => crmPatch(ada.id, { email: next }), async () => (await member(next)) !== undefined, "2. CRM email change");
    expect(calls.crm).toEqual([]);
    expect(names(calls.mail)).toEqual([`PATCH ${MEMBERS}/${subscriberHash(ada.email)}`]);
    expect(calls.mail[0]!.body).toEqual({ email_address: next });
    expect(calls.events).toEqual([hs("propertyChange"), "mailchimp upemail"]);
    expect(await member(ada.email)).toBeUndefined();
    expect(await member(next)).toMatchObject({ status: "subscribed", merge_fields: { FNAME: "Ada", LNAME: "Lovelace" } });
    expect((await contact(ada.id)).email).toBe(next);
    ada.email = next;
  });

  it("3. a first-name change in the CRM is one member PATCH; the profile echo writes nothing", async () => {
    const calls = await step(() => crmPatch(ada.id, { firstname: "Augusta" }), async () => (await member(ada.email))?.merge_fields.FNAME === "Augusta", "3. CRM first name");
    expect(calls.crm).toEqual([]);
    expect(names(calls.mail)).toEqual([`PATCH ${MEMBERS}/${subscriberHash(ada.email)}`]);
    expect(calls.mail[0]!.body).toEqual({ merge_fields: { FNAME: "Augusta" } });
    expect(calls.events).toEqual([hs("propertyChange"), "mailchimp profile"]);
    expect((await contact(ada.id)).firstname).toBe("Augusta");
  });

  it("4. a contact marked lost in the CRM is unsubscribed", async () => {
    const calls = await step(() => crmPatch(ada.id, { hs_lead_status: "UNQUALIFIED" }), async () => (await member(ada.email))?.status === "unsubscribed", "4. CRM lost");
    expect(calls.crm).toEqual([]);
    expect(names(calls.mail)).toEqual([`PATCH ${MEMBERS}/${subscriberHash(ada.email)}`]);
    expect(calls.mail[0]!.body).toEqual({ status: "unsubscribed" });
    expect(calls.events).toEqual([hs("propertyChange"), "mailchimp unsubscribe"]);
    expect((await contact(ada.id)).hs_lead_status).toBe("UNQUALIFIED");
    expect((await contact(ada.id)).syncwire_subscription).toBeUndefined();
  });

  it("5. an unsubscribe in the list reaches the CRM, and the CRM saying subscribed again does not resubscribe", async () => {
    const created = await step(async () => (grace.id = await crmCreate({ email: grace.email, firstname: "Grace", lastname: "Hopper" })), async () => (await member(grace.email)) !== undefined, "5a. second contact");
    expect(names(created.crm)).toEqual([`GET ${CONTACTS}/${grace.id}`]);
    expect(names(created.mail)).toEqual([`PUT ${MEMBERS}/${subscriberHash(grace.email)}`]);
    expect(created.mail[0]!.body).toMatchObject({ email_address: grace.email, status_if_new: "subscribed", merge_fields: { FNAME: "Grace", LNAME: "Hopper" } });
    expect(created.events).toEqual([hs("creation"), ...Array(3).fill(hs("propertyChange")), "mailchimp subscribe"]);

    const unsub = await step(() => memberPatch(grace.email, { status: "unsubscribed" }), async () => (await contact(grace.id)).syncwire_subscription === "unsubscribed", "5b. unsubscribe in Mailchimp");
    expect(names(unsub.crm)).toEqual([`PATCH ${CONTACTS}/${grace.id}`]);
    expect(unsub.crm[0]!.body).toEqual({ properties: { syncwire_subscription: "unsubscribed" } });
    expect(unsub.mail).toEqual([]);
    expect(unsub.events).toEqual([hs("propertyChange"), "mailchimp unsubscribe"]);

    const back = await step(() => crmPatch(grace.id, { syncwire_subscription: "subscribed" }), async () => true, "5c. CRM subscribed again");
    expect(back).toEqual({ crm: [], mail: [], events: [hs("propertyChange")] });
    expect(await member(grace.email)).toMatchObject({ status: "unsubscribed" });
    expect((await contact(grace.id)).syncwire_subscription).toBe("subscribed");
  });

  it("6. an address change in Mailchimp (upemail) reaches the CRM", async () => {
    const next = addr("grace.new");
    const calls = await step(() => memberPatch(grace.email, { email_address: next }), async () => (await contact(grace.id)).email === next, "6. Mailchimp upemail");
    expect(names(calls.crm)).toEqual([`PATCH ${CONTACTS}/${grace.id}`]);
    expect(calls.crm[0]!.body).toEqual({ properties: { email: next } });
    expect(calls.mail).toEqual([]);
    expect(calls.events).toEqual([hs("propertyChange"), "mailchimp upemail"]);
    expect(await member(next)).toMatchObject({ status: "unsubscribed" });
    grace.email = next;
  });

  it("7. a last-name change in Mailchimp reaches the CRM", async () => {
    const calls = await step(() => memberPatch(grace.email, { merge_fields: { LNAME: "Murray" } }), async () => (await contact(grace.id)).lastname === "Murray", "7. Mailchimp profile");
    expect(names(calls.crm)).toEqual([`PATCH ${CONTACTS}/${grace.id}`]);
    expect(calls.crm[0]!.body).toEqual({ properties: { lastname: "Murray" } });
    expect(calls.mail).toEqual([]);
    expect(calls.events).toEqual([hs("propertyChange"), "mailchimp profile"]);
    expect(await member(grace.email)).toMatchObject({ status: "unsubscribed", merge_fields: { FNAME: "Grace", LNAME: "Murray" } });
  });

  it("8. a subscribe in Mailchimp of an unknown address creates the CRM contact", async () => {
    const body = { email_address: walkIn.email, status_if_new: "subscribed", merge_fields: { FNAME: "Walk", LNAME: "In" } };
    const calls = await step(() => mail.user("PUT", `${MEMBERS}/${subscriberHash(walkIn.email)}`, body), async () => (await contactByEmail(walkIn.email)) !== undefined, "8. Mailchimp subscribe of a stranger");
    walkIn.id = (await contactByEmail(walkIn.email))!.id;
    // The creation webhook coming back makes Syncwire read the contact (a creation carries no values), and write nothing.
    expect(names(calls.crm)).toEqual([`GET ${CONTACTS}/${encodeURIComponent(walkIn.email)}`, `POST ${CONTACTS}`, `GET ${CONTACTS}/${walkIn.id}`]);
    expect(calls.crm[0]!.status).toBe(404);
    expect(calls.crm[1]).toMatchObject({ status: 201, body: { properties: { email: walkIn.email, firstname: "Walk", lastname: "In", syncwire_subscription: "subscribed" } } });
    expect(calls.mail).toEqual([]);
    expect(calls.events).toEqual([hs("creation"), ...Array(4).fill(hs("propertyChange")), "mailchimp subscribe"]);
    expect(await contact(walkIn.id)).toMatchObject({ email: walkIn.email, firstname: "Walk", lastname: "In", syncwire_subscription: "subscribed" });
    expect(await member(walkIn.email)).toMatchObject({ status: "subscribed", merge_fields: { FNAME: "Walk", LNAME: "In" } });
  });

  it("9. a contact deleted in the CRM is archived in the list", async () => {
    const calls = await step(() => crm.user("DELETE", `${CONTACTS}/${ada.id}`), async () => (await member(ada.email))?.status === "archived", "9. CRM deletion");
    expect(calls.crm).toEqual([]);
    expect(names(calls.mail)).toEqual([`DELETE ${MEMBERS}/${subscriberHash(ada.email)}`]);
    expect(calls.events).toEqual([hs("deletion")]); // Mailchimp sends no webhook for an archive
    expect((await crmContacts(servers[0]!.url)).find((c) => c.id === ada.id)?.archived).toBe(true);
  });

  it("10. at the end: quiet, every event processed, one member per contact", async () => {
    await quiet(5_000);
    const marks = { crm: await crm.mark(), mail: await mail.mark() };
    await sleep(3_000);
    expect({ crm: await crm.since(marks.crm), mail: await mail.since(marks.mail) }).toEqual({ crm: [], mail: [] });
    for (const d of dispatchers) expect(d.refused).toEqual([]);
    const statuses = await worker.query<{ status: string }>("SELECT DISTINCT status FROM events");
    expect(statuses.map((s) => s.status).sort()).toEqual(["done"]);
    // Every contact the CRM has (and had) is exactly one member, at its current address.
    const list = await members(servers[1]!.url, LIST_ID);
    expect(list.map((m) => [m.email_address, m.status]).sort()).toEqual([[ada.email, "archived"], [grace.email, "unsubscribed"], [walkIn.email, "subscribed"]].sort());
    const live = (await crmContacts(servers[0]!.url)).filter((c) => !c.archived);
    expect(live.map((c) => [c.id, c.properties.email]).sort()).toEqual([[grace.id, grace.email], [walkIn.id, walkIn.email]].sort());
  });
});
