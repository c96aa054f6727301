/**
 * The two-way contact sync through the queue handler, the contact's Durable Object and the
 * built-in fakes, asserting the exact vendor calls of CONTRACT 6 for each requirement.
 * The sandbox's CRM settings: lost = hs_lead_status UNQUALIFIED, subscription property
 * syncwire_subscription (src/sandbox/credentials.ts).
 */
import { beforeEach, describe, expect, it } from "vitest";
import { subscriberHash } from "../../src/connectors/mailchimp";
import { crmChanged, crmCreated, crmDeleted, emailChanged, emailCleaned, emailProfile, emailSubscribed, emailUnsubscribed } from "../support/contacts";
import { actionRow, deliver } from "../support/messages";
import { crmContact, unique } from "../support/sync";
import { createCrmContact, LIST_ID, MAILCHIMP_KEY, mailchimpMember, resetSandbox, sandboxFetch, vendorRequests, HUBSPOT_TOKEN, type LoggedRequest } from "../support/sandbox";

beforeEach(resetSandbox);

const MEMBERS = `/3.0/lists/${LIST_ID}/members`;

/** The vendor calls made while `run` ran (the fakes' request logs). */
async function callsDuring(run: () => Promise<unknown>): Promise<{ hubspot: LoggedRequest[]; mailchimp: LoggedRequest[] }> {
  const before = { hubspot: (await vendorRequests("hubspot")).length, mailchimp: (await vendorRequests("mailchimp")).length };
  await run();
  return { hubspot: (await vendorRequests("hubspot")).slice(before.hubspot), mailchimp: (await vendorRequests("mailchimp")).slice(before.mailchimp) };
}

const call = (r: LoggedRequest) => `${r.method} ${r.path.split("?")[0]}`;


/** A person's change in the email platform (its webhook is delivered by the test). */
async function memberPatch(email: string, body: Record<string, unknown>): Promise<void> {
  const res = await sandboxFetch(`/mailchimp${MEMBERS}/${subscriberHash(email)}`, {
    method: "PATCH",
    headers: { authorization: `Basic ${btoa(`test:${MAILCHIMP_KEY}`)}`, "content-type": "application/json", "x-sandbox-actor": "user" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`member PATCH: ${res.status}`);
}

async function crmPatch(id: string, properties: Record<string, string>): Promise<void> {
  await sandboxFetch(`/hubspot/crm/v3/objects/contacts/${id}`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${HUBSPOT_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ properties }),
  });
}

/** A CRM contact that is already synced to a subscribed member. */
async function syncedContact(first = "Ada", last = "Lovelace") {
  const email = unique(first.toLowerCase());
  const id = await createCrmContact({ email, firstname: first, lastname: last });
  const created = await crmCreated(id, Date.now() - 60_000);
  await deliver([created]);
  expect(await mailchimpMember(email)).toMatchObject({ status: "subscribed" });
  return { id, email };
}

describe("CRM -> email platform", () => {
  it("subscribes a contact added to the CRM: one CRM read, one PUT with status_if_new", async () => {
    const email = unique("new");
    const id = await createCrmContact({ email, firstname: "Grace", lastname: "Hopper" });
    const message = await crmCreated(id);
    const calls = await callsDuring(() => deliver([message]));
    expect(calls.hubspot.map(call)).toEqual([`GET /crm/v3/objects/contacts/${id}`]);
    expect(calls.mailchimp.map(call)).toEqual([`PUT ${MEMBERS}/${subscriberHash(email)}`]);
    expect(calls.mailchimp[0]!.body).toMatchObject({ email_address: email, status_if_new: "subscribed", merge_fields: { FNAME: "Grace", LNAME: "Hopper" } });
    expect(await mailchimpMember(email)).toMatchObject({ status: "subscribed", merge_fields: { FNAME: "Grace", LNAME: "Hopper" } });
    expect(await actionRow(message.event.id)).toMatchObject({ state: "done" });
  });

  it("moves the same member to a new address when the CRM email changes (PATCH on the old hash)", async () => {
    const { id, email } = await syncedContact();
    const next = unique("moved");
    await crmPatch(id, { email: next });
    const calls = await callsDuring(async () => deliver([await crmChanged(id, "email", next)]));
    expect(calls.hubspot).toEqual([]);
    expect(calls.mailchimp.map(call)).toEqual([`PATCH ${MEMBERS}/${subscriberHash(email)}`]);
    expect(calls.mailchimp[0]!.body).toEqual({ email_address: next });
    expect(await mailchimpMember(email)).toBeNull();
    expect(await mailchimpMember(next)).toMatchObject({ status: "subscribed", email_address: next });
    // An event fired under the old address before the move still finds the contact (no lookup by email).
    const late = await callsDuring(async () => deliver([await emailProfile(email, "Ada", "Byron", Date.now() + 3_000)]));
    expect(late.hubspot.map(call)).toEqual([`PATCH /crm/v3/objects/contacts/${id}`]);
  });

  it("unsubscribes a contact marked lost", async () => {
    const { id, email } = await syncedContact();
    const calls = await callsDuring(async () => deliver([await crmChanged(id, "hs_lead_status", "UNQUALIFIED")]));
    expect(calls.mailchimp.map(call)).toEqual([`PATCH ${MEMBERS}/${subscriberHash(email)}`]);
    expect(calls.mailchimp[0]!.body).toEqual({ status: "unsubscribed" });
    expect(await mailchimpMember(email)).toMatchObject({ status: "unsubscribed" });
  });

  it("ignores a change of a property the sync does not carry", async () => {
    const { id } = await syncedContact();
    const message = await crmChanged(id, "jobtitle", "Admiral");
    const calls = await callsDuring(() => deliver([message]));
    expect(calls).toEqual({ hubspot: [], mailchimp: [] });
    expect(await actionRow(message.event.id)).toBeNull();
  });

  it("archives the member when the CRM deletes the contact", async () => {
    const { id, email } = await syncedContact();
    const calls = await callsDuring(async () => deliver([await crmDeleted(id)]));
    expect(calls.mailchimp.map(call)).toEqual([`DELETE ${MEMBERS}/${subscriberHash(email)}`]);
    expect(await mailchimpMember(email)).toMatchObject({ status: "archived" });
    // Later changes for the deleted contact write nothing.
    const late = await callsDuring(async () => deliver([await crmChanged(id, "firstname", "Ghost")]));
    expect([...late.hubspot, ...late.mailchimp].filter((r) => r.method !== "GET")).toEqual([]);
  });
});

