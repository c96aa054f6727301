/**
 * The contact sync at its edges, through the queue handler, the Durable Object and the fakes:
 * a stale email index, two people resolving one conflict, two writes failing differently, an
 * answer that reveals an unsubscribe, a contact gone before it is read, and a deletion with an
 * open conflict.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { subscriberHash } from "../../src/connectors/mailchimp";
import { eventIdFor } from "../../src/ingest/event";
import { newDelivery } from "../../src/pipeline/message";
import { pipelineDeps } from "../../src/pipeline/consumer";
import { crmChanged, crmCreated, crmDeleted, emailProfile, emailSubscribed } from "../support/contacts";
import { actionRow, consume, deliver, eventRow } from "../support/messages";
import { crmContact, deliverUntilSettled, unique } from "../support/sync";
import { createCrmContact, HUBSPOT_TOKEN, LIST_ID, MAILCHIMP_KEY, mailchimpMember, resetSandbox, sandboxFetch, setFaults, vendorRequests } from "../support/sandbox";

beforeEach(resetSandbox);

const mailchimpAuth = { authorization: `Basic ${btoa(`test:${MAILCHIMP_KEY}`)}`, "content-type": "application/json" };

async function synced(first = "Ada") {
  const email = unique(first.toLowerCase());
  const id = await createCrmContact({ email, firstname: first, lastname: "Edge" });
  await deliverUntilSettled([await crmCreated(id)]);
  return { id, email };
}

describe("a stale row in the email index", () => {
  it("sends an event under an address the contact never had to whoever has it: here, a new CRM contact", async () => {
    const a = await synced("Ann");
    const stranger = unique("stranger");
    // The index says the stranger's address is Ann's (a row left behind).
    await env.DB.prepare("INSERT INTO contact_emails (email, contact_key, updated_at) VALUES (?, ?, ?)").bind(stranger, `contact:${a.id}`, Date.now()).run();
    await deliverUntilSettled([await emailSubscribed(stranger, "Zoe", "Stranger")]);
    expect(await crmContact(a.id)).toMatchObject({ email: a.email, firstname: "Ann" });
    const row = await env.DB.prepare("SELECT contact_key FROM contact_emails WHERE email = ?").bind(stranger).first<{ contact_key: string }>();
    expect(row?.contact_key).not.toBe(`contact:${a.id}`);
    expect(await crmContact(row!.contact_key.slice("contact:".length))).toMatchObject({ email: stranger, firstname: "Zoe" });
  });
});

describe("two people resolving the same conflict", () => {
  it("applies the side the conflict's row records, whatever the event says", async () => {
    const { id, email } = await synced();
    await sandboxFetch(`/mailchimp/3.0/lists/${LIST_ID}/members/${subscriberHash(email)}`, { method: "PATCH", headers: { ...mailchimpAuth, "x-sandbox-actor": "user" }, body: JSON.stringify({ merge_fields: { LNAME: "FromEmail" } }) });
    const escalate = () => ({ ...pipelineDeps(env), config: { ...pipelineDeps(env).config, conflictPolicy: "escalate" as const } });
    await sandboxFetch(`/hubspot/crm/v3/objects/contacts/${id}`, { method: "PATCH", headers: { authorization: `Bearer ${HUBSPOT_TOKEN}`, "content-type": "application/json", "x-sandbox-actor": "user" }, body: JSON.stringify({ properties: { lastname: "FromCrm" } }) });
    await setFaults("mailchimp", { outageSeconds: 60 });
    await consume([await crmChanged(id, "lastname", "FromCrm", Date.now())], escalate());
    await consume([await emailProfile(email, "Ada", "FromEmail", Date.now() + 1000)], escalate());
    await setFaults("mailchimp", { outageSeconds: 0 });
    const conflict = await env.DB.prepare("SELECT id FROM conflicts WHERE entity_key = ? AND status = 'open'").bind(`contact:${id}`).first<{ id: string }>();
    expect(conflict).not.toBeNull();
    // The row says crm won; the event that arrives says email (the loser's).
    await env.DB.prepare("UPDATE conflicts SET status = 'resolved', resolution = 'crm', resolved_by = 'alice', resolved_at = ? WHERE id = ?").bind(Date.now(), conflict!.id).run();
    const loser = newDelivery(
      { id: await eventIdFor("syncwire", `${conflict!.id}:email`), source: "syncwire", type: "conflict.resolve", dedupeKey: `${conflict!.id}:email`, entityKey: `contact:${id}`, receivedAt: Date.now(), occurredAt: Date.now(), payload: { conflictId: conflict!.id, field: "lastname", choose: "email", by: "bob" } },
      Date.now(),
    );
    await consume([loser], escalate());
    expect((await crmContact(id)).lastname).toBe("FromCrm");
    expect(await mailchimpMember(email)).toMatchObject({ merge_fields: expect.objectContaining({ LNAME: "FromCrm" }) });
  });
});

describe("writes that fail differently in one group", () => {
  it("retries the group for the transient failure instead of dead-lettering it for the permanent one", async () => {
    const { id, email } = await synced();
    // Every call fails while the faults are set (not just the next one: nothing else may use them up).
    await setFaults("hubspot", { failNext: { count: 100, status: 400 } });
    await setFaults("mailchimp", { failNext: { count: 100, status: 503 } });
    const fromCrm = await crmChanged(id, "firstname", "Both", Date.now());
    const fromEmail = await emailProfile(email, "Ada", "Ways", Date.now() + 1000);
    const first = await deliver([fromCrm, fromEmail]);
    expect(first.retryMessages).toHaveLength(2);
    expect(await actionRow(fromCrm.event.id)).toMatchObject({ state: "failed", last_status: 503 });
    await setFaults("hubspot", { failNext: null });
    await setFaults("mailchimp", { failNext: null });
    await deliverUntilSettled([fromCrm, fromEmail]);
    expect(await mailchimpMember(email)).toMatchObject({ merge_fields: expect.objectContaining({ FNAME: "Both" }) });
  });
});

describe("an answer that reveals an unsubscribe", () => {
  it("reaches the CRM: a new CRM contact whose address had unsubscribed in the email platform", async () => {
    const email = unique("gone");
    await sandboxFetch(`/mailchimp/3.0/lists/${LIST_ID}/members/${subscriberHash(email)}`, { method: "PUT", headers: mailchimpAuth, body: JSON.stringify({ email_address: email, status_if_new: "unsubscribed" }) });
    const id = await createCrmContact({ email, firstname: "Gone", lastname: "Already" });
    await deliverUntilSettled([await crmCreated(id)]);
    expect(await mailchimpMember(email)).toMatchObject({ status: "unsubscribed" });
    expect((await crmContact(id)).syncwire_subscription).toBe("unsubscribed");
  });
});

describe("a contact gone before it is read", () => {
  it("is not an invalid event (its deletion says what happened)", async () => {
    const message = await crmCreated("987654321");
    await deliverUntilSettled([message]);
    expect((await eventRow(message.event.id))?.status).toBe("done");
  });
});

describe("a deletion with an open conflict", () => {
  it("closes the conflict in D1", async () => {
    const { id, email } = await synced();
    const escalate = () => ({ ...pipelineDeps(env), config: { ...pipelineDeps(env).config, conflictPolicy: "escalate" as const } });
    await setFaults("mailchimp", { outageSeconds: 60 });
    await consume([await crmChanged(id, "lastname", "FromCrm", Date.now())], escalate());
    await consume([await emailProfile(email, "Ada", "FromEmail", Date.now() + 1000)], escalate());
    await setFaults("mailchimp", { outageSeconds: 0 });
    await consume([await crmDeleted(id, Date.now() + 2000)], escalate());
    const rows = await env.DB.prepare("SELECT status, resolved_by FROM conflicts WHERE entity_key = ?").bind(`contact:${id}`).all();
    expect(rows.results).toEqual([{ status: "resolved", resolved_by: "syncwire: the CRM deleted the contact" }]);
  });
});

describe("the isolate dying between the writes and the settle", () => {
  it("holds the contact until its lease ends, then plans again and repeats the same write, once", async () => {
    const { id, email } = await synced();
    const message = await crmChanged(id, "lastname", "Survivor", Date.now());
    const real = pipelineDeps(env);
    // The writes are sent, then the invocation dies before the object hears of them.
    const dying = { ...real, coordinators: { plan: real.coordinators.plan, settle: async () => Promise.reject(new Error("the isolate died")) } };
    const before = (await vendorRequests("mailchimp")).length;
    const first = await consume([message], dying);
    expect(first.retryMessages).toHaveLength(1);
    // A redelivery meanwhile finds the contact held: it waits, and calls nobody.
    const early = await consume([message], pipelineDeps(env), { attempts: 2 });
    expect(early.retryMessages).toHaveLength(1);
    expect((await vendorRequests("mailchimp")).length - before).toBe(1);
    // After the leases (the ledger's and the object's, 90 s) the next attempt plans again.
    const later = { ...pipelineDeps(env), now: () => Date.now() + 91_000 };
    const last = await consume([message], later, { attempts: 3 });
    expect(last.explicitAcks).toHaveLength(1);
    const writes = (await vendorRequests("mailchimp")).slice(before).filter((r) => r.method !== "GET");
    // Not knowing the first write landed, it sends the same one again: the same value, no other effect.
    expect(writes.map((r) => r.body)).toEqual([{ merge_fields: { LNAME: "Survivor" } }, { merge_fields: { LNAME: "Survivor" } }]);
    expect(await mailchimpMember(email)).toMatchObject({ merge_fields: expect.objectContaining({ LNAME: "Survivor" }) });
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done" });
  });
});
