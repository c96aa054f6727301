/**
 * The contact sync when delivery is hostile: shuffled order, every delivery three times, an
 * outage while both systems change the same field (both conflict policies), and concurrent
 * consumer invocations on the same contacts. Vendor calls are read from the fakes' logs.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { subscriberHash } from "../../src/connectors/mailchimp";
import { eventIdFor } from "../../src/ingest/event";
import type { EventMessage } from "../../src/pipeline/message";
import { pipelineDeps } from "../../src/pipeline/consumer";
import { durableCoordinators, type Coordinators } from "../../src/entities/directory";
import { callWorker } from "../http/admin-support";
import { crmChanged, crmCreated, emailProfile } from "../support/contacts";
import { consume, deliver } from "../support/messages";
import { crmContact, deliverUntilSettled, shuffled, unique } from "../support/sync";
import { createCrmContact, HUBSPOT_TOKEN, LIST_ID, mailchimpMember, resetSandbox, sandboxFetch, setFaults, vendorRequests, waitFor, type LoggedRequest } from "../support/sandbox";

beforeEach(resetSandbox);

async function vendorPatch(vendor: "hubspot" | "mailchimp", path: string, body: unknown): Promise<void> {
  const auth = vendor === "hubspot" ? `Bearer ${HUBSPOT_TOKEN}` : `Basic ${btoa("test:0123456789abcdef0123456789abcdef-us21")}`;
  const res = await sandboxFetch(`/${vendor}${path}`, { method: "PATCH", headers: { authorization: auth, "content-type": "application/json", "x-sandbox-actor": "user" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${vendor} PATCH ${path}: ${res.status}`);
}

const writes = (requests: LoggedRequest[]) => requests.filter((r) => r.method !== "GET");

async function syncedContact() {
  const email = unique("ooo");
  const id = await createCrmContact({ email, firstname: "First-0", lastname: "Last-0" });
  await deliver([await crmCreated(id, Date.now() - 3_600_000)]);
  return { id, email };
}

/**
 * A contact both systems already hold, known to Syncwire as of an hour ago (its Durable Object
 * and the email index seeded directly, without a read), so the test's changes can carry real
 * past source times: made before any of Syncwire's writes, as webhooks that arrive late are.
 */
async function knownContact(at: number) {
  const email = unique("ooo");
  const id = await createCrmContact({ email, firstname: "First-0", lastname: "Last-0" });
  const auth = `Basic ${btoa("test:0123456789abcdef0123456789abcdef-us21")}`;
  await sandboxFetch(`/mailchimp/3.0/lists/${LIST_ID}/members/${subscriberHash(email)}`, {
    method: "PUT",
    headers: { authorization: auth, "content-type": "application/json" },
    body: JSON.stringify({ email_address: email, status_if_new: "subscribed", merge_fields: { FNAME: "First-0", LNAME: "Last-0" } }),
  });
  const values = { email, firstname: "First-0", lastname: "Last-0", subscription: "subscribed" } as const;
  const observations = (["crm", "email"] as const).flatMap((system) => Object.entries(values).map(([field, value]) => ({ system, field: field as "email", value, at })));
  const coordinator = env.ENTITY.getByName(`contact:${id}`);
  const token = crypto.randomUUID();
  await coordinator.plan({ token, leaseMs: 10_000, inputs: [{ eventId: "seed", kind: "observe", observations }], options: { policy: "latest-wins", crmTakesSubscription: true, now: Date.now() } });
  await coordinator.settle({ token, now: Date.now(), results: [], options: { policy: "latest-wins", crmTakesSubscription: true, now: Date.now() } });
  await env.DB.prepare("INSERT INTO contact_emails (email, contact_key, updated_at) VALUES (?, ?, ?)").bind(email, `contact:${id}`, Date.now()).run();
  return { id, email };
}

