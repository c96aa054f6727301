/**
 * The nightly check (issue 9) step by step: the run's messages are caught and delivered to the
 * SYNC consumer by the test, so a crash can be put between any two steps. The two systems are the
 * sandbox fakes; contacts are written through their APIs.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { subscriberHash } from "../../src/connectors/mailchimp";
import { getConfig } from "../../src/config";
import { database } from "../../src/pipeline/ledger";
import { consumeSync, reconcileDeps } from "../../src/reconcile/consumer";
import type { SyncMessage } from "../../src/reconcile/messages";
import { getRun, toSyncRun } from "../../src/reconcile/runs";
import { startSyncRun } from "../../src/reconcile/start";
import type { EventMessage } from "../../src/pipeline/message";
import { deliver, recordingBatch } from "../support/messages";
import { createCrmContact, HUBSPOT_TOKEN, LIST_ID, MAILCHIMP_KEY, mailchimpMember, resetSandbox, sandboxFetch, setFaults } from "../support/sandbox";

/** The CRM contact's properties, from the fake. */
async function crmContact(id: string): Promise<Record<string, string | null>> {
  const res = await sandboxFetch(`/hubspot/crm/v3/objects/contacts/${id}?properties=email,firstname,lastname,syncwire_subscription`, { headers: { authorization: `Bearer ${HUBSPOT_TOKEN}` } });
  return ((await res.json()) as { properties: Record<string, string | null> }).properties;
}

beforeEach(async () => {
  await resetSandbox();
  // One run at a time: a run a test left unfinished must not hold the next test's start.
  await env.DB.prepare("DELETE FROM sync_runs").run();
});

async function member(email: string, fields: { FNAME?: string; LNAME?: string }, status = "subscribed") {
  const res = await sandboxFetch(`/mailchimp/3.0/lists/${LIST_ID}/members/${subscriberHash(email)}`, {
    method: "PUT",
    headers: { authorization: `Basic ${btoa(`test:${MAILCHIMP_KEY}`)}`, "content-type": "application/json" },
    body: JSON.stringify({ email_address: email, status_if_new: status, status, merge_fields: fields }),
  });
  if (!res.ok) throw new Error(`member: ${res.status} ${await res.text()}`);
}

/** A contact on both sides, the same everywhere. */
async function synced(n: number) {
  const email = `recon.${n}.${crypto.randomUUID().slice(0, 6)}@example.com`;
  const id = await createCrmContact({ email, firstname: `Ada${n}`, lastname: "Lovelace" });
  await member(email, { FNAME: `Ada${n}`, LNAME: "Lovelace" });
  return { id, email };
}

/**
 * Starts a run and delivers its messages until none is left; `fail` may make a step's queue send
 * throw (a crash after the step's D1 write, before its successor was sent).
 */
async function runToEnd(options: { dryRun?: boolean; failSends?: (message: SyncMessage) => boolean; duplicate?: (message: SyncMessage) => boolean } = {}) {
  const pending: SyncMessage[] = [];
  const queue = {
    async send(body: SyncMessage) {
      if (options.failSends?.(body)) throw new Error("the isolate died before this send");
      pending.push(body);
      // The queue delivers at least once: this one twice.
      if (options.duplicate?.(body)) pending.push(body);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<SyncMessage>>) {
      for (const m of messages) pending.push(m.body);
    },
  } as unknown as Queue<SyncMessage>;
  // Repairs are kept, for the test to deliver (or not).
  const repairs: EventMessage[] = [];
  const events = { sendBatch: async (messages: Iterable<MessageSendRequest<EventMessage>>) => void repairs.push(...[...messages].map((m) => m.body)) } as unknown as Queue;
  // Pages of 2 contacts and compare steps of 2 records: a few contacts make a run of many steps.
  const deps = { ...reconcileDeps(env), queue, events, sizes: { crm: 2, email: 2, compare: 2 } };
  const started = await startSyncRun({ db: deps.db, config: getConfig(env), queue, now: Date.now }, { trigger: "manual", dryRun: options.dryRun ?? false });
  if (!started.ok) throw new Error(`not started: ${started.reason}`);
  let deliveries = 0;
  const redelivered: SyncMessage[] = [];
  while (pending.length > 0 && deliveries < 500) {
    const body = pending.shift()!;
    // Two copies of a message in a row are delivered at the same moment, to two invocations.
    const copies = pending[0] === body ? [body, pending.shift()!] : [body];
    deliveries += copies.length;
    const decided = await Promise.all(
      copies.map(async (copy) => {
        const { batch, decisions } = recordingBatch("syncwire-sync", [copy], 1);
        await consumeSync(batch, env, deps);
        return decisions;
      }),
    );
    // A message that was not acked comes back, as the queue would deliver it again.
    if (decided.some((d) => d.acks.length === 0)) {
      redelivered.push(body);
      pending.unshift(body);
    }
  }
  const run = await getRun(database(env.DB), started.run.id);
  return { run: toSyncRun(run!), deliveries, redelivered, repairs };
}

