/**
 * Echoes, with the sandbox fakes reporting every change back by webhook (ours included) through
 * the worker's ingest and the real queue, as the vendors do: a round trip must end after one
 * write, and the whole system must go quiet.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { subscriberHash } from "../../src/connectors/mailchimp";
import { createCrmContact, HUBSPOT_TOKEN, LIST_ID, MAILCHIMP_KEY, mailchimpMember, resetSandbox, sandboxFetch, itemWrites, untilQuiet, vendorRequests, waitFor } from "../support/sandbox";
import { unique } from "../support/sync";

beforeEach(() => resetSandbox({ webhooks: true }));

const userHeaders = (auth: string) => ({ authorization: auth, "content-type": "application/json", "x-sandbox-actor": "user" });

async function asUser(vendor: "hubspot" | "mailchimp", path: string, body: unknown): Promise<void> {
  const auth = vendor === "hubspot" ? `Bearer ${HUBSPOT_TOKEN}` : `Basic ${btoa(`test:${MAILCHIMP_KEY}`)}`;
  const res = await sandboxFetch(`/${vendor}${path}`, { method: "PATCH", headers: userHeaders(auth), body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${vendor} PATCH ${path}: ${res.status}`);
}

/** What was written since, per contact or member (a bulk call once per input it carries). */
async function writesSince(counts: { hubspot: number; mailchimp: number }) {
  const pick = async (vendor: "hubspot" | "mailchimp") => itemWrites((await vendorRequests(vendor)).slice(counts[vendor]));
  return { hubspot: await pick("hubspot"), mailchimp: await pick("mailchimp") };
}

const counts = async () => ({ hubspot: (await vendorRequests("hubspot")).length, mailchimp: (await vendorRequests("mailchimp")).length });

describe("echo suppression with both fakes reporting every change", () => {
  it("a CRM change makes one Mailchimp write; the webhook reporting it back makes no CRM write", async () => {
    const email = unique("echo");
    const id = await createCrmContact({ email, firstname: "Echo", lastname: "Chamber" });
    await waitFor(() => mailchimpMember(email).then((m) => m ?? undefined), 10_000, "member subscribed");
    await untilQuiet();

    const before = await counts();
    await asUser("hubspot", `/crm/v3/objects/contacts/${id}`, { properties: { firstname: "Narcissus" } });
    await waitFor(async () => ((await mailchimpMember(email))?.merge_fields as Record<string, string>)?.FNAME === "Narcissus", 10_000, "name in Mailchimp");
    await untilQuiet();

    const writes = await writesSince(before);
    // The person's own PATCH, and nothing else in the CRM.
    expect(writes.hubspot.map((r) => r.body)).toEqual([{ properties: { firstname: "Narcissus" } }]);
    expect(writes.mailchimp.map((r) => `${r.method} ${r.path}`)).toEqual([`PATCH /3.0/lists/${LIST_ID}/members/${subscriberHash(email)}`]);
    // The profile webhook came back and was recognized.
    const echo = await env.DB.prepare("SELECT a.note FROM actions a JOIN events e ON e.id = a.event_id WHERE e.source = 'mailchimp' AND e.type = 'profile' AND e.entity_key = ?")
      .bind(`email:${email}`)
      .all<{ note: string }>();
    expect(echo.results.map((r) => r.note)).toContainEqual(expect.stringContaining("echo"));
  });

  it("changes on both sides at once: everything converges and the system is quiet within seconds", async () => {
    const a = unique("both.a");
    const b = unique("both.b");
    const idA = await createCrmContact({ email: a, firstname: "Ann", lastname: "A" });
    const idB = await createCrmContact({ email: b, firstname: "Bob", lastname: "B" });
    await waitFor(async () => (await mailchimpMember(a)) !== null && (await mailchimpMember(b)) !== null, 10_000, "both members");
    await untilQuiet();

    const before = await counts();
    await Promise.all([
      asUser("hubspot", `/crm/v3/objects/contacts/${idA}`, { properties: { lastname: "Alpha" } }),
      asUser("mailchimp", `/3.0/lists/${LIST_ID}/members/${subscriberHash(b)}`, { merge_fields: { LNAME: "Beta" } }),
      asUser("mailchimp", `/3.0/lists/${LIST_ID}/members/${subscriberHash(a)}`, { status: "unsubscribed" }),
    ]);
    await untilQuiet(1_500, 10_000);

    expect(await mailchimpMember(a)).toMatchObject({ status: "unsubscribed", merge_fields: expect.objectContaining({ LNAME: "Alpha" }) });
    const crm = async (id: string) =>
      ((await (await sandboxFetch(`/hubspot/crm/v3/objects/contacts/${id}?properties=lastname,syncwire_subscription`, { headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` } })).json()) as { properties: Record<string, string> }).properties;
    expect(await crm(idA)).toMatchObject({ lastname: "Alpha", syncwire_subscription: "unsubscribed" });
    expect(await crm(idB)).toMatchObject({ lastname: "Beta" });
    // Three changes by people, one write each to the other side: nothing went round twice.
    const writes = await writesSince(before);
    expect(writes.mailchimp).toHaveLength(3); // 2 by people + A's last name from the CRM
    expect(writes.hubspot).toHaveLength(3); // 1 by a person + B's last name + A's unsubscribe
  });
});
