/**
 * The contact sync's bulk lanes (src/pipeline/bulk.ts, src/flows/contact-sync/lanes.ts) through
 * the queue handler, the Durable Objects and the built-in fakes: many contacts of one queue batch
 * share HubSpot batch/read and batch/update and Mailchimp's batch subscribe, and each action still
 * settles on its own (CONTRACT 4.11).
 *
 * Covered: a member the batch subscribe refuses fails alone and is written alone once fixed; an
 * existing unsubscribed member is refused by the batch (ERROR_CONTACT_EXISTS), upserted alone with
 * status_if_new and never resubscribed; the history rule of batch/read (a second read with
 * propertiesWithHistory for changed contacts only); a batch/update refused as a whole (409) is
 * halved until the bad input stands alone; a bulk call's single audit row names every event it
 * served; BULK_CALLS=false sends one GET and one PUT per contact.
 *
 * The fakes share one address check (EMAIL_RE in src/sandbox/fake-service.ts), so no address the
 * fake CRM stores is refused by the fake Mailchimp: the refused address reaches the sync the way a
 * HubSpot webhook reports a value (contact.propertyChange), as an address HubSpot accepted would.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { subscriberHash } from "../../src/connectors/mailchimp";
import { pipelineDeps } from "../../src/pipeline/consumer";
import { replayEvents } from "../../src/pipeline/dead-letters";
import { database } from "../../src/pipeline/ledger";
import type { EventMessage } from "../../src/pipeline/message";
import { r2PayloadStore } from "../../src/pipeline/payloads";
import { crmChanged, crmCreated, emailChanged, emailProfile } from "../support/contacts";
import { actionRow, capturingQueue, consume, deliver } from "../support/messages";
import { crmContact, deliverUntilSettled, unique } from "../support/sync";
import {
  createCrmContact,
  HUBSPOT_TOKEN,
  itemWrites,
  LIST_ID,
  MAILCHIMP_KEY,
  mailchimpMember,
  resetSandbox,
  sandboxFetch,
  vendorRequests,
  type LoggedRequest,
} from "../support/sandbox";

beforeEach(resetSandbox);

const BATCH = `/3.0/lists/${LIST_ID}`;
const MEMBERS = `${BATCH}/members`;
const CONTACTS = "/crm/v3/objects/contacts";
const mailchimpHeaders = { authorization: `Basic ${btoa(`test:${MAILCHIMP_KEY}`)}`, "content-type": "application/json", "x-sandbox-actor": "user" };
const call = (r: LoggedRequest) => `${r.method} ${r.path.split("?")[0]}`;
const ids = (messages: EventMessage[]) => messages.map((m) => m.event.id);

/** The vendor calls made while `run` ran (the fakes' request logs). */
async function callsDuring(run: () => Promise<unknown>): Promise<{ hubspot: LoggedRequest[]; mailchimp: LoggedRequest[] }> {
  const before = { hubspot: (await vendorRequests("hubspot")).length, mailchimp: (await vendorRequests("mailchimp")).length };
  await run();
  return { hubspot: (await vendorRequests("hubspot")).slice(before.hubspot), mailchimp: (await vendorRequests("mailchimp")).slice(before.mailchimp) };
}

async function newContacts(n: number, name: string) {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const email = unique(`${name}${i}`);
      return { id: await createCrmContact({ email, firstname: `${name}${i}`, lastname: "Bulk" }), email };
    }),
  );
}