describe("out of order", () => {
  for (const seed of [7, 11, 2026]) {
    it(`the same 20 changes in a shuffled order end in the newest state on both sides (seed ${seed})`, async () => {
      // Whole seconds, so Mailchimp's fired_at keeps every change's time.
      const start = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
      const { id, email } = await knownContact(start);
      // 20 changes, made in this order in the systems themselves; their webhooks arrive shuffled.
      const changes: (() => Promise<EventMessage>)[] = [];
      let first = "First-0";
      let last = "Last-0";
      for (let i = 1; i <= 20; i++) {
        const at = start + i * 10_000;
        if (i % 2 === 0) {
          const field = i % 4 === 0 ? "firstname" : "lastname";
          const value = `${field}-${i}`;
          if (field === "firstname") first = value;
          else last = value;
          await vendorPatch("hubspot", `/crm/v3/objects/contacts/${id}`, { properties: { [field]: value } });
          changes.push(() => crmChanged(id, field, value, at));
        } else {
          if (i % 3 === 0) first = `First-${i}`;
          else last = `Last-${i}`;
          const [f, l] = [first, last];
          await vendorPatch("mailchimp", `/3.0/lists/${LIST_ID}/members/${subscriberHash(email)}`, { merge_fields: { FNAME: f, LNAME: l } });
          changes.push(() => emailProfile(email, f, l, at));
        }
      }
      const messages = await Promise.all(shuffled(changes, seed).map((c) => c()));
      // Arriving in small batches, one after the other.
      for (let i = 0; i < messages.length; i += 3) await deliverUntilSettled(messages.slice(i, i + 3));
      expect(await crmContact(id)).toMatchObject({ firstname: first, lastname: last });
      expect(await mailchimpMember(email)).toMatchObject({ merge_fields: expect.objectContaining({ FNAME: first, LNAME: last }) });
    });
  }
});

describe("every delivery three times", () => {
  it("has one downstream effect each", async () => {
    const { id, email } = await syncedContact();
    const lost = await crmChanged(id, "hs_lead_status", "UNQUALIFIED");
    const renamed = await crmChanged(id, "firstname", "Thrice");
    const before = writes(await vendorRequests("mailchimp")).length;
    await deliver([lost, renamed, lost, renamed, lost, renamed]);
    await deliver([renamed, lost], { attempts: 2 });
    await deliver([lost, renamed], { attempts: 3 });
    const after = writes(await vendorRequests("mailchimp")).slice(before);
    // Both changes in one PATCH of the member (one entity group), and nothing again.
    expect(after.map((r) => r.body)).toEqual([{ status: "unsubscribed", merge_fields: { FNAME: "Thrice" } }]);
    expect(await mailchimpMember(email)).toMatchObject({ status: "unsubscribed", merge_fields: expect.objectContaining({ FNAME: "Thrice" }) });
  });
});

describe("a conflict during an outage of the email platform", () => {
  async function bothChange() {
    const { id, email } = await syncedContact();
    const t0 = Date.now();
    // A person changes the last name in the email platform (its webhook comes later)...
    await vendorPatch("mailchimp", `/3.0/lists/${LIST_ID}/members/${subscriberHash(email)}`, { merge_fields: { LNAME: "FromEmail" } });
    const emailChange = await emailProfile(email, "First-0", "FromEmail", t0 + 60_000);
    // ...while the CRM's earlier change of the same field cannot reach it.
    await vendorPatch("hubspot", `/crm/v3/objects/contacts/${id}`, { properties: { lastname: "FromCrm" } });
    const crmChange = await crmChanged(id, "lastname", "FromCrm", t0);
    await setFaults("mailchimp", { outageSeconds: 60 });
    return { id, email, crmChange, emailChange };
  }

  it("latest-wins converges both systems on the newer change after recovery", async () => {
    const { id, email, crmChange, emailChange } = await bothChange();
    const first = await deliver([crmChange]);
    expect(first.retryMessages).toHaveLength(1);
    await deliver([emailChange]);
    await setFaults("mailchimp", { outageSeconds: 0 });
    await env.DB.prepare("UPDATE actions SET next_attempt_at = 0 WHERE event_id = ?").bind(crmChange.event.id).run();
    await deliverUntilSettled([crmChange]);
    expect((await crmContact(id)).lastname).toBe("FromEmail");
    expect(await mailchimpMember(email)).toMatchObject({ merge_fields: expect.objectContaining({ LNAME: "FromEmail" }) });
  });

  it("escalate writes neither side, opens one conflict, and resolving it converges both", async () => {
    const { id, email, crmChange, emailChange } = await bothChange();
    const escalate = () => ({ ...pipelineDeps(env), config: { ...pipelineDeps(env).config, conflictPolicy: "escalate" as const } });
    await consume([crmChange], escalate());
    await consume([emailChange], escalate());
    await setFaults("mailchimp", { outageSeconds: 0 });
    await env.DB.prepare("UPDATE actions SET next_attempt_at = 0 WHERE event_id = ?").bind(crmChange.event.id).run();
    await consume([crmChange], escalate(), { attempts: 2 });

    const { results } = await env.DB.prepare("SELECT * FROM conflicts WHERE entity_key = ?").bind(`contact:${id}`).all<Record<string, unknown>>();
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ field: "lastname", crm_value: "FromCrm", email_value: "FromEmail", status: "open" });
    // Neither side was written while it is open.
    expect((await crmContact(id)).lastname).toBe("FromCrm");
    expect(await mailchimpMember(email)).toMatchObject({ merge_fields: expect.objectContaining({ LNAME: "FromEmail" }) });

    // A person chooses the CRM's value through the operations API; the real queue carries it.
    const conflictId = String(results[0]!.id);
    const answer = await callWorker(`/api/conflicts/${conflictId}/resolve`, { json: { choose: "crm", by: "ops@example.com" } });
    expect(answer.status).toBe(202);
    expect(((await answer.json()) as { eventId: string }).eventId).toBe(await eventIdFor("syncwire", `${conflictId}:crm`));
    await waitFor(async () => ((await mailchimpMember(email))?.merge_fields as Record<string, string>)?.LNAME === "FromCrm", 10_000, "the choice in Mailchimp");
    expect((await crmContact(id)).lastname).toBe("FromCrm");
    expect(await env.DB.prepare("SELECT status, resolution, resolved_by FROM conflicts WHERE id = ?").bind(conflictId).first()).toEqual({ status: "resolved", resolution: "crm", resolved_by: "ops@example.com" });
  });
});