/** Delivers events to the worker's consumer, and again those it asked to retry (as the queue would), until all are acked. */
async function deliverUntilDone(messages: EventMessage[], rounds = 5): Promise<boolean> {
  let pending = messages;
  for (let attempt = 1; attempt <= rounds && pending.length > 0; attempt++) {
    const decided = await deliver(pending, { attempts: attempt });
    const retried = new Set(decided.retryMessages.map((r) => r.msgId));
    pending = pending.filter((_, i) => retried.has(decided.ids[i]!));
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 1_100));
  }
  return pending.length === 0;
}

const mismatchesOf = async (runId: string) =>
  (await env.DB.prepare("SELECT entity_key, kind, field, crm_value, email_value FROM sync_mismatches WHERE run_id = ? ORDER BY entity_key, kind, field").bind(runId).all()).results;

describe("a nightly check run", () => {
  it("with no drift compares every record on both sides and finds nothing", async () => {
    for (let i = 0; i < 5; i++) await synced(i);
    const { run } = await runToEnd();
    expect(run).toMatchObject({ status: "succeeded", recordsCompared: { crm: 5, email: 5 }, mismatches: { total: 0, byKind: {} }, error: null });
    expect(run.durationMs).toBeGreaterThanOrEqual(0);
    // The staged records are gone.
    expect((await env.DB.prepare("SELECT count(*) AS n FROM sync_records").first<{ n: number }>())!.n).toBe(0);
  });

  it("finds each kind of drift and records it with both values", async () => {
    const same = await synced(0);
    const renamed = await synced(1);
    const onlyCrmEmail = `only.crm.${crypto.randomUUID().slice(0, 6)}@example.com`;
    const onlyCrm = await createCrmContact({ email: onlyCrmEmail, firstname: "Grace", lastname: "Hopper" });
    const onlyListEmail = `only.list.${crypto.randomUUID().slice(0, 6)}@example.com`;
    await member(onlyListEmail, { FNAME: "Alan", LNAME: "Turing" });
    const unsubscribed = await synced(2);
    await member(unsubscribed.email, {}, "unsubscribed");
    await member(renamed.email, { FNAME: "Augusta", LNAME: "Lovelace" });

    const { run } = await runToEnd();
    expect(run).toMatchObject({ status: "succeeded", recordsCompared: { crm: 4, email: 4 } });
    expect(run.mismatches).toEqual({ total: 4, byKind: { missing_in_email: 1, missing_in_crm: 1, names_differ: 1, subscription_differs: 1 } });
    expect(await mismatchesOf(run.id)).toEqual(
      expect.arrayContaining([
        { entity_key: `contact:${onlyCrm}`, kind: "missing_in_email", field: null, crm_value: onlyCrmEmail, email_value: null },
        { entity_key: `email:${onlyListEmail}`, kind: "missing_in_crm", field: null, crm_value: null, email_value: onlyListEmail },
        { entity_key: `contact:${renamed.id}`, kind: "names_differ", field: "firstname", crm_value: "Ada1", email_value: "Augusta" },
        { entity_key: `contact:${unsubscribed.id}`, kind: "subscription_differs", field: "subscription", crm_value: "subscribed", email_value: "unsubscribed" },
      ]),
    );
    expect(same.id).toBeDefined();
  });

  it("repairs every kind of drift through the pipeline, each entity one change event; a second run finds nothing", { timeout: 30_000 }, async () => {
    await synced(0);
    const renamed = await synced(1);
    await member(renamed.email, { FNAME: "Augusta", LNAME: "Lovelace" }); // changed in the list, later than in the CRM
    const onlyCrmEmail = `only.crm.${crypto.randomUUID().slice(0, 6)}@example.com`;
    const onlyCrm = await createCrmContact({ email: onlyCrmEmail, firstname: "Grace", lastname: "Hopper" });
    const onlyListEmail = `only.list.${crypto.randomUUID().slice(0, 6)}@example.com`;
    await member(onlyListEmail, { FNAME: "Alan", LNAME: "Turing" });
    const unsubscribed = await synced(2);
    await member(unsubscribed.email, {}, "unsubscribed");

    const first = await runToEnd();
    expect(first.run).toMatchObject({ status: "succeeded", repairsQueued: 4, mismatches: { total: 4 } });
    expect(first.repairs.map((r) => r.event.entityKey).sort()).toEqual([`contact:${onlyCrm}`, `contact:${renamed.id}`, `contact:${unsubscribed.id}`, `email:${onlyListEmail}`].sort());
    expect(await deliverUntilDone(first.repairs)).toBe(true);

    // The list's later rename won; the unsubscribe won; each missing record was made on the other side.
    expect(await crmContact(renamed.id)).toMatchObject({ firstname: "Augusta" });
    expect(await crmContact(unsubscribed.id)).toMatchObject({ syncwire_subscription: "unsubscribed" });
    expect(await mailchimpMember(onlyCrmEmail)).toMatchObject({ status: "subscribed", merge_fields: { FNAME: "Grace", LNAME: "Hopper" } });
    expect((await mailchimpMember(unsubscribed.email))?.status).toBe("unsubscribed");
    const second = await runToEnd();
    expect(second.run).toMatchObject({ status: "succeeded", mismatches: { total: 0 }, repairsQueued: 0, recordsCompared: { crm: 5, email: 5 } });
  });

  it("a dry run reports and repairs nothing", async () => {
    await createCrmContact({ email: `dry.${crypto.randomUUID().slice(0, 6)}@example.com`, firstname: "Grace", lastname: "Hopper" });
    const { run, repairs } = await runToEnd({ dryRun: true });
    expect(run).toMatchObject({ dryRun: true, mismatches: { total: 1 }, repairsQueued: 0 });
    expect(repairs).toEqual([]);
  });

  it("matches a contact whose address changed in the CRM by the address it was last synced with: email_differs", async () => {
    const { id, email: old } = await synced(0);
    const now = `moved.${crypto.randomUUID().slice(0, 6)}@example.com`;
    await sandboxFetch(`/hubspot/crm/v3/objects/contacts/${id}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${HUBSPOT_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ properties: { email: now } }),
    });
    // The live sync's index: the contact was last synced with its old address.
    await env.DB.prepare("INSERT OR REPLACE INTO contact_emails (email, contact_key, updated_at) VALUES (?, ?, ?)").bind(old, `contact:${id}`, Date.now()).run();
    const { run } = await runToEnd();
    expect(run.mismatches).toEqual({ total: 1, byKind: { email_differs: 1 } });
    expect(await mismatchesOf(run.id)).toEqual([{ entity_key: `contact:${id}`, kind: "email_differs", field: "email", crm_value: now, email_value: old }]);
  });

  it("counts a page delivered twice at the same moment once", async () => {
    for (let i = 0; i < 5; i++) await synced(i);
    await createCrmContact({ email: `alone.${crypto.randomUUID().slice(0, 6)}@example.com`, firstname: "Grace", lastname: "Hopper" });
    const { run, deliveries } = await runToEnd({ duplicate: (m) => m.kind === "scan" || m.kind === "compare" });
    expect(deliveries).toBeGreaterThan(12);
    expect(run).toMatchObject({ status: "succeeded", recordsCompared: { crm: 6, email: 5 }, mismatches: { total: 1, byKind: { missing_in_email: 1 } } });
  });

  it("retries a page the vendor failed for a moment, and ends as if nothing happened", async () => {
    for (let i = 0; i < 3; i++) await synced(i);
    await setFaults("hubspot", { failNext: { count: 1, status: 503 } });
    const { run, redelivered } = await runToEnd();
    expect(redelivered).toEqual([expect.objectContaining({ kind: "scan", side: "crm" })]);
    expect(run).toMatchObject({ status: "succeeded", recordsCompared: { crm: 3, email: 3 } });
  });

  it("fails the run with the reason when the CRM refuses the token, and clears what it staged", async () => {
    for (let i = 0; i < 3; i++) await synced(i);
    await setFaults("hubspot", { failNext: { count: 1, status: 401 } });
    const { run } = await runToEnd();
    expect(run).toMatchObject({ status: "failed", error: expect.stringContaining("401") });
    expect(run.finishedAt).not.toBeNull();
    expect((await env.DB.prepare("SELECT count(*) AS n FROM sync_records WHERE run_id = ?").bind(run.id).first<{ n: number }>())!.n).toBe(0);
  });

  it("resumes after a crash between a page's write and its next page: the totals are exact", async () => {
    for (let i = 0; i < 3; i++) await synced(i);
    let crashed = 0;
    const { run, redelivered } = await runToEnd({ failSends: (m) => m.kind === "compare" && crashed++ === 0 });
    expect(redelivered.length).toBeGreaterThanOrEqual(1);
    expect(run).toMatchObject({ status: "succeeded", recordsCompared: { crm: 3, email: 3 }, mismatches: { total: 0 } });
  });
});
