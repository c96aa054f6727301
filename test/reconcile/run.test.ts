/**
 * The nightly check (issue 9) step by step (test/support/reconcile.ts): the run's messages are
 * delivered to the SYNC consumer by the test, so a crash can be put between any two steps. The
 * two systems are the sandbox fakes; contacts are written through their APIs.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { failRun, reconcileDeps } from "../../src/reconcile/consumer";
import { deliverUntilDone, member, runToEnd, synced } from "../support/reconcile";
import { createCrmContact, HUBSPOT_TOKEN, mailchimpMember, resetSandbox, sandboxFetch, setFaults } from "../support/sandbox";

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

/** One contact in step, and one of each kind of drift the fakes' APIs can make: renamed in the list (later than in the CRM), only in the CRM, only in the list, unsubscribed in the list. */
async function drifted() {
  await synced(0);
  const renamed = await synced(1);
  await member(renamed.email, { FNAME: "Augusta", LNAME: "Lovelace" });
  const onlyCrmEmail = `only.crm.${crypto.randomUUID().slice(0, 6)}@example.com`;
  const onlyCrm = await createCrmContact({ email: onlyCrmEmail, firstname: "Grace", lastname: "Hopper" });
  const onlyListEmail = `only.list.${crypto.randomUUID().slice(0, 6)}@example.com`;
  await member(onlyListEmail, { FNAME: "Alan", LNAME: "Turing" });
  const unsubscribed = await synced(2);
  await member(unsubscribed.email, {}, "unsubscribed");
  return { renamed, onlyCrm, onlyCrmEmail, onlyListEmail, unsubscribed };
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
    const { renamed, onlyCrm, onlyCrmEmail, onlyListEmail, unsubscribed } = await drifted();
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
  });

  it("repairs every kind of drift through the pipeline, each entity one change event; a second run finds nothing", { timeout: 30_000 }, async () => {
    const { renamed, onlyCrm, onlyCrmEmail, onlyListEmail, unsubscribed } = await drifted();
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
    const { run, redelivered, sent } = await runToEnd();
    // The failure is counted in a fresh copy of the step, not left to the queue's attempts.
    expect(redelivered).toEqual([]);
    expect(sent.filter((m) => "failures" in m && m.failures)).toEqual([expect.objectContaining({ kind: "scan", side: "crm", page: "", failures: 1 })]);
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

  it("a late step of a run that succeeded, failing for good, raises no 'run failed' alert", async () => {
    await synced(0);
    const { run } = await runToEnd();
    expect(run.status).toBe("succeeded");
    await failRun({ ...reconcileDeps(env), queue: { send: async () => undefined } as unknown as Queue }, run.id, "finish step failed: late");
    expect(await env.DB.prepare("SELECT count(*) AS n FROM alerts WHERE run_id = ?").bind(run.id).first<{ n: number }>()).toEqual({ n: 0 });
    expect((await env.DB.prepare("SELECT status FROM sync_runs WHERE id = ?").bind(run.id).first<{ status: string }>())?.status).toBe("succeeded");
  });

  it("resumes after a crash between a page's write and its next page: the totals are exact", async () => {
    for (let i = 0; i < 3; i++) await synced(i);
    let crashed = 0;
    const { run, redelivered } = await runToEnd({ failSends: (m) => m.kind === "compare" && crashed++ === 0 });
    expect(redelivered.length).toBeGreaterThanOrEqual(1);
    expect(run).toMatchObject({ status: "succeeded", recordsCompared: { crm: 3, email: 3 }, mismatches: { total: 0 } });
  });
});