/** A person's change in the CRM or the email platform (its webhook is delivered by the test). */
async function crmPatch(id: string, properties: Record<string, string>): Promise<void> {
  const res = await sandboxFetch(`/hubspot${CONTACTS}/${id}`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${HUBSPOT_TOKEN}`, "content-type": "application/json", "x-sandbox-actor": "user" },
    body: JSON.stringify({ properties }),
  });
  if (!res.ok) throw new Error(`crm PATCH: ${res.status}`);
}
async function memberWrite(method: "PUT" | "PATCH", email: string, body: Record<string, unknown>): Promise<void> {
  const res = await sandboxFetch(`/mailchimp${MEMBERS}/${subscriberHash(email)}`, { method, headers: mailchimpHeaders, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`member ${method}: ${res.status}`);
}

/** Audit rows of the calls made for these events (a bulk call's row names them in `served`). */
async function auditRows(eventIds: string[]) {
  const { results } = await env.DB.prepare(
    `SELECT event_id, entity_key, connector, method, url, status, served FROM audit_log
     WHERE event_id IN (SELECT value FROM json_each(?1)) OR EXISTS (SELECT 1 FROM json_each(audit_log.served) s WHERE s.value IN (SELECT value FROM json_each(?1)))`,
  )
    .bind(JSON.stringify(eventIds))
    .all<{ event_id: string; entity_key: string | null; connector: string; method: string; url: string; status: number; served: string | null }>();
  return results;
}

/** Replays the events through a queue the test holds, then delivers what it was given as one batch. */
async function replay(eventIds: string[], options: { all?: boolean; with?: EventMessage[] } = {}) {
  const { queue, sent } = capturingQueue();
  await replayEvents(database(env.DB), queue, r2PayloadStore(env.PAYLOADS), eventIds, Date.now(), { all: options.all === true });
  expect(sent).toHaveLength(eventIds.length);
  return deliver([...sent.map((s) => s.body), ...(options.with ?? [])]);
}

describe("a member the batch subscribe refuses", () => {
  it("fails that contact's action alone; once the CRM has a good address, only that member is written", async () => {
    const contacts = await newContacts(4, "ok");
    const bad = contacts[3]!;
    const refused = `${bad.email.split("@")[0]}@localhost`;
    const batch = [...(await Promise.all(contacts.map((c) => crmCreated(c.id, Date.now() - 60_000)))), await crmChanged(bad.id, "email", refused)];
    const calls = await callsDuring(() => deliver(batch));

    expect(calls.hubspot.map(call)).toEqual([`POST ${CONTACTS}/batch/read`]);
    expect(calls.mailchimp.map(call)).toEqual([`POST ${BATCH}`]);
    const sentMembers = (calls.mailchimp[0]!.body as { members: { email_address: string }[] }).members.map((m) => m.email_address).sort();
    expect(sentMembers).toEqual([...contacts.slice(0, 3).map((c) => c.email), refused].sort());
    for (const c of contacts.slice(0, 3)) expect(await mailchimpMember(c.email)).toMatchObject({ status: "subscribed" });
    for (const m of batch.slice(0, 3)) expect(await actionRow(m.event.id)).toMatchObject({ state: "done" });
    const badEvents = batch.slice(3);
    for (const m of badEvents) {
      const row = await actionRow(m.event.id);
      expect(row).toMatchObject({ state: "dead" });
      expect(row!.last_error).toContain(`mailchimp refused ${refused}`);
      expect(row!.last_error).toContain("Please provide a valid email address.");
    }
    expect(await mailchimpMember(refused)).toBeNull();

    // The CRM gets a good address; replaying the dead events writes that one member and no other.
    const fixed = unique("fixed");
    await crmPatch(bad.id, { email: fixed });
    const again = await callsDuring(() => replay(ids(badEvents)));
    const writes = itemWrites(again.mailchimp);
    expect(writes.map((w) => (w.body as { email_address?: string }).email_address)).toEqual([fixed]);
    expect(await mailchimpMember(fixed)).toMatchObject({ status: "subscribed" });
    expect((await crmContact(bad.id)).email).toBe(fixed);
    for (const m of badEvents) expect(await actionRow(m.event.id)).toMatchObject({ state: "done" });
  });
});

describe("a member who unsubscribed before the CRM had the contact", () => {
  it("is refused by the batch subscribe, upserted alone with status_if_new, and stays unsubscribed", async () => {
    const gone = unique("gone");
    await memberWrite("PUT", gone, { email_address: gone, status_if_new: "unsubscribed" });
    const others = await newContacts(2, "fresh");
    const goneId = await createCrmContact({ email: gone, firstname: "Gone", lastname: "Already" });
    const batch = await Promise.all([...others.map((c) => c.id), goneId].map((id) => crmCreated(id)));
    const calls = await callsDuring(() => deliver(batch));

    expect(calls.mailchimp.map(call)).toEqual([`POST ${BATCH}`, `PUT ${MEMBERS}/${subscriberHash(gone)}`]);
    expect(calls.mailchimp[0]!.body).toMatchObject({ update_existing: false });
    expect(calls.mailchimp[1]!.body).toMatchObject({ email_address: gone, status_if_new: "subscribed" });
    expect(calls.mailchimp[1]!.body).not.toHaveProperty("status");
    expect(await mailchimpMember(gone)).toMatchObject({ status: "unsubscribed" });
    for (const c of others) expect(await mailchimpMember(c.email)).toMatchObject({ status: "subscribed" });
    for (const m of batch.slice(0, 2)) expect(await actionRow(m.event.id)).toMatchObject({ state: "done" });
    // The upsert's answer revealed the unsubscribe: the contact plans again (its CRM learns it), writing no member.
    await env.DB.prepare("UPDATE actions SET next_attempt_at = 0 WHERE event_id = ?").bind(batch[2]!.event.id).run();
    const settle = await callsDuring(() => deliverUntilSettled([batch[2]!]));
    expect(itemWrites(settle.mailchimp)).toEqual([]);
    expect(await actionRow(batch[2]!.event.id)).toMatchObject({ state: "done" });
    expect((await crmContact(goneId)).syncwire_subscription).toBe("unsubscribed");

    // The lone PUT is audited for that contact alone; the bulk calls for all three.
    const audit = await auditRows([batch[2]!.event.id]);
    const lone = audit.filter((r) => r.method === "PUT");
    expect(lone.map((r) => [r.event_id, r.entity_key, r.served])).toEqual([[batch[2]!.event.id, `contact:${goneId}`, null]]);
    for (const r of audit.filter((r) => r.method === "POST")) expect(JSON.parse(r.served!).sort()).toEqual(ids(batch).sort());

    // Later: a name change and a new creation event, then a replay of everything, each beside a new contact.
    const [late, later] = await newContacts(2, "late");
    await crmPatch(goneId, { firstname: "Still" });
    const after = await callsDuring(async () => {
      await deliver([await crmChanged(goneId, "firstname", "Still"), await crmCreated(goneId), await crmCreated(late!.id)]);
      await replay([batch[2]!.event.id], { all: true, with: [await crmCreated(later!.id)] });
    });
    const toGone = itemWrites(after.mailchimp).filter((w) => JSON.stringify(w.body).includes(gone) || w.path.includes(subscriberHash(gone)));
    expect(toGone.length).toBeGreaterThan(0);
    for (const w of toGone) expect(w.body).not.toMatchObject({ status: "subscribed" });
    expect(after.mailchimp.some((r) => (r.body as { update_existing?: boolean } | null)?.update_existing === true && JSON.stringify(r.body).includes('"subscribed"'))).toBe(false);
    expect(await mailchimpMember(gone)).toMatchObject({ status: "unsubscribed", merge_fields: expect.objectContaining({ FNAME: "Still" }) });
    for (const c of [late!, later!]) expect(await mailchimpMember(c.email)).toMatchObject({ status: "subscribed" });
  });
});

describe("the history rule of batch/read", () => {
  it("reads histories again only for the contact changed since its creation", async () => {
    const [same, changed] = await newContacts(2, "hist");
    await new Promise((r) => setTimeout(r, 5));
    await crmPatch(changed!.id, { lastname: "Changed" });
    const calls = await callsDuring(async () => deliver([await crmCreated(same!.id), await crmCreated(changed!.id)]));

    const reads = calls.hubspot.filter((r) => call(r) === `POST ${CONTACTS}/batch/read`);
    expect(calls.hubspot).toHaveLength(2);
    expect(reads).toHaveLength(2);
    const [first, second] = reads.map((r) => r.body as { inputs: { id: string }[]; propertiesWithHistory?: string[] });
    expect(first!.propertiesWithHistory).toBeUndefined();
    expect(first!.inputs.map((i) => i.id).sort()).toEqual([same!.id, changed!.id].sort());
    expect(second!.inputs).toEqual([{ id: changed!.id }]);
    expect(second!.propertiesWithHistory).toEqual(expect.arrayContaining(["email", "firstname", "lastname"]));
    expect(await mailchimpMember(changed!.email)).toMatchObject({ merge_fields: expect.objectContaining({ LNAME: "Changed" }) });
  });
});

describe("a batch/update refused as a whole", () => {
  it("halves until the bad input stands alone: only its action fails", async () => {
    const synced = await newContacts(4, "upd");
    const created = await Promise.all(synced.map((c) => crmCreated(c.id, Date.now() - 60_000)));
    await deliver(created);
    for (const m of created) expect(await actionRow(m.event.id)).toMatchObject({ state: "done" });
    // Someone else in the CRM (never synced) has the address the first member moves to.
    const taken = unique("taken");
    const ownerId = await createCrmContact({ email: taken });
    const [a, ...rest] = synced as [(typeof synced)[0], ...typeof synced];
    await memberWrite("PATCH", a.email, { email_address: taken });
    for (const c of rest) await memberWrite("PATCH", c.email, { merge_fields: { LNAME: "Renamed" } });
    const events = [await emailChanged(a.email, taken), ...(await Promise.all(rest.map((c, i) => emailProfile(c.email, `upd${i + 1}`, "Renamed"))))];
    const calls = await callsDuring(() => deliver(events));

    const batches = calls.hubspot.filter((r) => call(r) === `POST ${CONTACTS}/batch/update`);
    const singles = calls.hubspot.filter((r) => r.method === "PATCH");
    // 4 inputs: the whole (409), the half with the bad one (409), the good half (200), then two alone.
    expect(batches.map((r) => (r.body as { inputs: unknown[] }).inputs.length)).toEqual([4, 2, 2]);
    expect(batches.map((r) => r.status).sort()).toEqual([200, 409, 409]);
    expect(singles).toHaveLength(2);
    const refusedAlone = singles.filter((r) => r.status === 409);
    expect(refusedAlone.map(call)).toEqual([`PATCH ${CONTACTS}/${a.id}`]);

    const row = await actionRow(events[0]!.event.id);
    expect(row).toMatchObject({ state: "dead" });
    expect(row!.last_error).toContain("Contact already exists");
    for (const m of events.slice(1)) expect(await actionRow(m.event.id)).toMatchObject({ state: "done" });
    for (const c of rest) expect((await crmContact(c.id)).lastname).toBe("Renamed");
    expect((await crmContact(a.id)).email).toBe(a.email);
    expect((await crmContact(ownerId)).email).toBe(taken);
  });
});

describe("the audit of a bulk call", () => {
  it("is one row per call, naming every event of the batch it served", async () => {
    const contacts = await newContacts(3, "audit");
    const batch = await Promise.all(contacts.map((c) => crmCreated(c.id)));
    await deliver(batch);
    const rows = await auditRows(ids(batch));
    // (The sandbox serves the fakes under /hubspot and /mailchimp.)
    expect(rows.map((r) => `${r.connector} ${r.method} ${new URL(r.url).pathname}`).sort()).toEqual([`hubspot POST /hubspot${CONTACTS}/batch/read`, `mailchimp POST /mailchimp${BATCH}`]);
    for (const row of rows) {
      expect(JSON.parse(row.served ?? "null").sort()).toEqual(ids(batch).sort());
      expect(ids(batch)).toContain(row.event_id);
      expect(row.entity_key).toBeNull();
      expect(row.status).toBe(200);
    }
  });
});

describe("BULK_CALLS=false", () => {
  it("makes one GET and one PUT per contact for the same batch", async () => {
    const contacts = await newContacts(3, "single");
    const batch = await Promise.all(contacts.map((c) => crmCreated(c.id)));
    const oneCallEach = { ...pipelineDeps(env), config: { ...pipelineDeps(env).config, bulkCalls: false } };
    const calls = await callsDuring(() => consume(batch, oneCallEach));

    expect(calls.hubspot.map(call).sort()).toEqual(contacts.map((c) => `GET ${CONTACTS}/${c.id}`).sort());
    expect(calls.mailchimp.map(call).sort()).toEqual(contacts.map((c) => `PUT ${MEMBERS}/${subscriberHash(c.email)}`).sort());
    for (const c of contacts) expect(await mailchimpMember(c.email)).toMatchObject({ status: "subscribed" });
    const rows = await auditRows(ids(batch));
    expect(rows).toHaveLength(6);
    for (const row of rows) expect(row.served).toBeNull();
  });
});