describe("email platform -> CRM", () => {
  it("sets the CRM subscription property on an unsubscribe, and nothing subscribes them again", async () => {
    const { id, email } = await syncedContact();
    await memberPatch(email, { status: "unsubscribed" });
    // Seconds after the member was subscribed (sooner, it could have been our own write that
    // overwrote it, and Syncwire would send the unsubscribe once more to be sure: WRITE_SKEW_MS).
    const calls = await callsDuring(async () => deliver([await emailUnsubscribed(email, Date.now() + 3_000)]));
    expect(calls.hubspot.map(call)).toEqual([`PATCH /crm/v3/objects/contacts/${id}`]);
    expect(calls.hubspot[0]!.body).toEqual({ properties: { syncwire_subscription: "unsubscribed" } });
    expect(calls.mailchimp).toEqual([]);
    expect((await crmContact(id)).syncwire_subscription).toBe("unsubscribed");

    // The CRM says "subscribed" again, and a new creation event replays the contact: the member stays unsubscribed.
    await crmPatch(id, { syncwire_subscription: "subscribed" });
    const again = await callsDuring(async () => deliver([await crmChanged(id, "syncwire_subscription", "subscribed"), await crmCreated(id)]));
    expect(again.mailchimp.filter((r) => r.method !== "GET").map((r) => [r.method, r.body])).toEqual([]);
    expect(await mailchimpMember(email)).toMatchObject({ status: "unsubscribed" });
  });

  it("treats a cleaned address as unsubscribed in the CRM", async () => {
    const { id, email } = await syncedContact();
    await memberPatch(email, { status: "cleaned" });
    await deliver([await emailCleaned(email)]);
    expect((await crmContact(id)).syncwire_subscription).toBe("unsubscribed");
  });

  it("changes the CRM email on upemail, and keeps finding the contact by the new address", async () => {
    const { id, email } = await syncedContact();
    const next = unique("renamed");
    await memberPatch(email, { email_address: next });
    const calls = await callsDuring(async () => deliver([await emailChanged(email, next)]));
    expect(calls.hubspot.map(call)).toEqual([`PATCH /crm/v3/objects/contacts/${id}`]);
    expect(calls.hubspot[0]!.body).toEqual({ properties: { email: next } });
    // A later profile change under the new address reaches the same CRM contact.
    await memberPatch(next, { merge_fields: { LNAME: "Byron" } });
    await deliver([await emailProfile(next, "Ada", "Byron")]);
    expect(await crmContact(id)).toMatchObject({ email: next, lastname: "Byron" });
  });

  it("carries a profile change of first or last name to the CRM", async () => {
    const { id, email } = await syncedContact("Alan", "Turing");
    await memberPatch(email, { merge_fields: { FNAME: "Alan M." } });
    const calls = await callsDuring(async () => deliver([await emailProfile(email, "Alan M.", "Turing")]));
    expect(calls.hubspot.map(call)).toEqual([`PATCH /crm/v3/objects/contacts/${id}`]);
    expect(calls.hubspot[0]!.body).toEqual({ properties: { firstname: "Alan M." } });
  });

  it("creates the CRM contact for a subscribe of someone the CRM does not know", async () => {
    const email = unique("walkin");
    const calls = await callsDuring(async () => deliver([await emailSubscribed(email, "Walk", "In")]));
    expect(calls.hubspot.map(call)).toEqual([`GET /crm/v3/objects/contacts/${encodeURIComponent(email)}`, "POST /crm/v3/objects/contacts"]);
    expect(calls.hubspot[1]!.body).toEqual({ properties: { email, firstname: "Walk", lastname: "In", syncwire_subscription: "subscribed" } });
    expect(calls.mailchimp).toEqual([]);
    // Its later unsubscribe finds the new contact through the index.
    expect(calls.hubspot[1]!.status).toBe(201);
    const id = await contactIdByEmail(email);
    await deliver([await emailUnsubscribed(email)]);
    expect((await crmContact(id)).syncwire_subscription).toBe("unsubscribed");
  });
});

async function contactIdByEmail(email: string): Promise<string> {
  const res = await sandboxFetch(`/hubspot/crm/v3/objects/contacts/${email}?idProperty=email`, { headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` } });
  return ((await res.json()) as { id: string }).id;
}