describe("concurrent consumer invocations", () => {
  it("200 events for 20 contacts, in batches processed at once, end correct with no duplicate call", async () => {
    const contacts = await Promise.all(Array.from({ length: 20 }, async (_, c) => {
      const email = unique(`conc${c}`);
      return { id: await createCrmContact({ email, firstname: "F", lastname: "L" }), email };
    }));
    const base = Date.now() + 1000;
    const messages: EventMessage[] = [];
    for (const c of contacts) {
      messages.push(await crmCreated(c.id, base));
      for (let i = 1; i <= 9; i++) {
        const value = `n${i}`;
        await vendorPatch("hubspot", `/crm/v3/objects/contacts/${c.id}`, { properties: { firstname: value } });
        messages.push(await crmChanged(c.id, "firstname", value, base + i * 1000));
      }
    }
    const before = (await vendorRequests("mailchimp")).length;
    let pending = shuffled(messages, 99);
    for (let round = 1; pending.length > 0 && round <= 20; round++) {
      const batches = [0, 1, 2, 3].map((b) => pending.filter((_, i) => i % 4 === b)).filter((b) => b.length > 0);
      // Two invocations at a time, on overlapping contacts.
      const results = await Promise.all(batches.map((b) => consume(b, pipelineDeps(env), { attempts: round }).then((r) => ({ r, b }))));
      pending = results.flatMap(({ r, b }) => b.filter((_, i) => r.retryMessages.some((m) => m.msgId === r.ids[i])));
      await env.DB.prepare("UPDATE actions SET next_attempt_at = 0 WHERE state IN ('failed', 'pending')").run();
    }
    expect(pending).toEqual([]);
    const calls = (await vendorRequests("mailchimp")).slice(before);
    for (const c of contacts) {
      expect(await mailchimpMember(c.email)).toMatchObject({ status: "subscribed", merge_fields: expect.objectContaining({ FNAME: "n9" }) });
      const mine = calls.filter((r) => r.path.includes(subscriberHash(c.email)) && r.method !== "GET").map((r) => JSON.stringify(r.body));
      // No write repeated: each one carries a value the member did not have yet.
      expect(new Set(mine).size).toBe(mine.length);
    }
  });
});

describe("Durable Object requests", () => {
  it("are at most two per distinct contact of a batch, however many events each has", async () => {
    const contacts = await Promise.all(Array.from({ length: 10 }, async (_, c) => {
      const email = unique(`do${c}`);
      return { id: await createCrmContact({ email, firstname: "F", lastname: "L" }), email };
    }));
    const messages: EventMessage[] = [];
    for (const c of contacts) {
      messages.push(await crmCreated(c.id));
      for (let i = 1; i <= 4; i++) messages.push(await crmChanged(c.id, "lastname", `L${i}`, Date.now() + i * 1000));
    }
    const calls: string[] = [];
    const real = durableCoordinators(env.ENTITY);
    const counting: Coordinators = {
      plan: (key, request) => (calls.push(`plan ${key}`), real.plan(key, request)),
      settle: (key, request) => (calls.push(`settle ${key}`), real.settle(key, request)),
    };
    const result = await consume(messages, { ...pipelineDeps(env), coordinators: counting });
    expect(result.explicitAcks).toHaveLength(50);
    expect(calls).toHaveLength(2 * contacts.length);
    expect(new Set(calls).size).toBe(calls.length);
  });
});
